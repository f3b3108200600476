//! `Executor`: Python's `concurrent.futures.ProcessPoolExecutor`, on the pool engine.

use std::collections::VecDeque;
use std::future::Future;
use std::iter::FusedIterator;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::engine::Engine;
use super::{AsyncResult, Imap, Pool, PoolBuilder};
use crate::error::{Error, Result};
use crate::start::StartMethod;
use crate::task::{self, MapFn, TaskFn, TaskValue};

/// Calls of a [`Executor::map_timeout`] in flight per worker: enough to keep a
/// worker with short calls busy (as `imap`'s window of chunks).
const MAP_WINDOW_PER_WORKER: usize = 16;

/// A pool of worker processes with futures (Python's `ProcessPoolExecutor`).
///
/// ```
/// #[mproc::task]
/// fn square(n: u64) -> u64 { n * n }
///
/// let ex = mproc::Executor::new(2)?;
/// let futures: Vec<_> = (0..4).map(|n| ex.submit(square, (n,))).collect();
/// let mut done: Vec<u64> = mproc::as_completed(futures).map(|f| f.result().unwrap()).collect();
/// done.sort();
/// assert_eq!(done, vec![0, 1, 4, 9]);
/// let ordered: Vec<u64> = ex.map(square, 0..4u64).map(Result::unwrap).collect();
/// assert_eq!(ordered, vec![0, 1, 4, 9]);
/// ex.shutdown(true, false);
/// # Ok::<(), mproc::Error>(())
/// ```
#[derive(Debug)]
pub struct Executor {
    pool: Pool,
}

impl Executor {
    /// An executor with `max_workers` worker processes.
    pub fn new(max_workers: usize) -> Result<Executor> {
        Executor::builder().max_workers(max_workers).build()
    }

    /// A builder for the executor's options.
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder::default()
    }

    /// Queues `f(args)`; the future delivers its result.
    pub fn submit<F, A>(&self, f: F, args: A) -> TaskFuture<F::Output>
    where
        F: TaskFn<A>,
        A: TaskValue,
    {
        let (result, id) = self.pool.submit_one(f, args);
        TaskFuture { result, id, engine: self.pool.engine().clone() }
    }

    /// Applies `f` to each item, yielding results in input order; the input is
    /// pulled lazily, with a bounded number of tasks in flight.
    pub fn map<'p, F, I, M>(&'p self, f: F, items: I) -> Imap<'p, F::Output>
    where
        F: MapFn<I::Item, M>,
        I: IntoIterator,
        I::IntoIter: 'p,
        I::Item: 'p,
        M: 'p,
    {
        self.pool.imap(f, items)
    }

    /// [`map`](Self::map) with a deadline: Python's `Executor.map(fn, items,
    /// timeout=...)`. The timeout counts from this call, not per item: results
    /// that arrive in time are yielded in input order, and the first one not
    /// there when `timeout` has passed is yielded as `Err(Error::Timeout)`,
    /// after which the iterator ends.
    ///
    /// At the timeout, nothing of this map outlives it: its calls still queued
    /// are cancelled and those running are stopped, their workers killed and
    /// replaced (as [`TaskFuture::cancel_and_kill`]), so a hung call cannot hold
    /// a worker. The executor stays usable, and other work on it is untouched.
    /// Dropping the iterator before the end is as for `map`: queued calls are
    /// cancelled, running ones finish (their results are discarded).
    ///
    /// Each item is its own job (Python's `chunksize=1`), so that a call can be
    /// stopped alone. The first calls are queued at once (the clock is
    /// running), the rest of the input is pulled as they complete, a bounded
    /// number in flight, so an endless input works. A one-argument task takes
    /// the items themselves; a task of several arguments takes argument
    /// tuples. An item that fails on its own (a panic, or the builder's
    /// [`task_timeout`](ExecutorBuilder::task_timeout), also `Err(Timeout)`)
    /// is yielded as its error and the map goes on.
    ///
    /// ```
    /// # use std::time::Duration;
    /// #[mproc::task]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    ///
    /// let ex = mproc::Executor::new(2)?;
    /// let mut results = ex.map_timeout(nap, [10, 60_000, 20], Duration::from_secs(2));
    /// assert_eq!(results.next().unwrap()?, 10);
    /// assert!(matches!(results.next(), Some(Err(mproc::Error::Timeout))));
    /// assert!(results.next().is_none());
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn map_timeout<'p, F, I, M>(
        &'p self,
        f: F,
        items: I,
        timeout: Duration,
    ) -> impl FusedIterator<Item = Result<F::Output>> + 'p
    where
        F: MapFn<I::Item, M>,
        I: IntoIterator,
        I::IntoIter: 'p,
        I::Item: 'p,
        M: 'p,
    {
        let deadline = Instant::now().checked_add(timeout);
        let mut input = items.into_iter();
        let mut map = MapTimeout {
            submit: Box::new(move || input.next().map(|item| self.submit_item(f, item))),
            in_flight: VecDeque::new(),
            window: MAP_WINDOW_PER_WORKER * self.pool.processes().max(1),
            deadline,
            exhausted: false,
            ended: false,
        };
        // The clock runs from now: so does the work.
        map.refill();
        map
    }

    /// Queues one item of a map as its own job, so that it can be waited on,
    /// cancelled and killed alone (as `submit`, for a [`MapFn`]).
    fn submit_item<F: MapFn<Item, M>, Item, M>(&self, f: F, item: Item) -> TaskFuture<F::Output> {
        let (result, id) = self.pool.submit_call(task::of(&f), &F::args(item));
        TaskFuture { result, id, engine: self.pool.engine().clone() }
    }

    /// Python's `shutdown`: no new tasks; with `cancel_futures`, queued tasks are
    /// cancelled; with `wait`, returns once running tasks are done and the workers
    /// have exited. Never blocks on queued work nobody waits for.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        if cancel_futures {
            self.pool.engine().cancel_queued();
        }
        self.pool.close();
        if wait {
            let _ = self.pool.join();
        }
    }

    /// The underlying pool's figures (see [`Pool::insights`]).
    pub fn insights(&self) -> super::Insights {
        self.pool.insights()
    }
}

