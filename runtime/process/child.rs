//! The parent's view of one child process: its result channel and how to learn
//! that it ended. Shared by `Process<T>`, the registry and the supervisor.
//!
//! A child is finished when its exit is known. We never rely on end-of-file on
//! the result channel to learn that (a sibling forked meanwhile may hold a copy
//! of the child's end); the exit comes from a pidfd (our own children) or from
//! the fork server's status message, and whatever the child wrote before exiting
//! is then drained from the channel.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::codec;
use crate::error::{Error, Result};
use crate::start::forkserver::ServerMsg;
use crate::sys::fd::{self, poll};
use crate::sys::frame::{DEFAULT_MAX_FRAME, FrameReader, Progress};
use crate::sys::pid::{self, Exit};
use crate::sys::sock;
use crate::task::Report;

/// Where the exit status comes from.
pub(crate) enum ExitSource {
    /// The child is ours: `waitpid` it once its pidfd is readable.
    Reap,
    /// The fork server is its parent and sends the status on this socket.
    Server(OwnedFd),
}

pub(crate) struct ChildHandle {
    pid: i32,
    name: String,
    task: String,
    daemon: bool,
    scope: u64,
    pidfd: OwnedFd,
    channel: OwnedFd,
    exit_source: ExitSource,
    st: Mutex<ChildState>,
}

struct ChildState {
    reader: FrameReader,
    /// No more reads on the channel: a report arrived, or it ended or failed.
    channel_done: bool,
    report: Option<Result<Report>>,
    exit: Option<Exit>,
    taken: bool,
}

impl ChildState {
    fn reader_is_between_frames(&self) -> bool {
        self.reader.is_between_frames()
    }
}

