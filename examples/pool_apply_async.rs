//! A pool of three workers running six tasks: Python's `Pool.apply_async`
//! example, in Rust.
//!
//! The Python original defines `run_task(name)`, which prints its pid and its
//! parent's pid, sleeps one second and prints `Task N end.`. It creates
//! `multiprocessing.Pool(processes=3)`, queues six calls with
//! `p.apply_async(run_task, args=(i,))`, then `close()`s and `join()`s the pool
//! and prints `All processes done!`. Three tasks run at a time, and the same
//! three worker pids come back for tasks 3, 4 and 5: a pool reuses its
//! processes.
//!
//! `apply_async` returns an `AsyncResult` at once. Python lets you drop it and
//! still waits for the work in `join()`; here too (`close` + `join` runs what
//! was queued), and the example also keeps the handles to show that each task's
//! result can be collected afterwards.
//!
//! The sleep is 0.3 s instead of 1 s, so the example ends in about a second.
//!
//! Shows: `Pool::new`, `apply_async`, `close`, `join`, worker reuse.
//!
//! ```text
//! cargo run --example pool_apply_async
//! ```

use std::time::{Duration, Instant};

/// Prints who runs it, naps 0.3 s (the original: 1 s), and says when it ends.
#[mproc::task]
fn run_task(name: u32) -> u32 {
    let me = mproc::current_process().pid();
    let parent = mproc::parent_process().map(|p| p.pid().to_string()).unwrap_or_default();
    println!("Task {name} pid {me} is running, parent id is {parent}");
    std::thread::sleep(Duration::from_millis(300));
    println!("Task {name} end.");
    name
}

#[mproc::main]
fn main() -> Result<(), mproc::Error> {
    println!("current process {}", mproc::current_process().pid());
    let started = Instant::now();

    let pool = mproc::Pool::new(3)?;
    let results: Vec<_> = (0..6).map(|i| pool.apply_async(run_task, (i,))).collect();
    println!("Waiting for all subprocesses done...");
    pool.close();
    pool.join()?;
    println!("All processes done!");

    // Six 0.3 s tasks, three at a time: about 0.6 s, not 1.8 s.
    println!("elapsed: {:.1} s (six 0.3 s tasks, three at a time)", started.elapsed().as_secs_f64());
    let done = results.into_iter().map(|r| r.get()).collect::<Result<Vec<u32>, _>>()?;
    println!("results: {done:?}");
    Ok(())
}
