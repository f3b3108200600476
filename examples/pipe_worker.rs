//! A worker answers over a pipe: the `Pipe()` example of "Python multiprocessing
//! in practice" (seed 002), in Rust.
//!
//! The Python original creates `parent_conn, child_conn = Pipe()` and starts
//! `Process(target=worker, args=(child_conn,))`. The worker receives a message,
//! prints `Worker received: Hello from parent!` and sends back
//! `Hello from worker!`; the parent sends first, prints
//! `Parent received: Hello from worker!`, then joins the worker.
//!
//! Shows: a pipe end as a task argument, a request and its answer.
//!
//! ```text
//! cargo run --example pipe_worker
//! ```

use mproc::{Connection, Pipe};

#[mproc::task]
fn worker(conn: Connection<String>) {
    // Receive from the pipe.
    let data = conn.recv().expect("the parent sends first");
    println!("Worker received: {data}");
    // Send back through the pipe.
    conn.send(&"Hello from worker!".to_string()).expect("the parent waits for the answer");
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let (parent_conn, child_conn) = Pipe::<String>::duplex()?;
    let p = mproc::spawn!(worker(child_conn))?;
    parent_conn.send(&"Hello from parent!".to_string())?;
    let result = parent_conn.recv()?;
    println!("Parent received: {result}");
    p.join()?;
    Ok(())
}