impl ChildHandle {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        pid: i32,
        name: String,
        task: String,
        daemon: bool,
        scope: u64,
        pidfd: OwnedFd,
        channel: OwnedFd,
        exit_source: ExitSource,
        stream: bool,
    ) -> io::Result<ChildHandle> {
        fd::set_nonblocking(channel.as_raw_fd(), true)?;
        if let ExitSource::Server(s) = &exit_source {
            fd::set_nonblocking(s.as_raw_fd(), true)?;
        }
        Ok(ChildHandle {
            pid,
            name,
            task,
            daemon,
            scope,
            pidfd,
            channel,
            exit_source,
            st: Mutex::new(ChildState {
                reader: FrameReader::new(DEFAULT_MAX_FRAME),
                // A stream's messages are read by whoever started the child, not here.
                channel_done: stream,
                report: None,
                exit: None,
                taken: false,
            }),
        })
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
    pub(crate) fn daemon(&self) -> bool {
        self.daemon
    }
    pub(crate) fn scope(&self) -> u64 {
        self.scope
    }

    fn lock(&self) -> MutexGuard<'_, ChildState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The result channel, for a child started in stream mode (a pool worker).
    pub(crate) fn channel(&self) -> BorrowedFd<'_> {
        self.channel.as_fd()
    }

    /// The descriptor that becomes readable when the exit status can be collected.
    pub(crate) fn sentinel(&self) -> BorrowedFd<'_> {
        match &self.exit_source {
            ExitSource::Reap => self.pidfd.as_fd(),
            ExitSource::Server(s) => s.as_fd(),
        }
    }

    /// Sends `signal` unless the process is already known to have ended. Race-free:
    /// the pidfd names this process even if its pid has been reused.
    pub(crate) fn signal(&self, signal: i32) {
        let st = self.lock();
        if st.exit.is_none() {
            let _ = pid::pidfd_signal(self.pidfd.as_fd(), signal);
        }
    }

    /// Sends `signal`, reporting failures other than "already gone".
    pub(crate) fn try_signal(&self, signal: i32) -> Result<()> {
        let st = self.lock();
        if st.exit.is_none() {
            pid::pidfd_signal(self.pidfd.as_fd(), signal)?;
        }
        Ok(())
    }

    /// SIGKILL, then wait for the exit (bounded: SIGKILL cannot be ignored).
    pub(crate) fn kill_and_reap(&self) {
        self.signal(libc::SIGKILL);
        let _ = self.wait(Some(Instant::now() + Duration::from_secs(10)));
    }

    /// The exit, if it is known or can be collected without blocking.
    pub(crate) fn poll_exit(&self) -> Option<Exit> {
        let mut st = self.lock();
        if st.exit.is_none() {
            self.pump(&mut st);
        }
        st.exit
    }

    /// Waits until the process has ended (`Ok(true)`) or `deadline` passes
    /// (`Ok(false)`); collects its report on the way.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Result<bool> {
        loop {
            if self.poll_exit().is_some() {
                return Ok(true);
            }
            let ready = poll(&self.interest(), deadline)?;
            if ready.iter().all(|r| !r.readable) {
                // Timed out; one last look so that an exit racing the deadline counts.
                return Ok(self.poll_exit().is_some());
            }
        }
    }

    /// The descriptors to poll until the process has ended: its result channel
    /// while a report may still come (it must be drained, or a child writing a
    /// large result would block forever), and the exit sentinel. Call
    /// [`poll_exit`](Self::poll_exit) when one is readable.
    pub(crate) fn interest(&self) -> Vec<BorrowedFd<'_>> {
        let channel_open = !self.lock().channel_done;
        if channel_open { vec![self.channel.as_fd(), self.sentinel()] } else { vec![self.sentinel()] }
    }

    /// Reads whatever the channel and the exit source have, without blocking.
    fn pump(&self, st: &mut ChildState) {
        self.read_channel(st);
        if st.exit.is_some() {
            return;
        }
        let exit = match &self.exit_source {
            ExitSource::Reap => match pid::reap(self.pid, false) {
                Ok(exit) => exit,
                // ECHILD: something else in the program reaped it (a stray waitpid(-1)),
                // and its status is lost. Its report, if any, still tells the outcome.
                Err(_) => Some(if st.report.is_some() { Exit::Code(0) } else { Exit::Signal(libc::SIGKILL) }),
            },
            ExitSource::Server(sock) => server_status(sock.as_fd(), self.pidfd.as_fd()),
        };
        if let Some(exit) = exit {
            // Everything the child wrote before exiting is in the socket buffer now.
            self.read_channel(st);
            st.channel_done = true;
            st.exit = Some(exit);
        }
    }

    fn read_channel(&self, st: &mut ChildState) {
        while !st.channel_done {
            match st.reader.read_some(self.channel.as_fd()) {
                Ok(Progress::Frame(bytes)) => {
                    st.report = Some(codec::decode::<Report>(&bytes));
                    st.channel_done = true;
                }
                Ok(Progress::Pending) => return,
                Ok(Progress::Eof) => st.channel_done = true,
                // A child killed before it read all we sent closes with unread data,
                // and the kernel resets our end: that is its end of stream too.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && st.reader_is_between_frames() => {
                    st.channel_done = true
                }
                Err(e) => {
                    st.report = Some(Err(Error::Io(e)));
                    st.channel_done = true;
                }
            }
        }
    }

    /// Python's `exitcode`: `None` while running, else the code or minus the signal.
    pub(crate) fn exitcode(&self) -> Option<i32> {
        self.poll_exit().map(Exit::exitcode)
    }

    /// Takes the outcome of a finished process: the encoded result, or why there is none.
    pub(crate) fn take_outcome(&self) -> Result<Vec<u8>> {
        let mut st = self.lock();
        debug_assert!(st.exit.is_some());
        if st.taken {
            return Err(Error::AlreadyJoined { process: self.name.clone() });
        }
        st.taken = true;
        let exit = st.exit.unwrap_or(Exit::Signal(libc::SIGKILL));
        match st.report.take() {
            Some(Ok(Report::Returned(bytes))) => Ok(bytes),
            Some(Ok(Report::Failed(failure))) => Err(failure.into_error(&self.task)),
            Some(Err(e)) => Err(e),
            None => match exit {
                Exit::Signal(signal) => Err(Error::Killed { process: self.name.clone(), signal }),
                Exit::Code(code) => Err(Error::Exited { process: self.name.clone(), code }),
            },
        }
    }
}

/// Reads the fork server's status message for a child, without blocking.
fn server_status(sock: BorrowedFd<'_>, pidfd: BorrowedFd<'_>) -> Option<Exit> {
    let mut buf = [0u8; 64];
    match sock::recv_with_fds(sock, &mut buf) {
        Ok((0, _)) => {
            // The server died before reporting. Its children die with it (parent-death
            // signal), so the child is gone or about to be: wait for that, then say so.
            let _ = poll(&[pidfd], Some(Instant::now() + Duration::from_secs(5)));
            Some(Exit::Signal(libc::SIGKILL))
        }
        Ok((n, _)) => match codec::decode::<ServerMsg>(&buf[..n]) {
            Ok(ServerMsg::Exited { exit }) => Some(exit),
            _ => None,
        },
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(_) => Some(Exit::Signal(libc::SIGKILL)),
    }
}
