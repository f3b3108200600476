//! `StartMethod::ForkServer`, client side.
//!
//! The server is this binary re-executed once (lazily) with a control socket.
//! Each request is one packet on that socket carrying two descriptors: the
//! child's end of its result channel, and a per-child status socket on which the
//! server answers with the child's pid (and a pidfd for it), and later with its
//! exit status. A dead server is noticed on the next request (the packet cannot
//! be sent, or the status socket closes unanswered) and restarted once.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::spawn::{exec_self, no_hook_here};
use crate::boot::child::{HELLO, Start};
use crate::boot::{self, ENV_SERVER, HELLO_TIMEOUT};
use crate::codec;
use crate::error::{Error, Result};
use crate::process::registry::state;
use crate::sys::fd::poll;
use crate::sys::frame::write_frame_with_fds;
use crate::sys::pid::{self, Exit};
use crate::sys::sock::{self, Kind};

/// Messages from the server on a child's status socket.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ServerMsg {
    /// The child exists (its pidfd is attached).
    Spawned { pid: i32 },
    /// The child ended.
    Exited { exit: Exit },
}

/// The request packet's payload; the descriptors travel beside it.
pub(crate) const REQUEST: &[u8] = b"fork";

/// How long the server may take to answer a request before it is presumed hung.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Our fork server.
pub(crate) struct ServerHandle {
    pid: i32,
    pidfd: OwnedFd,
    control: OwnedFd,
}

impl ServerHandle {
    fn start() -> Result<ServerHandle> {
        let reexec = boot::reexec().ok_or_else(no_hook_here)?;
        let (ours, theirs) = sock::pair(Kind::Packet)?;
        let (pid, pidfd) = exec_self(reexec, ENV_SERVER, theirs)?;
        let server = ServerHandle { pid, pidfd, control: ours };
        let deadline = Instant::now() + HELLO_TIMEOUT;
        let ready = poll(&[server.control.as_fd(), server.pidfd.as_fd()], Some(deadline))?;
        let mut buf = [0u8; 32];
        let greeted = ready[0].readable
            && matches!(sock::recv_with_fds(server.control.as_fd(), &mut buf), Ok((n, _)) if &buf[..n] == HELLO);
        if !greeted {
            server.kill();
            return Err(Error::NoEntryHook { detail: "the fork server did not greet its parent".into() });
        }
        Ok(server)
    }

    fn kill(&self) {
        let _ = pid::pidfd_signal(self.pidfd.as_fd(), libc::SIGKILL);
        let _ = pid::reap(self.pid, true);
    }

    /// Closes the control socket (the server then kills its remaining children and
    /// exits) and reaps the server, killing it if it takes more than a second.
    pub(crate) fn shutdown(self) {
        let ServerHandle { pid, pidfd, control } = self;
        drop(control);
        let exited = poll(&[pidfd.as_fd()], Some(Instant::now() + Duration::from_secs(1)))
            .map(|r| r[0].readable)
            .unwrap_or(false);
        if !exited {
            let _ = pid::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
        }
        let _ = pid::reap(pid, true);
    }

    /// The server's pid (for tests and diagnostics).
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }
}

/// The fork server's pid, starting it if needed.
pub(crate) fn server_pid() -> Result<i32> {
    let mut guard = state().forkserver.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Some(ServerHandle::start()?);
    }
    Ok(guard.as_ref().map(ServerHandle::pid).unwrap_or_default())
}

/// Asks the fork server for a child running `start`. Returns its pid, pidfd and
/// the socket on which its exit status will arrive.
pub(super) fn start(
    channel: BorrowedFd<'_>,
    child_end: OwnedFd,
    start: &Start,
    fds: &[OwnedFd],
) -> Result<(i32, OwnedFd, OwnedFd)> {
    let bytes = codec::encode(start)?;
    let mut last_error = None;
    for _attempt in 0..2 {
        match request(&child_end) {
            Ok((pid, pidfd, status)) => {
                drop(child_end);
                if let Err(e) = write_frame_with_fds(channel, &bytes, fds) {
                    let _ = pid::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
                    return Err(e.into());
                }
                return Ok((pid, pidfd, status));
            }
            Err(Retry::ServerGone(e)) => last_error = Some(e),
            Err(Retry::No(e)) => return Err(e),
        }
    }
    Err(last_error.unwrap_or(Error::Closed))
}

enum Retry {
    /// The server died; a new one may succeed.
    ServerGone(Error),
    No(Error),
}

fn request(child_end: &OwnedFd) -> std::result::Result<(i32, OwnedFd, OwnedFd), Retry> {
    let (status_ours, status_theirs) = sock::pair(Kind::Packet).map_err(|e| Retry::No(e.into()))?;
    let server_pid = {
        let mut guard = state().forkserver.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(ServerHandle::start().map_err(Retry::No)?);
        }
        let Some(server) = guard.as_ref() else { unreachable!() };
        let fds = [child_end.as_raw_fd(), status_theirs.as_raw_fd()];
        if let Err(e) = sock::send_with_fds(server.control.as_fd(), REQUEST, &fds) {
            // The server is gone: reap it so the next attempt starts a new one.
            if let Some(dead) = guard.take() {
                dead.kill();
            }
            return Err(Retry::ServerGone(e.into()));
        }
        server.pid
    };
    drop(status_theirs);
    let ready = poll(&[status_ours.as_fd()], Some(Instant::now() + REPLY_TIMEOUT)).map_err(|e| Retry::No(e.into()))?;
    if !ready[0].readable {
        return Err(Retry::No(Error::Io(io::Error::new(io::ErrorKind::TimedOut, "the fork server did not answer"))));
    }
    let mut buf = [0u8; 64];
    match sock::recv_with_fds(status_ours.as_fd(), &mut buf) {
        Ok((n, mut fds)) if n > 0 && fds.len() == 1 => match codec::decode::<ServerMsg>(&buf[..n]) {
            Ok(ServerMsg::Spawned { pid }) => Ok((pid, fds.remove(0), status_ours)),
            _ => Err(Retry::No(Error::Codec("unexpected answer from the fork server".into()))),
        },
        _ => {
            forget_server(server_pid);
            Err(Retry::ServerGone(Error::Eof))
        }
    }
}

/// Drops our handle on a server that died, if it is still the current one.
fn forget_server(pid_of_dead: i32) {
    let mut guard = state().forkserver.lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_some_and(|s| s.pid == pid_of_dead) {
        if let Some(dead) = guard.take() {
            dead.kill();
        }
    }
}
