//! `Barrier`: Python's `threading.Barrier` state machine under the segment's
//! robust mutex, with the parties inside `wait` recorded in the table.
//!
//! States, as in CPython: *filling* (parties arrive; the last one releases
//! them all and the state becomes *draining*), *draining* (the released leave;
//! new arrivals wait until the last one has left, which makes the state
//! *filling* again), *resetting* (as draining, after `reset` while parties
//! waited: they leave with `BrokenBarrier`) and *broken* (every wait fails
//! until `reset`). Every change bumps a futex sequence word and wakes all.
//!
//! The count of parties inside `wait` is the sum of the table's `waiting`
//! (plus `untracked`, for those the full table could not record). A waiter
//! that shares the barrier with other processes sleeps at most
//! `LIVENESS_PERIOD` at a time, then checks them: a process that died inside
//! `wait` while the barrier was filling breaks it (its party will never come),
//! and in any state its count is removed, so that draining can finish. A
//! process that died holding the mutex is handled the same way by the next
//! locker.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::Duration;

use super::segment::{Body, Kind, Locked, Segment};
use super::table::Me;
use super::{Deadline, LIVENESS_PERIOD, Slept, bump, sleep, wake};
use crate::error::{Error, Result};

const FILLING: u32 = 0;
const DRAINING: u32 = 1;
const RESETTING: u32 = 2;
const BROKEN: u32 = 3;

#[repr(C)]
struct BarrierBody {
    parties: AtomicU32,
    state: AtomicU32,
    /// Futex: bumped on every change of state.
    seq: AtomicU32,
    /// Parties inside `wait` that the full table could not record.
    untracked: AtomicU32,
}

// SAFETY: a repr(C) struct of atomics, 16 bytes, aligned to 4.
unsafe impl Body for BarrierBody {}

/// A barrier for a fixed number of parties, shared between processes:
/// Python's `multiprocessing.Barrier`.
///
/// Each party calls [`wait`](Self::wait); all return together once `parties`
/// of them are waiting, each with a distinct index in `0..parties` (the order
/// of arrival). Then the barrier can be used again.
///
/// ```
/// use mproc::Barrier;
///
/// #[mproc::task]
/// fn party(b: Barrier) -> usize {
///     b.wait().unwrap()
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let b = Barrier::new(3)?;
/// let children = (0..2).map(|_| mproc::spawn!(party(b.clone()))).collect::<Result<Vec<_>, _>>()?;
/// let mut indices = vec![b.wait()?];
/// for c in children {
///     indices.push(c.join()?);
/// }
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2]);
/// # Ok(()) }
/// ```
///
/// - **Broken.** [`abort`](Self::abort), a [`wait_timeout`](Self::wait_timeout)
///   that runs out ([`Error::Timeout`] for that party), or a party that dies
///   inside `wait` breaks the barrier: the waiting parties, and every later
///   `wait`, fail with [`Error::BrokenBarrier`] until [`reset`](Self::reset).
/// - **Death.** A party killed while waiting is noticed by the others within
///   [`LIVENESS_PERIOD`](crate::LIVENESS_PERIOD); they get `BrokenBarrier`
///   instead of hanging.
/// - At most 1024 processes are recorded inside `wait` at once; the death of
///   parties beyond that goes unnoticed.
#[derive(Clone)]
pub struct Barrier {
    seg: Arc<Segment>,
}

impl Barrier {
    /// A barrier for `parties` parties (at least 1).
    pub fn new(parties: usize) -> Result<Barrier> {
        if parties == 0 || parties > u32::MAX as usize / 2 {
            return Err(Error::Misuse { what: format!("a Barrier needs between 1 and 2^31 parties, not {parties}") });
        }
        let seg = Segment::create(Kind::Barrier, |seg| {
            seg.body::<BarrierBody>().parties.store(parties as u32, Relaxed);
        })?;
        Ok(Barrier { seg: Arc::new(seg) })
    }

    fn body(&self) -> &BarrierBody {
        self.seg.body::<BarrierBody>()
    }

