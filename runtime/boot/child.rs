//! The child side: what a process started by any start method does from the
//! moment it exists until it exits.

use std::os::fd::{AsFd, OwnedFd};

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::process::registry::{self, Identity};
use crate::sys::fd;
use crate::sys::frame::{DEFAULT_MAX_FRAME, read_frame, write_frame};
use crate::sys::pid;
use crate::task::{self, Report};

/// Greeting a re-executed child sends as soon as it reaches the hook.
pub(crate) const HELLO: &[u8] = b"mproc-hello-1";

/// What the parent sends a child started by `Spawn` or `ForkServer`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Start {
    pub me: Identity,
    pub task: String,
    pub args: Vec<u8>,
}

/// What a child runs.
pub(crate) enum Work {
    /// A registered task by name, with encoded arguments.
    Named { task: String, args: Vec<u8> },
    /// A closure carried over by `fork` (its result already encoded in the report).
    Closure(Box<dyn FnOnce() -> Report + Send>),
}

/// A `Spawn` child: greet the parent, read the work, run it.
pub(crate) fn boot_spawned(channel: OwnedFd) -> ! {
    if write_frame(channel.as_fd(), HELLO, None).is_err() {
        pid::exit_now(1);
    }
    let start: Start = match read_frame(channel.as_fd(), DEFAULT_MAX_FRAME).ok().flatten().map(|b| codec::decode(&b)) {
        Some(Ok(s)) => s,
        // The parent went away or sent garbage: nothing to run, nobody to tell.
        _ => pid::exit_now(1),
    };
    registry::become_child(start.me);
    task::install_panic_capture();
    run(channel, Work::Named { task: start.task, args: start.args })
}

/// A child forked by the fork server: read the work from the channel, run it.
pub(crate) fn boot_forked_by_server(channel: OwnedFd) -> ! {
    let start: Start = match read_frame(channel.as_fd(), DEFAULT_MAX_FRAME).ok().flatten().map(|b| codec::decode(&b)) {
        Some(Ok(s)) => s,
        _ => pid::exit_now(1),
    };
    registry::become_child(start.me);
    run(channel, Work::Named { task: start.task, args: start.args })
}

/// Python's rule: a child does not read the terminal. Called where each child is
/// created (a `Spawn` child gets `/dev/null` as stdin from its command line).
pub(crate) fn stdin_from_dev_null() {
    if let Some(null) = fd::shared_dev_null() {
        let _ = fd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0);
    }
}

/// Runs the work, reports, applies the exit rule to this process's own children,
/// and exits. Never returns and never runs the parent's exit handlers.
pub(crate) fn run(channel: OwnedFd, work: Work) -> ! {
    let report = match work {
        Work::Named { task, args } => match task::by_name(&task) {
            Some(entry) => entry.invoke(&args).0,
            None => Report::UnknownTask(task),
        },
        Work::Closure(f) => f(),
    };
    let code = report.exit_code();
    let sent = codec::encode(&report).and_then(|bytes| Ok(write_frame(channel.as_fd(), &bytes, None)?));
    drop(channel);
    registry::exit_cleanup(false);
    flush_stdio();
    // A report that could not be delivered leaves the parent only the exit status.
    pid::exit_now(if sent.is_ok() { code } else { 1 })
}

fn flush_stdio() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}
