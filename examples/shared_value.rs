//! Two processes add one to a shared integer: the `Value` example of "Python
//! multiprocessing, from the basics" (seed 004, "共享内存"), in Rust.
//!
//! The tutorial creates a `Value` holding an integer, starts two processes that
//! each add 1 to it and print it, and waits for both. In Python the addition is
//! written `with v.get_lock(): v.value += 1`; here it is `*v.lock()? += 1`:
//! the guard holds the value's lock from the read to the write, so neither
//! process can lose the other's addition.
//!
//! Each worker returns the value it left rather than printing it, so the
//! output does not depend on which one ran first.
//!
//! Shows: `Value::new`, `lock` for a read-modify-write, `get`.
//!
//! ```text
//! cargo run --example shared_value
//! ```

use mproc::Value;

#[mproc::task]
fn add_one(counter: Value<i32>) -> i32 {
    let mut n = counter.lock().expect("the lock is usable");
    *n += 1;
    *n
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let counter = Value::new(0i32)?;
    let workers = (0..2).map(|_| mproc::spawn!(add_one(counter.clone()))).collect::<mproc::Result<Vec<_>>>()?;
    let mut left = workers.into_iter().map(|w| w.join()).collect::<mproc::Result<Vec<_>>>()?;
    left.sort();
    println!("the workers left {left:?}");
    println!("the value is {}", counter.get()?);
    Ok(())
}
