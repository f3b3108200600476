//! `Condition`: a futex sequence number beside a [`Lock`].
//!
//! A waiter, holding the lock, registers (`waiters + 1`), reads the sequence
//! word, releases the lock, sleeps while the word is unchanged, unregisters
//! and takes the lock again. `notify(n)` bumps the word and, if anyone is
//! registered, wakes up to `n` sleepers. Reading the word under the lock, and
//! notifying under it as Python requires, means no waiter can miss a notify
//! that follows its decision to wait. A waiter that reads the word and is then
//! overtaken by a notify returns at once (the word changed): more than `n` may
//! wake, never fewer.
//!
//! Death: a sleeping waiter that is killed is off the futex queue, so a notify
//! reaches a live one instead; it leaves the count one too high (one useless
//! `FUTEX_WAKE` per later notify). A waiter killed after being woken and
//! before it took the lock back swallows that wake-up; `wait_for` looks at its
//! predicate at least every `LIVENESS_PERIOD` so that this cannot hold it
//! forever. A process that dies holding the lock is the lock's business: the
//! next waiter to take it back sees `previous_owner_died()` on its guard.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use super::lock::{Lock, LockGuard};
use super::segment::{Body, Kind, Segment};
use super::{Deadline, LIVENESS_PERIOD, Slept, sleep, wake};
use crate::error::{Error, Result};

#[repr(C)]
struct CondBody {
    /// Futex: bumped by every notify.
    seq: AtomicU32,
    /// Threads registered as waiting (too high after a waiter is killed).
    waiters: AtomicU32,
}

// SAFETY: a repr(C) struct of atomics, 8 bytes, aligned to 4.
unsafe impl Body for CondBody {}

/// A condition variable shared between processes: Python's
/// `multiprocessing.Condition`.
///
/// It is used with its lock: take the lock with [`lock`](Self::lock), look at
/// the shared state, and [`wait`](Self::wait) (which releases the lock while
/// sleeping and takes it back) until another process changes the state and
/// calls [`notify`](Self::notify) or [`notify_all`](Self::notify_all).
///
/// ```
/// use mproc::{Condition, RawValue};
///
/// #[mproc::task]
/// fn producer(cv: Condition, ready: RawValue<u32>) {
///     let _held = cv.lock().unwrap();
///     ready.set(1);
///     cv.notify_all();
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let cv = Condition::new()?;
/// let ready = RawValue::<u32>::new(0)?;
/// let child = mproc::spawn!(producer(cv.clone(), ready.clone()))?;
/// let mut held = cv.lock()?;
/// cv.wait_for(&mut held, || ready.get() == 1)?;
/// drop(held);
/// child.join()?;
/// # Ok(()) }
/// ```
///
/// - The lock is a [`Lock`] (Python's default is an `RLock`); pass your own
///   with [`with_lock`](Self::with_lock) to share it with other code.
/// - `wait` may return without a notify (a spurious wake-up); `wait_for`
///   loops until its predicate holds.
/// - Notify while holding the lock, as Python requires: a notify without it
///   may come between a waiter's test and its wait, and be missed.
#[derive(Clone)]
pub struct Condition {
    lock: Lock,
    seg: Arc<Segment>,
}

impl Condition {
    /// A condition over a new [`Lock`].
    pub fn new() -> Result<Condition> {
        Condition::with_lock(Lock::new()?)
    }

    /// A condition over `lock` (Python's `Condition(lock)`).
    pub fn with_lock(lock: Lock) -> Result<Condition> {
        Ok(Condition { lock, seg: Arc::new(Segment::create(Kind::Condition, |_| ())?) })
    }

    fn body(&self) -> &CondBody {
        self.seg.body::<CondBody>()
    }

