//! A pool worker: the child side of the pool engine, and the wire protocol
//! between the two.
//!
//! A worker runs its pool's initializer once, says it is ready, then serves
//! chunks of calls from its channel, in the order they were sent, until told to
//! stop or until the channel closes. Each result is sent as soon as it is ready,
//! never held back to be batched with the next: a crash in the next job must not
//! take a finished result with it. The engine may send a few chunks ahead
//! (they wait in the channel), so a worker with short jobs never sleeps
//! between them. It ignores SIGINT: Ctrl-C is the parent's to handle (it reaches
//! the whole process group), and the parent then stops or kills its workers.
//!
//! Frames (see `sys::frame`) start with a one-byte tag; the rest is laid out by
//! hand so that a chunk of arguments or results is never copied into or out of
//! an envelope:
//!
//! | tag | direction | rest |
//! |---|---|---|
//! | `RUN` | to worker | job id (u64), descriptors sent with it (u32), task name length (u32), task name, encoded chunk |
//! | `STOP` | to worker | — |
//! | `READY` | from worker | — |
//! | `INIT_FAILED` | from worker | encoded `Failure` |
//! | `DONE` | from worker | job id, any item failed (u8), busy ns, codec ns (u64s), outcome kind (u8: 0 returned, 1 failed), then the encoded chunk of results or the `Failure` |

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::handle;
use crate::sys::frame::{DEFAULT_MAX_FRAME, FrameReader, Progress};
use crate::sys::{pid, sock};
use crate::task::{self, Failure, Report, TaskEntry};

const RUN: u8 = 1;
const STOP: u8 = 2;
const READY: u8 = 3;
const INIT_FAILED: u8 = 4;
const DONE: u8 = 5;

/// How a worker is set up.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct WorkerConfig {
    /// A task run once before serving (`name`, encoded argument tuple).
    pub initializer: Option<(String, Vec<u8>)>,
}

/// The start of a frame asking a worker to run `task` on a chunk of
/// `chunk_len` bytes, with `fds` descriptors attached (the handles among its
/// arguments); the chunk itself follows it on the wire.
pub(crate) fn run_head(job: u64, task: &str, chunk_len: usize, fds: usize) -> Vec<u8> {
    let name = task.as_bytes();
    let body = 1 + 8 + 4 + 4 + name.len() + chunk_len;
    let mut head = Vec::with_capacity(8 + 17 + name.len());
    head.extend_from_slice(&(body as u64).to_le_bytes());
    head.push(RUN);
    head.extend_from_slice(&job.to_le_bytes());
    head.extend_from_slice(&(fds as u32).to_le_bytes());
    head.extend_from_slice(&(name.len() as u32).to_le_bytes());
    head.extend_from_slice(name);
    head
}

/// A whole frame telling a worker to exit once it has read it.
pub(crate) fn stop_frame() -> Vec<u8> {
    let mut frame = 1u64.to_le_bytes().to_vec();
    frame.push(STOP);
    frame
}

/// What a worker is asked to do.
enum ToWorker<'a> {
    Run { job: u64, fds: usize, task: &'a str, chunk: &'a [u8] },
    Stop,
}

/// What a worker says.
pub(crate) enum FromWorker {
    /// The initializer succeeded; send work.
    Ready,
    /// The initializer failed; the pool cannot run tasks.
    InitFailed(Failure),
    /// A chunk is done: how it ended, whether any item failed, and how the time went.
    Done { job: u64, outcome: Result<Returned, Failure>, any_failed: bool, busy_ns: u64, codec_ns: u64 },
}

/// The encoded results of a chunk: `frame[start..]`, left where they arrived.
pub(crate) struct Returned {
    pub frame: Vec<u8>,
    pub start: usize,
}

/// Reads fields off the front of a frame.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }
}

fn parse_to_worker(frame: &[u8]) -> Option<ToWorker<'_>> {
    let mut c = Cursor { rest: frame };
    match c.u8()? {
        RUN => {
            let job = c.u64()?;
            let fds = c.u32()? as usize;
            let len = c.u32()? as usize;
            let task = std::str::from_utf8(c.take(len)?).ok()?;
            Some(ToWorker::Run { job, fds, task, chunk: c.rest })
        }
        STOP => Some(ToWorker::Stop),
        _ => None,
    }
}

