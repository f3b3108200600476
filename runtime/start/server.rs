//! The fork server process: single-threaded, clean, forks children on request.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::forkserver::{REQUEST, ServerMsg};
use crate::boot::child::{self, HELLO};
use crate::codec;
use crate::process::registry::{self, Identity};
use crate::sys::fd::{self, poll};
use crate::sys::pid;
use crate::sys::sock;

struct Kid {
    pid: i32,
    pidfd: OwnedFd,
    status: OwnedFd,
}

/// Runs the fork server on `control` until the client goes away. Never returns.
pub(crate) fn serve(control: OwnedFd) -> ! {
    let client = pid::getppid();
    registry::become_child(Identity {
        name: "ForkServer".into(),
        path: Vec::new(),
        daemon: true,
        parent: Some((client, String::new())),
    });
    // Ctrl-C reaches the whole process group; the server outlives it only as long
    // as its client does (it dies with the client), so it ignores the signal.
    pid::set_signal_ignored(libc::SIGINT, true);
    // Done once here rather than in every child it forks.
    crate::task::install_panic_capture();
    let _ = fd::shared_dev_null();
    if sock::send_with_fds(control.as_fd(), HELLO, &[]).is_err() {
        pid::exit_now(1);
    }
    let me = pid::getpid();
    let mut kids: Vec<Kid> = Vec::new();
    loop {
        let mut fds = vec![control.as_fd()];
        fds.extend(kids.iter().map(|k| k.pidfd.as_fd()));
        let Ok(ready) = poll(&fds, None) else { continue };
        let control_ready = ready[0].readable;
        let ended: Vec<usize> = (0..kids.len()).filter(|&i| ready[i + 1].readable).collect();
        drop(fds);
        for i in ended.into_iter().rev() {
            let kid = kids.swap_remove(i);
            if let Ok(Some(exit)) = pid::reap(kid.pid, true) {
                if let Ok(bytes) = codec::encode(&ServerMsg::Exited { exit }) {
                    let _ = sock::send_with_fds(kid.status.as_fd(), &bytes, &[]);
                }
            }
        }
        if !control_ready {
            continue;
        }
        let mut buf = [0u8; 16];
        match sock::recv_with_fds(control.as_fd(), &mut buf) {
            Ok((0, _)) | Err(_) => shut_down(kids),
            Ok((n, mut got)) if &buf[..n] == REQUEST && got.len() == 2 => {
                let status = got.pop().expect("two descriptors");
                let channel = got.pop().expect("two descriptors");
                if let Some(kid) = fork_child(me, channel, status) {
                    kids.push(kid);
                }
            }
            // A malformed request: its descriptors close as `got` drops.
            Ok(_) => {}
        }
    }
}

fn fork_child(server: i32, channel: OwnedFd, status: OwnedFd) -> Option<Kid> {
    // SAFETY: the server is single-threaded, so the child is a consistent copy.
    match unsafe { libc::fork() } {
        -1 => None,
        0 => {
            if !pid::die_with_parent(server) {
                pid::exit_now(1);
            }
            pid::set_signal_ignored(libc::SIGINT, false);
            child::stdin_from_dev_null();
            // Keep only stdio and the channel (as fd 3): the control socket and
            // the other children's descriptors are not this child's business.
            if fd::dup2(channel.as_raw_fd(), 3).is_err() || fd::close_from(4).is_err() {
                pid::exit_now(1);
            }
            std::mem::forget(channel);
            std::mem::forget(status);
            // SAFETY: fd 3 is the channel we just placed there; nothing else owns it.
            let channel = unsafe { fd::adopt(3) };
            let _ = fd::set_cloexec(3, true);
            child::boot_forked_by_server(channel)
        }
        kid => {
            drop(channel);
            let pidfd = pid::pidfd_open(kid).ok()?;
            let bytes = codec::encode(&ServerMsg::Spawned { pid: kid }).ok()?;
            let _ = sock::send_with_fds(status.as_fd(), &bytes, &[pidfd.as_raw_fd()]);
            Some(Kid { pid: kid, pidfd, status })
        }
    }
}

/// The client is gone: its children go with it.
fn shut_down(kids: Vec<Kid>) -> ! {
    for k in &kids {
        let _ = pid::pidfd_signal(k.pidfd.as_fd(), libc::SIGKILL);
    }
    for k in &kids {
        let _ = pid::reap(k.pid, true);
    }
    pid::exit_now(0)
}
