//! # mproc — Python's `multiprocessing`, in Rust
//!
//! Annotate a function with [`#[mproc::task]`](task) and run it in another
//! process. A task that segfaults, aborts, exits, hangs or panics is contained
//! in its process: the caller gets a typed [`Error`], never a crash or a hang.
//!
//! ```
//! #[mproc::task]
//! fn square(n: u64) -> u64 { n * n }
//!
//! # fn main() -> Result<(), mproc::Error> {
//! // In a real program: #[mproc::main] on main (it enables the default
//! // ForkServer start method and the Spawn method).
//! assert_eq!(square(3), 9);                  // still a plain function
//! let p = mproc::spawn!(square(7))?;         // now in a child process
//! assert_eq!(p.join()?, 49);
//! # Ok(()) }
//! ```
//!
//! ## Start methods
//!
//! [`StartMethod::Fork`] forks the caller; [`StartMethod::Spawn`] re-executes the
//! binary; [`StartMethod::ForkServer`] asks a clean server process to fork. The
//! default is `ForkServer` when the entry hook ([`#[mproc::main]`](main),
//! [`init()`], [`#[mproc::test]`](test)) ran, `Fork` otherwise. See
//! `docs/design.md` for how each works.
//!
//! ## Exit semantics
//!
//! The same under every start method: a panic arrives as
//! [`Error::Panicked`] and `exitcode() == Some(1)`; `std::process::exit(n)` as
//! [`Error::Exited`] and `Some(n)`; death by signal as [`Error::Killed`] and
//! `Some(-signal)`. Every child is reaped; children die with their parent.

mod boot;
mod bytes;
mod codec;
pub mod connection;
mod error;
mod handle;
pub mod manager;
mod pool;
mod process;
mod queue;
mod shared;
mod shared_memory;
mod start;
mod sync;
mod sys;
mod task;

pub use boot::init;
pub use bytes::Bytes;
pub use connection::{Connection, Pipe};
pub use error::{Error, Result};
pub use manager::Manager;
/// `par_map!` at a glance (the forms and options are described below):
///
/// ```
/// #[mproc::task]
/// fn square(n: u64) -> u64 { n * n }
///
/// #[mproc::task]
/// fn add(a: i64, b: i64) -> i64 { a + b }
///
/// // The global pool: cpu_count() workers, made on first use.
/// assert_eq!(mproc::par_map!(square, 0..5u64)?, vec![0, 1, 4, 9, 16]);
///
/// // A given pool (borrowed), a task of two arguments, options after `;`.
/// let pool = mproc::Pool::new(2)?;
/// let mut sums = mproc::par_map!(pool, add, vec![(1, 2), (3, 4)]; chunksize = 1, ordered = false)?;
/// sums.sort();
/// assert_eq!(sums, vec![3, 7]);
///
/// // A progress bar on stderr (drawn only when stderr is a terminal).
/// assert_eq!(mproc::par_map!(square, 0..100u64; progress = true)?.len(), 100);
/// # Ok::<(), mproc::Error>(())
/// ```
pub use mproc_macros::par_map;
pub use mproc_macros::{main, spawn, task, test};
pub use pool::global_pool;
pub use pool::{
    AsCompleted, AsyncResult, Executor, ExecutorBuilder, Imap, ImapUnordered, Insights, Pool, PoolBuilder, Restart,
    ReturnWhen, TaskFuture, WorkerInsight, as_completed, wait, wait_timeout,
};
pub use process::{
    Pid, Process, ProcessBuilder, ProcessInfo, active_children, cpu_count, current_process, fork, parent_process,
};
pub use queue::{JoinableQueue, Queue, QueueBuilder, SimpleQueue};
pub use shared::{Array, ArrayGuard, AtomicPod, Pod, RawArray, RawValue, Value, ValueGuard};
pub use shared_memory::SharedMemory;
pub use start::{Context, StartMethod, set_start_method, start_method};
pub use sync::{
    Barrier, BoundedSemaphore, Condition, Event, LIVENESS_PERIOD, Lock, LockGuard, RLock, RLockGuard, Semaphore,
    SemaphoreGuard,
};
pub use task::{MapFn, TaskFn, TaskValue};

/// Support for the code the macros generate. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::boot::{TestGuard, test_entry};
    pub use crate::pool::{ParMapOptions, par_map, par_map_global};
    pub use crate::task::{Invoked, TaskEntry, assert_task_value, invoke, invoke_chunk};
    pub use inventory;

    /// The fork server's pid, starting it if needed.
    pub fn forkserver_pid() -> crate::Result<i32> {
        crate::start::forkserver::server_pid()
    }
}
