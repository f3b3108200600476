//! Ten tasks of uneven length on a pool of five: the process-pool example of
//! "One article deals with Python multiprocessing", in Rust.
//!
//! The Python original defines `fun1(name)`, which prints `Run task N (pid)...`,
//! sleeps `random.random() * 3` seconds and prints how long it ran. It creates
//! `Pool(5)`, queues ten calls with `pool.apply_async(func=fun1, args=(i,))`,
//! then `close()`s and `join()`s the pool and prints `End test`. Five tasks
//! start at once; each time one ends, the worker that ran it takes the next, so
//! the same five pids recur and a short task's worker picks up a second one
//! before a long task's worker is free.
//!
//! The sleeps are up to 0.6 s instead of up to 3 s, so the example ends in about
//! a second. There is no random-number crate here: each task's length comes
//! from the clock's nanoseconds, which vary from run to run the same way.
//!
//! Shows: `Pool::new(5)`, `apply_async` without keeping the handle (Python's
//! fire-and-forget: `close` + `join` still wait for the work), worker reuse.
//!
//! ```text
//! cargo run --example pool_fun1
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A pseudo-random fraction in [0, 1), like Python's `random.random()`.
fn random() -> f64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    // Scramble the low digits, which change fastest.
    let mixed = u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    mixed as f64 / (1u64 << 24) as f64
}

#[mproc::task]
fn fun1(name: u32) {
    println!("Run task {name} ({})...", std::process::id());
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(random() * 0.6));
    println!("Task {name} runs {:.2} seconds.", start.elapsed().as_secs_f64());
}

#[mproc::main]
fn main() -> Result<(), mproc::Error> {
    let pool = mproc::Pool::new(5)?; // a pool of 5 processes

    for i in 0..10 {
        // The handle is dropped at once: nobody asks for the result, but the
        // task still runs, because close + join below wait for queued work.
        drop(pool.apply_async(fun1, (i,)));
    }

    pool.close();
    pool.join()?;
    println!("End test");
    Ok(())
}
