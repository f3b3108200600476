//! `Semaphore` and `BoundedSemaphore`: a counter under the segment's robust
//! mutex, with a table of the processes that hold slots.
//!
//! **Counting.** The free slots are `base - Σheld - untracked`: `held` is what
//! each (process, mapping) in the table holds, `untracked` what acquirers got
//! when the table was full, and `base` changes only when a release adds a
//! slot no one recorded as held (Python allows releasing a slot one does not
//! hold) or when a process forgets its slots. Every change is one store, so a
//! process killed between two of them leaves counts that still add up.
//!
//! **Ownership.** An acquire records the slot as held by the caller's process
//! (and mapping). A release gives back one of the caller's own slots if its
//! process holds any; otherwise it adds a slot (`base + 1`). Dropping a
//! process's last handle of a mapping *forgets* what it still holds: the slots
//! count as consumed, which is what a consumer of a signalling semaphore means
//! (`Semaphore(0)`, released by a producer, acquired and never released).
//!
//! **Death.** A process that dies (killed, or exited without dropping its
//! handle) while holding slots still has them in the table. A waiter that
//! shares the table with other processes sleeps at most `LIVENESS_PERIOD` at a
//! time; then it checks the others by pid and start time, and returns the slots
//! of the dead to the semaphore (`orphans`, `reclaimed`), waking the waiters.
//! A mutex owner that died is repaired the same way.
//!
//! **Bound.** For a BoundedSemaphore `base` never exceeds the initial value: a
//! release by a process holding nothing is an over-release unless a slot was
//! forgotten (`base < initial`) or another process holds one (the slot was
//! handed over: that holder's record is taken off). So a reclaim can never push
//! the value above the bound.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use super::segment::{Body, Kind, Locked, Segment};
use super::table::{Me, Table};
use super::{Deadline, LIVENESS_PERIOD, Slept, bump, sleep, wake};
use crate::error::{Error, Result};

#[repr(C)]
struct SemBody {
    /// The value the semaphore was made with: a BoundedSemaphore's bound.
    initial: AtomicU64,
    /// Slots free plus slots recorded as held (see the module docs).
    base: AtomicU64,
    /// Slots taken by acquirers that the full table could not record.
    untracked: AtomicU64,
    /// Slots returned from dead holders and not yet taken again.
    orphans: AtomicU64,
    /// Slots returned from dead holders, ever.
    reclaimed: AtomicU64,
    /// Futex: bumped whenever a slot may have become free.
    seq: AtomicU32,
    /// Waiters that the full table could not record.
    untracked_waiters: AtomicU32,
}

// SAFETY: a repr(C) struct of atomics, 48 bytes, aligned to 8.
unsafe impl Body for SemBody {}

/// This process's mapping of a semaphore; forgets its slots when dropped.
#[derive(Debug)]
struct Core {
    seg: Segment,
    /// Read once when made or opened.
    bounded: bool,
    initial: u64,
}

/// A counting semaphore shared between processes: Python's
/// `multiprocessing.Semaphore`.
///
/// [`acquire`](Self::acquire) takes a slot, waiting while there is none;
/// [`release`](Self::release) gives one back; [`slot`](Self::slot) returns a
/// guard that releases on drop. Clones refer to the same semaphore; pass one
/// to a child as a task argument.
///
/// ```
/// use mproc::Semaphore;
///
/// #[mproc::task]
/// fn download(slots: Semaphore, n: u32) -> u32 {
///     let _slot = slots.slot().unwrap(); // at most 2 downloads at a time
///     n * 10
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let slots = Semaphore::new(2)?;
/// let children = (0..4).map(|n| mproc::spawn!(download(slots.clone(), n))).collect::<Result<Vec<_>, _>>()?;
/// let got: Vec<u32> = children.into_iter().map(|c| c.join()).collect::<Result<_, _>>()?;
/// assert_eq!(got, [0, 10, 20, 30]);
/// assert_eq!(slots.value()?, 2);
/// # Ok(()) }
/// ```
///
/// - **Slots belong to processes.** A process that is killed while holding
///   slots does not keep the others waiting: a waiter notices within
///   [`LIVENESS_PERIOD`] and the slots return to the semaphore
///   ([`SemaphoreGuard::previous_holder_died`], [`recoveries`](Self::recoveries)).
///   The same holds for a process that exits without dropping its handle.
/// - **Releasing a slot one does not hold** is allowed, as in Python: it adds
///   a slot. A slot handed to another process and released there therefore
///   leaves the acquirer recorded as its holder; were the acquirer then killed,
///   the slot would be returned a second time. Use a [`BoundedSemaphore`],
///   which takes the record off the acquirer, when slots travel.
/// - **Dropping a handle** forgets the slots that process still holds through
///   it: they stay taken, as a consumed signal should.
/// - At most 1024 processes are recorded at once; slots taken beyond that are
///   served but not returned if their holder dies.
#[derive(Clone)]
pub struct Semaphore {
    core: Arc<Core>,
}

