//! Start methods: how a child process comes to exist.
//!
//! - [`StartMethod::Fork`]: `fork()` from the caller. Fastest; the child starts
//!   as a copy of the parent, which is unsafe if other threads hold locks.
//! - [`StartMethod::Spawn`]: re-execute this binary; the entry hook diverts the
//!   new process to its task. Clean and slowest.
//! - [`StartMethod::ForkServer`]: a clean, single-threaded server (itself
//!   started by re-execution, once, lazily) forks children on request. Clean and fast.
//!
//! Every method produces the same thing: a child running `boot::child::run`,
//! connected to the parent by a result channel, plus a pidfd naming it.

mod fork;
pub(crate) mod forkserver;
pub(crate) mod server;
mod spawn;

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use crate::boot::{
    self,
    child::{Job, Start},
};
use crate::error::{Error, Result};
use crate::pool::worker::WorkerConfig;
use crate::process::child::{ChildHandle, ExitSource};
use crate::process::registry::{self, Identity, state};
use crate::sys::sock::{self, Kind};
use crate::task::Report;

/// How a child process is started. See the [crate docs](crate#start-methods).
///
/// It is a serde value, so a task can be told which method to use for children of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StartMethod {
    /// `fork()` the calling process.
    Fork,
    /// Re-execute the current binary (needs the entry hook).
    Spawn,
    /// Ask a fork server, started once by re-execution, to fork a clean child (needs the entry hook).
    ///
    /// The server starts with the environment and working directory the program
    /// had when it first used this method; its children see those, not later changes.
    ForkServer,
}

impl std::fmt::Display for StartMethod {
    /// Python's names: `fork`, `spawn`, `forkserver`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::ForkServer => "forkserver",
        })
    }
}

static CHOSEN: OnceLock<StartMethod> = OnceLock::new();

/// Sets the default start method of this process, once.
///
/// ```
/// mproc::set_start_method(mproc::StartMethod::Fork)?;
/// assert_eq!(mproc::start_method(), mproc::StartMethod::Fork);
/// assert!(mproc::set_start_method(mproc::StartMethod::Spawn).is_err());
/// # Ok::<(), mproc::Error>(())
/// ```
pub fn set_start_method(method: StartMethod) -> Result<()> {
    CHOSEN.set(method).map_err(|_| Error::StartMethodAlreadySet { current: start_method() })
}

/// The start method used when none is named: the one set with
/// [`set_start_method`], else `ForkServer` when the entry hook ran in this
/// process, else `Fork`.
///
/// ```
/// // No entry hook in this doctest: the default is Fork.
/// assert_eq!(mproc::start_method(), mproc::StartMethod::Fork);
/// ```
pub fn start_method() -> StartMethod {
    match CHOSEN.get() {
        Some(m) => *m,
        None if boot::hook_installed() => StartMethod::ForkServer,
        None => StartMethod::Fork,
    }
}

/// A start method to use for a group of processes, without changing the
/// process-wide default (Python's `get_context`).
///
/// ```
/// #[mproc::task]
/// fn double(x: u32) -> u32 { x * 2 }
///
/// let ctx = mproc::Context::new(mproc::StartMethod::Fork);
/// let p = ctx.process().spawn(double, (21,))?;
/// assert_eq!(p.join()?, 42);
/// let pool = ctx.pool(2)?;
/// assert_eq!(pool.map(double, [1, 2])?, vec![2, 4]);
/// # Ok::<(), mproc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Context {
    method: StartMethod,
}

impl Context {
    /// A context that starts processes with `method`.
    pub fn new(method: StartMethod) -> Context {
        Context { method }
    }

    /// Its start method.
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// A process builder using this context's start method.
    pub fn process(&self) -> crate::ProcessBuilder {
        crate::Process::builder().start_method(self.method)
    }

    /// A pool of `processes` workers started with this context's method.
    pub fn pool(&self, processes: usize) -> Result<crate::Pool> {
        crate::Pool::builder().processes(processes).start_method(self.method).build()
    }

