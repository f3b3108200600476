//! One helper thread per process, started on first need, that never exits.
//!
//! It does two jobs. It forks on behalf of other threads: the parent-death
//! signal that ties a child to its parent fires when the *thread* that forked
//! it exits, so children must be forked from a thread that lives as long as the
//! process (the main thread, or this one). And it reaps children whose
//! `Process` handle was dropped before they ended, so none lingers as a zombie.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::child::ChildHandle;
use super::registry::state;
use crate::sys::fd::poll;
use crate::sys::pid;

enum Job {
    Run(Box<dyn FnOnce() + Send>),
    Watch(Arc<ChildHandle>),
}

pub(crate) struct Supervisor {
    jobs: Mutex<Vec<Job>>,
    wake: OwnedFd,
}

impl Supervisor {
    fn get() -> &'static Supervisor {
        state().supervisor.get_or_init(|| {
            // SAFETY: eventfd takes an initial value and flags and returns a new descriptor or -1.
            let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            assert!(raw >= 0, "eventfd failed: {}", std::io::Error::last_os_error());
            // SAFETY: the kernel just returned this descriptor; we are its only owner.
            let wake = unsafe { OwnedFd::from_raw_fd(raw) };
            let sup = Supervisor { jobs: Mutex::new(Vec::new()), wake };
            std::thread::Builder::new()
                .name("mproc-supervisor".into())
                // Children forked from here run their task on this thread's stack.
                .stack_size(8 << 20)
                .spawn(run)
                .expect("cannot start the mproc supervisor thread");
            sup
        })
    }

    fn submit(&self, job: Job) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).push(job);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// Runs `f` on a thread that lives as long as the process: the calling thread
/// when it is the main thread, the supervisor otherwise.
pub(crate) fn on_lasting_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    if pid::on_main_thread() {
        return f();
    }
    let (tx, rx) = mpsc::sync_channel(1);
    Supervisor::get().submit(Job::Run(Box::new(move || {
        let _ = tx.send(f());
    })));
    rx.recv().expect("the mproc supervisor thread is gone")
}

/// Hands a child whose handle was dropped to the supervisor, which reaps it when it ends.
pub(crate) fn watch(child: Arc<ChildHandle>) {
    Supervisor::get().submit(Job::Watch(child));
}

fn run() {
    let sup = Supervisor::get_existing();
    let mut watched: Vec<Arc<ChildHandle>> = Vec::new();
    loop {
        // The wake-up descriptor, then each child's descriptors, remembering whose they are.
        let mut fds = vec![sup.wake.as_fd()];
        let mut owner = vec![usize::MAX];
        for (i, child) in watched.iter().enumerate() {
            for fd in child.interest() {
                fds.push(fd);
                owner.push(i);
            }
        }
        let Ok(ready) = poll(&fds, None) else { continue };
        drop(fds);
        let woken = ready[0].readable;
        let mut touched: Vec<usize> =
            owner.iter().zip(&ready).skip(1).filter(|(_, r)| r.readable).map(|(&i, _)| i).collect();
        touched.dedup();
        // Highest index first, so swap_remove only moves children already looked at.
        for i in touched.into_iter().rev() {
            if watched[i].poll_exit().is_some() {
                let child = watched.swap_remove(i);
                state().remove_child(&child);
            }
        }
        if woken {
            let mut buf = 0u64;
            // SAFETY: reads 8 bytes into a valid u64 from our eventfd.
            unsafe { libc::read(sup.wake.as_raw_fd(), (&mut buf as *mut u64).cast(), 8) };
            let jobs = std::mem::take(&mut *sup.jobs.lock().unwrap_or_else(|e| e.into_inner()));
            for job in jobs {
                match job {
                    Job::Run(f) => f(),
                    Job::Watch(child) => watched.push(child),
                }
            }
        }
    }
}

impl Supervisor {
    fn get_existing() -> &'static Supervisor {
        // The thread is spawned inside get_or_init; wait until the value is stored.
        loop {
            if let Some(s) = state().supervisor.get() {
                return s;
            }
            std::thread::yield_now();
        }
    }
}
