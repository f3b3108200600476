//! Five workers share a resource that admits two at a time: the `Semaphore` of
//! "Python multiprocessing, from the basics" (seed 004, section 3.3), in Rust.
//!
//! The tutorial says it in words: a semaphore limits how many processes use a
//! resource at the same time. Each worker takes a slot, uses the resource for a
//! moment, and gives the slot back; at most two are ever inside.
//!
//! Shows: `Semaphore::new(2)`, `slot()` (a guard that releases the slot), the
//! semaphore as a task argument.
//!
//! ```text
//! cargo run --example sync_semaphore
//! ```

use std::time::Duration;

use mproc::Semaphore;

#[mproc::task]
fn worker(slots: Semaphore, id: u32) {
    let _slot = slots.slot().expect("the semaphore works");
    println!("worker {id} is using the resource");
    std::thread::sleep(Duration::from_millis(100));
    println!("worker {id} is done");
    // The slot is released here, when `_slot` goes out of scope.
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let slots = Semaphore::new(2)?;
    let workers = (0..5).map(|id| mproc::spawn!(worker(slots.clone(), id))).collect::<Result<Vec<_>, _>>()?;
    for w in workers {
        w.join()?;
    }
    println!("free slots at the end: {}", slots.value()?);
    Ok(())
}
