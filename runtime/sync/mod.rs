//! Synchronization between processes: Python's `multiprocessing.Lock`,
//! `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition` and
//! `Barrier`.
//!
//! Each primitive is one small memory file (memfd) mapped `MAP_SHARED` by every
//! process that has it (`segment.rs`): a header with a robust, process-shared
//! pthread mutex, futex words, and for semaphores and barriers a table of the
//! processes involved (`table.rs`). Handles are cheap to clone (clones share
//! this process's mapping) and are passed to children as task arguments under
//! every start method, like queues. Nothing is named in the file system, so a
//! crash leaves nothing behind; nothing spins.
//!
//! **Death.** A process (or thread) that dies holding a [`Lock`] or [`RLock`]
//! does not lock the others out: the kernel marks the robust mutex "owner
//! died", and the next acquirer gets it and is told so
//! ([`LockGuard::previous_owner_died`], [`Lock::recoveries`]). Semaphore
//! slots and barrier waits belong to processes, which are recorded by pid and
//! start time (`liveness.rs`); a waiter that could be kept waiting by another
//! process's death sleeps at most [`LIVENESS_PERIOD`] at a time and then
//! checks that the processes it depends on are alive: the slots of a dead
//! holder are returned, and a dead party breaks the barrier.
//!
//! Each file's module docs describe its protocol next to the code.

mod barrier;
mod condition;
mod event;
mod liveness;
mod lock;
mod segment;
mod semaphore;
mod table;

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

pub use barrier::Barrier;
pub use condition::Condition;
pub use event::Event;
pub use lock::{Lock, LockGuard, RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};

use crate::sys::futex;

/// The longest a waiter sleeps, while other processes could keep it waiting by
/// dying, before it checks that they are alive: the bound on how late the
/// slots of a killed semaphore holder are returned, and a barrier whose party
/// was killed is found broken.
pub const LIVENESS_PERIOD: Duration = Duration::from_millis(100);

/// How long an operation may wait.
#[derive(Clone, Copy, Debug)]
enum Deadline {
    /// Not at all.
    Now,
    /// Until this instant.
    At(Instant),
    /// As long as it takes.
    Never,
}

impl Deadline {
    /// Waits of `timeout` from now (no limit if that is past what `Instant` holds).
    fn after(timeout: Duration) -> Deadline {
        Instant::now().checked_add(timeout).map_or(Deadline::Never, Deadline::At)
    }

    /// The time left: `None` once it has passed, `Some(None)` for no limit.
    fn left(self) -> Option<Option<Duration>> {
        match self {
            Deadline::Now => None,
            Deadline::Never => Some(None),
            Deadline::At(t) => {
                let left = t.saturating_duration_since(Instant::now());
                (!left.is_zero()).then_some(Some(left))
            }
        }
    }
}

/// How a bounded sleep ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slept {
    /// Woken, interrupted, or the word had changed: look again.
    Woken,
    /// The caller's deadline passed.
    TimedOut,
    /// The liveness period passed with the word unchanged: check the others.
    PeriodElapsed,
}

/// Sleeps while `*word == seen`, until `deadline`, and at most `period` when
/// one is given.
fn sleep(word: &AtomicU32, seen: u32, deadline: Deadline, period: Option<Duration>) -> io::Result<Slept> {
    let Some(left) = deadline.left() else { return Ok(Slept::TimedOut) };
    let (limit, by_period) = match (left, period) {
        (Some(l), Some(p)) if p < l => (Some(p), true),
        (None, Some(p)) => (Some(p), true),
        (l, _) => (l, false),
    };
    let started = Instant::now();
    futex::wait(word, seen, limit)?;
    let unchanged = word.load(std::sync::atomic::Ordering::Acquire) == seen;
    Ok(match limit {
        Some(l) if unchanged && started.elapsed() >= l => {
            if by_period {
                Slept::PeriodElapsed
            } else {
                Slept::TimedOut
            }
        }
        _ => Slept::Woken,
    })
}

/// Bumps a futex sequence word.
fn bump(word: &AtomicU32) {
    word.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

/// Wakes up to `n` sleepers on `word`. A failed wake is ignored: FUTEX_WAKE
/// fails only for a bad address, which a live mapping is not.
fn wake(word: &AtomicU32, n: i32) {
    let _ = futex::wake(word, n);
}