/// A semaphore that refuses to be released above its initial value: Python's
/// `multiprocessing.BoundedSemaphore`.
///
/// ```
/// let sem = mproc::BoundedSemaphore::new(1)?;
/// sem.acquire()?;
/// sem.release()?;
/// assert!(matches!(sem.release(), Err(mproc::Error::Misuse { .. }))); // Python's ValueError
/// # Ok::<(), mproc::Error>(())
/// ```
///
/// Everything else is as for [`Semaphore`]; in addition, a release by a
/// process that holds no slot while another process does takes the slot off
/// that process's record (it was handed over), so that slots returned from a
/// dead holder never raise the value above the bound.
#[derive(Clone)]
pub struct BoundedSemaphore {
    core: Arc<Core>,
}

/// Holds one slot of a [`Semaphore`] or [`BoundedSemaphore`]; releases it
/// when dropped.
#[must_use = "the slot is released as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    core: &'a Core,
    died: bool,
}

impl SemaphoreGuard<'_> {
    /// Whether this slot was taken back from a holder that died holding it.
    pub fn previous_holder_died(&self) -> bool {
        self.died
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // This process holds the slot, so the release cannot be refused.
        let _ = self.core.release();
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").field("previous_holder_died", &self.died).finish()
    }
}

impl Core {
    fn create(kind: Kind, value: usize) -> Result<Core> {
        let initial = value as u64;
        let seg = Segment::create(kind, |seg| {
            let b = seg.body::<SemBody>();
            b.initial.store(initial, Relaxed);
            b.base.store(initial, Relaxed);
        })?;
        Ok(Core { seg, bounded: kind == Kind::BoundedSemaphore, initial })
    }

    fn open(seg: Segment) -> Core {
        let initial = seg.body::<SemBody>().initial.load(Relaxed);
        Core { bounded: seg.kind() == Kind::BoundedSemaphore, initial, seg }
    }

    fn body(&self) -> &SemBody {
        self.seg.body::<SemBody>()
    }

    fn me(&self) -> Me {
        Me::new(self.seg.map_id())
    }

    /// Free slots now (under the lock).
    fn free(&self, t: &Table<'_>) -> u64 {
        let b = self.body();
        b.base.load(Relaxed).saturating_sub(t.held()).saturating_sub(b.untracked.load(Relaxed))
    }

    fn waiters(&self, t: &Table<'_>) -> u64 {
        t.waiting() + u64::from(self.body().untracked_waiters.load(Relaxed))
    }

