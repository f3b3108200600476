//! Python's two ways to start a process, in Rust: a target function, and a
//! `Process` subclass with a `run()` method.
//!
//! The Python original first starts five `Process(target=fun1,
//! args=('Python',))`, then five instances of `class MyProcess(Process)` whose
//! `__init__` stores a name and whose `run()` prints it, and ends each part with
//! `End test`. (It joins only the last process in each loop; here all five are
//! joined.)
//!
//! Rust has no subclassing, and a child process cannot call a method on an
//! object that lives in its parent. The state goes in a struct that derives
//! serde, `run` is a task taking that struct, and a small `start` method keeps
//! Python's `p.start()` shape. Setting `self.name` in a Python `Process` names
//! the process as well; `start` does the same with `spawn!(..; name = ..)`.
//!
//! Shows: a struct as a task argument, naming a process, joining a group.
//!
//! ```text
//! cargo run --example process_struct
//! ```

use serde::{Deserialize, Serialize};

// Method I: a target function.

#[mproc::task]
fn fun1(name: String) {
    println!("test {name} Multi process");
}

// Method II: the process's state in a struct, its `run()` as a task.

/// What Python's `MyProcess.__init__` stored on `self`.
#[derive(Debug, Serialize, Deserialize)]
struct MyProcess {
    name: String,
}

/// Python's `MyProcess.run`: runs in the child, with its own copy of the struct.
#[mproc::task]
fn run(me: MyProcess) {
    let process = mproc::current_process();
    println!("test {} Multi process (process {}, pid {})", me.name, process.name(), process.pid());
}

impl MyProcess {
    fn new(name: &str) -> MyProcess {
        MyProcess { name: name.to_string() }
    }

    /// Python's `p.start()`: the struct moves into a new process named after it.
    fn start(self) -> Result<mproc::Process<()>, mproc::Error> {
        let name = self.name.clone();
        mproc::spawn!(run(self); name = name)
    }
}

#[mproc::main]
fn main() -> Result<(), mproc::Error> {
    println!("== Method I: Process(target=fun1, args=('Python',))");
    let mut process_list = Vec::new();
    for _ in 0..5 {
        process_list.push(mproc::spawn!(fun1("Python".to_string()))?);
    }
    for p in process_list {
        p.join()?;
    }
    println!("End test");

    println!("\n== Method II: class MyProcess(Process) with run()");
    let mut process_list = Vec::new();
    for _ in 0..5 {
        process_list.push(MyProcess::new("Python").start()?);
    }
    for p in process_list {
        p.join()?;
    }
    println!("End test");
    Ok(())
}
