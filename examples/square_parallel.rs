//! Processes run at the same time: Python's `square(n)` tutorial, in Rust.
//!
//! The Python original has `square(n)` sleep 3–5 s at random, print and return
//! `n**2`. It times one `Process(target=square, args=(3,))`, then four started
//! together (which take about one sleep, not four), then a list comprehension
//! of five processes. Python's `join()` cannot hand back what `square` returned;
//! here `join()` returns it, so the last part collects the five squares.
//!
//! Shows: several children running in parallel, `join()` returning each task's
//! result, and timing a group of processes.
//!
//! The sleeps are 0.3–0.5 s instead of 3–5 s, so the example ends in about two
//! seconds.
//!
//! ```text
//! cargo run --example square_parallel
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Sleeps 300–500 ms (the original: 3–5 s), prints and returns `n * n`.
#[mproc::task]
fn square(n: u64) -> u64 {
    // No random-number crate: the child's pid and `n` are varied enough.
    let pid = u64::from(std::process::id());
    let ms = 300 + (pid * 37 + n * 53) % 201;
    std::thread::sleep(Duration::from_millis(ms));
    println!("Sleep {:.3} Seconds......", ms as f64 / 1000.0);
    let result = n * n;
    println!("{n} squared is {result}");
    result
}

/// Seconds since the Unix epoch, like Python's `time.time()`.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Prints start and end times around `f`, and how long it took.
fn timed<T>(title: &str, f: impl FnOnce() -> Result<T, mproc::Error>) -> Result<T, mproc::Error> {
    println!("\n== {title}");
    println!("Start Time....{:.3}", now());
    let started = Instant::now();
    let value = f()?;
    let elapsed = started.elapsed();
    println!("End Time......{:.3}", now());
    println!("Execute Time......{:.2} s", elapsed.as_secs_f64());
    Ok(value)
}

#[mproc::main]
fn main() -> Result<(), mproc::Error> {
    // One process: as long as one sleep, no gain over a plain call.
    timed("one process", || {
        let p = mproc::spawn!(square(3))?;
        p.join()
    })?;

    // Four processes started together: still about one sleep (0.3–0.5 s), not
    // the 1.2–2 s that four calls in a row would take.
    timed("four processes at once", || {
        let p0 = mproc::spawn!(square(3))?;
        let p1 = mproc::spawn!(square(3))?;
        let p2 = mproc::spawn!(square(3))?;
        let p3 = mproc::spawn!(square(3))?;
        p0.join()?;
        p1.join()?;
        p2.join()?;
        p3.join()
    })?;

    // Python's `[mp.Process(target=square, args=(n,)) for n in range(5)]`,
    // started in one loop and joined in another; `join` also returns each result.
    let squares = timed("five processes from a list, results collected", || {
        let processes = (0..5).map(|n| mproc::spawn!(square(n))).collect::<Result<Vec<_>, _>>()?;
        processes.into_iter().map(mproc::Process::join).collect::<Result<Vec<u64>, _>>()
    })?;
    println!("Results: {squares:?}");
    Ok(())
}
