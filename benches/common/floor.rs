//! The raw floors' other process: a child made with a bare `fork` on one end of
//! an AF_UNIX stream socketpair, served by hand with libc.

/// The descriptor the child keeps its end of the socketpair as, having closed all
/// others: an inherited copy of another socket's end (an earlier floor's, a pool
/// worker's) would keep that one from ever closing.
const CHILD_FD: libc::c_int = 3;

/// A child process on the other end of a socketpair; `fd` is our end. Dropping it
/// closes our end, kills the child and reaps it.
pub struct SocketChild {
    pub fd: libc::c_int,
    pid: libc::pid_t,
}

impl SocketChild {
    /// Forks a child that keeps only its end of a new socketpair and runs
    /// `serve(fd)` on it, then `_exit(0)` (`_exit(1)` if it cannot set up its end).
    ///
    /// # Safety
    ///
    /// `serve` runs in the child of a fork of a multi-threaded process: it may only
    /// make async-signal-safe calls, on memory made before the fork (it may not
    /// allocate, take locks or panic).
    pub unsafe fn start(serve: impl FnOnce(libc::c_int)) -> SocketChild {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid out-array of two descriptors.
        let rc =
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
        assert_eq!(rc, 0, "socketpair failed: {}", std::io::Error::last_os_error());
        // SAFETY: the child only makes async-signal-safe calls (dup2, close_range,
        // _exit, and `serve`'s, by the caller's promise), and never returns.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => panic!("fork failed: {}", std::io::Error::last_os_error()),
            0 => unsafe {
                if libc::dup2(fds[1], CHILD_FD) != CHILD_FD
                    || libc::close_range(CHILD_FD as libc::c_uint + 1, libc::c_uint::MAX, 0) != 0
                {
                    libc::_exit(1);
                }
                serve(CHILD_FD);
                libc::_exit(0)
            },
            _ => {
                // SAFETY: the child's end, which this process no longer needs.
                unsafe { libc::close(fds[1]) };
                SocketChild { fd: fds[0], pid }
            }
        }
    }
}

impl Drop for SocketChild {
    fn drop(&mut self) {
        // SAFETY: our descriptor, closed once (the child's reads then end); then our
        // own child, killed (in case another process still holds a copy of our end)
        // and reaped.
        unsafe {
            libc::close(self.fd);
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            while libc::waitpid(self.pid, &mut status, 0) < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {}
        }
    }
}
