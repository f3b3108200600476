//! Processes: pidfds, signals, wait statuses, parent-death signals.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// How a process ended, as `waitpid` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Exit {
    /// It called `exit(code)` (or returned from main).
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// Decodes a raw wait status.
    pub(crate) fn from_raw(status: libc::c_int) -> Exit {
        if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(libc::WEXITSTATUS(status))
        }
    }

    /// Python's `exitcode`: the code, or minus the signal.
    pub(crate) fn exitcode(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => -s,
        }
    }
}

/// The calling process's id.
pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// The parent's process id.
pub(crate) fn getppid() -> i32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

/// True on the process's main thread (whose lifetime is the process's).
pub(crate) fn on_main_thread() -> bool {
    // SAFETY: gettid and getpid have no preconditions.
    unsafe { libc::gettid() == libc::getpid() }
}

/// Opens a pidfd: a descriptor that names exactly this process (no pid-reuse
/// races), becomes readable when it exits, and can be signalled.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::PIDFD_NONBLOCK) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(r as i32) };
    super::fd::set_cloexec(fd.as_raw_fd(), true)?;
    Ok(fd)
}

/// Sends `signal` to the process behind `pidfd`. A process that has already
/// exited (or been reaped) is not an error.
pub(crate) fn pidfd_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: the arguments are a descriptor, a signal number, a null siginfo and flags.
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Reaps our child `pid` if it has exited; `block` waits for it.
pub(crate) fn reap(pid: i32, block: bool) -> io::Result<Option<Exit>> {
    let mut status = 0;
    loop {
        let flags = if block { 0 } else { libc::WNOHANG };
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(if r == 0 { None } else { Some(Exit::from_raw(status)) });
    }
}

/// Asks the kernel to SIGKILL this process when the thread that created it exits,
/// then checks that this has not already happened (the parent may have died
/// between fork and here). Async-signal-safe: callable between fork and exec.
pub(crate) fn die_with_parent(expected_parent: i32) -> bool {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number; getppid has no preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        libc::getppid() == expected_parent
    }
}

/// Sets how this process treats `signal` (to ignore, or back to default).
pub(crate) fn set_signal_ignored(signal: i32, ignored: bool) {
    let handler = if ignored { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: installing SIG_IGN or SIG_DFL has no memory-safety preconditions.
    unsafe {
        libc::signal(signal, handler);
    }
}

/// Ends the process at once with `code`, without running exit handlers or
/// destructors (a child must not run its parent's at-exit work).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Sets this process's short name (what `ps`, `top` and `pkill` show), at most
/// 15 bytes. A re-executed child is otherwise named after `/proc/self/exe`: `exe`.
/// Both the process (its main thread) and the calling thread are renamed: the
/// hook may run on a thread other than main (a test harness's), and a child
/// forked later from this thread inherits the thread's name.
pub(crate) fn set_process_name(name: &str) {
    let mut buf = [0u8; 16];
    let bytes = name.as_bytes();
    let n = bytes.len().min(15);
    buf[..n].copy_from_slice(&bytes[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from a valid buffer.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) };
    if !on_main_thread() {
        let _ = std::fs::write("/proc/self/comm", &bytes[..n]);
    }
}
