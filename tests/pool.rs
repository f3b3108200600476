//! Pool: the Python API, results in order, and no hang whatever the workers do.

mod common;

use std::time::{Duration, Instant};

use mproc::{Error, Pool, StartMethod};

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

#[mproc::task]
fn dies_with(how: String) -> u64 {
    match how.as_str() {
        "segfault" => {
            // SAFETY: none — writing through a null pointer is the crash under test.
            unsafe { std::ptr::null_mut::<u64>().write_volatile(1) };
        }
        "abort" => std::process::abort(),
        "exit" => std::process::exit(3),
        "kill" => {
            let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
            std::thread::sleep(Duration::from_secs(10));
        }
        _ => {}
    }
    0
}

#[mproc::task]
fn sleeps(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[mproc::task]
fn init_ok(level: u8) {
    assert_eq!(level, 3);
}

#[mproc::task]
fn init_panics(level: u8) {
    panic!("cannot initialise level {level}");
}

fn pool(method: StartMethod, n: usize) -> Pool {
    Pool::builder().processes(n).start_method(method).build().unwrap()
}

macro_rules! for_each_start_method {
    ($($m:ident => $method:expr),*) => {$(
        mod $m {
            use super::*;
            const METHOD: StartMethod = $method;

            #[mproc::test]
            fn apply_returns_the_result() {
                let pool = pool(METHOD, 2);
                assert_eq!(pool.apply(square, (9,)).unwrap(), 81);
            }

            #[mproc::test]
            fn map_returns_results_in_input_order() {
                let pool = pool(METHOD, 2);
                let v = pool.map(square, 0..1000u64).unwrap();
                assert_eq!(v, (0..1000u64).map(|n| n * n).collect::<Vec<_>>());
            }

            #[mproc::test]
            fn map_with_chunksize_one_returns_results_in_input_order() {
                let pool = pool(METHOD, 2);
                assert_eq!(pool.map_chunked(square, 0..50u64, 1).unwrap(), (0..50u64).map(|n| n * n).collect::<Vec<_>>());
            }

            #[mproc::test]
            fn map_over_a_multi_argument_task_takes_argument_tuples() {
                let pool = pool(METHOD, 2);
                assert_eq!(pool.map(add, vec![(1, 2), (3, 4)]).unwrap(), vec![3, 7]);
                assert_eq!(pool.starmap(add, vec![(10, 20)]).unwrap(), vec![30]);
            }

            #[mproc::test]
            fn work_is_spread_over_the_workers() {
                let pool = pool(METHOD, 2);
                let pids: std::collections::HashSet<u32> =
                    pool.map_chunked(pid, vec![(); 40], 1).unwrap().into_iter().collect();
                assert!(!pids.is_empty() && pids.len() <= 2, "{pids:?}");
                assert!(!pids.contains(&std::process::id()));
            }

            #[mproc::test]
            fn a_panicking_item_fails_map_with_the_first_error_in_input_order() {
                let pool = pool(METHOD, 2);
                let items: Vec<(u64, u64)> = (0..100).map(|n| (n, 37)).collect();
                match pool.map_chunked(fails_on, items, 4) {
                    Err(Error::Panicked { message, .. }) => assert_eq!(message, "bad item 37"),
                    other => panic!("expected Panicked, got {other:?}"),
                }
                // The pool is still usable.
                assert_eq!(pool.apply(square, (4,)).unwrap(), 16);
            }

            #[mproc::test]
            fn a_worker_dying_mid_task_fails_that_task_with_worker_lost_and_is_replaced() {
                for (how, signal_or_code) in [("segfault", "signal 11"), ("abort", "signal 6"), ("exit", "code 3"), ("kill", "signal 9")] {
                    let pool = pool(METHOD, 2);
                    let others: Vec<_> = (0..6).map(|n| pool.apply_async(square, (n,))).collect();
                    match pool.apply(dies_with, (how.to_string(),)) {
                        Err(Error::WorkerLost { reason, .. }) => assert!(reason.contains(signal_or_code), "{how}: {reason}"),
                        other => panic!("{how}: expected WorkerLost, got {other:?}"),
                    }
                    for (n, r) in others.into_iter().enumerate() {
                        assert_eq!(r.get().unwrap(), (n * n) as u64);
                    }
                    assert_eq!(pool.apply(square, (5,)).unwrap(), 25, "{how}: the pool is still usable");
                    let insights = pool.insights();
                    assert_eq!(insights.workers.len(), 2);
                    assert_eq!(insights.restarts.len(), 1, "{how}: {:?}", insights.restarts);
                }
            }

            #[mproc::test]
            fn a_task_past_its_timeout_fails_with_timeout_and_its_worker_is_replaced() {
                let pool = Pool::builder().processes(1).start_method(METHOD).task_timeout(Duration::from_millis(200)).build().unwrap();
                let t = Instant::now();
                assert!(matches!(pool.apply(sleeps, (60_000,)), Err(Error::Timeout)));
                assert!(t.elapsed() < Duration::from_secs(20));
                assert_eq!(pool.apply(sleeps, (1,)).unwrap(), 1);
            }

            #[mproc::test]
            fn a_failing_initializer_breaks_the_pool_with_its_reason() {
                let pool = Pool::builder().processes(2).start_method(METHOD).initializer(init_panics, (7,)).build().unwrap();
                match pool.apply(square, (2,)) {
                    Err(Error::BrokenPool { reason }) => assert!(reason.contains("cannot initialise level 7"), "{reason}"),
                    other => panic!("expected BrokenPool, got {other:?}"),
                }
                assert!(matches!(pool.apply(square, (2,)), Err(Error::BrokenPool { .. })));
            }

            #[mproc::test]
            fn an_initializer_runs_before_work() {
                let pool = Pool::builder().processes(2).start_method(METHOD).initializer(init_ok, (3,)).build().unwrap();
                assert_eq!(pool.apply(square, (3,)).unwrap(), 9);
            }

            #[mproc::test]
            fn max_tasks_per_child_replaces_workers() {
                let pool = Pool::builder().processes(1).start_method(METHOD).max_tasks_per_child(2).build().unwrap();
                let pids: Vec<u32> = (0..6).map(|_| pool.apply(pid, ()).unwrap()).collect();
                let distinct: std::collections::HashSet<_> = pids.iter().collect();
                assert_eq!(distinct.len(), 3, "{pids:?}");
            }

            #[mproc::test]
            fn imap_yields_in_input_order_and_imap_unordered_yields_everything() {
                let pool = pool(METHOD, 2);
                let v: Vec<u64> = pool.imap(square, 0..200u64).map(Result::unwrap).collect();
                assert_eq!(v, (0..200u64).map(|n| n * n).collect::<Vec<_>>());
                let mut u: Vec<u64> = pool.imap_unordered(square, 0..200u64).map(Result::unwrap).collect();
                u.sort();
                assert_eq!(u, v);
            }

            #[mproc::test]
            fn close_and_join_finish_queued_work_and_stop_the_workers() {
                let pool = pool(METHOD, 2);
                let results: Vec<_> = (0..8).map(|n| pool.apply_async(sleeps, (n * 5,))).collect();
                let pids: Vec<i32> = pool.insights().workers.iter().map(|w| w.pid).collect();
                pool.close();
                pool.join().unwrap();
                for (n, r) in results.into_iter().enumerate() {
                    assert_eq!(r.get().unwrap(), n as u64 * 5);
                }
                for pid in pids {
                    assert!(!common::exists(pid), "worker {pid} survived join");
                }
            }

            #[mproc::test]
            fn terminate_stops_the_workers_and_fails_pending_work() {
                let pool = pool(METHOD, 1);
                let running = pool.apply_async(sleeps, (60_000,));
                let queued = pool.apply_async(sleeps, (60_000,));
                std::thread::sleep(Duration::from_millis(100));
                let t = Instant::now();
                pool.terminate().unwrap();
                assert!(t.elapsed() < Duration::from_secs(10));
                assert!(matches!(running.get(), Err(Error::Closed)));
                assert!(matches!(queued.get(), Err(Error::Closed)));
            }
        }
    )*};
}

for_each_start_method!(fork => StartMethod::Fork, forkserver => StartMethod::ForkServer, spawn => StartMethod::Spawn);

#[mproc::test]
fn join_before_close_is_an_error() {
    let pool = Pool::new(1).unwrap();
    assert!(matches!(pool.join(), Err(Error::Misuse { .. })));
}

#[mproc::test]
fn work_after_close_is_refused() {
    let pool = Pool::new(1).unwrap();
    pool.close();
    assert!(matches!(pool.apply(square, (1,)), Err(Error::Closed)));
}

#[mproc::test]
fn dropping_a_pool_keeps_results_that_are_still_held() {
    let pool = Pool::new(1).unwrap();
    let held = pool.apply_async(sleeps, (100,));
    drop(pool);
    assert_eq!(held.get().unwrap(), 100);
}

#[mproc::test]
fn imap_pulls_an_endless_input_lazily() {
    let pool = Pool::new(2).unwrap();
    let first: Vec<u64> = pool.imap(square, 0u64..).take(10).map(Result::unwrap).collect();
    assert_eq!(first, (0..10u64).map(|n| n * n).collect::<Vec<_>>());
}

#[mproc::test]
fn async_results_can_be_awaited_and_run_callbacks() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(square, (6,));
    let (tx, rx) = std::sync::mpsc::channel();
    r.on_success(move |v| tx.send(*v).unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 36);
    assert_eq!(r.get_timeout(Duration::from_secs(10)).unwrap(), 36);
    assert!(matches!(r.get_timeout(Duration::from_secs(1)), Err(Error::ResultTaken)));
}
