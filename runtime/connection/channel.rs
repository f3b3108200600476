//! The untyped core of a connection: whole messages (frames) over one stream socket.
//!
//! [`Connection<T>`](super::Connection) is a thin typed face on a [`Channel`]; the
//! authentication handshake talks on a bare `Channel` before the typed face exists.
//!
//! The socket is non-blocking. Reading takes the inbox lock only for reads that
//! cannot block, and sleeps in `poll(2)` with the lock released, so that a second
//! receiver, [`wait`](super::wait) or [`poll`](super::Connection::poll) on another
//! thread is never stuck behind a receiver that is waiting for data. Frames are
//! assembled under the lock, so each message goes to exactly one receiver whole.
//! A whole message that `poll` or `wait` reads is held in the inbox for the next
//! receive; since holding it does not wake a thread asleep on the socket, they
//! read only while no thread sleeps there (`Inbox::sleepers`).
//! Writing holds the outbox lock for the whole frame, so frames sent from several
//! threads never interleave.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::ring::{self, Link};
use crate::error::{Error, Result};
use crate::sys::fd;
use crate::sys::frame::{FrameReader, Progress, write_frame};

/// Largest message a connection accepts unless told otherwise (1 GiB).
pub const DEFAULT_MAX_MESSAGE: u64 = 1 << 30;

/// Which way messages may travel through one end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Direction {
    /// Send and receive (a duplex pipe, a listener's or client's connection).
    Both,
    /// Receive only (the first end of a simplex pipe).
    Receive,
    /// Send only (the second end of a simplex pipe).
    Send,
}

/// How the incoming stream ended, once it has.
#[derive(Debug)]
enum End {
    /// Cleanly, between messages: every receive answers [`Error::Eof`].
    Eof,
    /// In the middle of a message (the sender died or closed while sending): the
    /// next receive says so, the ones after it answer [`Error::Eof`].
    Truncated,
    /// The stream is out of step (a length over the maximum, a read error): every
    /// receive answers the same error, since no later message boundary can be found.
    Broken(io::ErrorKind, String),
}

/// The receiving half's state, behind the inbox lock.
#[derive(Debug)]
struct Inbox {
    frames: FrameReader,
    /// The maximum `frames` was made with.
    frames_max: u64,
    /// The maximum asked for; a new reader takes it at the next message boundary.
    max: u64,
    /// A whole message taken off the stream and not handed out yet (found by
    /// `poll` or `wait`, or refused by a too-small `recv_bytes_into`).
    ready: Option<Vec<u8>>,
    end: Option<End>,
    /// Threads asleep in `poll(2)` on the socket, waiting to receive or to see a
    /// message. A message taken off the socket and held would not wake them, so
    /// while there are any, only a receiver (which hands the message out) reads.
    sleepers: usize,
}

impl Inbox {
    fn new(max: u64) -> Inbox {
        // Reading ahead: many small messages cost one read. Bytes read ahead go
        // with the connection when it is passed to another process (`transferable`).
        Inbox { frames: FrameReader::buffered(max), frames_max: max, max, ready: None, end: None, sleepers: 0 }
    }

    /// True when a receive would answer at once: a message is held, or the stream ended.
    fn settled(&self) -> bool {
        self.ready.is_some() || self.end.is_some()
    }

    /// Reads what the stream has without blocking, until a whole message is held,
    /// the stream ends, or nothing more is there.
    fn advance(&mut self, transport: &Transport) {
        if self.settled() {
            return;
        }
        let progress = match transport {
            Transport::Socket(fd) => self.frames.read_some(fd.as_fd()),
            Transport::Ring(link) => self.frames.read_from(&mut link.source()),
        };
        match progress {
            Ok(Progress::Frame(frame)) => self.ready = Some(frame),
            Ok(Progress::Pending) => {}
            Ok(Progress::Eof) => self.end = Some(End::Eof),
            Err(e) => {
                // A peer that died with our data unread resets the connection; between
                // messages that is just the end of the stream, as a clean close is.
                let between = self.frames.is_between_frames();
                self.end = Some(match e.kind() {
                    io::ErrorKind::ConnectionReset if between => End::Eof,
                    io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof => End::Truncated,
                    kind => End::Broken(kind, e.to_string()),
                });
            }
        }
        self.apply_max();
    }

    /// For `poll` and `wait`: whether a receive would answer at once. With no
    /// thread asleep on the socket, this reads what arrived (holding a whole message
    /// for the next receive); otherwise it only looks whether the socket has data,
    /// which the sleeping thread is about to take.
    fn observe(&mut self, transport: &Transport) -> bool {
        if self.sleepers == 0 {
            self.advance(transport);
        }
        if self.settled() {
            return true;
        }
        self.sleepers > 0 && transport.input_now()
    }

