//! A pool worker: the child side of the pool engine.
//!
//! A worker runs its pool's initializer once, says it is ready, then serves
//! chunks of calls from its channel until told to stop or until the channel
//! closes. It ignores SIGINT: Ctrl-C is the parent's to handle (it reaches the
//! whole process group), and the parent then stops or kills its workers.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::sys::frame::{DEFAULT_MAX_FRAME, read_frame, write_frame};
use crate::sys::pid;
use crate::task::{self, Failure, Report, TaskEntry};

/// How a worker is set up.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct WorkerConfig {
    /// A task run once before serving (`name`, encoded argument tuple).
    pub initializer: Option<(String, Vec<u8>)>,
}

/// Messages from the pool to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run `task` on each argument tuple of the encoded chunk.
    Run {
        job: u64,
        task: String,
        #[serde(with = "crate::codec::bytes")]
        chunk: Vec<u8>,
    },
    /// Finish: exit once this message is read.
    Stop,
}

/// Messages from a worker to the pool.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The initializer succeeded; send work.
    Ready,
    /// The initializer failed; the pool cannot run tasks.
    InitFailed(Failure),
    /// A chunk is done: its report, whether any item failed, and how the time went.
    Done { job: u64, report: Report, any_failed: bool, busy_ns: u64, codec_ns: u64 },
}

/// Serves as a pool worker on `channel`. Returns the exit code.
pub(crate) fn serve(channel: OwnedFd, config: WorkerConfig) -> i32 {
    pid::set_signal_ignored(libc::SIGINT, true);
    let channel = channel.as_fd();
    if let Some((name, args)) = config.initializer {
        let report = match task::by_name(&name) {
            Some(entry) => entry.invoke(&args).report,
            None => Report::Failed(Failure::UnknownTask(name)),
        };
        if let Report::Failed(failure) = report {
            let _ = send(channel, &FromWorker::InitFailed(failure));
            return 1;
        }
    }
    if send(channel, &FromWorker::Ready).is_err() {
        return 1;
    }
    // Consecutive chunks are usually for the same task: look it up once.
    let mut last: Option<&'static TaskEntry> = None;
    loop {
        let frame = match read_frame(channel, DEFAULT_MAX_FRAME) {
            Ok(Some(frame)) => frame,
            // The pool went away: nothing left to do.
            Ok(None) | Err(_) => return 0,
        };
        let (job, task, chunk) = match codec::decode::<ToWorker>(&frame) {
            Ok(ToWorker::Run { job, task, chunk }) => (job, task, chunk),
            Ok(ToWorker::Stop) => return 0,
            Err(_) => return 1,
        };
        let started = Instant::now();
        let entry = match last.filter(|e| e.name() == task) {
            Some(entry) => Some(entry),
            None => task::by_name(&task),
        };
        let (report, codec_ns, any_failed) = match entry {
            Some(entry) => {
                last = Some(entry);
                let invoked = entry.invoke_chunk(&chunk);
                (invoked.report, invoked.codec_ns, invoked.any_failed)
            }
            None => (Report::Failed(Failure::UnknownTask(task)), 0, true),
        };
        drop(chunk);
        let busy_ns = started.elapsed().as_nanos() as u64;
        if send(channel, &FromWorker::Done { job, report, any_failed, busy_ns, codec_ns }).is_err() {
            return 1;
        }
    }
}

fn send(channel: BorrowedFd<'_>, message: &FromWorker) -> crate::Result<()> {
    let bytes = codec::encode(message)?;
    write_frame(channel, &bytes, None)?;
    Ok(())
}
