//! `Process<T>`: one task running in a child process, and what a process knows
//! about itself and its children.

pub(crate) mod child;
pub(crate) mod registry;
pub(crate) mod supervisor;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use child::ChildHandle;
use registry::state;

use crate::codec;
use crate::error::Result;
use crate::start::{self, Launch, LaunchWork, StartMethod};
use crate::task::{self, TaskFn, TaskValue, run_captured};

/// A process id. Displays as the number; a serde value, so tasks can return one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Pid(i32);

impl Pid {
    /// The raw number.
    pub fn as_raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A task running in a child process, with its result of type `T` to come.
///
/// Started by [`spawn!`](crate::spawn), [`ProcessBuilder::spawn`] or [`fork`].
/// Dropping a `Process` without joining it lets the child run on (Python's
/// rule): it is reaped when it ends, and joined (or, if it is a daemon,
/// terminated) when this process exits.
///
/// ```
/// #[mproc::task]
/// fn square(n: u64) -> u64 { n * n }
///
/// let p = mproc::spawn!(square(7))?;
/// assert!(p.pid().as_raw() > 0);
/// assert_eq!(p.join()?, 49);
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct Process<T> {
    child: Arc<ChildHandle>,
    _result: PhantomData<fn() -> T>,
}

impl Process<()> {
    /// A builder to name the process, make it a daemon or choose its start method.
    ///
    /// ```
    /// #[mproc::task]
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    ///
    /// let p = mproc::Process::builder().name("adder").spawn(add, (1, 2))?;
    /// assert_eq!(p.name(), "adder");
    /// assert_eq!(p.join()?, 3);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder::default()
    }
}

impl<T> Process<T> {
    /// The child's process id.
    pub fn pid(&self) -> Pid {
        Pid(self.child.pid())
    }

    /// Its name: the one given, or `Process-N` (`Process-2:1` for the first child
    /// of `Process-2`).
    pub fn name(&self) -> &str {
        self.child.name()
    }

    /// Whether it is a daemon (terminated, not joined, when this process exits).
    pub fn is_daemon(&self) -> bool {
        self.child.daemon()
    }

    /// True until the process has ended.
    pub fn is_alive(&self) -> bool {
        self.child.exitcode().is_none()
    }

    /// Python's `exitcode`: `None` while running; `Some(0)` after success, `Some(1)`
    /// after a panic, `Some(n)` after `std::process::exit(n)`, `Some(-signal)` when
    /// killed by a signal.
    pub fn exitcode(&self) -> Option<i32> {
        self.child.exitcode()
    }

    /// Asks the process to stop with SIGTERM (its `exitcode()` becomes `Some(-15)`).
    /// Does nothing if it has already ended.
    pub fn terminate(&self) -> Result<()> {
        self.child.try_signal(libc::SIGTERM)
    }

    /// Kills the process with SIGKILL (its `exitcode()` becomes `Some(-9)`).
    /// Does nothing if it has already ended.
    pub fn kill(&self) -> Result<()> {
        self.child.try_signal(libc::SIGKILL)
    }
}

impl<T: TaskValue> Process<T> {
    /// Waits for the process to end and returns what the task returned, or why it
    /// did not: `Panicked`, `Killed { signal }`, `Exited { code }`.
    pub fn join(self) -> Result<T> {
        self.child.wait(None)?;
        self.take()
    }

    /// Waits at most `timeout`. `Ok(None)`: still running (and left running).
    /// `Ok(Some(v))` or an error: it ended; a later join then reports `AlreadyJoined`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// #[mproc::task]
    /// fn nap(ms: u64) { std::thread::sleep(Duration::from_millis(ms)) }
    ///
    /// let p = mproc::spawn!(nap(10_000))?;
    /// assert!(p.join_timeout(Duration::from_millis(50))?.is_none());
    /// p.terminate()?;
    /// assert!(p.join_timeout(Duration::from_secs(10)).is_err());
    /// assert_eq!(p.exitcode(), Some(-15));
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<Option<T>> {
        let deadline = Instant::now().checked_add(timeout);
        if !self.child.wait(deadline)? {
            return Ok(None);
        }
        self.take().map(Some)
    }

    fn take(&self) -> Result<T> {
        state().remove_child(&self.child);
        let bytes = self.child.take_outcome()?;
        codec::decode(&bytes)
    }
}

impl<T> Drop for Process<T> {
    fn drop(&mut self) {
        if self.child.poll_exit().is_none() {
            supervisor::watch(self.child.clone());
        } else {
            state().remove_child(&self.child);
        }
    }
}

