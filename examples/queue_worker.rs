//! A worker takes a message from a queue and answers through a queue: the
//! `Queue()` example of "Python multiprocessing in practice" (seed 002), in Rust.
//!
//! The Python original creates one `q = Queue()` and starts
//! `Process(target=worker, args=(q,))`; the worker takes a message with
//! `q.get()`, prints `Worker received: Hello from parent!` and puts
//! `Hello from worker!`. The parent puts `Hello from parent!`, calls `q.get()`
//! "to wait for the data to be taken", joins the worker, then takes the answer
//! with `q.get()` and prints `Parent received: Hello from worker!`.
//!
//! With one queue both ways, the parent's first `get` may take back its own
//! message before the worker sees it, and then both processes wait forever
//! (the original warns that the line is "only for demonstration"). The twin
//! does the same job with a queue for each direction, which cannot go wrong.
//!
//! Shows: queues as task arguments, `put`, `get`, one queue per direction.
//!
//! ```text
//! cargo run --example queue_worker
//! ```

use mproc::Queue;

#[mproc::task]
fn worker(inbox: Queue<String>, outbox: Queue<String>) {
    // Take the data from the queue and print it.
    let data = inbox.get().expect("the parent puts a message");
    println!("Worker received: {data}");
    // Put the answer in the other queue.
    outbox.put("Hello from worker!".to_string()).expect("the queue is open");
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let to_worker = Queue::<String>::new()?;
    let from_worker = Queue::<String>::new()?;
    let p = mproc::spawn!(worker(to_worker.clone(), from_worker.clone()))?;
    to_worker.put("Hello from parent!".to_string())?;
    p.join()?;
    let result = from_worker.get()?;
    println!("Parent received: {result}");
    Ok(())
}
