//! Four processes add to one shared counter, each increment under a lock: the
//! `Lock` of "Python multiprocessing, from the basics" (seed 004, section 3.3),
//! in Rust.
//!
//! The tutorial says it in words: once a process holds the lock, every other
//! process's request blocks until it is released, so that one process at a time
//! touches the shared resource. Here the resource is a counter in shared memory
//! that each worker reads and writes back 1000 times; with the lock around each
//! read-and-write the total is exactly 4000.
//!
//! Shows: `Lock::lock` around a critical section, a `RawValue` as the shared
//! resource.
//!
//! ```text
//! cargo run --example sync_lock
//! ```

use mproc::{Lock, RawValue};

#[mproc::task]
fn worker(lock: Lock, counter: RawValue<u64>, id: u32) {
    for _ in 0..1000 {
        let _held = lock.lock().expect("the lock works");
        // A read and a write: without the lock, two workers could read the
        // same value and one increment would be lost.
        counter.set(counter.get() + 1);
    }
    println!("worker {id} done");
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let lock = Lock::new()?;
    let counter = RawValue::<u64>::new(0)?;
    let workers =
        (0..4).map(|id| mproc::spawn!(worker(lock.clone(), counter.clone(), id))).collect::<Result<Vec<_>, _>>()?;
    for w in workers {
        w.join()?;
    }
    println!("counter = {}", counter.get());
    assert_eq!(counter.get(), 4000);
    Ok(())
}