    /// Makes a new maximum effective once no message is half-read.
    fn apply_max(&mut self) {
        if self.frames_max != self.max && self.end.is_none() && self.frames.is_between_frames() {
            self.frames.set_max(self.max);
            self.frames_max = self.max;
        }
    }

    /// The held message, or the end of the stream as an error; `None` while neither.
    fn take(&mut self) -> Option<Result<Vec<u8>>> {
        if let Some(frame) = self.ready.take() {
            return Some(Ok(frame));
        }
        Some(Err(self.end_error()?))
    }

    fn end_error(&mut self) -> Option<Error> {
        Some(match self.end.as_ref()? {
            End::Eof => Error::Eof,
            End::Truncated => {
                self.end = Some(End::Eof);
                Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection ended in the middle of a message (the sender closed it or died while sending)",
                ))
            }
            End::Broken(kind, what) => {
                let hint = if *kind == io::ErrorKind::InvalidData {
                    " (set_max_message raises the limit, if the sender is trusted)"
                } else {
                    ""
                };
                Error::Io(io::Error::new(*kind, format!("cannot receive on this connection any more: {what}{hint}")))
            }
        })
    }
}

/// What carries a channel's bytes.
#[derive(Debug)]
pub(crate) enum Transport {
    /// A stream socket (Unix or TCP), written and read directly.
    Socket(OwnedFd),
    /// Rings in shared memory (a [`Pipe`](super::Pipe)'s ends), with a socket pair
    /// to learn that the other end is gone.
    Ring(Link),
}

impl Transport {
    /// Whether a receive may find something without waiting (bytes, or an end).
    fn input_now(&self) -> bool {
        match self {
            Transport::Socket(fd) => readable_now(fd.as_fd()),
            Transport::Ring(link) => link.input_now(),
        }
    }
}