    /// Takes the lock; if its owner died, returns the slots of dead processes.
    fn lock(&self) -> Result<Locked<'_>> {
        let l = self.seg.lock()?;
        if l.owner_died {
            self.reclaim(&l);
        }
        Ok(l)
    }

    /// Returns the slots of dead processes and frees their entries.
    fn reclaim(&self, l: &Locked<'_>) {
        let mut returned = 0u64;
        l.table().purge_dead(self.me(), |e| returned += u64::from(e.held()));
        if returned > 0 {
            let b = self.body();
            b.orphans.fetch_add(returned, Relaxed);
            b.reclaimed.fetch_add(returned, Relaxed);
            bump(&b.seq);
            wake(&b.seq, i32::MAX);
        }
    }

    /// Before the caller's process appears in a table whose entries are all
    /// of one other process: that process's waiters may sleep without a bound
    /// (no other process could keep them waiting); wake them so that they
    /// bound it now that the caller, which can die, is involved.
    fn announce(&self, t: &Table<'_>, me: Me) {
        if self.waiters(t) > 0 && t.only_another(me) {
            let b = self.body();
            bump(&b.seq);
            wake(&b.seq, i32::MAX);
        }
    }

    /// Takes a slot, waiting until `deadline`: `Some(taken from a dead holder)`,
    /// or `None` if the time ran out.
    fn acquire(&self, deadline: Deadline) -> Result<Option<bool>> {
        let me = self.me();
        let b = self.body();
        let mut registered = false;
        let mut check = false;
        loop {
            let l = self.lock()?;
            if check {
                self.reclaim(&l);
            }
            let t = l.table();
            let free = self.free(&t);
            if free > 0 || deadline.left().is_none() {
                if registered {
                    match t.find(me) {
                        Some(e) if e.waiting() > 0 => e.set_waiting(e.waiting() - 1),
                        _ => {
                            let w = b.untracked_waiters.load(Relaxed);
                            b.untracked_waiters.store(w.saturating_sub(1), Relaxed);
                        }
                    }
                }
                if free == 0 {
                    t.shrink();
                    return Ok(None);
                }
                self.announce(&t, me);
                match t.find_or_insert(me) {
                    Some(e) => e.set_held(e.held() + 1),
                    None => {
                        b.untracked.fetch_add(1, Relaxed);
                    }
                }
                let orphans = b.orphans.load(Relaxed);
                if orphans > 0 {
                    b.orphans.store(orphans - 1, Relaxed);
                }
                // Pass the turn on: another waiter may take a slot still free.
                if free > 1 && self.waiters(&t) > 0 {
                    bump(&b.seq);
                    wake(&b.seq, 1);
                }
                return Ok(Some(orphans > 0));
            }
            if !registered {
                self.announce(&t, me);
                match t.find_or_insert(me) {
                    Some(e) => e.set_waiting(e.waiting() + 1),
                    None => {
                        b.untracked_waiters.fetch_add(1, Relaxed);
                    }
                }
                registered = true;
            }
            // Only another process can die and leave us waiting for nothing.
            let period = t.others(me).then_some(LIVENESS_PERIOD);
            let seen = b.seq.load(Acquire);
            drop(l);
            check = sleep(&b.seq, seen, deadline, period)? == Slept::PeriodElapsed;
        }
    }

    fn release(&self) -> Result<()> {
        let me = self.me();
        let b = self.body();
        let l = self.lock()?;
        let t = l.table();
        // The caller's own slot: through this mapping, else through another
        // mapping in this process.
        let own = t
            .find(me)
            .filter(|e| e.held() > 0)
            .or_else(|| t.in_use().find(|e| e.held() > 0 && e.belongs_to(me.process)));
        if let Some(e) = own {
            e.set_held(e.held() - 1);
        } else if b.untracked.load(Relaxed) > 0 {
            b.untracked.fetch_sub(1, Relaxed);
        } else if self.bounded {
            let base = b.base.load(Relaxed);
            if base < self.initial {
                b.base.store(base + 1, Relaxed);
            } else if let Some(e) = t.in_use().find(|e| e.held() > 0) {
                // A slot acquired elsewhere and handed over: take it off the record.
                e.set_held(e.held() - 1);
            } else {
                return Err(Error::Misuse {
                    what: format!(
                        "BoundedSemaphore released too many times: its value would exceed {} (Python's ValueError)",
                        self.initial
                    ),
                });
            }
        } else {
            let base = b.base.load(Relaxed);
            if base >= i64::MAX as u64 {
                return Err(Error::Misuse { what: "Semaphore released too many times: its value overflows".into() });
            }
            b.base.store(base + 1, Relaxed);
        }
        if self.waiters(&t) > 0 {
            bump(&b.seq);
            wake(&b.seq, 1);
        }
        t.shrink();
        Ok(())
    }

    fn value(&self) -> Result<usize> {
        let l = self.lock()?;
        Ok(self.free(&l.table()) as usize)
    }

    fn recoveries(&self) -> u64 {
        self.body().reclaimed.load(Relaxed)
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Forget the slots this mapping still holds: they stay taken.
        let me = self.me();
        let Ok(l) = self.lock() else { return };
        let t = l.table();
        if let Some(e) = t.find(me) {
            let b = self.body();
            // Lower the base first: killed between the two stores, the entry is
            // reclaimed as a dead process's and the slots still end up taken.
            b.base.store(b.base.load(Relaxed).saturating_sub(u64::from(e.held())), Relaxed);
            e.set_held(0);
        }
        t.shrink();
    }
}

