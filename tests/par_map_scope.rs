//! The global pool outlives the `#[mproc::test]` that made it: a test kills the children it started
//! when it ends, and the global pool's workers must not count as such. In a binary of its own, so that
//! `made_by_a_test_that_then_ends` is the test that makes the global pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

static MADE: AtomicBool = AtomicBool::new(false);

#[mproc::test]
fn made_by_a_test_that_then_ends() {
    assert_eq!(mproc::par_map!(square, 0..10u64).unwrap(), (0..10u64).map(|n| n * n).collect::<Vec<_>>());
    MADE.store(true, Ordering::Release);
}

#[mproc::test]
fn the_global_pool_keeps_its_workers_after_the_test_that_made_it() {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !MADE.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "the other test never made the global pool");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Time for the other test to end and for its guard to kill what it counts as its children.
    std::thread::sleep(Duration::from_millis(500));
    let pool = mproc::global_pool().unwrap();
    assert!(pool.insights().restarts.is_empty(), "{:?}", pool.insights().restarts);
    assert_eq!(mproc::par_map!(square, 0..10u64).unwrap(), (0..10u64).map(|n| n * n).collect::<Vec<_>>());
}
