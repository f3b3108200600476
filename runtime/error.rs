//! The one error type of the crate.

use std::fmt;
use std::io;

/// Everything that can go wrong when running work in another process.
///
/// Messages are one line, name the process or task involved and, where there is
/// a fix, say what to do. Match with `..` so that new fields do not break you:
///
/// ```
/// # fn f(r: Result<u64, mproc::Error>) {
/// match r {
///     Ok(v) => println!("got {v}"),
///     Err(mproc::Error::Killed { signal, .. }) => println!("died of signal {signal}"),
///     Err(e) => println!("{e}"),
/// }
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The task panicked in its process (which then exited with code 1).
    Panicked {
        /// Registered name of the task (`module::path::fn`), or `<closure>`.
        task: String,
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
        /// The child's backtrace, when `RUST_BACKTRACE` asked for one.
        backtrace: Option<String>,
    },
    /// The process was killed by a signal (a crash, `terminate()`, `kill()`, the OOM killer…).
    Killed {
        /// Name of the process (`Process-3` or the name it was given).
        process: String,
        /// The signal number (`11` for a segfault, `15` for SIGTERM, `9` for SIGKILL).
        signal: i32,
    },
    /// The process exited (through `std::process::exit` or similar) without returning a result.
    Exited {
        /// Name of the process.
        process: String,
        /// Its exit code.
        code: i32,
    },
    /// A pool worker died while it held the task.
    WorkerLost {
        /// Registered name of the task it was running.
        task: String,
        /// What killed it, in words (`killed by signal 9 (SIGKILL)`, `exited with code 3`).
        reason: String,
    },
    /// A timeout elapsed.
    Timeout,
    /// A queue was empty.
    Empty,
    /// A queue was full.
    Full,
    /// The other end of a connection is closed.
    Eof,
    /// The object was closed.
    Closed,
    /// A pool cannot run tasks any more.
    BrokenPool {
        /// Why.
        reason: String,
    },
    /// The function passed was not registered with `#[mproc::task]`.
    NotATask {
        /// The function's name.
        name: String,
    },
    /// A re-executed child never reached the entry hook.
    NoEntryHook {
        /// What was observed.
        detail: String,
    },
    /// The peer did not prove it knows the authkey.
    AuthenticationFailed,
    /// A value could not be encoded or decoded.
    Codec(String),
    /// `set_start_method` was called a second time.
    StartMethodAlreadySet {
        /// The method set by the first call.
        current: crate::StartMethod,
    },
    /// The result of this process was already taken by an earlier `join_timeout`.
    AlreadyJoined {
        /// Name of the process.
        process: String,
    },
    /// The task was cancelled before it could complete.
    Cancelled,
    /// The result was already taken by an earlier `get_timeout` or `result_timeout`.
    ResultTaken,
    /// An API was used out of order (for example `Pool::join` before `close`).
    Misuse {
        /// What was wrong and what to do instead.
        what: String,
    },
    /// A barrier is broken: a party timed out or died while waiting, or
    /// `abort()` or `reset()` was called (Python's `BrokenBarrierError`).
    BrokenBarrier,
    /// An operating-system error.
    Io(io::Error),
}

impl Error {
    /// A copy of this error, for handing one failure to several waiters
    /// (`Error` is not `Clone`: an I/O error is copied as its kind and message).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Panicked { task, message, location, backtrace } => Error::Panicked {
                task: task.clone(),
                message: message.clone(),
                location: location.clone(),
                backtrace: backtrace.clone(),
            },
            Error::Killed { process, signal } => Error::Killed { process: process.clone(), signal: *signal },
            Error::Exited { process, code } => Error::Exited { process: process.clone(), code: *code },
            Error::WorkerLost { task, reason } => Error::WorkerLost { task: task.clone(), reason: reason.clone() },
            Error::Timeout => Error::Timeout,
            Error::Empty => Error::Empty,
            Error::Full => Error::Full,
            Error::Eof => Error::Eof,
            Error::Closed => Error::Closed,
            Error::BrokenPool { reason } => Error::BrokenPool { reason: reason.clone() },
            Error::NotATask { name } => Error::NotATask { name: name.clone() },
            Error::NoEntryHook { detail } => Error::NoEntryHook { detail: detail.clone() },
            Error::AuthenticationFailed => Error::AuthenticationFailed,
            Error::Codec(what) => Error::Codec(what.clone()),
            Error::StartMethodAlreadySet { current } => Error::StartMethodAlreadySet { current: *current },
            Error::AlreadyJoined { process } => Error::AlreadyJoined { process: process.clone() },
            Error::Cancelled => Error::Cancelled,
            Error::ResultTaken => Error::ResultTaken,
            Error::Misuse { what } => Error::Misuse { what: what.clone() },
            Error::BrokenBarrier => Error::BrokenBarrier,
            Error::Io(e) => Error::Io(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// `Result<T, mproc::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Panicked { task, message, location, .. } => {
                write!(f, "task {task} panicked: {message}")?;
                if let Some(at) = location {
                    write!(f, " (at {at})")?;
                }
                Ok(())
            }
            Error::Killed { process, signal } => {
                write!(f, "process {process} was killed by signal {signal}{}", signal_suffix(*signal))
            }
            Error::Exited { process, code } => write!(
                f,
                "process {process} exited with code {code} before returning a result (std::process::exit in the task?)"
            ),
            Error::WorkerLost { task, reason } => write!(f, "the worker running task {task} died: {reason}"),
            Error::Timeout => f.write_str("timed out"),
            Error::Empty => f.write_str("the queue is empty"),
            Error::Full => f.write_str("the queue is full"),
            Error::Eof => f.write_str("the other end is closed"),
            Error::Closed => f.write_str(
                "closed: it takes no more work after close(), terminate() or shutdown(); start a new one to go on",
            ),
            Error::BrokenPool { reason } => write!(f, "the pool is broken: {reason}"),
            Error::NotATask { name } => {
                write!(f, "{name} is not a task: add #[mproc::task] to the function")
            }
            Error::NoEntryHook { detail } => write!(
                f,
                "the child process never reached the entry hook ({detail}): add #[mproc::main] to main \
                 (or call mproc::init() first thing in main, or use #[mproc::test] in tests)"
            ),
            Error::AuthenticationFailed => f.write_str("authentication failed: the authkeys differ"),
            Error::Codec(what) => write!(f, "codec error: {what}"),
            Error::StartMethodAlreadySet { current } => write!(
                f,
                "the start method is already set (to {current:?}): call set_start_method once, or use a Context"
            ),
            Error::AlreadyJoined { process } => {
                write!(f, "process {process} was already joined: its result was returned by an earlier join_timeout")
            }
            Error::Cancelled => f.write_str("the task was cancelled"),
            Error::ResultTaken => f.write_str("the result was already taken by an earlier get_timeout"),
            Error::Misuse { what } => f.write_str(what),
            Error::BrokenBarrier => f.write_str(
                "the barrier is broken (a party timed out or died while waiting, or it was aborted or reset); call \
                 reset() to use it again",
            ),
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

fn signal_suffix(signal: i32) -> String {
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(s) => format!(" ({})", s.as_str()),
        Err(_) => String::new(),
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::Io(io::Error::from(e))
    }
}
