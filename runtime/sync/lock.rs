//! `Lock` and `RLock`: a robust, process-shared pthread mutex in a memfd.
//!
//! The mutex is owned by a thread. A Lock's is error-checking (its owner
//! locking it again is reported instead of deadlocking), an RLock's recursive.
//! Both are robust: if the owning thread dies, with or without its process,
//! the kernel marks the mutex "owner died" and the next acquirer gets it with
//! `EOWNERDEAD`; it is marked consistent at once (a lock protects nothing the
//! library could repair) and the acquirer is told through its guard and the
//! recovery counter. Uncontended, acquire and release are two atomic
//! instructions each in glibc and no system call.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::Deadline;
use super::segment::{Kind, Segment};
use crate::error::Result;

/// A lock shared between processes: Python's `multiprocessing.Lock`.
///
/// Take it with [`lock`](Self::lock), which returns a guard that releases it
/// when dropped, or with [`acquire`](Self::acquire) and
/// [`release`](Self::release) as in Python. Clones refer to the same lock;
/// pass one to a child as a task argument.
///
/// ```
/// use mproc::Lock;
///
/// #[mproc::task]
/// fn report(lock: Lock, n: u32) {
///     let _held = lock.lock().unwrap();
///     println!("{n} squared is {}", n * n);
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let lock = Lock::new()?;
/// let children = (0..4).map(|n| mproc::spawn!(report(lock.clone(), n))).collect::<Result<Vec<_>, _>>()?;
/// for c in children {
///     c.join()?;
/// }
/// # Ok(()) }
/// ```
///
/// - **Owner.** The lock belongs to the thread that took it: releasing it from
///   another thread or process, or when no one holds it, is an
///   [`Error::Misuse`](crate::Error::Misuse) (Python allows the first;
///   nothing undefined happens here either way). A thread that acquires it
///   again while holding it gets `Misuse` from `acquire`/`lock` (it would wait
///   forever) and `false`/`None` from the other forms.
/// - **Death.** If the thread holding the lock dies (its process killed, say),
///   the next acquirer gets the lock, and
///   [`LockGuard::previous_owner_died`] is true; guard-less users see
///   [`recoveries`](Self::recoveries) grow. Whatever the lock protected may be
///   half updated: that is the acquirer's to check.
/// - **Cost.** Uncontended, taking and releasing make no system call.
#[derive(Clone)]
pub struct Lock {
    seg: Arc<Segment>,
}

/// A reentrant lock shared between processes: Python's
/// `multiprocessing.RLock`.
///
/// The thread holding it may acquire it again; it is free once released as
/// many times as it was acquired. Everything else is as for [`Lock`],
/// including what happens when its owner dies (the next acquirer holds it
/// once).
///
/// ```
/// let lock = mproc::RLock::new()?;
/// let outer = lock.lock()?;
/// let inner = lock.lock()?; // the same thread: no deadlock
/// drop(inner);
/// drop(outer);
/// assert!(lock.try_acquire()?);
/// lock.release()?;
/// # Ok::<(), mproc::Error>(())
/// ```
#[derive(Clone)]
pub struct RLock {
    seg: Arc<Segment>,
}

/// Holds a [`Lock`]; releases it when dropped. Made by [`Lock::lock`].
///
/// A guard stays on the thread that took the lock (it is not `Send`): the lock
/// belongs to that thread.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    pub(super) lock: &'a Lock,
    pub(super) owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

/// Holds an [`RLock`] once; releases it once when dropped. Made by
/// [`RLock::lock`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

