//! A producer and a consumer joined by a queue, with an end signal: the queue
//! example of "Python multiprocessing, from the basics" (seed 004), in Rust.
//!
//! The tutorial describes it in words: a `Queue` is created, then a producer
//! process and a consumer process; the producer puts the numbers 0 to 9, the
//! consumer takes them with `get` and prints them; then an end signal is put,
//! and both processes are joined.
//!
//! The end signal is `None` in a queue of `Option<u32>`, put by the parent
//! once the producer is done, as in the tutorial. mproc also has a built-in
//! one: after `q.close()`, a `get` returns what is still queued and then
//! `Error::Closed` instead of waiting; the consumer stops on either.
//!
//! Shows: a producer/consumer pair, an end signal, `Queue::close`.
//!
//! ```text
//! cargo run --example queue_producer_consumer
//! ```

use mproc::Queue;

#[mproc::task]
fn producer(q: Queue<Option<u32>>) {
    for n in 0..10 {
        q.put(Some(n)).expect("the queue is open");
        println!("produced {n}");
    }
}

#[mproc::task]
fn consumer(q: Queue<Option<u32>>) -> u32 {
    let mut count = 0;
    // Stops at the end signal, or once the queue is closed and empty.
    while let Ok(Some(n)) = q.get() {
        println!("consumed {n}");
        count += 1;
    }
    count
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let q = Queue::<Option<u32>>::new()?;
    let producing = mproc::spawn!(producer(q.clone()))?;
    let consuming = mproc::spawn!(consumer(q.clone()))?;
    producing.join()?;
    // The end signal.
    q.put(None)?;
    let count = consuming.join()?;
    println!("the consumer took {count} numbers");
    q.close();
    Ok(())
}
