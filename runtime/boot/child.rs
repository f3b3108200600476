//! The child side: what a process started by any start method does from the
//! moment it exists until it exits.

use std::os::fd::{AsFd, OwnedFd};

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::handle;
use crate::pool::worker::{self, WorkerConfig};
use crate::process::registry::{self, Identity};
use crate::sys::fd;
use crate::sys::frame::{DEFAULT_MAX_FRAME, read_frame_with_fds, write_frame};
use crate::sys::pid;
use crate::task::{self, Failure, Report};

/// Greeting a re-executed child sends as soon as it reaches the hook.
pub(crate) const HELLO: &[u8] = b"mproc-hello-1";

/// What the parent sends a child started by `Spawn` or `ForkServer`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Start {
    pub me: Identity,
    pub job: Job,
}

/// What a child started by name does.
#[derive(Serialize, Deserialize)]
pub(crate) enum Job {
    /// Run one registered task, send its report, exit.
    Task {
        task: String,
        #[serde(with = "crate::codec::bytes")]
        args: Vec<u8>,
    },
    /// Serve as a pool worker on the channel until told to stop.
    Worker(WorkerConfig),
}

/// What a child runs.
pub(crate) enum Work {
    /// A job described by name, and the descriptors of the handles in its arguments.
    Job(Job, Vec<OwnedFd>),
    /// A closure carried over by `fork` (its result already encoded in the report).
    Closure(Box<dyn FnOnce() -> Report + Send>),
}

/// A `Spawn` child: greet the parent, read the work, run it.
pub(crate) fn boot_spawned(channel: OwnedFd) -> ! {
    if write_frame(channel.as_fd(), HELLO, None).is_err() {
        pid::exit_now(1);
    }
    // The parent went away or sent garbage: nothing to run, nobody to tell.
    let Some((start, fds)) = read_start(&channel) else { pid::exit_now(1) };
    registry::become_child(start.me);
    task::install_panic_capture();
    run(channel, Work::Job(start.job, fds))
}

/// A child forked by the fork server: read the work from the channel, run it.
pub(crate) fn boot_forked_by_server(channel: OwnedFd) -> ! {
    let Some((start, fds)) = read_start(&channel) else { pid::exit_now(1) };
    registry::become_child(start.me);
    run(channel, Work::Job(start.job, fds))
}

/// Reads the parent's `Start` and the descriptors sent with it.
fn read_start(channel: &OwnedFd) -> Option<(Start, Vec<OwnedFd>)> {
    let (bytes, fds) = read_frame_with_fds(channel.as_fd(), DEFAULT_MAX_FRAME).ok().flatten()?;
    codec::decode(&bytes).ok().map(|start| (start, fds))
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
    let code = match work {
        Work::Job(Job::Worker(config), _) => worker::serve(channel, config),
        Work::Job(Job::Task { task, args }, fds) => report(
            channel,
            match task::by_name(&task) {
                Some(entry) => handle::with_received(fds, || entry.invoke(&args).report),
                None => Report::Failed(Failure::UnknownTask(task)),
            },
        ),
        Work::Closure(f) => report(channel, f()),
    };
    registry::exit_cleanup(false);
    flush_stdio();
    pid::exit_now(code)
}

/// Sends the report and closes the channel. Returns the exit code: the report's,
/// or 1 when it could not be delivered (the parent then has only the exit status).
fn report(channel: OwnedFd, report: Report) -> i32 {
    let code = report.exit_code();
    let sent = codec::encode(&report).and_then(|bytes| Ok(write_frame(channel.as_fd(), &bytes, None)?));
    if sent.is_ok() { code } else { 1 }
}

fn flush_stdio() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}
