//! Process pools: [`Pool`] (Python's `multiprocessing.Pool`). One engine
//! (`engine.rs`) serves every pool-shaped API; workers are long-lived processes
//! (`worker.rs`) that run chunks of calls.

mod chunk;
pub(crate) mod engine;
mod executor;
mod global;
mod insights;
mod iter;
mod progress;
mod result;
mod slot;
pub(crate) mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Engine, Job, PoolConfig};
pub use executor::{AsCompleted, Executor, ExecutorBuilder, ReturnWhen, TaskFuture, as_completed, wait, wait_timeout};
pub use global::{ParMapOptions, global_pool, par_map, par_map_global};
pub use insights::{Insights, Restart, WorkerInsight};
pub use iter::{Imap, ImapUnordered};
pub use result::AsyncResult;
use result::{decode_all, decode_one};
use slot::{Countdown, Slot};

use crate::error::{Error, Result};
use crate::start::{StartMethod, start_method};
use crate::task::{self, MapFn, TaskFn, TaskValue};
use crate::{codec, handle};

/// A pool of worker processes (Python's `multiprocessing.Pool`).
///
/// Workers are started once and fed tasks over their own channels. A worker
/// that dies mid-task (crash, `exit`, OOM kill) fails exactly the task it held
/// with [`Error::WorkerLost`] and is replaced; the pool never hangs.
///
/// **Drop rule:** dropping a pool returns at once. Work whose result someone
/// still holds (an [`AsyncResult`], an unfinished `imap`) runs to completion;
/// queued work nobody waits for is cancelled; then the workers stop. Use
/// [`close`](Pool::close) + [`join`](Pool::join) to wait for that, or
/// [`terminate`](Pool::terminate) to stop at once.
///
/// ```
/// #[mproc::task]
/// fn square(n: u64) -> u64 { n * n }
///
/// let pool = mproc::Pool::new(2)?;
/// assert_eq!(pool.apply(square, (3,))?, 9);
/// assert_eq!(pool.map(square, 0..5)?, vec![0, 1, 4, 9, 16]);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct Pool {
    engine: Arc<Engine>,
}

impl Pool {
    /// A pool of `processes` workers using the default start method.
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for the pool's options.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of workers.
    pub fn processes(&self) -> usize {
        self.engine.processes()
    }

    /// Runs `f(args)` in a worker and waits for the result.
    pub fn apply<F, A>(&self, f: F, args: A) -> Result<F::Output>
    where
        F: TaskFn<A>,
        A: TaskValue,
    {
        self.apply_async(f, args).get()
    }

    /// Queues `f(args)` and returns at once with a handle on the result.
    pub fn apply_async<F, A>(&self, f: F, args: A) -> AsyncResult<F::Output>
    where
        F: TaskFn<A>,
        A: TaskValue,
    {
        self.submit_one(f, args).0
    }

    /// Queues one call; also returns its job id (0 if it was never queued).
    pub(crate) fn submit_one<F, A>(&self, f: F, args: A) -> (AsyncResult<F::Output>, u64)
    where
        F: TaskFn<A>,
        A: TaskValue,
    {
        self.submit_call(task::of(&f), &args)
    }

    /// Queues one call of the task `entry` (or fails with its lookup error) with
    /// `args`; returns its result and job id (0 if it was never queued).
    pub(crate) fn submit_call<A: TaskValue, R: TaskValue>(
        &self,
        entry: Result<&'static task::TaskEntry>,
        args: &A,
    ) -> (AsyncResult<R>, u64) {
        let submitted = entry.and_then(|entry| {
            let (chunk, fds) = handle::encode_with_handles(std::slice::from_ref(args))?;
            let slot = Slot::new();
            let job = Job { task: entry.name(), chunk, fds, items: 1, slot: slot.clone(), group: 0, index: 0 };
            let ids = self.engine.submit([job])?;
            let result = AsyncResult::new(vec![slot], entry.name(), decode_one::<R>);
            Ok((result.with_engine(self.engine.clone()), ids[0]))
        });
        submitted.unwrap_or_else(|e| (AsyncResult::failed(e, decode_one::<R>), 0))
    }

    /// Applies `f` to every item and returns the results in input order. Items are
    /// sent in chunks of CPython's default size. Fails fast: after the first failing
    /// item no more chunks are dispatched, and the first error in input order is returned.
    ///
    /// A one-argument task takes the items themselves; a task of several
    /// arguments takes argument tuples.
    pub fn map<F, I, M>(&self, f: F, items: I) -> Result<Vec<F::Output>>
    where
        F: MapFn<I::Item, M>,
        I: IntoIterator,
    {
        self.map_async_with(f, items, None).get()
    }