macro_rules! semaphore_face {
    ($ty:ident, $kind:expr) => {
        impl $ty {
            /// A semaphore with `value` free slots (Python's `value`, default 1).
            pub fn new(value: usize) -> Result<$ty> {
                if value as u64 >= i64::MAX as u64 {
                    return Err(Error::Misuse { what: format!("a semaphore's value must be below {}", i64::MAX) });
                }
                Ok($ty { core: Arc::new(Core::create($kind, value)?) })
            }

            /// Takes a slot, waiting as long as it takes. Python's `acquire()`.
            pub fn acquire(&self) -> Result<()> {
                self.core.acquire(Deadline::Never).map(drop)
            }

            /// Takes a slot if one is free now: whether it got one. Python's
            /// `acquire(block=False)`.
            pub fn try_acquire(&self) -> Result<bool> {
                Ok(self.core.acquire(Deadline::Now)?.is_some())
            }

            /// Takes a slot, waiting at most `timeout`: whether it got one.
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
                Ok(self.core.acquire(Deadline::after(timeout))?.is_some())
            }

            /// Takes a slot, waiting as long as it takes; the guard releases it.
            pub fn slot(&self) -> Result<SemaphoreGuard<'_>> {
                let died = self.core.acquire(Deadline::Never)?.unwrap_or(false);
                Ok(SemaphoreGuard { core: &self.core, died })
            }

            /// Takes a slot if one is free now; the guard releases it.
            pub fn try_slot(&self) -> Result<Option<SemaphoreGuard<'_>>> {
                Ok(self.core.acquire(Deadline::Now)?.map(|died| SemaphoreGuard { core: &self.core, died }))
            }

            /// Takes a slot, waiting at most `timeout`; the guard releases it.
            pub fn slot_timeout(&self, timeout: Duration) -> Result<Option<SemaphoreGuard<'_>>> {
                Ok(self.core.acquire(Deadline::after(timeout))?.map(|died| SemaphoreGuard { core: &self.core, died }))
            }

            /// Gives a slot back (see the type's docs for whose), waking a waiter.
            pub fn release(&self) -> Result<()> {
                self.core.release()
            }

            /// Free slots now (Python's `get_value()`).
            pub fn value(&self) -> Result<usize> {
                self.core.value()
            }

            /// How many slots were returned from processes that died holding them.
            pub fn recoveries(&self) -> u64 {
                self.core.recoveries()
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("initial", &self.core.initial)
                    .field("recoveries", &self.recoveries())
                    .finish_non_exhaustive()
            }
        }

        /// A semaphore is a handle: it can be a task argument under every
        /// start method. The other process maps the same memory.
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                self.core.seg.serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<$ty, D::Error> {
                Ok($ty { core: Arc::new(Core::open(Segment::deserialize(d, $kind)?)) })
            }
        }
    };
}

semaphore_face!(Semaphore, Kind::Semaphore);
semaphore_face!(BoundedSemaphore, Kind::BoundedSemaphore);

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn slots_run_out_and_come_back() {
        let s = Semaphore::new(2).unwrap();
        assert!(s.try_acquire().unwrap());
        let g = s.slot().unwrap();
        assert!(!s.try_acquire().unwrap());
        assert_eq!(s.value().unwrap(), 0);
        drop(g);
        assert_eq!(s.value().unwrap(), 1);
        s.release().unwrap();
        assert_eq!(s.value().unwrap(), 2);
        // Releasing a slot no one holds adds one (Python allows it).
        s.release().unwrap();
        assert_eq!(s.value().unwrap(), 3);
    }

    #[test]
    fn a_waiting_thread_gets_the_released_slot() {
        let s = Semaphore::new(0).unwrap();
        let other = s.clone();
        let waiter = std::thread::spawn(move || other.acquire_timeout(Duration::from_secs(10)).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        s.release().unwrap();
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn a_dropped_handle_forgets_its_slots() {
        let s = Semaphore::new(1).unwrap();
        let taker = Core::open(Segment::open(crate::sys::fd::dup(s.core.seg.fd()).unwrap(), Kind::Semaphore).unwrap());
        assert!(taker.acquire(Deadline::Now).unwrap().is_some());
        drop(taker);
        assert_eq!(s.value().unwrap(), 0);
        // Releasing in this process now adds the slot back (it was consumed).
        s.release().unwrap();
        assert_eq!(s.value().unwrap(), 1);
    }

    #[test]
    fn a_slot_taken_through_another_mapping_of_this_process_is_released_as_its_own() {
        let s = BoundedSemaphore::new(1).unwrap();
        let taker =
            Core::open(Segment::open(crate::sys::fd::dup(s.core.seg.fd()).unwrap(), Kind::BoundedSemaphore).unwrap());
        assert!(taker.acquire(Deadline::Now).unwrap().is_some());
        // Same process, another mapping: its own slot.
        s.release().unwrap();
        assert_eq!(s.value().unwrap(), 1);
        assert!(matches!(s.release(), Err(Error::Misuse { .. })));
    }
}
