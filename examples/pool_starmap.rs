//! `map` against `starmap` for a task of two arguments: the `Pool` section of
//! "Python 并发编程: multiprocessing and concurrent.futures", in Rust.
//!
//! The Python original lists `map(func, iterable)`, which calls `func(item)` for
//! each item, and `starmap(func, iterable_of_tuples)`, which unpacks each tuple
//! into arguments: `func(*item)`. A function of two arguments therefore needs
//! `starmap` (often over `zip(xs, ys)`), or a one-argument wrapper that takes
//! the pair.
//!
//! In mproc, `map` already unpacks: for a task of several arguments the items
//! are argument tuples, checked against the task's signature at compile time.
//! `starmap` is there for Python's spelling and takes tuples for a task of any
//! arity, a one-argument task included (`(x,)`). Python's one-argument wrapper
//! also works: a task whose single argument is a pair. Python's `starmap_async`
//! is `map_async` with tuples.
//!
//! Shows: `map` over a two-argument task, `starmap` over `zip`, `starmap` with a
//! one-argument task, a task taking a tuple, `map_async` with tuples, and that
//! a wrong item type is caught by the compiler.
//!
//! ```text
//! cargo run --example pool_starmap
//! ```

/// Two arguments: `base` raised to `exp`.
#[mproc::task]
fn power(base: u64, exp: u32) -> u64 {
    base.pow(exp)
}

/// One argument, which happens to be a pair: Python's usual wrapper for `map`.
#[mproc::task]
fn power_of_pair(pair: (u64, u32)) -> u64 {
    pair.0.pow(pair.1)
}

#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::main]
fn main() -> Result<(), mproc::Error> {
    let pool = mproc::Pool::new(4)?;
    let bases = [2u64, 3, 4, 5, 6];
    let exps = [10u32, 5, 3, 2, 1];

    // Python: pool.starmap(power, zip(bases, exps))
    let by_starmap = pool.starmap(power, bases.iter().copied().zip(exps.iter().copied()))?;
    println!("starmap(power, zip(bases, exps))  = {by_starmap:?}");

    // mproc's map unpacks tuples for a task of two arguments: the same call.
    let pairs: Vec<(u64, u32)> = bases.iter().copied().zip(exps.iter().copied()).collect();
    let by_map = pool.map(power, pairs.clone())?;
    println!("map(power, pairs)                 = {by_map:?}");
    assert_eq!(by_map, by_starmap);

    // Python's workaround, a task taking the pair as one argument, works too.
    let by_wrapper = pool.map(power_of_pair, pairs.clone())?;
    println!("map(power_of_pair, pairs)         = {by_wrapper:?}");

    // A one-argument task: map takes the items, starmap takes 1-tuples.
    println!("map(square, 1..=5)                = {:?}", pool.map(square, 1..=5u64)?);
    println!("starmap(square, [(1,), .., (5,)]) = {:?}", pool.starmap(square, (1..=5u64).map(|n| (n,)))?);

    // Python's starmap_async: map_async with tuples.
    let pending = pool.map_async(power, pairs);
    println!("map_async(power, pairs).get()     = {:?}", pending.get()?);

    // Items that do not fit the task's arguments do not compile, for example
    // `pool.map(power, vec![2u64, 3])` (a u64 is not a (u64, u32)), where
    // Python would fail at run time, in the worker, with a TypeError.

    pool.close();
    pool.join()
}
