//! Executor: Python's ProcessPoolExecutor, with futures that never hang.

mod common;

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use mproc::{Error, Executor, ReturnWhen, StartMethod};

#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::task]
fn sleeps(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[mproc::task]
fn fails() -> u64 {
    panic!("no luck")
}

#[mproc::task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[mproc::task]
fn fails_on(n: u64) -> u64 {
    assert_ne!(n, 2, "two is unlucky");
    n
}

fn executor(n: usize) -> Executor {
    Executor::builder().max_workers(n).start_method(StartMethod::ForkServer).build().unwrap()
}

/// Drives a future to completion on this thread.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[mproc::test]
fn submit_returns_a_future_of_the_result() {
    let ex = executor(2);
    let f = ex.submit(square, (12,));
    assert_eq!(f.result().unwrap(), 144);
}

#[mproc::test]
fn a_task_future_can_be_awaited() {
    let ex = executor(1);
    assert_eq!(block_on(ex.submit(square, (5,))).unwrap(), 25);
}

#[mproc::test]
fn result_timeout_on_a_running_task_times_out_and_can_be_asked_again() {
    let ex = executor(1);
    let f = ex.submit(sleeps, (300,));
    assert!(matches!(f.result_timeout(Duration::from_millis(20)), Err(Error::Timeout)));
    assert!(!f.done());
    assert_eq!(f.result_timeout(Duration::from_secs(10)).unwrap(), 300);
}

#[mproc::test]
fn cancel_removes_a_queued_task_but_not_a_running_one() {
    let ex = executor(1);
    let running = ex.submit(sleeps, (300,));
    let queued = ex.submit(sleeps, (300,));
    std::thread::sleep(Duration::from_millis(100));
    assert!(queued.is_pending());
    assert!(queued.cancel());
    assert!(matches!(queued.result(), Err(Error::Cancelled)));
    assert!(!running.cancel());
    assert_eq!(running.result().unwrap(), 300);
}

#[mproc::test]
fn cancel_and_kill_stops_a_running_task_and_the_executor_goes_on() {
    let ex = executor(1);
    let running = ex.submit(sleeps, (60_000,));
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    assert!(running.cancel_and_kill());
    assert!(matches!(running.result(), Err(Error::Cancelled)));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(ex.submit(square, (3,)).result().unwrap(), 9);
}

#[mproc::test]
fn done_callbacks_receive_the_result() {
    let ex = executor(1);
    let f = ex.submit(square, (7,));
    let (tx, rx) = std::sync::mpsc::channel();
    f.add_done_callback(move |r| tx.send(*r.as_ref().unwrap()).unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 49);
}

#[mproc::test]
fn as_completed_yields_futures_in_completion_order() {
    let ex = executor(2);
    let futures = vec![ex.submit(sleeps, (400,)), ex.submit(sleeps, (10,))];
    let order: Vec<u64> = mproc::as_completed(futures).map(|f| f.result().unwrap()).collect();
    assert_eq!(order, vec![10, 400]);
}

#[mproc::test]
fn wait_first_completed_returns_when_one_is_done() {
    let ex = executor(2);
    let futures = vec![ex.submit(sleeps, (10,)), ex.submit(sleeps, (2_000,))];
    let (done, not_done) = mproc::wait(&futures, ReturnWhen::FirstCompleted);
    assert_eq!((done, not_done), (vec![0], vec![1]));
}

#[mproc::test]
fn wait_first_exception_returns_at_the_first_failure() {
    let ex = executor(2);
    let futures = vec![ex.submit(sleeps, (5_000,)), ex.submit(fails, ())];
    let t = Instant::now();
    let (done, not_done) = mproc::wait(&futures, ReturnWhen::FirstException);
    assert!(t.elapsed() < Duration::from_secs(4), "waited for the slow one");
    assert_eq!((done, not_done), (vec![1], vec![0]));
    assert!(futures[0].cancel_and_kill());
    let mut futures = futures.into_iter();
    let _slow = futures.next();
    assert!(matches!(futures.next().unwrap().result(), Err(Error::Panicked { .. })));
}

#[mproc::test]
fn wait_all_completed_returns_when_all_are_done() {
    let ex = executor(2);
    let futures: Vec<_> = (0..4).map(|n| ex.submit(sleeps, (n * 20,))).collect();
    let (done, not_done) = mproc::wait(&futures, ReturnWhen::AllCompleted);
    assert_eq!(done.len(), 4);
    assert!(not_done.is_empty());
}

#[mproc::test]
fn map_yields_in_input_order_from_a_lazy_input() {
    let ex = executor(2);
    let first: Vec<u64> = ex.map(square, 1u64..).take(5).map(Result::unwrap).collect();
    assert_eq!(first, vec![1, 4, 9, 16, 25]);
}

#[mproc::test]
fn shutdown_with_cancel_futures_cancels_queued_tasks_and_waits_for_running_ones() {
    let ex = executor(1);
    let running = ex.submit(sleeps, (200,));
    std::thread::sleep(Duration::from_millis(50));
    let queued = ex.submit(sleeps, (200,));
    ex.shutdown(true, true);
    assert_eq!(running.result().unwrap(), 200);
    assert!(matches!(queued.result(), Err(Error::Cancelled)));
    assert!(matches!(ex.submit(square, (1,)).result(), Err(Error::Closed)));
}

#[mproc::test]
fn as_completed_next_timeout_times_out_and_gives_back_the_rest() {
    let ex = executor(2);
    let futures = vec![ex.submit(sleeps, (60_000,)), ex.submit(sleeps, (5,))];
    let mut completed = mproc::as_completed(futures);
    assert_eq!(completed.next_timeout(Duration::from_secs(30)).unwrap().unwrap().result().unwrap(), 5);
    let t = Instant::now();
    assert!(matches!(completed.next_timeout(Duration::from_millis(100)), Err(Error::Timeout)));
    assert!(t.elapsed() < Duration::from_secs(10));
    let rest = completed.into_remaining();
    assert_eq!(rest.len(), 1);
    assert!(!rest[0].done());
    for f in rest {
        f.cancel_and_kill();
    }
}

// ---- map_timeout ----------------------------------------------------------------------------

/// Every worker pid the executor has had, live or replaced.
fn all_worker_pids(ex: &Executor) -> Vec<i32> {
    let insights = ex.insights();
    insights.workers.iter().map(|w| w.pid).chain(insights.restarts.iter().map(|r| r.pid)).collect()
}

#[mproc::test]
fn map_timeout_yields_everything_in_input_order_when_in_time() {
    let ex = executor(2);
    let all: Vec<u64> = ex.map_timeout(square, 0..50u64, Duration::from_secs(60)).map(Result::unwrap).collect();
    assert_eq!(all, (0..50u64).map(|n| n * n).collect::<Vec<_>>());
}

#[mproc::test]
fn map_timeout_counts_the_timeout_from_the_call_not_per_item() {
    let ex = executor(1);
    // One worker: the calls end at about 1, 2, 3 and 4 s. Each alone is well
    // within the timeout; together they are not.
    let t = Instant::now();
    let results: Vec<Result<u64, Error>> =
        ex.map_timeout(sleeps, [1_000, 1_000, 1_000, 1_000], Duration::from_millis(2_500)).collect();
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0].as_ref().unwrap(), &1_000);
    assert_eq!(results[1].as_ref().unwrap(), &1_000);
    assert!(matches!(results[2], Err(Error::Timeout)), "{results:?}");
}