/// A channel's descriptors on their way to another process.
pub(crate) enum Endpoint<'a> {
    Socket(BorrowedFd<'a>),
    Ring(ring::Parts<'a>),
}

/// One end of a message stream.
#[derive(Debug)]
pub(crate) struct Channel {
    transport: Transport,
    direction: Direction,
    inbox: Mutex<Inbox>,
    /// Held for the whole of each frame written.
    outbox: Mutex<()>,
    /// Set when a send timed out, perhaps in the middle of a frame: the
    /// outgoing stream is out of step, and no later send is attempted.
    send_broken: AtomicBool,
}

impl Channel {
    /// Takes over a connected stream socket, making it non-blocking.
    pub(crate) fn new(fd: OwnedFd, direction: Direction, max: u64) -> Result<Channel> {
        fd::set_nonblocking(fd.as_raw_fd(), true)?;
        crate::handle::track(fd.as_raw_fd());
        Ok(Channel::over(Transport::Socket(fd), direction, max))
    }

    /// An end of a shared-memory pipe.
    pub(crate) fn ring(link: Link, direction: Direction, max: u64) -> Channel {
        Channel::over(Transport::Ring(link), direction, max)
    }

    fn over(transport: Transport, direction: Direction, max: u64) -> Channel {
        Channel {
            transport,
            direction,
            inbox: Mutex::new(Inbox::new(max)),
            outbox: Mutex::new(()),
            send_broken: AtomicBool::new(false),
        }
    }

    pub(crate) fn direction(&self) -> Direction {
        self.direction
    }

    /// What another process needs to take over this end: its socket, direction
    /// and maximum, and the part of the stream already read here and not handed
    /// out (a message held for the next receive, bytes read ahead), which the new
    /// end reads first. Refused once the stream has ended or broken here.
    pub(crate) fn transferable(&self) -> std::result::Result<(Endpoint<'_>, Direction, u64, Vec<u8>), String> {
        let inbox = self.inbox();
        if inbox.end.is_some() {
            return Err("a connection whose stream has ended (or broken) cannot be passed to another process".into());
        }
        let mut unread = Vec::new();
        if let Some(frame) = &inbox.ready {
            unread.extend_from_slice(&(frame.len() as u64).to_le_bytes());
            unread.extend_from_slice(frame);
        }
        unread.extend_from_slice(&inbox.frames.unread());
        let endpoint = match &self.transport {
            Transport::Socket(fd) => Endpoint::Socket(fd.as_fd()),
            Transport::Ring(link) => Endpoint::Ring(link.parts()),
        };
        Ok((endpoint, self.direction, inbox.max, unread))
    }

    /// [`new`](Self::new) or [`ring`](Self::ring), for an end taken over from
    /// another process: `unread` is what that process had read off the stream and
    /// not handed out.
    pub(crate) fn with_unread(transport: Transport, direction: Direction, max: u64, unread: &[u8]) -> Result<Channel> {
        let chan = match transport {
            Transport::Socket(fd) => Channel::new(fd, direction, max)?,
            ring @ Transport::Ring(_) => Channel::over(ring, direction, max),
        };
        chan.inbox().frames.preload(unread);
        Ok(chan)
    }

    /// The socket, if this channel is on one and nothing has been read off it
    /// that was not handed out (a connection moving into shared memory after
    /// its handshake would lose such bytes).
    pub(crate) fn idle_socket(&self) -> Option<BorrowedFd<'_>> {
        let inbox = self.inbox();
        let idle = !inbox.settled() && inbox.frames.is_between_frames();
        match &self.transport {
            Transport::Socket(fd) if idle => Some(fd.as_fd()),
            _ => None,
        }
    }

    /// Watches a shared-memory channel's incoming ring for a few microseconds,
    /// for a caller about to sleep in [`wait`](super::wait) that expects a
    /// message soon. Returns whether bytes came (false at once on a socket).
    pub(crate) fn spin_for_input(&self) -> bool {
        match &self.transport {
            Transport::Socket(_) => false,
            Transport::Ring(link) => link.spin_for_input(),
        }
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        // Nothing panics while the lock is held; if something ever did, the inbox
        // is still consistent (every field is updated by a single assignment).
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The largest message this end accepts.
    pub(crate) fn max(&self) -> u64 {
        self.inbox().max
    }

    /// Sets the largest message this end accepts, from the next message on.
    pub(crate) fn set_max(&self, max: u64) {
        let mut inbox = self.inbox();
        inbox.max = max;
        inbox.apply_max();
    }

    fn check_can_receive(&self, what: &str) -> Result<()> {
        if self.direction == Direction::Send {
            return Err(Error::Misuse {
                what: format!(
                    "{what} on the sending end of a simplex pipe: Pipe::simplex() returns (receiver, sender), \
                     receive on the first"
                ),
            });
        }
        Ok(())
    }

    fn check_can_send(&self, what: &str) -> Result<()> {
        if self.direction == Direction::Receive {
            return Err(Error::Misuse {
                what: format!(
                    "{what} on the receiving end of a simplex pipe: Pipe::simplex() returns (receiver, sender), \
                     send on the second"
                ),
            });
        }
        Ok(())
    }

    /// Writes one message. `deadline` bounds the whole write. A frame cut short
    /// by a timeout leaves the stream out of step for the peer, so a timeout
    /// breaks the sending side for good: every later send is refused, and a
    /// socket is shut down for writing, so that the peer sees the stream end (in
    /// the middle of a message) instead of waiting for the rest of it.
    pub(crate) fn send(&self, payload: &[u8], deadline: Option<Instant>) -> Result<()> {
        self.check_can_send("send")?;
        let _frame = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
        if self.send_broken.load(Ordering::Acquire) {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "cannot send on this connection any more: an earlier send timed out, perhaps in the middle of a \
                 message",
            )));
        }
        let written = match &self.transport {
            Transport::Socket(fd) => write_frame(fd.as_fd(), payload, deadline),
            Transport::Ring(link) => link.send(&[&(payload.len() as u64).to_le_bytes(), payload], deadline),
        };
        written.map_err(|e| match e.raw_os_error() {
            Some(libc::EPIPE) | Some(libc::ECONNRESET) => Error::Eof,
            _ if e.kind() == io::ErrorKind::TimedOut => {
                self.break_sending();
                Error::Timeout
            }
            _ => Error::Io(e),
        })
    }

    /// Refuses every later send, and tells a socket's peer that nothing more comes.
    fn break_sending(&self) {
        self.send_broken.store(true, Ordering::Release);
        if let Transport::Socket(fd) = &self.transport
            && let Ok(copy) = fd.try_clone()
        {
            // shutdown(2) works on any stream socket, TCP included; the copy
            // closes when dropped, the socket stays open for receiving.
            let _ = std::os::unix::net::UnixStream::from(copy).shutdown(std::net::Shutdown::Write);
        }
    }

    /// Waits until `step` has an answer for the inbox, or `deadline` passes
    /// ([`Error::Timeout`]). `step` runs after each non-blocking read, lock held.
    fn receive_with<R>(
        &self,
        deadline: Option<Instant>,
        mut step: impl FnMut(&mut Inbox) -> Option<Result<R>>,
    ) -> Result<R> {
        loop {
            {
                let mut inbox = self.inbox();
                inbox.advance(&self.transport);
                if let Some(answer) = step(&mut inbox) {
                    if let (Ok(_), Transport::Ring(link)) = (&answer, &self.transport) {
                        link.disarm();
                    }
                    return answer;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Error::Timeout);
                }
                inbox.sleepers += 1;
            }
            self.sleep(deadline)?;
        }
    }

    /// Sleeps until the socket is readable or `deadline` passes, lock released:
    /// another thread may take what arrives first; then the caller finds nothing
    /// and sleeps again. The caller counted itself in `sleepers` under the lock.
    fn sleep(&self, deadline: Option<Instant>) -> Result<()> {
        let slept = match &self.transport {
            Transport::Socket(fd) => fd::poll(&[fd.as_fd()], deadline).map(drop),
            Transport::Ring(link) => link.sleep_for_input(deadline),
        };
        self.inbox().sleepers -= 1;
        slept?;
        Ok(())
    }

    /// Receives one whole message.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Vec<u8>> {
        self.check_can_receive("recv")?;
        self.receive_with(deadline, Inbox::take)
    }

    /// Receives one message into `buf`; a message longer than `buf` stays held.
    pub(crate) fn recv_into(&self, buf: &mut [u8], deadline: Option<Instant>) -> Result<usize> {
        self.check_can_receive("recv_bytes_into")?;
        self.receive_with(deadline, |inbox| {
            let Some(frame) = &inbox.ready else {
                return inbox.take().map(|end| end.map(|_| 0));
            };
            if frame.len() > buf.len() {
                return Some(Err(Error::Misuse {
                    what: format!(
                        "recv_bytes_into: the message is {} bytes but the buffer holds {}; the message is kept for \
                         the next receive (recv_bytes, or recv_bytes_into with a larger buffer)",
                        frame.len(),
                        buf.len()
                    ),
                }));
            }
            let n = frame.len();
            buf[..n].copy_from_slice(frame);
            inbox.ready = None;
            Some(Ok(n))
        })
    }

    /// Waits until a receive would answer at once (a whole message or the end of
    /// the stream is there), or `deadline` passes.
    pub(crate) fn poll(&self, deadline: Option<Instant>) -> Result<bool> {
        self.check_can_receive("poll")?;
        loop {
            {
                let mut inbox = self.inbox();
                if inbox.observe(&self.transport) {
                    return Ok(true);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
                inbox.sleepers += 1;
            }
            self.sleep(deadline)?;
        }
    }

    /// [`poll`](Self::poll) with a zero timeout, for [`wait`](super::wait): reads
    /// what is there without blocking. A send-only end counts as ready when its
    /// socket is readable, which for a simplex sender means the receiver closed.
    pub(crate) fn ready_now(&self) -> bool {
        match (&self.transport, self.direction) {
            (Transport::Socket(fd), Direction::Send) => readable_now(fd.as_fd()),
            (Transport::Ring(link), Direction::Send) => link.peer_closed(),
            (Transport::Socket(_), _) => self.inbox().observe(&self.transport),
            (Transport::Ring(link), _) => {
                // `wait` sleeps on the doorbell uncounted: senders ring it while armed.
                // A doorbell that rang for nothing is cleared here, as `Waitable`
                // requires, after which the ring is looked at once more.
                link.arm();
                let mut inbox = self.inbox();
                if inbox.observe(&self.transport) {
                    return true;
                }
                link.drain();
                inbox.observe(&self.transport)
            }
        }
    }

    /// Writes `bytes` into the stream as they are, with no frame around them: for
    /// tests that feed a receiver corrupt or partial frames.
    pub(crate) fn write_raw(&self, bytes: &[u8]) -> Result<()> {
        let _frame = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
        let written = match &self.transport {
            Transport::Socket(fd) => {
                let mut file = std::fs::File::from(fd.try_clone()?);
                std::io::Write::write_all(&mut file, bytes)
            }
            Transport::Ring(link) => link.send(&[bytes], None),
        };
        written.map_err(Error::Io)
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // Before the descriptor closes, so that its number is never tracked for a
        // stranger (a ring's link untracks its own).
        if let Transport::Socket(fd) = &self.transport {
            crate::handle::untrack(fd.as_raw_fd());
        }
    }
}

impl AsFd for Channel {
    /// The socket, or for a shared-memory pipe the descriptor that polls readable
    /// when the end may have something to do.
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.transport {
            Transport::Socket(fd) => fd.as_fd(),
            Transport::Ring(link) => link.wait_fd(),
        }
    }
}

/// Whether `fd` has data (or an end, or an error) to read now.
fn readable_now(fd: BorrowedFd<'_>) -> bool {
    // An error counts as readable: the next receive reports it.
    fd::poll(&[fd], Some(Instant::now())).map_or(true, |r| r.iter().any(|r| r.readable))
}

/// `now + timeout`, or `None` (no deadline) when that is beyond what `Instant` holds.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