/// The operations Lock and RLock share, over their segment.
macro_rules! lock_face {
    ($ty:ident, $guard:ident, $kind:expr) => {
        impl $ty {
            /// A new, unlocked lock.
            pub fn new() -> Result<$ty> {
                Ok($ty { seg: Arc::new(Segment::create($kind, |_| ())?) })
            }

            /// Takes the lock, waiting as long as it takes; the guard releases it.
            pub fn lock(&self) -> Result<$guard<'_>> {
                let owner_died = self.acquire_flagged(Deadline::Never)?.unwrap_or(false);
                Ok($guard { lock: self, owner_died, _not_send: PhantomData })
            }

            /// Takes the lock if it is free now: `None` if it is not.
            pub fn try_lock(&self) -> Result<Option<$guard<'_>>> {
                Ok(self.acquire_flagged(Deadline::Now)?.map(|owner_died| $guard {
                    lock: self,
                    owner_died,
                    _not_send: PhantomData,
                }))
            }

            /// Takes the lock, waiting at most `timeout`: `None` if it was not free in time.
            pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<$guard<'_>>> {
                Ok(self.acquire_flagged(Deadline::after(timeout))?.map(|owner_died| $guard {
                    lock: self,
                    owner_died,
                    _not_send: PhantomData,
                }))
            }

            /// Takes the lock, waiting as long as it takes, without a guard:
            /// [`release`](Self::release) it from the same thread. Python's `acquire()`.
            pub fn acquire(&self) -> Result<()> {
                self.acquire_flagged(Deadline::Never).map(drop)
            }

            /// Takes the lock if it is free now: whether it was. Python's
            /// `acquire(block=False)`.
            pub fn try_acquire(&self) -> Result<bool> {
                Ok(self.acquire_flagged(Deadline::Now)?.is_some())
            }

            /// Takes the lock, waiting at most `timeout`: whether it got it.
            /// Python's `acquire(timeout=…)`.
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
                Ok(self.acquire_flagged(Deadline::after(timeout))?.is_some())
            }

            /// Releases the lock taken by [`acquire`](Self::acquire) (or one of
            /// its forms) on this thread. [`Error::Misuse`](crate::Error::Misuse)
            /// if this thread does not hold it.
            pub fn release(&self) -> Result<()> {
                self.seg.release()
            }

            /// How many times an acquirer found that the previous owner had died
            /// holding the lock (in any process).
            pub fn recoveries(&self) -> u64 {
                self.seg.recoveries()
            }

            fn acquire_flagged(&self, deadline: Deadline) -> Result<Option<bool>> {
                self.seg.acquire(deadline)
            }
        }

        impl $guard<'_> {
            /// Whether the previous holder of the lock died holding it (the
            /// kernel released it for them): what it protected may be half
            /// updated.
            pub fn previous_owner_died(&self) -> bool {
                self.owner_died
            }
        }

        impl Drop for $guard<'_> {
            fn drop(&mut self) {
                // This thread holds the lock (the guard stays on it), so
                // releasing cannot fail.
                let _ = self.lock.seg.release();
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty)).field("recoveries", &self.recoveries()).finish_non_exhaustive()
            }
        }

        impl fmt::Debug for $guard<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($guard)).field("previous_owner_died", &self.owner_died).finish()
            }
        }

        /// A lock is a handle: it can be a task argument under every start
        /// method. The other process maps the same memory.
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                self.seg.serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<$ty, D::Error> {
                Ok($ty { seg: Arc::new(Segment::deserialize(d, $kind)?) })
            }
        }
    };
}

lock_face!(Lock, LockGuard, Kind::Lock);
lock_face!(RLock, RLockGuard, Kind::RLock);

impl Lock {
    /// The memory behind the lock, for a [`Condition`](crate::Condition) over it.
    pub(super) fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl LockGuard<'_> {
    /// The lock this guard holds.
    pub(super) fn held(&self) -> &Lock {
        self.lock
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::Error;

    #[test]
    fn a_taken_lock_is_not_free_until_released() {
        let lock = Lock::new().unwrap();
        let g = lock.lock().unwrap();
        assert!(!g.previous_owner_died());
        let other = lock.clone();
        assert!(!std::thread::spawn(move || other.try_acquire().unwrap()).join().unwrap());
        drop(g);
        assert!(lock.try_acquire().unwrap());
        lock.release().unwrap();
    }

    #[test]
    fn relocking_a_lock_from_its_owner_is_a_misuse() {
        let lock = Lock::new().unwrap();
        lock.acquire().unwrap();
        assert!(matches!(lock.acquire(), Err(Error::Misuse { .. })));
        assert!(!lock.try_acquire().unwrap());
        assert!(!lock.acquire_timeout(Duration::from_millis(10)).unwrap());
        lock.release().unwrap();
        assert!(matches!(lock.release(), Err(Error::Misuse { .. })));
    }

    #[test]
    fn a_lock_held_by_a_thread_that_exited_passes_on_with_the_flag() {
        let lock = Lock::new().unwrap();
        let other = lock.clone();
        std::thread::spawn(move || other.acquire().unwrap()).join().unwrap();
        let g = lock.lock().unwrap();
        assert!(g.previous_owner_died());
        assert_eq!(lock.recoveries(), 1);
        drop(g);
        assert!(!lock.lock().unwrap().previous_owner_died());
    }

    #[test]
    fn dropping_a_lock_still_held_by_this_thread_keeps_its_memory() {
        let lock = Lock::new().unwrap();
        lock.acquire().unwrap();
        drop(lock);
        // The robust list still points into the mapping: taking another robust
        // mutex walks it.
        let other = Lock::new().unwrap();
        let _g = other.lock().unwrap();
    }
}
