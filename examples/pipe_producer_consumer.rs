//! A producer and a consumer joined by a one-way pipe, with an end signal: the
//! pipe example of "Python multiprocessing, from the basics" (seed 004), in Rust.
//!
//! The tutorial describes it in words: a pipe is created, then a producer
//! process and a consumer process; the producer sends the numbers 0 to 9 with
//! `send`, the consumer takes them with `recv` and prints them; an end signal
//! is sent last, and both processes are joined.
//!
//! Here the pipe is one-way (`Pipe::simplex()`, Python's `Pipe(duplex=False)`):
//! the producer gets the sending end, the consumer the receiving end. The end
//! signal is `None` in a stream of `Option<u32>`. It is not even needed: once
//! the producer has exited, its end is closed and the consumer's `recv`
//! returns `Error::Eof`, which the consumer also treats as the end.
//!
//! Shows: `Pipe::simplex`, two children sharing a pipe, an end signal.
//!
//! ```text
//! cargo run --example pipe_producer_consumer
//! ```

use mproc::{Connection, Pipe};

#[mproc::task]
fn producer(tx: Connection<Option<u32>>) {
    for n in 0..10 {
        tx.send(&Some(n)).expect("the consumer holds the other end");
        println!("produced {n}");
    }
    // The end signal.
    tx.send(&None).expect("the consumer holds the other end");
}

#[mproc::task]
fn consumer(rx: Connection<Option<u32>>) -> u32 {
    let mut count = 0;
    // Stops at the end signal, or at the end of the stream if the signal never came.
    while let Ok(Some(n)) = rx.recv() {
        println!("consumed {n}");
        count += 1;
    }
    count
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let (rx, tx) = Pipe::<Option<u32>>::simplex()?;
    let producing = mproc::spawn!(producer(tx))?;
    let consuming = mproc::spawn!(consumer(rx))?;
    producing.join()?;
    let count = consuming.join()?;
    println!("the consumer took {count} numbers");
    Ok(())
}