    /// The condition's lock.
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }

    /// Takes the condition's lock (Python's `with cv:`).
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.lock.lock()
    }

    /// Releases the lock held by `guard`, sleeps until notified, and takes the
    /// lock back before returning. May return without a notify.
    pub fn wait(&self, guard: &mut LockGuard<'_>) -> Result<()> {
        self.wait_until(guard, Deadline::Never, None).map(drop)
    }

    /// [`wait`](Self::wait), for at most `timeout`: `false` if the time ran
    /// out without a notify (Python's `wait(timeout)`). The lock is held again
    /// either way.
    pub fn wait_timeout(&self, guard: &mut LockGuard<'_>, timeout: Duration) -> Result<bool> {
        self.wait_until(guard, Deadline::after(timeout), None)
    }

    /// Waits until `predicate` holds (tested with the lock held, first at
    /// once). Python's `wait_for(predicate)`.
    pub fn wait_for(&self, guard: &mut LockGuard<'_>, predicate: impl FnMut() -> bool) -> Result<()> {
        self.wait_for_until(guard, Deadline::Never, predicate).map(drop)
    }

    /// [`wait_for`](Self::wait_for), for at most `timeout`: the predicate's
    /// last value (Python's `wait_for(predicate, timeout)`).
    pub fn wait_for_timeout(
        &self,
        guard: &mut LockGuard<'_>,
        timeout: Duration,
        predicate: impl FnMut() -> bool,
    ) -> Result<bool> {
        self.wait_for_until(guard, Deadline::after(timeout), predicate)
    }

    /// Wakes up to `n` waiters.
    pub fn notify(&self, n: usize) {
        let b = self.body();
        b.seq.fetch_add(1, SeqCst);
        // SeqCst on both sides: either this load sees a waiter's registration,
        // or that waiter read the bumped word and will not sleep on the old one.
        if n > 0 && b.waiters.load(SeqCst) > 0 {
            wake(&b.seq, n.min(i32::MAX as usize) as i32);
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.notify(usize::MAX);
    }

    fn wait_for_until(
        &self,
        guard: &mut LockGuard<'_>,
        deadline: Deadline,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<bool> {
        self.check(guard)?;
        loop {
            if predicate() {
                return Ok(true);
            }
            if deadline.left().is_none() {
                return Ok(false);
            }
            self.wait_until(guard, deadline, Some(LIVENESS_PERIOD))?;
        }
    }

    fn check(&self, guard: &LockGuard<'_>) -> Result<()> {
        if guard.held().segment().identity() != self.lock.segment().identity() {
            return Err(Error::Misuse { what: "a Condition was waited on with the guard of another lock".into() });
        }
        Ok(())
    }

    /// One wait: `false` if `deadline` passed without a notify.
    fn wait_until(&self, guard: &mut LockGuard<'_>, deadline: Deadline, period: Option<Duration>) -> Result<bool> {
        self.check(guard)?;
        let b = self.body();
        let lock = guard.held().segment();
        b.waiters.fetch_add(1, SeqCst);
        let seen = b.seq.load(SeqCst);
        if let Err(e) = lock.release() {
            b.waiters.fetch_sub(1, SeqCst);
            return Err(e);
        }
        let slept = sleep(&b.seq, seen, deadline, period);
        b.waiters.fetch_sub(1, SeqCst);
        // Take the lock back whatever happened: the guard says it is held.
        let died = lock.acquire(Deadline::Never)?.unwrap_or(false);
        guard.owner_died |= died;
        Ok(slept? != Slept::TimedOut)
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition").field("lock", &self.lock).finish_non_exhaustive()
    }
}

/// A condition is a handle (with its lock): it can be a task argument under
/// every start method.
impl serde::Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Own<'a>(&'a Segment);
        impl serde::Serialize for Own<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.lock)?;
        t.serialize_element(&Own(&self.seg))?;
        t.end()
    }
}

impl<'de> serde::Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Condition, D::Error> {
        struct Own(Segment);
        impl<'de> serde::Deserialize<'de> for Own {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Own, D::Error> {
                Segment::deserialize(d, Kind::Condition).map(Own)
            }
        }
        let (lock, Own(seg)) = <(Lock, Own)>::deserialize(d)?;
        Ok(Condition { lock, seg: Arc::new(seg) })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn wait_timeout_without_a_notify_is_false_and_holds_the_lock_again() {
        let cv = Condition::new().unwrap();
        let mut g = cv.lock().unwrap();
        assert!(!cv.wait_timeout(&mut g, Duration::from_millis(30)).unwrap());
        assert!(!cv.get_lock().try_acquire().unwrap());
    }

    #[test]
    fn a_guard_of_another_lock_is_a_misuse() {
        let cv = Condition::new().unwrap();
        let other = Lock::new().unwrap();
        let mut g = other.lock().unwrap();
        assert!(matches!(cv.wait_timeout(&mut g, Duration::ZERO), Err(Error::Misuse { .. })));
    }

    #[test]
    fn notify_wakes_a_waiting_thread() {
        let cv = Condition::new().unwrap();
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cv2, flag2) = (cv.clone(), flag.clone());
        let waiter = std::thread::spawn(move || {
            let mut g = cv2.lock().unwrap();
            cv2.wait_for_timeout(&mut g, Duration::from_secs(10), || flag2.load(SeqCst)).unwrap()
        });
        std::thread::sleep(Duration::from_millis(30));
        {
            let _g = cv.lock().unwrap();
            flag.store(true, SeqCst);
            cv.notify(1);
        }
        assert!(waiter.join().unwrap());
    }
}
