//! A child sends one list through a pipe and closes its end: example one of the
//! pipe section of "Python multiprocessing: Process, Queue and Pipe", in Rust.
//!
//! The Python original creates `(con1, con2) = Pipe()`, starts
//! `Process(target=send, args=(con1,))` where `send` does
//! `pipe.send(['spam'] + [42, 'egg'])` and `pipe.close()`, then prints
//! `con2 got: ['spam', 42, 'egg']` and closes `con2`.
//!
//! A Python list may mix strings and numbers; a Rust message has one type, so
//! the list is a `Vec` of a small enum that says which each item is.
//!
//! Shows: `Pipe::duplex`, a pipe end as a task argument, `send`, `recv`, and
//! `Error::Eof` once the child has closed its end.
//!
//! ```text
//! cargo run --example pipe_send
//! ```

use mproc::{Connection, Error, Pipe};
use serde::{Deserialize, Serialize};

/// One item of a list that mixes words and numbers.
#[derive(Debug, Serialize, Deserialize)]
enum Item {
    Word(String),
    Number(i64),
}

#[mproc::task]
fn send(pipe: Connection<Vec<Item>>) {
    let list = vec![Item::Word("spam".into()), Item::Number(42), Item::Word("egg".into())];
    pipe.send(&list).expect("the parent holds the other end");
    pipe.close();
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let (con1, con2) = Pipe::<Vec<Item>>::duplex()?;
    let sender = mproc::spawn!(send(con1))?;
    println!("con2 got: {:?}", con2.recv()?);
    // The child closed its end and nobody else holds one: the stream has ended.
    assert!(matches!(con2.recv(), Err(Error::Eof)));
    con2.close();
    sender.join()?;
    Ok(())
}