    /// [`map`](Pool::map) with `chunksize` calls per job.
    pub fn map_chunked<F, I, M>(&self, f: F, items: I, chunksize: usize) -> Result<Vec<F::Output>>
    where
        F: MapFn<I::Item, M>,
        I: IntoIterator,
    {
        self.map_async_with(f, items, Some(chunksize)).get()
    }

    /// [`map`](Pool::map) without waiting: the results come as one [`AsyncResult`].
    pub fn map_async<F, I, M>(&self, f: F, items: I) -> AsyncResult<Vec<F::Output>>
    where
        F: MapFn<I::Item, M>,
        I: IntoIterator,
    {
        self.map_async_with(f, items, None)
    }

    /// Python's `starmap`: items are argument tuples, whatever the task's arity.
    pub fn starmap<F, A, I>(&self, f: F, items: I) -> Result<Vec<F::Output>>
    where
        F: TaskFn<A>,
        A: TaskValue,
        I: IntoIterator<Item = A>,
    {
        let args: Vec<A> = items.into_iter().collect();
        self.submit_chunks::<A, F::Output>(task::of(&f).map(|e| e.name()), args, None).get()
    }

    pub(crate) fn map_async_with<F, I, M>(
        &self,
        f: F,
        items: I,
        chunksize: Option<usize>,
    ) -> AsyncResult<Vec<F::Output>>
    where
        F: MapFn<I::Item, M>,
        I: IntoIterator,
    {
        let args: Vec<F::Args> = items.into_iter().map(F::args).collect();
        self.submit_chunks::<F::Args, F::Output>(task::of(&f).map(|e| e.name()), args, chunksize)
    }

    fn submit_chunks<A: TaskValue, R: TaskValue>(
        &self,
        task: Result<&'static str>,
        args: Vec<A>,
        chunksize: Option<usize>,
    ) -> AsyncResult<Vec<R>> {
        let task = match task {
            Ok(t) => t,
            Err(e) => return AsyncResult::failed(e, decode_all::<R>),
        };
        let size = chunksize.unwrap_or_else(|| chunk::default_chunksize(args.len(), self.processes())).max(1);
        let group = self.engine.new_group();
        let countdown = Countdown::new(args.len().div_ceil(size));
        let mut slots = Vec::new();
        let mut jobs = Vec::new();
        for (index, part) in args.chunks(size).enumerate() {
            let (chunk, fds) = match handle::encode_with_handles(part) {
                Ok(c) => c,
                Err(e) => return AsyncResult::failed(e, decode_all::<R>),
            };
            let slot = Slot::counted(&countdown);
            slots.push(slot.clone());
            jobs.push(Job { task, chunk, fds, items: part.len(), slot, group, index });
        }
        match self.engine.submit(jobs) {
            Ok(_) => AsyncResult::new(slots, task, decode_all::<R>).with_countdown(countdown),
            Err(e) => AsyncResult::failed(e, decode_all::<R>),
        }
    }

