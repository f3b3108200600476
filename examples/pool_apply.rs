//! `Pool.apply` runs one task at a time: Python's `apply` example, in Rust,
//! next to `apply_async` for contrast.
//!
//! The Python original is the `apply_async` example (see `pool_apply_async.rs`)
//! with `p.apply(run_task, args=(i,))` in the loop. `apply` waits for its task's
//! result before returning, so the loop hands the pool one task at a time:
//! `Task 0 end.` comes before `Task 1 ... is running`, six tasks take six
//! sleeps, and `Waiting for all subprocesses done...` is printed only after the
//! last one. The second half runs the same six tasks with `apply_async`, which
//! queues them all at once: three run side by side and the whole takes two
//! sleeps.
//!
//! The sleep is 0.2 s instead of 1 s, so the example ends in under two seconds.
//!
//! Shows: `apply` (blocking, returns the result) against `apply_async` (queues,
//! returns an `AsyncResult`), and what that does to ordering and elapsed time.
//!
//! ```text
//! cargo run --example pool_apply
//! ```

use std::time::{Duration, Instant};

/// Prints who runs it, naps 0.2 s (the original: 1 s), and says when it ends.
#[mproc::task]
fn run_task(name: u32) -> u32 {
    let me = mproc::current_process().pid();
    let parent = mproc::parent_process().map(|p| p.pid().to_string()).unwrap_or_default();
    println!("Task {name} pid {me} is running, parent id is {parent}");
    std::thread::sleep(Duration::from_millis(200));
    println!("Task {name} end.");
    name * 10
}

#[mproc::main]
fn main() -> Result<(), mproc::Error> {
    println!("current process {}", mproc::current_process().pid());

    println!("\n== apply: one task at a time");
    let pool = mproc::Pool::new(3)?;
    let started = Instant::now();
    let mut values = Vec::new();
    for i in 0..6 {
        // Returns only once run_task(i) has finished, with its result.
        values.push(pool.apply(run_task, (i,))?);
    }
    println!("Waiting for all subprocesses done...");
    pool.close();
    pool.join()?;
    println!("All processes done!");
    println!("results {values:?} in {:.1} s: six sleeps in a row", started.elapsed().as_secs_f64());

    println!("\n== apply_async: all six queued at once");
    let pool = mproc::Pool::new(3)?;
    let started = Instant::now();
    let pending: Vec<_> = (0..6).map(|i| pool.apply_async(run_task, (i,))).collect();
    println!("Waiting for all subprocesses done...");
    pool.close();
    pool.join()?;
    println!("All processes done!");
    let values = pending.into_iter().map(|r| r.get()).collect::<Result<Vec<u32>, _>>()?;
    println!("results {values:?} in {:.1} s: three at a time", started.elapsed().as_secs_f64());
    Ok(())
}
