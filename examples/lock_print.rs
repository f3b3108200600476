//! Four processes print their results one at a time under a shared lock: the
//! `Lock` example of "Python multiprocessing basics" (seed 001), in Rust.
//!
//! The Python original makes `lock = mp.Lock()`, starts
//! `mp.Process(target=square, args=(n, lock))` for `n` in `range(4)`, and joins
//! them; `square` takes the lock so that "only one process runs at a time"
//! while it prints `n squared is n**2`.
//!
//! Shows: a `Lock` as a task argument, its guard, `spawn!` and `join`.
//!
//! ```text
//! cargo run --example lock_print
//! ```

use mproc::Lock;

#[mproc::task]
fn square(n: u64, lock: Lock) -> u64 {
    let result = n * n;
    // The guard releases the lock when it goes out of scope.
    let _held = lock.lock().expect("the lock works");
    println!("{n} squared is {result}");
    result
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let lock = Lock::new()?;
    let processes = (0..4).map(|n| mproc::spawn!(square(n, lock.clone()))).collect::<Result<Vec<_>, _>>()?;
    for p in processes {
        p.join()?;
    }
    Ok(())
}
