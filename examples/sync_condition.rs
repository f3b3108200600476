//! A consumer waits on a condition until a producer has made items: the
//! `Condition` of "Python multiprocessing, from the basics" (seed 004, section
//! 3.3), in Rust.
//!
//! The tutorial says it in words: a condition works like a lock, but lets a
//! process wait until some condition holds and lets another notify it. Here
//! the shared state is a count of items in shared memory; the producer adds
//! five, one at a time, notifying after each; the consumer waits until there
//! are five.
//!
//! Shows: `Condition::lock`, `wait_for` with a predicate, `notify_all`.
//!
//! ```text
//! cargo run --example sync_condition
//! ```

use std::time::Duration;

use mproc::{Condition, RawValue};

#[mproc::task]
fn consumer(cv: Condition, items: RawValue<u32>) {
    let mut held = cv.lock().expect("the lock works");
    println!("consumer: waiting for 5 items");
    // Releases the lock while it sleeps, takes it back to test the predicate.
    cv.wait_for(&mut held, || items.get() >= 5).expect("the condition works");
    println!("consumer: got {} items", items.get());
}

#[mproc::task]
fn producer(cv: Condition, items: RawValue<u32>) {
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(20));
        let _held = cv.lock().expect("the lock works");
        items.set(items.get() + 1);
        println!("producer: made item {}", items.get());
        cv.notify_all();
    }
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let cv = Condition::new()?;
    let items = RawValue::<u32>::new(0)?;
    let c = mproc::spawn!(consumer(cv.clone(), items.clone()))?;
    let p = mproc::spawn!(producer(cv.clone(), items.clone()))?;
    p.join()?;
    c.join()?;
    Ok(())
}
