//! `par_map!`: the global pool or a given one, tuples for multi-argument tasks, and its options.

use std::collections::HashSet;
use std::sync::Arc;

use mproc::{Error, Pool};

#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[mproc::task]
fn pid() -> u32 {
    std::process::id()
}

#[mproc::task]
fn fails_on(n: u64, bad: u64) -> u64 {
    if n == bad {
        panic!("bad item {n}");
    }
    n
}

fn squares(n: u64) -> Vec<u64> {
    (0..n).map(|i| i * i).collect()
}

fn worker_pids(pool: &Pool) -> HashSet<u32> {
    pool.insights().workers.iter().map(|w| w.pid as u32).collect()
}

#[mproc::test]
fn par_map_over_a_range_returns_the_squares_in_order() {
    let v: Vec<u64> = mproc::par_map!(square, 0..1000u64).unwrap();
    assert_eq!(v, squares(1000));
}

#[mproc::test]
fn par_map_without_a_pool_runs_on_the_global_pool() {
    let global = mproc::global_pool().unwrap();
    assert_eq!(global.processes(), mproc::cpu_count());
    let ran_on: HashSet<u32> = mproc::par_map!(pid, vec![(); 20]; chunksize = 1).unwrap().into_iter().collect();
    assert!(ran_on.is_subset(&worker_pids(global)), "{ran_on:?}");
    assert!(!ran_on.contains(&std::process::id()));
}

#[mproc::test]
fn par_map_with_a_pool_runs_on_that_pool() {
    let pool = Pool::new(2).unwrap();
    let ran_on: HashSet<u32> = mproc::par_map!(pool, pid, vec![(); 20]; chunksize = 1).unwrap().into_iter().collect();
    assert!(ran_on.is_subset(&worker_pids(&pool)), "{ran_on:?}");
    assert_eq!(mproc::par_map!(pool, square, 0..100u64).unwrap(), squares(100));
}

#[mproc::test]
fn the_pool_may_be_a_reference_or_an_arc_and_is_only_borrowed() {
    let pool = Arc::new(Pool::new(2).unwrap());
    let by_ref: &Pool = &pool;
    assert_eq!(mproc::par_map!(by_ref, square, 0..10u64).unwrap(), squares(10));
    assert_eq!(mproc::par_map!(&pool, square, 0..10u64).unwrap(), squares(10));
    assert_eq!(mproc::par_map!(pool, square, 0..10u64).unwrap(), squares(10));
    assert_eq!(pool.apply(square, (3,)).unwrap(), 9, "the pool is still there");
}

#[mproc::test]
fn a_multi_argument_task_takes_argument_tuples() {
    assert_eq!(mproc::par_map!(add, vec![(1, 2), (3, 4), (-5, 5)]).unwrap(), vec![3, 7, 0]);
}

#[mproc::test]
fn chunksize_one_returns_the_results_in_order() {
    assert_eq!(mproc::par_map!(square, 0..50u64; chunksize = 1).unwrap(), squares(50));
}

#[mproc::test]
fn unordered_returns_every_result() {
    let mut v = mproc::par_map!(square, 0..500u64; ordered = false).unwrap();
    v.sort_unstable();
    assert_eq!(v, squares(500));
    let mut v = mproc::par_map!(square, 0..100u64; ordered = false, chunksize = 3).unwrap();
    v.sort_unstable();
    assert_eq!(v, squares(100));
}

#[mproc::test]
fn progress_returns_the_same_results() {
    assert_eq!(mproc::par_map!(square, 0..300u64; progress = true).unwrap(), squares(300));
    assert_eq!(mproc::par_map!(square, 0..300u64; chunksize = 7, progress = true).unwrap(), squares(300));
    let mut v = mproc::par_map!(square, 0..300u64; progress = true, ordered = false).unwrap();
    v.sort_unstable();
    assert_eq!(v, squares(300));
}

#[mproc::test]
fn progress_over_items_of_unknown_number_returns_the_same_results() {
    let evens = (0..200u64).filter(|n| n % 2 == 0);
    let v = mproc::par_map!(square, evens; progress = true).unwrap();
    assert_eq!(v, (0..200u64).filter(|n| n % 2 == 0).map(|n| n * n).collect::<Vec<_>>());
}

#[mproc::test]
fn options_may_be_expressions() {
    let (size, in_order, bar) = (4, true, false);
    let v = mproc::par_map!(square, 0..40u64; progress = bar, chunksize = size * 2, ordered = in_order).unwrap();
    assert_eq!(v, squares(40));
}

#[mproc::test]
fn a_failing_item_is_the_error_in_input_order() {
    let items: Vec<(u64, u64)> = (0..100).map(|n| (n, 37)).collect();
    match mproc::par_map!(fails_on, items.clone(); chunksize = 4) {
        Err(Error::Panicked { message, .. }) => assert_eq!(message, "bad item 37"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    match mproc::par_map!(fails_on, items; progress = true) {
        Err(Error::Panicked { message, .. }) => assert_eq!(message, "bad item 37"),
        other => panic!("expected Panicked, got {other:?}"),
    }
}

#[mproc::test]
fn a_fork_child_gets_a_global_pool_of_its_own() {
    let parents = worker_pids(mproc::global_pool().unwrap());
    let child = mproc::fork(|| {
        let squares = mproc::par_map!(square, 0..10u64).map_err(|e| e.to_string())?;
        let pool = mproc::global_pool().map_err(|e| e.to_string())?;
        let workers: Vec<u32> = pool.insights().workers.iter().map(|w| w.pid as u32).collect();
        Ok::<_, String>((squares, workers))
    })
    .unwrap();
    let (v, workers) = child.join().unwrap().unwrap();
    assert_eq!(v, squares(10));
    assert!(!workers.is_empty());
    assert!(workers.iter().all(|w| !parents.contains(w)), "the child used its parent's workers: {workers:?}");
    // The parent's pool is untouched by the child.
    assert_eq!(mproc::par_map!(square, 0..10u64).unwrap(), squares(10));
}
