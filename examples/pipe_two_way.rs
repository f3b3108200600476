//! The child speaks first, then listens: the Pipe example of "One article deals
//! with Python multiprocessing" (seed 003), in Rust.
//!
//! The Python original starts `Process(target=fun1, args=(conn2,))`. `fun1`
//! prints `Child process send message:`, sends `Hello, main process`, prints
//! `Subprocess accept message:` and prints what it receives. The parent prints
//! `Main process accept message:` and what it received, then
//! `Message sent by main process:`, sends `Hello sub process`, joins the child
//! and prints `End test`.
//!
//! The lines of the two processes interleave as the scheduler decides, as in
//! Python.
//!
//! Shows: a duplex pipe, each end sending and receiving.
//!
//! ```text
//! cargo run --example pipe_two_way
//! ```

use mproc::{Connection, Pipe};

#[mproc::task]
fn fun1(conn: Connection<String>) {
    println!("Child process send message:");
    conn.send(&"Hello, main process".to_string()).expect("the parent is listening");
    println!("Subprocess accept message:");
    println!("{}", conn.recv().expect("the parent answers"));
    conn.close();
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let (conn1, conn2) = Pipe::<String>::duplex()?;
    let p = mproc::spawn!(fun1(conn2))?;
    println!("Main process accept message:");
    println!("{}", conn1.recv()?);
    println!("Message sent by main process:");
    conn1.send(&"Hello sub process".to_string())?;
    p.join()?;
    println!("End test");
    Ok(())
}
