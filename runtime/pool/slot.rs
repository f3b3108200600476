//! Where a pool puts the outcome of one job (a chunk of calls), once.
//!
//! The engine thread completes a slot; any number of threads may wait on it,
//! poll it as a future, or have callbacks run when it completes (on the engine
//! thread, as Python runs them on its result-handler thread).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, Result};
use crate::task::Failure;

/// The encoded outcomes of a chunk of calls, `bytes[start..]`: a `Vec<R>` when
/// every call succeeded, else a `Vec<Result<R, Failure>>`.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub bytes: Vec<u8>,
    pub start: usize,
    /// Whether any call in the chunk failed (which of the two encodings it is).
    pub any_failed: bool,
}

impl Chunk {
    pub(crate) fn data(&self) -> &[u8] {
        self.bytes.get(self.start..).unwrap_or_default()
    }
}

/// What a job ends with: its chunk, or why the chunk as a whole failed
/// (worker lost, timeout, cancelled, pool broken or terminated).
pub(crate) type Outcome = Result<Chunk, Error>;

type Callback = Box<dyn FnOnce() + Send>;

#[derive(Default)]
pub(crate) struct Slot {
    st: Mutex<SlotState>,
    cv: Condvar,
    /// Counts it off when it completes (the slots of one `map` share one, so
    /// that whoever waits for all of them wakes once, not once per slot).
    countdown: Option<Arc<Countdown>>,
}

/// How many of a group of slots are still to complete.
pub(crate) struct Countdown {
    left: Mutex<usize>,
    cv: Condvar,
}

impl Countdown {
    pub(crate) fn new(n: usize) -> Arc<Countdown> {
        Arc::new(Countdown { left: Mutex::new(n), cv: Condvar::new() })
    }

    fn count_off(&self) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.cv.notify_all();
        }
    }

    /// Waits until every slot has completed, or `deadline` passes; true when they have.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        while *left > 0 {
            left = match deadline {
                None => self.cv.wait(left).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.cv.wait_timeout(left, d - now).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
        true
    }
}

#[derive(Default)]
struct SlotState {
    outcome: Option<Outcome>,
    /// Callbacks are running: they may look at the outcome, so it is not freed yet.
    notifying: bool,
    taken: bool,
    /// Threads blocked on the condition variable (it is only signalled when there are some).
    waiters: usize,
    callbacks: Vec<Callback>,
    wakers: Vec<Waker>,
}

impl Slot {
    pub(crate) fn new() -> Arc<Slot> {
        Arc::new(Slot::default())
    }

    /// A slot that counts itself off `countdown` when it completes.
    pub(crate) fn counted(countdown: &Arc<Countdown>) -> Arc<Slot> {
        Arc::new(Slot { countdown: Some(countdown.clone()), ..Slot::default() })
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the outcome (the first one wins), runs callbacks, then wakes waiters.
    pub(crate) fn complete(&self, outcome: Outcome) {
        let mut st = self.lock();
        if st.outcome.is_some() || st.taken {
            return;
        }
        st.outcome = Some(outcome);
        let waiters = st.waiters > 0;
        let callbacks = std::mem::take(&mut st.callbacks);
        let wakers = std::mem::take(&mut st.wakers);
        if !callbacks.is_empty() {
            // Callbacks peek at the outcome; nobody may take it while they run.
            st.notifying = true;
            drop(st);
            for cb in callbacks {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(cb));
            }
            st = self.lock();
            st.notifying = false;
            if st.taken {
                // Taken while the callbacks ran: now it can go.
                st.outcome = None;
            }
        }
        let waiters = waiters || st.waiters > 0;
        drop(st);
        if waiters {
            self.cv.notify_all();
        }
        if let Some(countdown) = &self.countdown {
            countdown.count_off();
        }
        for w in wakers {
            w.wake();
        }
    }

    fn is_done_locked(st: &SlotState) -> bool {
        st.outcome.is_some() || st.taken
    }

    /// True once the outcome is in.
    pub(crate) fn is_done(&self) -> bool {
        Self::is_done_locked(&self.lock())
    }

    /// Waits for the outcome until `deadline`; true when it is in.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut st = self.lock();
        loop {
            if Self::is_done_locked(&st) {
                return true;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return false;
            }
            st.waiters += 1;
            st = match deadline {
                None => self.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => self.cv.wait_timeout(st, d - now).unwrap_or_else(|e| e.into_inner()).0,
            };
            st.waiters -= 1;
        }
    }

    /// Looks at the outcome (`None` while pending, or once taken and freed).
    pub(crate) fn peek<R>(&self, f: impl FnOnce(Option<&Outcome>) -> R) -> R {
        let st = self.lock();
        f(st.outcome.as_ref())
    }

    /// Drops the outcome of a completed slot, after its result was handed out;
    /// returns false if it had already been.
    pub(crate) fn take(&self) -> bool {
        self.wait(None);
        let mut st = self.lock();
        if st.taken {
            return false;
        }
        st.taken = true;
        // Callbacks still running may be looking at it; they free it when done.
        if !st.notifying {
            st.outcome = None;
        }
        true
    }

    /// Takes the outcome of a completed slot, once callbacks are done looking at
    /// it; `None` if it was taken before.
    pub(crate) fn take_outcome(&self) -> Option<Outcome> {
        self.wait(None);
        let mut st = self.lock();
        while st.notifying {
            st.waiters += 1;
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            st.waiters -= 1;
        }
        if st.taken {
            return None;
        }
        st.taken = true;
        st.outcome.take()
    }

    /// True once the result was handed out.
    pub(crate) fn is_taken(&self) -> bool {
        self.lock().taken
    }

    /// Runs `cb` once the outcome is in (at once, on this thread, if it is).
    pub(crate) fn on_complete(&self, cb: impl FnOnce() + Send + 'static) {
        let mut st = self.lock();
        if st.outcome.is_none() && !st.taken {
            st.callbacks.push(Box::new(cb));
            return;
        }
        drop(st);
        cb();
    }

    /// Future support: ready once the outcome is in, else remembers the waker.
    pub(crate) fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if Self::is_done_locked(&st) {
            return Poll::Ready(());
        }
        if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            st.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Decodes a chunk's outcomes, each failure becoming the error that names `task`.
pub(crate) fn decode_chunk<R: DeserializeOwned>(outcome: &Outcome, task: &str) -> Result<Vec<Result<R>>> {
    let chunk = outcome.as_ref().map_err(Error::duplicate)?;
    if !chunk.any_failed {
        let values: Vec<R> = codec::decode(chunk.data())?;
        return Ok(values.into_iter().map(Ok).collect());
    }
    let items: Vec<std::result::Result<R, Failure>> = codec::decode(chunk.data())?;
    Ok(items.into_iter().map(|r| r.map_err(|f| f.into_error(task))).collect())
}

/// Appends a chunk's values to `values`, or returns its first failure.
pub(crate) fn decode_chunk_into<R: DeserializeOwned>(outcome: &Outcome, task: &str, values: &mut Vec<R>) -> Result<()> {
    let chunk = outcome.as_ref().map_err(Error::duplicate)?;
    if !chunk.any_failed {
        let mut decoded: Vec<R> = codec::decode(chunk.data())?;
        values.append(&mut decoded);
        return Ok(());
    }
    let items: Vec<std::result::Result<R, Failure>> = codec::decode(chunk.data())?;
    for item in items {
        values.push(item.map_err(|f| f.into_error(task))?);
    }
    Ok(())
}
