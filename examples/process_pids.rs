//! Python's classic first `multiprocessing` example, in Rust.
//!
//! The Python original defines `run_proc(name)`, which prints the child's pid,
//! and starts it five times with `multiprocessing.Process(target=run_proc,
//! args=(str(i),))` under `if __name__ == '__main__':`. It then joins only the
//! last process it started before printing `Process close`, so that line may
//! come out while the first children are still running. Here every child is
//! joined, so `Process close` is always last.
//!
//! Shows: a `#[mproc::task]`, the entry hook (`#[mproc::main]`), `spawn!`, `join`
//! and `current_process().pid()`.
//!
//! ```text
//! cargo run --example process_pids
//! ```

#[mproc::task]
fn run_proc(name: String) {
    println!("Child process {name} {} Running", mproc::current_process().pid());
}

#[mproc::main]
fn main() -> Result<(), mproc::Error> {
    println!("Parent process {} is Running", mproc::current_process().pid());

    let mut children = Vec::new();
    for i in 0..5 {
        println!("process start");
        children.push(mproc::spawn!(run_proc(i.to_string()))?);
    }
    // Join all five, not only the last one.
    for child in children {
        child.join()?;
    }

    println!("Process close");
    Ok(())
}