/// Options for an [`Executor`].
#[derive(Default)]
#[must_use]
pub struct ExecutorBuilder {
    pool: PoolBuilder,
}

impl ExecutorBuilder {
    /// Number of workers (default: [`cpu_count()`](crate::cpu_count)).
    pub fn max_workers(self, n: usize) -> Self {
        ExecutorBuilder { pool: self.pool.processes(n) }
    }

    /// A task each worker runs once first; if it fails the executor is broken.
    pub fn initializer<F, A>(self, f: F, args: A) -> Self
    where
        F: TaskFn<A>,
        A: TaskValue,
    {
        ExecutorBuilder { pool: self.pool.initializer(f, args) }
    }

    /// Replace each worker after this many tasks.
    pub fn max_tasks_per_child(self, n: usize) -> Self {
        ExecutorBuilder { pool: self.pool.max_tasks_per_child(n) }
    }

    /// Kill and replace a worker whose task runs longer than this (`Error::Timeout`).
    pub fn task_timeout(self, timeout: Duration) -> Self {
        ExecutorBuilder { pool: self.pool.task_timeout(timeout) }
    }

    /// How workers are started.
    pub fn start_method(self, method: StartMethod) -> Self {
        ExecutorBuilder { pool: self.pool.start_method(method) }
    }

    /// Starts the workers.
    pub fn build(self) -> Result<Executor> {
        Ok(Executor { pool: self.pool.build()? })
    }
}

/// The result of [`Executor::submit`] (Python's `Future`). Also a Rust `Future`.
#[must_use = "a TaskFuture does nothing unless its result is collected"]
pub struct TaskFuture<T> {
    result: AsyncResult<T>,
    id: u64,
    engine: Arc<Engine>,
}

