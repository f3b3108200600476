//! A child writes a shared number and a shared array, and the parent reads
//! them: the `Value` and `Array` example of "Python multiprocessing, from the
//! basics" (seed 004, "共享内存"), in Rust.
//!
//! As in Python's `num = Value('d', 0.0)` and `arr = Array('i', range(10))`,
//! the parent makes a float and an array of ten integers in shared memory and
//! passes them to a child, which sets the number to π and negates every
//! element. After `join`, the parent sees both changes: prints `3.1415927` and
//! `[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]`.
//!
//! The child holds the array's lock once for the whole loop: the guard is a
//! slice on the shared memory, so the loop is a plain one over memory.
//!
//! Shows: `Value`, `Array::from_slice`, a guard as a `&mut [T]`, `to_vec`.
//!
//! ```text
//! cargo run --example shared_array
//! ```

use mproc::{Array, Value};

#[mproc::task]
fn f(n: Value<f64>, a: Array<i32>) {
    n.set(std::f64::consts::PI).expect("the lock is usable");
    for x in a.lock().expect("the lock is usable").iter_mut() {
        *x = -*x;
    }
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let num = Value::new(0.0f64)?;
    let arr = Array::from_slice(&(0..10).collect::<Vec<i32>>())?;
    mproc::spawn!(f(num.clone(), arr.clone()))?.join()?;
    println!("{:.7}", num.get()?);
    println!("{:?}", arr.to_vec()?);
    Ok(())
}