    /// An executor of `max_workers` workers started with this context's method.
    pub fn executor(&self, max_workers: usize) -> Result<crate::Executor> {
        crate::Executor::builder().max_workers(max_workers).start_method(self.method).build()
    }
}

/// What a new child should run, and as whom.
pub(crate) struct Launch {
    pub method: StartMethod,
    pub name: Option<String>,
    pub daemon: bool,
    pub work: LaunchWork,
}

pub(crate) enum LaunchWork {
    /// A task by name, its encoded arguments, and the descriptors of the handles among them.
    Named {
        task: &'static str,
        args: Vec<u8>,
        fds: Vec<OwnedFd>,
    },
    Worker(WorkerConfig),
    Closure(Box<dyn FnOnce() -> Report + Send>),
}

impl LaunchWork {
    /// What the child's result channel carries: one report, or a stream of
    /// messages that the caller (a pool) reads itself.
    fn is_stream(&self) -> bool {
        matches!(self, LaunchWork::Worker(_))
    }

    fn name(&self) -> String {
        match self {
            LaunchWork::Named { task, .. } => task.to_string(),
            LaunchWork::Worker(_) => "<pool worker>".to_string(),
            LaunchWork::Closure(_) => "<closure>".to_string(),
        }
    }

    /// The job to describe to a re-executed child, and the descriptors to send with it.
    fn into_job(self) -> Result<(Job, Vec<OwnedFd>)> {
        match self {
            LaunchWork::Named { task, args, fds } => Ok((Job::Task { task: task.to_string(), args }, fds)),
            LaunchWork::Worker(config) => Ok((Job::Worker(config), Vec::new())),
            LaunchWork::Closure(_) => Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a closure can only run in a forked child: use StartMethod::Fork or mproc::fork",
            ))),
        }
    }
}

/// Starts a child process and registers it with this process.
pub(crate) fn launch(l: Launch) -> Result<Arc<ChildHandle>> {
    boot::refuse_if_hookless_child()?;
    // What every child needs, prepared once in the parent so forked children
    // inherit it instead of each paying for it.
    crate::task::install_panic_capture();
    crate::task::ensure_registry();
    let _ = crate::sys::fd::shared_dev_null();
    let st = state();
    let (path, default_name) = st.next_identity();
    let name = l.name.unwrap_or(default_name);
    let me = Identity { name: name.clone(), path, daemon: l.daemon, parent: Some((st.pid, st.me.name.clone())) };
    let (parent_end, child_end) = sock::pair(Kind::Stream)?;
    let task = l.work.name();
    let stream = l.work.is_stream();
    let (pid, pidfd, exit_source) = if l.method == StartMethod::Fork {
        let (pid, pidfd) = fork::start(&parent_end, child_end, me, l.work)?;
        (pid, pidfd, ExitSource::Reap)
    } else {
        let (job, fds) = l.work.into_job()?;
        let start = Start { me, job };
        if l.method == StartMethod::Spawn {
            let (pid, pidfd) = spawn::start(parent_end.as_fd(), child_end, &start, &fds)?;
            (pid, pidfd, ExitSource::Reap)
        } else {
            let (pid, pidfd, status) = forkserver::start(parent_end.as_fd(), child_end, &start, &fds)?;
            (pid, pidfd, ExitSource::Server(status))
        }
    };
    let child = Arc::new(ChildHandle::new(
        pid,
        name,
        task,
        l.daemon,
        registry::current_scope(),
        pidfd,
        parent_end,
        exit_source,
        stream,
    )?);
    st.add_child(child.clone());
    Ok(child)
}

/// Kills and reaps a child that failed its start-up protocol.
fn abandon(pid: i32, pidfd: &OwnedFd) {
    let _ = crate::sys::pid::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
    let _ = crate::sys::pid::reap(pid, true);
}
