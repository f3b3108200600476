//! What a pool can tell about its workers: where their time went, and why any
//! of them had to be replaced.

use std::time::Duration;

/// A snapshot of a pool's workers, from [`Pool::insights`](crate::Pool::insights).
///
/// ```
/// #[mproc::task]
/// fn double(x: u32) -> u32 { x * 2 }
///
/// let pool = mproc::Pool::new(2)?;
/// pool.map(double, 0..100)?;
/// let insights = pool.insights();
/// assert_eq!(insights.workers.iter().map(|w| w.tasks).sum::<u64>(), 100);
/// # Ok::<(), mproc::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Insights {
    /// One entry per live worker.
    pub workers: Vec<WorkerInsight>,
    /// Workers that ended, and why, oldest first.
    pub restarts: Vec<Restart>,
}

/// One worker's figures.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WorkerInsight {
    /// Its process id.
    pub pid: i32,
    /// Calls it completed.
    pub tasks: u64,
    /// Chunks (jobs) it completed.
    pub chunks: u64,
    /// Time spent running chunks, measured in the worker (includes `codec`).
    pub working: Duration,
    /// Of `working`, time spent decoding arguments and encoding results.
    pub codec: Duration,
    /// Time it sat idle, ready for work.
    pub waiting: Duration,
    /// Time from handing it a chunk to having the result, as the pool saw it.
    pub round_trip: Duration,
}

/// A worker that ended.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Restart {
    /// Its process id.
    pub pid: i32,
    /// Why it ended, in words (`killed by signal 9 (SIGKILL)`, `retired after max_tasks_per_child` …).
    pub cause: String,
    /// Its figures when it ended.
    pub figures: WorkerInsight,
}