    fn me(&self) -> Me {
        Me::new(self.seg.map_id())
    }

    /// Waits until all parties are waiting: this party's index in `0..parties`.
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken.
    pub fn wait(&self) -> Result<usize> {
        self.wait_until(Deadline::Never)
    }

    /// [`wait`](Self::wait), for at most `timeout`: after that the barrier is
    /// broken (for every party) and this one gets [`Error::Timeout`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize> {
        self.wait_until(Deadline::after(timeout))
    }

    /// Breaks the barrier: waiting parties and later waits fail with
    /// [`Error::BrokenBarrier`] until [`reset`](Self::reset).
    pub fn abort(&self) {
        match self.lock() {
            Ok(l) => self.set_state(&l, BROKEN),
            // The lock is unusable only if the memory is; break it anyway.
            Err(_) => {
                let b = self.body();
                b.state.store(BROKEN, Relaxed);
                bump(&b.seq);
                wake(&b.seq, i32::MAX);
            }
        }
    }

    /// Returns the barrier to its first state. Parties waiting now fail with
    /// [`Error::BrokenBarrier`]; later waits work as on a new barrier.
    pub fn reset(&self) {
        let Ok(l) = self.lock() else { return };
        let state = self.body().state.load(Relaxed);
        if self.count(&l) > 0 {
            if state == FILLING || state == BROKEN {
                self.set_state(&l, RESETTING);
            } else {
                // Draining or already resetting: those still inside finish as
                // they would; announce anyway.
                self.set_state(&l, state);
            }
        } else {
            self.set_state(&l, FILLING);
        }
    }

    /// Parties waiting now (0 while the barrier drains or is broken).
    pub fn n_waiting(&self) -> usize {
        let Ok(l) = self.lock() else { return 0 };
        if self.body().state.load(Relaxed) == FILLING { self.count(&l) as usize } else { 0 }
    }

    /// The number of parties.
    pub fn parties(&self) -> usize {
        self.body().parties.load(Relaxed) as usize
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        self.body().state.load(Acquire) == BROKEN
    }

    /// Takes the lock; if its owner died, looks for dead parties.
    fn lock(&self) -> Result<Locked<'_>> {
        let l = self.seg.lock()?;
        if l.owner_died {
            self.purge(&l);
        }
        Ok(l)
    }

    fn set_state(&self, _l: &Locked<'_>, state: u32) {
        let b = self.body();
        b.state.store(state, Relaxed);
        bump(&b.seq);
        wake(&b.seq, i32::MAX);
    }

    /// Parties inside `wait`.
    fn count(&self, l: &Locked<'_>) -> u64 {
        l.table().waiting() + u64::from(self.body().untracked.load(Relaxed))
    }

    /// Removes the parties of dead processes; one that died while the barrier
    /// was filling breaks it.
    fn purge(&self, l: &Locked<'_>) {
        let mut gone = 0u64;
        l.table().purge_dead(self.me(), |e| gone += u64::from(e.waiting()));
        if gone > 0 {
            match self.body().state.load(Relaxed) {
                FILLING => self.set_state(l, BROKEN),
                _ => self.leave_rule(l),
            }
        }
    }

    /// CPython's `_exit`: once the last party has left a draining or resetting
    /// barrier, it is filling again.
    fn leave_rule(&self, l: &Locked<'_>) {
        let state = self.body().state.load(Relaxed);
        if self.count(l) == 0 && (state == DRAINING || state == RESETTING) {
            self.set_state(l, FILLING);
        }
    }

    fn enter(&self, l: &Locked<'_>, me: Me) {
        let t = l.table();
        let newcomer = t.only_another(me);
        match t.find_or_insert(me) {
            Some(e) => e.set_waiting(e.waiting() + 1),
            None => {
                self.body().untracked.fetch_add(1, Relaxed);
            }
        }
        if newcomer {
            // The parties inside were all of one process and may sleep without
            // a bound: make them look again, and bound it now that this
            // process, which can die, is inside too.
            let b = self.body();
            bump(&b.seq);
            wake(&b.seq, i32::MAX);
        }
    }

    fn leave(&self, l: &Locked<'_>, me: Me) {
        let t = l.table();
        match t.find(me) {
            Some(e) if e.waiting() > 0 => e.set_waiting(e.waiting() - 1),
            _ => {
                let b = self.body();
                b.untracked.store(b.untracked.load(Relaxed).saturating_sub(1), Relaxed);
            }
        }
        t.shrink();
        self.leave_rule(l);
    }

    /// Sleeps until the state word changes (bounded while other processes are
    /// inside); returns the lock retaken, with dead parties handled.
    fn pause<'a>(&'a self, l: Locked<'a>, me: Me, deadline: Deadline) -> Result<(Locked<'a>, Slept)> {
        let b = self.body();
        let period = l.table().others(me).then_some(LIVENESS_PERIOD);
        let seen = b.seq.load(Acquire);
        drop(l);
        let slept = sleep(&b.seq, seen, deadline, period)?;
        let l = self.lock()?;
        if slept == Slept::PeriodElapsed {
            self.purge(&l);
        }
        Ok((l, slept))
    }

    fn wait_until(&self, deadline: Deadline) -> Result<usize> {
        let me = self.me();
        let b = self.body();
        let mut l = self.lock()?;
        // CPython's `_enter`: wait while the barrier drains or resets. Not
        // counted yet, so a timeout here breaks nothing.
        while matches!(b.state.load(Relaxed), DRAINING | RESETTING) {
            let (relocked, slept) = self.pause(l, me, deadline)?;
            l = relocked;
            if slept == Slept::TimedOut && matches!(b.state.load(Relaxed), DRAINING | RESETTING) {
                return Err(Error::Timeout);
            }
        }
        if b.state.load(Relaxed) == BROKEN {
            return Err(Error::BrokenBarrier);
        }
        let parties = u64::from(b.parties.load(Relaxed));
        if self.count(&l) + 1 >= parties && l.table().others(me) {
            // About to release: a party that died inside must not count as
            // arrived. Checked here, once per round, by the last arrival only.
            self.purge(&l);
            if b.state.load(Relaxed) == BROKEN {
                return Err(Error::BrokenBarrier);
            }
        }
        let index = self.count(&l);
        self.enter(&l, me);
        if index + 1 >= parties {
            // The last party: release the others.
            self.set_state(&l, DRAINING);
            self.leave(&l, me);
            return Ok(index as usize);
        }
        // CPython's `_wait`: until the state is no longer filling.
        while b.state.load(Relaxed) == FILLING {
            if deadline.left().is_none() {
                self.set_state(&l, BROKEN);
                self.leave(&l, me);
                return Err(Error::Timeout);
            }
            l = self.pause(l, me, deadline)?.0;
        }
        let state = b.state.load(Relaxed);
        self.leave(&l, me);
        if state == DRAINING { Ok(index as usize) } else { Err(Error::BrokenBarrier) }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}

/// A barrier is a handle: it can be a task argument under every start method.
impl serde::Serialize for Barrier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Barrier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Barrier, D::Error> {
        Ok(Barrier { seg: Arc::new(Segment::deserialize(d, Kind::Barrier)?) })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn threads_pass_the_barrier_together_twice() {
        let b = Barrier::new(3).unwrap();
        for _ in 0..2 {
            let others: Vec<_> = (0..2)
                .map(|_| {
                    let b = b.clone();
                    std::thread::spawn(move || b.wait().unwrap())
                })
                .collect();
            let mut got = vec![b.wait().unwrap()];
            got.extend(others.into_iter().map(|t| t.join().unwrap()));
            got.sort();
            assert_eq!(got, [0, 1, 2]);
        }
        assert_eq!(b.n_waiting(), 0);
    }

    #[test]
    fn a_timed_out_wait_breaks_the_barrier() {
        let b = Barrier::new(2).unwrap();
        assert!(matches!(b.wait_timeout(Duration::from_millis(20)), Err(Error::Timeout)));
        assert!(b.is_broken());
        assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
        b.reset();
        assert!(!b.is_broken());
    }
}