impl<T: 'static> TaskFuture<T> {
    /// Waits for the result.
    pub fn result(self) -> Result<T> {
        self.result.get()
    }

    /// Waits at most `timeout`: `Err(Timeout)` if it is not done (ask again later).
    pub fn result_timeout(&self, timeout: Duration) -> Result<T> {
        self.result.get_timeout(timeout)
    }

    /// True once the task has finished (or failed, or was cancelled).
    pub fn done(&self) -> bool {
        self.result.ready()
    }

    /// Cancels the task if it has not started; true if it was cancelled (its
    /// result is then `Err(Cancelled)`). A running task is left alone, as in Python.
    pub fn cancel(&self) -> bool {
        self.id != 0 && self.engine.cancel(self.id, false)
    }

    /// Cancels the task even if it is running, by killing its worker (which is
    /// replaced). True unless it had already finished.
    pub fn cancel_and_kill(&self) -> bool {
        !self.done() && self.id != 0 && self.engine.cancel(self.id, true)
    }

    /// True while the task waits in the queue.
    pub fn is_pending(&self) -> bool {
        self.id != 0 && self.engine.is_queued(self.id)
    }

    /// Runs `f` with the result when the task completes (at once if it has), on
    /// the executor's engine thread: keep it short.
    pub fn add_done_callback(&self, f: impl FnOnce(&Result<T>) + Send + 'static) {
        self.result.on_arrival(f);
    }

    fn when_done(&self, f: impl FnOnce() + Send + 'static) {
        self.result.on_done(f);
    }

    fn failed(&self) -> bool {
        self.result.successful() == Some(false)
    }
}

impl<T: 'static> Future for TaskFuture<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.result).poll(cx)
    }
}

impl<T> std::fmt::Debug for TaskFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFuture").field("result", &self.result).finish()
    }
}

/// Yields the futures as they complete (Python's `as_completed`).
pub fn as_completed<T: 'static>(futures: impl IntoIterator<Item = TaskFuture<T>>) -> AsCompleted<T> {
    let (tx, rx) = channel();
    let mut pending = Vec::new();
    for (i, f) in futures.into_iter().enumerate() {
        let tx = tx.clone();
        f.when_done(move || {
            let _ = tx.send(i);
        });
        pending.push(Some(f));
    }
    AsCompleted { remaining: pending.len(), pending, rx }
}

/// Iterator returned by [`as_completed`].
pub struct AsCompleted<T> {
    pending: Vec<Option<TaskFuture<T>>>,
    remaining: usize,
    rx: Receiver<usize>,
}

impl<T> AsCompleted<T> {
    /// The next future to complete, waiting at most `timeout`: `Ok(None)` once
    /// all have been handed out, `Err(Timeout)` if none completes in time (the
    /// others are still here: call again, or take them with
    /// [`into_remaining`](Self::into_remaining)). Python's
    /// `as_completed(fs, timeout)`, one step at a time:
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// #[mproc::task]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    ///
    /// let ex = mproc::Executor::new(2)?;
    /// let futures = vec![ex.submit(nap, (10,)), ex.submit(nap, (60_000,))];
    /// let mut done = mproc::as_completed(futures);
    /// assert_eq!(done.next_timeout(Duration::from_secs(30))?.unwrap().result()?, 10);
    /// assert!(matches!(done.next_timeout(Duration::from_millis(50)), Err(mproc::Error::Timeout)));
    /// for late in done.into_remaining() {
    ///     late.cancel_and_kill();
    /// }
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<TaskFuture<T>>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        match self.rx.recv_timeout(timeout) {
            Ok(i) => {
                self.remaining -= 1;
                Ok(self.pending.get_mut(i).and_then(Option::take))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Error::Timeout),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Ok(None),
        }
    }

    /// The futures not handed out yet, in the order they were given.
    pub fn into_remaining(self) -> Vec<TaskFuture<T>> {
        self.pending.into_iter().flatten().collect()
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = TaskFuture<T>;

    fn next(&mut self) -> Option<TaskFuture<T>> {
        if self.remaining == 0 {
            return None;
        }
        let i = self.rx.recv().ok()?;
        self.remaining -= 1;
        self.pending.get_mut(i).and_then(Option::take)
    }
}

/// The iterator of [`Executor::map_timeout`]: a window of futures, waited on
/// in input order against one deadline.
struct MapTimeout<'p, T> {
    /// Pulls the next item and submits it; `None` at the end of the input.
    submit: Box<dyn FnMut() -> Option<TaskFuture<T>> + 'p>,
    in_flight: VecDeque<TaskFuture<T>>,
    window: usize,
    /// `None`: a timeout too long to count.
    deadline: Option<Instant>,
    exhausted: bool,
    ended: bool,
}