/// Decodes a frame from a worker; `None` if it is not one (the worker cannot be trusted).
pub(crate) fn parse_from_worker(frame: Vec<u8>) -> Option<FromWorker> {
    let mut c = Cursor { rest: &frame };
    match c.u8()? {
        READY => Some(FromWorker::Ready),
        INIT_FAILED => codec::decode(c.rest).ok().map(FromWorker::InitFailed),
        DONE => {
            let job = c.u64()?;
            let any_failed = c.u8()? != 0;
            let busy_ns = c.u64()?;
            let codec_ns = c.u64()?;
            let outcome = match c.u8()? {
                0 => {
                    let start = frame.len() - c.rest.len();
                    Ok(Returned { frame, start })
                }
                1 => Err(codec::decode(c.rest).ok()?),
                _ => return None,
            };
            Some(FromWorker::Done { job, outcome, any_failed, busy_ns, codec_ns })
        }
        _ => None,
    }
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
            let _ = send_failure(channel, INIT_FAILED, &[], &failure);
            return 1;
        }
    }
    if send(channel, &[&1u64.to_le_bytes(), &[READY]]).is_err() {
        return 1;
    }
    // Jobs may carry descriptors (handles among their arguments).
    let mut reader = FrameReader::buffered(DEFAULT_MAX_FRAME).receiving_fds();
    // Consecutive chunks are usually for the same task: look it up once.
    let mut last: Option<&'static TaskEntry> = None;
    loop {
        let frame = match reader.read_some(channel) {
            Ok(Progress::Frame(frame)) => frame,
            // The pool went away: nothing left to do.
            Ok(Progress::Eof) | Err(_) => return 0,
            Ok(Progress::Pending) => return 1,
        };
        let (job, fds, task, chunk) = match parse_to_worker(&frame) {
            Some(ToWorker::Run { job, fds, task, chunk }) => (job, fds, task, chunk),
            Some(ToWorker::Stop) => return 0,
            None => return 1,
        };
        let started = Instant::now();
        let entry = match last.filter(|e| e.name() == task) {
            Some(entry) => Some(entry),
            None => task::by_name(task),
        };
        let (report, codec_ns, any_failed) = match entry {
            Some(entry) => {
                last = Some(entry);
                // They came with this frame or before it, in order.
                let Some(fds) = reader.take_fds(fds) else { return 1 };
                let invoked = handle::with_received(fds, || entry.invoke_chunk(chunk));
                (invoked.report, invoked.codec_ns, invoked.any_failed)
            }
            None => (Report::Failed(Failure::UnknownTask(task.to_string())), 0, true),
        };
        drop(frame);
        let busy_ns = started.elapsed().as_nanos() as u64;
        let mut head = Vec::with_capacity(8 + 27);
        head.push(DONE);
        head.extend_from_slice(&job.to_le_bytes());
        head.push(any_failed as u8);
        head.extend_from_slice(&busy_ns.to_le_bytes());
        head.extend_from_slice(&codec_ns.to_le_bytes());
        let sent = match report {
            Report::Returned(bytes) => {
                head.push(0);
                let len = ((head.len() + bytes.len()) as u64).to_le_bytes();
                send(channel, &[&len, &head, &bytes])
            }
            Report::Failed(failure) => {
                head.push(1);
                send_failure(channel, 0, &head, &failure)
            }
        };
        if sent.is_err() {
            return 1;
        }
    }
}

/// Sends a frame whose body is `head` (or just `tag` when `head` is empty)
/// followed by the encoded `failure`.
fn send_failure(channel: BorrowedFd<'_>, tag: u8, head: &[u8], failure: &Failure) -> std::io::Result<()> {
    let encoded = codec::encode(failure).unwrap_or_default();
    let tag = [tag];
    let head = if head.is_empty() { &tag[..] } else { head };
    let len = ((head.len() + encoded.len()) as u64).to_le_bytes();
    send(channel, &[&len, head, &encoded])
}

/// Writes the parts of one frame, all of them.
fn send(channel: BorrowedFd<'_>, parts: &[&[u8]]) -> std::io::Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut sent = sock::send_parts(channel, parts)?;
    if sent == total {
        return Ok(());
    }
    // A full socket buffer (a large result): the rest goes out piece by piece.
    for part in parts {
        if sent >= part.len() {
            sent -= part.len();
            continue;
        }
        let mut rest = &part[sent..];
        sent = 0;
        while !rest.is_empty() {
            let n = sock::send(channel, rest)?;
            rest = &rest[n..];
        }
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn run_frames_parse_back_to_their_fields() {
        let chunk = b"some encoded arguments";
        let mut frame = run_head(42, "demo::square", chunk.len(), 0);
        frame.extend_from_slice(chunk);
        let len = u64::from_le_bytes(frame[..8].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 8);
        match parse_to_worker(&frame[8..]) {
            Some(ToWorker::Run { job, task, chunk: c, .. }) => {
                assert_eq!((job, task, c), (42, "demo::square", &chunk[..]));
            }
            _ => panic!("not a run frame"),
        }
        assert!(matches!(parse_to_worker(&stop_frame()[8..]), Some(ToWorker::Stop)));
    }

    #[test]
    fn truncated_or_unknown_frames_are_rejected() {
        let frame = run_head(7, "demo::square", 0, 0);
        for cut in 8..frame.len() {
            assert!(parse_to_worker(&frame[8..cut]).is_none(), "cut at {cut}");
        }
        assert!(parse_to_worker(&[99]).is_none());
        assert!(parse_from_worker(vec![DONE, 1, 2]).is_none());
        assert!(parse_from_worker(vec![]).is_none());
    }
}
