//! Executor: Python's ProcessPoolExecutor, with futures that never hang.

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
