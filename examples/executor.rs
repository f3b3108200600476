//! `concurrent.futures.ProcessPoolExecutor`'s workflow, in Rust: create the
//! pool, submit one task, submit many with `map`, collect the results, shut
//! down. From the `ProcessPoolExecutor` section of "Python 并发编程:
//! multiprocessing and concurrent.futures".
//!
//! The Python original describes the steps: `executor =
//! ProcessPoolExecutor(max_workers=N)`; `future = executor.submit(task, a, b)`
//! for one task of two arguments; `executor.map(task, list_a, list_b)` for many
//! (two equal-length lists, zipped into the arguments); `future.result(timeout)`,
//! which raises `TimeoutError` when the result is late; `as_completed` and
//! `wait(..., return_when=FIRST_COMPLETED)` for several futures; and
//! `executor.shutdown()`.
//!
//! Differences: `submit` takes the task and an argument tuple; `map` takes one
//! iterator of argument tuples (zip the lists); `result_timeout` returns
//! `Err(Error::Timeout)` and leaves the future usable; `wait` returns the
//! indices of the futures done and not done rather than two sets. A late task
//! is not abandoned in a worker forever: `cancel` removes a queued one, and
//! `shutdown(wait, cancel_futures)` has Python's meaning.
//!
//! The sleeps are 0.1–0.6 s, so the example ends in a few seconds.
//!
//! Shows: `Executor::new`, `submit`, `result_timeout`, `result`, `map`,
//! `as_completed`, `wait` with `ReturnWhen::FirstCompleted`, `cancel`,
//! `add_done_callback`, `shutdown`.
//!
//! ```text
//! cargo run --example executor
//! ```

use std::time::{Duration, Instant};

use mproc::{Error, Executor, ReturnWhen, TaskFuture};

/// A task of two arguments: sleeps `ms` milliseconds and says who did the work.
#[mproc::task]
fn task(name: String, ms: u64) -> String {
    std::thread::sleep(Duration::from_millis(ms));
    format!("{name} slept {ms} ms in pid {}", std::process::id())
}

#[mproc::main]
fn main() -> Result<(), Error> {
    // 1. Create the pool: ProcessPoolExecutor(max_workers=4).
    let executor = Executor::new(4)?;
    let started = Instant::now();

    // 2. Submit one task: executor.submit(task, "one", 300).
    let future = executor.submit(task, ("one".to_string(), 300));

    // 3. Get its result, first with a timeout too short for it.
    match future.result_timeout(Duration::from_millis(50)) {
        Err(Error::Timeout) => println!("result(timeout=0.05): not done yet (Timeout); done() = {}", future.done()),
        other => println!("unexpected: {other:?}"),
    }
    println!("result(timeout=5):    {}", future.result_timeout(Duration::from_secs(5))?);

    // 4. Submit many: executor.map(task, names, delays). Results come back in
    //    input order, whatever order the tasks finish in.
    println!("\nmap, in input order:");
    let names = ["a", "b", "c", "d", "e"].map(String::from);
    let delays = [500, 100, 400, 200, 300];
    for result in executor.map(task, names.into_iter().zip(delays)) {
        println!("  {}", result?);
    }

    // as_completed: the same kind of work, taken as each task finishes.
    println!("\nas_completed, in completion order:");
    let futures: Vec<TaskFuture<String>> =
        delays.iter().enumerate().map(|(i, &ms)| executor.submit(task, (format!("f{i}"), ms))).collect();
    for future in mproc::as_completed(futures) {
        println!("  {}", future.result()?);
    }

    // wait(return_when=FIRST_COMPLETED): returns as soon as one is done. Six
    // tasks on four workers: w4 and w5 wait in the queue until a worker is
    // free, and w1's worker takes w4 as soon as w1 ends. `cancel` removes a
    // task that has not started (true) and leaves a running one alone (false),
    // as in Python; so w5, at least, is cancelled.
    println!("\nwait(FIRST_COMPLETED), then cancel what has not started:");
    let delays = [600, 100, 600, 600, 600, 600];
    let futures: Vec<TaskFuture<String>> =
        delays.iter().enumerate().map(|(i, &ms)| executor.submit(task, (format!("w{i}"), ms))).collect();
    let (done, not_done) = mproc::wait(&futures, ReturnWhen::FirstCompleted);
    println!("  done: {done:?}, not done: {not_done:?}");
    for &i in &not_done {
        println!("  cancel w{i}: {}", if futures[i].cancel() { "cancelled" } else { "already running" });
    }
    for (i, future) in futures.into_iter().enumerate() {
        match future.result() {
            Ok(text) => println!("  w{i}: {text}"),
            Err(Error::Cancelled) => println!("  w{i}: cancelled"),
            Err(e) => return Err(e),
        }
    }

    // add_done_callback: runs on the executor's thread when the task ends.
    let future = executor.submit(task, ("callback".to_string(), 100));
    future.add_done_callback(|result| match result {
        Ok(text) => println!("\ndone callback: {text}"),
        Err(e) => println!("\ndone callback: failed: {e}"),
    });
    future.result()?;

    // 5. Shut down: wait=True, cancel_futures=False.
    executor.shutdown(true, false);
    println!("\nshut down after {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