#[mproc::test]
fn map_timeout_yields_the_items_done_in_time_before_the_timeout_then_ends() {
    let ex = executor(2);
    let t = Instant::now();
    let mut results = ex.map_timeout(sleeps, [10, 20, 60_000, 30], Duration::from_secs(2));
    assert_eq!(results.next().unwrap().unwrap(), 10);
    assert_eq!(results.next().unwrap().unwrap(), 20);
    assert!(matches!(results.next(), Some(Err(Error::Timeout))));
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(1_900), "timed out early: {waited:?}");
    assert!(waited < Duration::from_secs(20), "timed out late: {waited:?}");
    // Python's generator ends at the TimeoutError: so does this iterator.
    assert!(results.next().is_none());
    assert!(results.next().is_none());
}

#[mproc::test]
fn map_timeout_stops_its_late_calls_and_the_executor_runs_new_work() {
    let ex = executor(1);
    let before = all_worker_pids(&ex);
    let t = Instant::now();
    let mut results = ex.map_timeout(sleeps, [60_000, 60_000, 60_000], Duration::from_millis(200));
    assert!(matches!(results.next(), Some(Err(Error::Timeout))));
    drop(results);
    // The one worker was busy with a 60 s call: it was stopped and replaced.
    assert_eq!(ex.submit(square, (3,)).result_timeout(Duration::from_secs(30)).unwrap(), 9);
    assert!(t.elapsed() < Duration::from_secs(30), "new work waited {:?}", t.elapsed());
    let insights = ex.insights();
    assert_eq!(insights.restarts.len(), 1, "{:?}", insights.restarts);
    assert_eq!(insights.restarts[0].pid, before[0]);
    assert!(!common::running(before[0]), "the late call's worker still runs");
    assert_eq!(ex.map(square, 0..4u64).map(Result::unwrap).collect::<Vec<_>>(), vec![0, 1, 4, 9]);
}

#[mproc::test]
fn map_timeout_leaves_no_process_behind() {
    let ex = executor(2);
    let results: Vec<_> =
        ex.map_timeout(sleeps, [10, 60_000, 60_000, 60_000, 10], Duration::from_millis(300)).collect();
    assert!(matches!(results[..], [Ok(10), Err(Error::Timeout)]), "{results:?}");
    let pids = all_worker_pids(&ex);
    assert!(pids.len() >= 2, "{pids:?}");
    let t = Instant::now();
    ex.shutdown(true, false);
    assert!(t.elapsed() < Duration::from_secs(20), "shutdown waited {:?}", t.elapsed());
    for pid in pids {
        assert!(common::eventually(Duration::from_secs(10), || !common::running(pid)), "worker {pid} survived");
    }
}

#[mproc::test]
fn map_timeout_pulls_an_endless_input_lazily() {
    let ex = executor(2);
    let first: Vec<u64> = ex.map_timeout(square, 1u64.., Duration::from_secs(60)).take(5).map(Result::unwrap).collect();
    assert_eq!(first, vec![1, 4, 9, 16, 25]);
}

#[mproc::test]
fn map_timeout_with_a_task_of_several_arguments_takes_tuples() {
    let ex = executor(1);
    let sums: Vec<i64> =
        ex.map_timeout(add, vec![(1, 2), (3, 4)], Duration::from_secs(60)).map(Result::unwrap).collect();
    assert_eq!(sums, vec![3, 7]);
}

#[mproc::test]
fn map_timeout_yields_a_failing_item_as_its_error_and_goes_on() {
    let ex = executor(1);
    let results: Vec<_> = ex.map_timeout(fails_on, [1, 2, 3], Duration::from_secs(60)).collect();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap(), &1);
    assert!(matches!(results[1], Err(Error::Panicked { .. })), "{results:?}");
    assert_eq!(results[2].as_ref().unwrap(), &3);
}
