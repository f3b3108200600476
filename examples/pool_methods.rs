//! The four ways to hand work to a pool: Python's `apply`, `apply_async`, `map`
//! and `map_async` tutorial, in Rust.
//!
//! The Python original has `square(n)` sleep 3–5 s at random, print and return
//! `n**2`, and runs it through `mp.Pool()` four ways, printing start, end and
//! elapsed time around each: `[pool.apply(square, args=(n,)) for n in
//! range(5)]` (one at a time), `[pool.apply_async(square, args=(n,)) for n in
//! range(5)]` (returns at once with a list of `ApplyResult`s; with `callback=`
//! a function sees each result when it arrives), and `pool.map(square,
//! [2, 4, 6, 8, 10])` (all at once, results in input order). Its `map_async`
//! section only says "the same as above"; here it is written out, with a
//! callback on the whole list.
//!
//! Python's `callback=` argument becomes `on_success` on the `AsyncResult` (and
//! `error_callback=` becomes `on_error`). Callbacks run on the pool's own
//! thread, as in Python, so they should be quick.
//!
//! The sleeps are 0.1–0.3 s instead of 3–5 s; elapsed times are printed in
//! seconds with decimals rather than whole seconds. The pool has `cpu_count()`
//! workers, as `mp.Pool()` does, so the timings depend on the machine.
//!
//! Shows: `apply`, `apply_async` + `on_success` + `get`, `map`, `map_async` +
//! `on_success` + `wait`, and what each costs in time.
//!
//! ```text
//! cargo run --example pool_methods
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Sleeps 100–300 ms (the original: 3–5 s), prints and returns `n * n`.
#[mproc::task]
fn square(n: u64) -> u64 {
    // No random-number crate: the worker's pid and `n` are varied enough.
    let pid = u64::from(std::process::id());
    let ms = 100 + (pid * 37 + n * 53) % 201;
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
    // mp.Pool(): as many workers as CPUs.
    let pool = mproc::Pool::builder().build()?;
    println!("a pool of {} workers", pool.processes());

    // apply blocks until its task is done: five tasks, five sleeps in a row.
    timed("apply", || {
        let result = (0..5).map(|n| pool.apply(square, (n,))).collect::<Result<Vec<u64>, _>>()?;
        println!("{result:?}");
        Ok(())
    })?;

    // apply_async returns at once. Printing the handles shows they are not
    // ready yet (Python prints `<ApplyResult object at 0x…>`); the callback
    // prints each result as it arrives, and `get` collects them in order.
    timed("apply_async, with a callback", || {
        let pending: Vec<mproc::AsyncResult<u64>> = (0..5).map(|n| pool.apply_async(square, (n,))).collect();
        for r in &pending {
            r.on_success(|v| println!("callback: got {v}"));
        }
        println!("{pending:?}");
        let result = pending.into_iter().map(|r| r.get()).collect::<Result<Vec<u64>, _>>()?;
        println!("{result:?}");
        Ok(())
    })?;

    // map sends every item at once and returns the results in input order,
    // whatever order the tasks finish in.
    timed("map", || {
        let result = pool.map(square, [2, 4, 6, 8, 10])?;
        println!("{result:?}");
        Ok(())
    })?;

    // map_async: map without waiting; the callback sees the whole list.
    timed("map_async, with a callback", || {
        let pending = pool.map_async(square, [2, 4, 6, 8, 10]);
        pending.on_success(|all: &Vec<u64>| println!("callback: got all of {all:?}"));
        println!("map_async returned at once; ready: {}", pending.ready());
        pending.wait();
        println!("successful: {:?}", pending.successful());
        println!("{:?}", pending.get()?);
        Ok(())
    })?;

    pool.close();
    pool.join()
}
