//! A parent and a child take turns on one pipe: example two of the pipe section
//! of "Python multiprocessing: Process, Queue and Pipe", in Rust.
//!
//! The Python original starts `Process(target=talk, args=(childEnd,))`; `talk`
//! sends `dict(name='Bob', spam=42)`, then receives a reply and prints
//! `talker got: {'ss', 'aa', 'pp', 'mm'}`. The parent prints
//! `parent got: {'name': 'Bob', 'spam': 42}`, sends the set
//! `{x * 2 for x in 'spam'}`, joins the child and prints `parent exit`.
//!
//! Each direction carries its own type here: the child sends a record, the
//! parent answers with a set of strings. A `Connection<T>` carries one type, so
//! the messages are one enum with a variant for each.
//!
//! Shows: a duplex pipe used both ways, typed messages (a struct, a set).
//!
//! ```text
//! cargo run --example pipe_talk
//! ```

use std::collections::BTreeSet;

use mproc::{Connection, Pipe};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Person {
    name: String,
    spam: u32,
}

/// What travels on the pipe, either way.
#[derive(Debug, Serialize, Deserialize)]
enum Message {
    Person(Person),
    Words(BTreeSet<String>),
}

#[mproc::task]
fn talk(pipe: Connection<Message>) {
    pipe.send(&Message::Person(Person { name: "Bob".into(), spam: 42 })).expect("the parent is listening");
    match pipe.recv() {
        Ok(Message::Words(reply)) => println!("talker got: {reply:?}"),
        other => println!("talker got something else: {other:?}"),
    }
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let (parent_end, child_end) = Pipe::<Message>::duplex()?;
    let child = mproc::spawn!(talk(child_end))?;
    match parent_end.recv()? {
        Message::Person(p) => println!("parent got: {p:?}"),
        other => println!("parent got something else: {other:?}"),
    }
    let doubled: BTreeSet<String> = "spam".chars().map(|c| c.to_string().repeat(2)).collect();
    parent_end.send(&Message::Words(doubled))?;
    child.join()?;
    println!("parent exit");
    Ok(())
}
