//! `StartMethod::Fork`: the child is a copy of the caller.

use std::os::fd::{AsRawFd, OwnedFd};

use super::LaunchWork;
use crate::boot::child::{self, Job, Work};
use crate::error::Result;
use crate::process::registry::{self, Identity};
use crate::process::supervisor::on_lasting_thread;
use crate::sys::pid;

/// Forks a child that runs `work`; returns its pid and pidfd.
pub(super) fn start(
    parent_end: &OwnedFd,
    child_end: OwnedFd,
    me: Identity,
    work: LaunchWork,
) -> Result<(i32, OwnedFd)> {
    let parent_pid = pid::getpid();
    let parent_raw = parent_end.as_raw_fd();
    let work = match work {
        // The child inherits the descriptors themselves.
        LaunchWork::Named { task, args, fds } => Work::Job(Job::Task { task: task.to_string(), args }, fds),
        LaunchWork::Worker(config) => Work::Job(Job::Worker(config), Vec::new()),
        LaunchWork::Closure(f) => Work::Closure(f),
    };
    let forked = on_lasting_thread(move || {
        // SAFETY: fork has no memory-safety preconditions of its own. The child
        // continues on this thread alone; it only touches state it owns (its copy
        // of `work`, fresh per-process state) and never returns from this closure.
        match unsafe { libc::fork() } {
            -1 => Err(std::io::Error::last_os_error()),
            0 => {
                if !pid::die_with_parent(parent_pid) {
                    pid::exit_now(1);
                }
                // SAFETY: parent_raw is the parent's end of the channel, inherited
                // by fork; this process must not keep it (nothing here owns it).
                unsafe { libc::close(parent_raw) };
                child::stdin_from_dev_null();
                if matches!(work, Work::Job(..)) {
                    crate::handle::drop_inherited();
                }
                registry::become_child(me);
                child::run(child_end, work)
            }
            child_pid => {
                drop(child_end);
                pid::pidfd_open(child_pid).map(|fd| (child_pid, fd))
            }
        }
    })?;
    Ok(forked)
}