impl<T: 'static> MapTimeout<'_, T> {
    fn refill(&mut self) {
        while self.in_flight.len() < self.window && !self.exhausted {
            match (self.submit)() {
                Some(f) => {
                    // Never queued (not a task, an argument that cannot be
                    // encoded, the executor shut down): as `map`, end with
                    // this error rather than pull the input on to fail again.
                    self.exhausted = f.id == 0;
                    self.in_flight.push_back(f);
                }
                None => self.exhausted = true,
            }
        }
    }

    /// Stops what is left: the last first, so that nothing queued behind a
    /// running call is handed to the worker started in place of a killed one.
    fn stop(&mut self) {
        self.ended = true;
        self.exhausted = true;
        for f in self.in_flight.drain(..).rev() {
            f.cancel_and_kill();
        }
    }
}

impl<T: 'static> Iterator for MapTimeout<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.ended {
            return None;
        }
        self.refill();
        let Some(next) = self.in_flight.front() else {
            self.ended = true;
            return None;
        };
        // A result that is already here is yielded even after the deadline.
        let arrived = match self.deadline {
            Some(deadline) => next.result.wait_timeout(deadline.saturating_duration_since(Instant::now())),
            None => {
                next.result.wait();
                true
            }
        };
        if !arrived {
            self.stop();
            return Some(Err(Error::Timeout));
        }
        self.in_flight.pop_front().map(TaskFuture::result)
    }
}

impl<T: 'static> FusedIterator for MapTimeout<'_, T> {}

/// Dropping it before the end cancels the calls still queued for it.
impl<T> Drop for MapTimeout<'_, T> {
    fn drop(&mut self) {
        for f in self.in_flight.iter().rev() {
            if f.id != 0 {
                f.engine.cancel(f.id, false);
            }
        }
    }
}

/// When [`wait`] returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future is done.
    FirstCompleted,
    /// As soon as any future fails, or when all are done.
    FirstException,
    /// When all are done.
    AllCompleted,
}

/// Waits on `futures` (Python's `concurrent.futures.wait`); returns the indices
/// of those done and of those not done.
pub fn wait<T: 'static>(futures: &[TaskFuture<T>], when: ReturnWhen) -> (Vec<usize>, Vec<usize>) {
    wait_until(futures, when, None)
}

/// [`wait`] for at most `timeout`.
pub fn wait_timeout<T: 'static>(
    futures: &[TaskFuture<T>],
    when: ReturnWhen,
    timeout: Duration,
) -> (Vec<usize>, Vec<usize>) {
    wait_until(futures, when, Instant::now().checked_add(timeout))
}

fn wait_until<T: 'static>(
    futures: &[TaskFuture<T>],
    when: ReturnWhen,
    deadline: Option<Instant>,
) -> (Vec<usize>, Vec<usize>) {
    let signal = Arc::new((Mutex::new(()), Condvar::new()));
    for f in futures {
        let signal = signal.clone();
        f.when_done(move || {
            let _guard = signal.0.lock();
            signal.1.notify_all();
        });
    }
    let satisfied = || {
        let done = futures.iter().filter(|f| f.done()).count();
        match when {
            ReturnWhen::FirstCompleted => done > 0 || futures.is_empty(),
            ReturnWhen::FirstException => done == futures.len() || futures.iter().any(|f| f.done() && f.failed()),
            ReturnWhen::AllCompleted => done == futures.len(),
        }
    };
    let mut guard = signal.0.lock().unwrap_or_else(|e| e.into_inner());
    while !satisfied() {
        guard = match deadline {
            None => signal.1.wait(guard).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break;
                }
                signal.1.wait_timeout(guard, d - now).unwrap_or_else(|e| e.into_inner()).0
            }
        };
    }
    drop(guard);
    let (done, not_done): (Vec<usize>, Vec<usize>) = (0..futures.len()).partition(|&i| futures[i].done());
    (done, not_done)
}
