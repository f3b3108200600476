//! `StartMethod::Spawn`: re-execute this binary; the entry hook takes over.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::boot::child::{HELLO, Start};
use crate::boot::{self, ENV_CHILD, ENV_STDOUT, HELLO_TIMEOUT, Reexec};
use crate::codec;
use crate::error::{Error, Result};
use crate::process::supervisor::on_lasting_thread;
use crate::sys::fd::{self, poll};
use crate::sys::frame::{FrameReader, Progress, write_frame_with_fds};
use crate::sys::pid;

/// Re-executes this binary as a `Spawn` child, waits for its greeting and sends it
/// its work. Returns its pid and pidfd.
pub(super) fn start(
    channel: BorrowedFd<'_>,
    child_end: OwnedFd,
    start: &Start,
    fds: &[OwnedFd],
) -> Result<(i32, OwnedFd)> {
    let reexec = boot::reexec().ok_or_else(no_hook_here)?;
    let (pid, pidfd) = exec_self(reexec, ENV_CHILD, child_end)?;
    if let Err(e) = await_hello(channel, pidfd.as_fd()) {
        super::abandon(pid, &pidfd);
        return Err(e);
    }
    let bytes = codec::encode(start)?;
    if let Err(e) = write_frame_with_fds(channel, &bytes, fds) {
        super::abandon(pid, &pidfd);
        return Err(e.into());
    }
    Ok((pid, pidfd))
}

pub(super) fn no_hook_here() -> Error {
    Error::NoEntryHook {
        detail: "this process never ran the entry hook, so a re-executed copy of it would not either".into(),
    }
}

/// Starts this binary again with `fd` inherited and named by `var`, tied to this
/// process by a parent-death signal. Returns the new process's pid and pidfd.
pub(super) fn exec_self(reexec: Reexec, var: &'static str, fd: OwnedFd) -> Result<(i32, OwnedFd)> {
    let parent_pid = pid::getpid();
    let started = on_lasting_thread(move || -> std::io::Result<(i32, OwnedFd)> {
        let mut cmd = Command::new("/proc/self/exe");
        if let Some(arg0) = std::env::args_os().next() {
            cmd.arg0(arg0);
        }
        cmd.args(reexec.args()).stdin(Stdio::null());
        let raw = fd.as_raw_fd();
        cmd.env(var, raw.to_string());
        // A test harness prints its own lines on standard output before it reaches
        // the test that holds the hook: silence them and hand the child the real one.
        let real_stdout = match reexec {
            Reexec::Test { .. } => {
                let out = fd::dup(std::io::stdout().as_fd())?;
                cmd.env(ENV_STDOUT, out.as_raw_fd().to_string());
                cmd.stdout(Stdio::from(fd::dev_null()?));
                Some(out)
            }
            Reexec::Main => None,
        };
        let out_raw = real_stdout.as_ref().map(AsRawFd::as_raw_fd);
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe calls (prctl, getppid, fcntl).
        unsafe {
            cmd.pre_exec(move || {
                if !pid::die_with_parent(parent_pid) {
                    // The parent exited during start-up: nobody is left to read an
                    // error report (writing one would fail and abort loudly).
                    pid::exit_now(1);
                }
                fd::set_cloexec(raw, false)?;
                if let Some(out) = out_raw {
                    fd::set_cloexec(out, false)?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        // std's handle is dropped without waiting: the child is reaped through its pid.
        drop(child);
        Ok((pid, pid::pidfd_open(pid)?))
    })?;
    Ok(started)
}

/// Waits for a re-executed child's greeting.
fn await_hello(channel: BorrowedFd<'_>, pidfd: BorrowedFd<'_>) -> Result<()> {
    fd::set_nonblocking(channel.as_raw_fd(), true)?;
    let deadline = Instant::now() + HELLO_TIMEOUT;
    let mut reader = FrameReader::new(HELLO.len() as u64);
    loop {
        match reader.read_some(channel) {
            Ok(Progress::Frame(f)) if f == HELLO => return Ok(()),
            Ok(Progress::Pending) => {}
            Ok(_) | Err(_) => {
                return Err(Error::NoEntryHook { detail: "the child closed its channel without greeting".into() });
            }
        }
        let ready = poll(&[channel, pidfd], Some(deadline))?;
        if ready[1].readable && !ready[0].readable {
            return Err(Error::NoEntryHook { detail: "the child exited before reaching the hook".into() });
        }
        if !ready[0].readable && !ready[1].readable {
            return Err(Error::NoEntryHook { detail: format!("no greeting within {} ms", HELLO_TIMEOUT.as_millis()) });
        }
    }
}
