//! Three children put a message each; the parent takes them after joining the
//! children: the Queue example of "One article deals with Python
//! multiprocessing" (seed 003), in Rust.
//!
//! The Python original starts `Process(target=fun1, args=(q, i))` for
//! `i` in 0..3; `fun1` prints `Subprocess i start put data` and puts
//! `I am i adopt Queue signal communication`. The parent joins them, prints
//! `Main process acquisition Queue data`, takes three messages with `q.get()`,
//! and prints `End test`.
//!
//! Joining a child before taking what it put is safe here: `put` has written
//! the message into the queue before it returns, and a child may exit right
//! after. (In CPython, a child that put a large item may not exit until it is
//! taken, so joining first can deadlock; the documentation warns about it.)
//!
//! Shows: a queue shared by several children, join before get.
//!
//! ```text
//! cargo run --example queue_fun1
//! ```

use mproc::Queue;

#[mproc::task]
fn fun1(q: Queue<String>, i: u32) {
    println!("Subprocess {i} start put data");
    q.put(format!("I am {i} adopt Queue signal communication")).expect("the queue is open");
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let q = Queue::<String>::new()?;
    let mut process_list = Vec::new();
    for i in 0..3 {
        process_list.push(mproc::spawn!(fun1(q.clone(), i))?);
    }
    for p in process_list {
        p.join()?;
    }
    println!("Main process acquisition Queue data");
    for _ in 0..3 {
        println!("{}", q.get()?);
    }
    println!("End test");
    Ok(())
}