impl<T> fmt::Debug for Process<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name())
            .field("pid", &self.pid())
            .field("daemon", &self.is_daemon())
            .field("exitcode", &self.exitcode())
            .finish()
    }
}

/// A process is ready for [`connection::wait`](crate::connection::wait) once it
/// has ended (Python's `Process.sentinel`): wait on connections and processes
/// together, then [`join`](Process::join) the ones that ended.
///
/// ```
/// #[mproc::task]
/// fn quick() -> u8 { 1 }
///
/// let p = mproc::spawn!(quick())?;
/// let ready = mproc::connection::wait(&[&p], Some(std::time::Duration::from_secs(30)))?;
/// assert_eq!(ready, vec![0]);
/// assert_eq!(p.join()?, 1);
/// # Ok::<(), mproc::Error>(())
/// ```
impl<T> crate::connection::Waitable for Process<T> {
    fn wait_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.child.sentinel()
    }
}

/// Options for a new process. Made by [`Process::builder`] or [`Context::process`](crate::Context::process).
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ProcessBuilder {
    name: Option<String>,
    daemon: bool,
    method: Option<StartMethod>,
}

impl ProcessBuilder {
    /// Names the process (default `Process-N`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes it a daemon: terminated rather than joined when this process exits,
    /// and killed with it if this process is killed.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Chooses the start method (default: [`start_method()`](crate::start_method)).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Starts `f(args)` in a new process. `f` must be a `#[mproc::task]`
    /// (`Error::NotATask` otherwise); `args` is its argument tuple.
    pub fn spawn<F, A>(self, f: F, args: A) -> Result<Process<F::Output>>
    where
        F: TaskFn<A>,
        A: TaskValue,
    {
        let entry = task::of(&f)?;
        let (args, fds) = crate::handle::encode_with_handles(&args)?;
        let method = self.method.unwrap_or_else(start::start_method);
        self.launch(method, LaunchWork::Named { task: entry.name(), args, fds })
    }

    /// Forks a child that runs the closure `f` (which may capture anything it can
    /// move) and returns its result. Only a forked child has the closure's code
    /// and captured data, so a builder set to another start method is an error.
    ///
    /// ```
    /// let base = 40;
    /// let p = mproc::Process::builder().name("closure").fork(move || base + 2)?;
    /// assert_eq!(p.join()?, 42);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn fork<F, T>(self, f: F) -> Result<Process<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: TaskValue,
    {
        let method = self.method.unwrap_or(StartMethod::Fork);
        self.launch(method, LaunchWork::Closure(Box::new(move || run_captured(f))))
    }

    fn launch<T>(self, method: StartMethod, work: LaunchWork) -> Result<Process<T>> {
        let child = start::launch(Launch { method, name: self.name, daemon: self.daemon, work })?;
        Ok(Process { child, _result: PhantomData })
    }
}

/// Forks a child running the closure `f` and returns a handle to its result.
/// Only the `Fork` start method can run a closure; everything else runs tasks by name.
///
/// ```
/// let data = vec![1, 2, 3];
/// let p = mproc::fork(move || data.iter().sum::<i32>())?;
/// assert_eq!(p.join()?, 6);
/// # Ok::<(), mproc::Error>(())
/// ```
pub fn fork<F, T>(f: F) -> Result<Process<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: TaskValue,
{
    ProcessBuilder::default().fork(f)
}

/// What a process knows about itself or one of its children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    pid: Pid,
    name: String,
    daemon: bool,
}

impl ProcessInfo {
    /// Its process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }
    /// Its name (`MainProcess` for the main process).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether it is a daemon.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }
}

/// The calling process.
///
/// ```
/// let me = mproc::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid().as_raw() as u32, std::process::id());
/// ```
pub fn current_process() -> ProcessInfo {
    let st = state();
    ProcessInfo { pid: Pid(crate::sys::pid::getpid()), name: st.me.name.clone(), daemon: st.me.daemon }
}

/// The process that started this one (`None` in the main process).
///
/// ```
/// assert!(mproc::parent_process().is_none());
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    let (pid, name) = state().me.parent.clone()?;
    Some(ProcessInfo { pid: Pid(pid), name, daemon: false })
}

/// The children started by this process that are still running (finished ones
/// are reaped on the way, as in Python).
///
/// ```
/// assert!(mproc::active_children().is_empty());
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    state()
        .live_children()
        .iter()
        .map(|c| ProcessInfo { pid: Pid(c.pid()), name: c.name().to_string(), daemon: c.daemon() })
        .collect()
}

/// The number of CPUs this process may run on (at least 1).
///
/// ```
/// assert!(mproc::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