    /// Applies `f` to each item lazily, yielding results in input order. The input
    /// is pulled only as workers need more (a bounded number of chunks in flight),
    /// so an endless iterator works. Chunks adapt to the work unless the input's
    /// length is known.
    pub fn imap<'p, F, I, M>(&'p self, f: F, items: I) -> Imap<'p, F::Output>
    where
        F: MapFn<I::Item, M>,
        I: IntoIterator,
        I::IntoIter: 'p,
        I::Item: 'p,
        M: 'p,
    {
        Imap::new(self, task::of(&f).map(|e| e.name()), Box::new(items.into_iter().map(F::args)), None)
    }

    /// [`imap`](Pool::imap) with a fixed number of calls per job.
    pub fn imap_chunked<'p, F, I, M>(&'p self, f: F, items: I, chunksize: usize) -> Imap<'p, F::Output>
    where
        F: MapFn<I::Item, M>,
        I: IntoIterator,
        I::IntoIter: 'p,
        I::Item: 'p,
        M: 'p,
    {
        Imap::new(self, task::of(&f).map(|e| e.name()), Box::new(items.into_iter().map(F::args)), Some(chunksize))
    }

    /// Like [`imap`](Pool::imap), yielding results as they complete.
    pub fn imap_unordered<'p, F, I, M>(&'p self, f: F, items: I) -> ImapUnordered<'p, F::Output>
    where
        F: MapFn<I::Item, M>,
        I: IntoIterator,
        I::IntoIter: 'p,
        I::Item: 'p,
        M: 'p,
    {
        ImapUnordered::new(self, task::of(&f).map(|e| e.name()), Box::new(items.into_iter().map(F::args)), None)
    }

    /// [`imap_unordered`](Pool::imap_unordered) with a fixed number of calls per job.
    pub fn imap_unordered_chunked<'p, F, I, M>(
        &'p self,
        f: F,
        items: I,
        chunksize: usize,
    ) -> ImapUnordered<'p, F::Output>
    where
        F: MapFn<I::Item, M>,
        I: IntoIterator,
        I::IntoIter: 'p,
        I::Item: 'p,
        M: 'p,
    {
        let input = Box::new(items.into_iter().map(F::args));
        ImapUnordered::new(self, task::of(&f).map(|e| e.name()), input, Some(chunksize))
    }

    /// Takes no more work; what is queued still runs. Then [`join`](Pool::join).
    pub fn close(&self) {
        self.engine.close();
    }

    /// Waits for the workers to finish after [`close`](Pool::close) or
    /// [`terminate`](Pool::terminate) (calling it before either is an error, as in Python).
    pub fn join(&self) -> Result<()> {
        if !self.engine.is_stopping() {
            return Err(Error::Misuse { what: "Pool::join called before close() or terminate()".into() });
        }
        self.engine.wait_finished(None);
        Ok(())
    }

    /// Stops the workers now; queued and running work fails with `Error::Closed`.
    /// Returns once the workers are gone (within a few seconds: SIGTERM, then SIGKILL).
    pub fn terminate(&self) -> Result<()> {
        self.engine.terminate();
        self.engine.wait_finished(Some(Instant::now() + Duration::from_secs(30)));
        Ok(())
    }

    /// Why the pool cannot run tasks (`None` while it can).
    pub fn broken_reason(&self) -> Option<String> {
        self.engine.broken_reason()
    }

    /// Per-worker figures: calls done, time working, waiting and encoding, and
    /// the workers that had to be replaced, with why.
    pub fn insights(&self) -> Insights {
        self.engine.insights()
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.engine.drop_handle();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("processes", &self.processes()).finish()
    }
}

/// Options for a [`Pool`].
///
/// ```
/// # use std::time::Duration;
/// #[mproc::task]
/// fn setup(level: u8) { let _ = level; }
///
/// let pool = mproc::Pool::builder()
///     .processes(2)
///     .initializer(setup, (3,))
///     .max_tasks_per_child(100)
///     .task_timeout(Duration::from_secs(5))
///     .start_method(mproc::StartMethod::Fork)
///     .build()?;
/// # Ok::<(), mproc::Error>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct PoolBuilder {
    processes: Option<usize>,
    method: Option<StartMethod>,
    initializer: Option<Result<(&'static str, Vec<u8>)>>,
    max_tasks_per_child: Option<usize>,
    task_timeout: Option<Duration>,
}

impl PoolBuilder {
    /// Number of workers (default: [`cpu_count()`](crate::cpu_count)).
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// A task each worker runs once before taking work. If it fails in any
    /// worker the pool is broken ([`Error::BrokenPool`] with the reason).
    pub fn initializer<F, A>(mut self, f: F, args: A) -> Self
    where
        F: TaskFn<A>,
        A: TaskValue,
    {
        self.initializer = Some(task::of(&f).and_then(|e| Ok((e.name(), codec::encode(&args)?))));
        self
    }

    /// Replace each worker after it has run this many jobs (Python's `maxtasksperchild`).
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        self.max_tasks_per_child = Some(n.max(1));
        self
    }

    /// Kill and replace a worker whose job runs longer than this; the job fails
    /// with [`Error::Timeout`]. A job is one call (`apply`) or one chunk (`map`).
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// How workers are started (default: [`start_method()`](crate::start_method)).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Starts the workers.
    pub fn build(self) -> Result<Pool> {
        let initializer = self.initializer.transpose()?;
        let engine = Engine::start(PoolConfig {
            processes: self.processes.unwrap_or_else(crate::cpu_count),
            method: self.method.unwrap_or_else(start_method),
            initializer,
            max_tasks_per_child: self.max_tasks_per_child,
            task_timeout: self.task_timeout,
        })?;
        Ok(Pool { engine })
    }
}
