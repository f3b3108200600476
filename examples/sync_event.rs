//! One process waits for an event that another one sets: the `Event` of
//! "Python multiprocessing, from the basics" (seed 004, section 3.3), in Rust.
//!
//! The tutorial says it in words: an event synchronizes processes; one process
//! sets it, others wait for it. Here a waiter blocks in `wait()` until a setter,
//! after preparing for a moment, calls `set()`.
//!
//! Shows: `Event::wait`, `Event::set`, `wait_timeout` that gives up.
//!
//! ```text
//! cargo run --example sync_event
//! ```

use std::time::Duration;

use mproc::Event;

#[mproc::task]
fn waiter(ready: Event) {
    println!("waiter: waiting for the event");
    ready.wait();
    println!("waiter: the event is set, going on");
}

#[mproc::task]
fn setter(ready: Event) {
    std::thread::sleep(Duration::from_millis(200));
    println!("setter: setting the event");
    ready.set();
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let ready = Event::new()?;
    // Nobody sets it yet: a bounded wait gives up.
    assert!(!ready.wait_timeout(Duration::from_millis(50)));
    let w = mproc::spawn!(waiter(ready.clone()))?;
    let s = mproc::spawn!(setter(ready.clone()))?;
    s.join()?;
    w.join()?;
    println!("main: is_set = {}", ready.is_set());
    Ok(())
}
