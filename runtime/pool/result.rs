//! `AsyncResult<T>`: a result a pool will deliver (Python's `AsyncResult`).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::engine::Engine;
use super::slot::{Countdown, Outcome, Slot, decode_chunk, decode_chunk_into};
use crate::error::{Error, Result};
use crate::task::TaskValue;

/// Turns the outcomes of a result's slots into its value.
pub(crate) type Decode<T> = fn(&[&Outcome], &'static str) -> Result<T>;

/// A result that a pool will deliver: from [`Pool::apply_async`](crate::Pool::apply_async)
/// (one call) or [`Pool::map_async`](crate::Pool::map_async) (a list).
///
/// Poll it (`ready`, `wait`, `get_timeout`), block on it (`get`), `.await` it, or
/// have callbacks run when it arrives. Dropping it does not cancel the work.
///
/// ```
/// #[mproc::task]
/// fn square(n: u64) -> u64 { n * n }
///
/// let pool = mproc::Pool::new(2)?;
/// let r = pool.apply_async(square, (7,));
/// r.wait();
/// assert!(r.ready());
/// assert_eq!(r.successful(), Some(true));
/// assert_eq!(r.get()?, 49);
/// # Ok::<(), mproc::Error>(())
/// ```
#[must_use = "an AsyncResult does nothing unless its value is collected"]
pub struct AsyncResult<T> {
    slots: Vec<Arc<Slot>>,
    task: &'static str,
    decode: Decode<T>,
    /// For a single call: the engine whose worker channel `wait` may read itself.
    engine: Option<Arc<Engine>>,
    /// For a list: what counts its slots off, so that `wait` wakes once.
    countdown: Option<Arc<Countdown>>,
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> AsyncResult<T> {
    pub(crate) fn new(slots: Vec<Arc<Slot>>, task: &'static str, decode: Decode<T>) -> AsyncResult<T> {
        AsyncResult { slots, task, decode, engine: None, countdown: None, _value: PhantomData }
    }

    /// Lets `wait` wait on the countdown its slots were made with.
    pub(crate) fn with_countdown(mut self, countdown: Arc<Countdown>) -> AsyncResult<T> {
        self.countdown = Some(countdown);
        self
    }

    /// Lets `wait` read the result off the worker's channel itself.
    pub(crate) fn with_engine(mut self, engine: Arc<Engine>) -> AsyncResult<T> {
        self.engine = Some(engine);
        self
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if let (Some(engine), [slot]) = (&self.engine, &self.slots[..]) {
            return engine.wait_for(slot, deadline);
        }
        if let Some(countdown) = &self.countdown {
            return countdown.wait(deadline);
        }
        self.slots.iter().all(|s| s.wait(deadline))
    }

    /// A result that failed before any work was queued.
    pub(crate) fn failed(err: Error, decode: Decode<T>) -> AsyncResult<T> {
        let slot = Slot::new();
        slot.complete(Err(err));
        AsyncResult::new(vec![slot], "", decode)
    }

    /// True once the result has arrived.
    pub fn ready(&self) -> bool {
        self.slots.iter().all(|s| s.is_done())
    }

    /// Whether the work succeeded: `None` until the result has arrived.
    pub fn successful(&self) -> Option<bool> {
        if !self.ready() {
            return None;
        }
        Some(self.slots.iter().all(|s| s.peek(|o| matches!(o, Some(Ok(chunk)) if !chunk.any_failed))))
    }

    /// Waits until the result has arrived.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout` for the result; true if it has arrived.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        self.wait_until(deadline)
    }

    /// Waits for the result and returns it.
    pub fn get(self) -> Result<T> {
        self.wait();
        self.collect()
    }

    /// Waits at most `timeout`: `Err(Timeout)` if the result has not arrived (it
    /// can be asked for again), else the result, once (`Err(ResultTaken)` after).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        if !self.wait_timeout(timeout) {
            return Err(Error::Timeout);
        }
        self.collect()
    }

    fn collect(&self) -> Result<T> {
        if self.slots.iter().any(|s| s.is_taken()) {
            return Err(Error::ResultTaken);
        }
        let mut outcomes = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            outcomes.push(s.take_outcome().ok_or(Error::ResultTaken)?);
        }
        let refs: Vec<&Outcome> = outcomes.iter().collect();
        (self.decode)(&refs, self.task)
    }

    /// Decodes without taking (for callbacks, which only look): a private copy of
    /// each outcome, so that no slot stays locked during the decode.
    fn decode_now(&self) -> Result<T> {
        let copies: Vec<Option<Outcome>> = self.slots.iter().map(|s| s.peek(|o| o.map(clone_outcome))).collect();
        let mut outcomes = Vec::with_capacity(copies.len());
        for o in &copies {
            match o {
                Some(o) => outcomes.push(o),
                None => return Err(Error::ResultTaken),
            }
        }
        (self.decode)(&outcomes, self.task)
    }

    /// Runs `f` with the value when it arrives successfully (Python's `callback`).
    /// It runs on the pool's engine thread, so it should be quick.
    pub fn on_success(&self, f: impl FnOnce(&T) + Send + 'static) {
        self.on_arrival(move |r| {
            if let Ok(v) = r {
                f(v)
            }
        });
    }

    /// Runs `f` with the error when the work fails (Python's `error_callback`).
    pub fn on_error(&self, f: impl FnOnce(&Error) + Send + 'static) {
        self.on_arrival(move |r| {
            if let Err(e) = r {
                f(e)
            }
        });
    }

    /// Runs `f` once every slot has its outcome (at once if they all have).
    pub(crate) fn on_done(&self, f: impl FnOnce() + Send + 'static) {
        let remaining = Arc::new(AtomicUsize::new(self.slots.len()));
        let f = Arc::new(Mutex::new(Some(f)));
        for slot in &self.slots {
            let (remaining, f) = (remaining.clone(), f.clone());
            slot.on_complete(move || {
                if remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    && let Some(f) = f.lock().unwrap_or_else(|e| e.into_inner()).take()
                {
                    f();
                }
            });
        }
    }

    /// Runs `f` with the result (value or error) once it has arrived.
    pub(crate) fn on_arrival(&self, f: impl FnOnce(&Result<T>) + Send + 'static) {
        let remaining = Arc::new(AtomicUsize::new(self.slots.len()));
        let f = Arc::new(Mutex::new(Some(f)));
        for slot in &self.slots {
            let (remaining, f, slots) = (remaining.clone(), f.clone(), self.slots.clone());
            let (task, decode) = (self.task, self.decode);
            slot.on_complete(move || {
                if remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
                    return;
                }
                let view = AsyncResult { slots, task, decode, engine: None, countdown: None, _value: PhantomData };
                let value = view.decode_now();
                if let Some(f) = f.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    f(&value);
                }
            });
        }
    }
}

/// A private copy of an outcome, for decoding it with its slot unlocked.
fn clone_outcome(o: &Outcome) -> Outcome {
    match o {
        Ok(chunk) => Ok(chunk.clone()),
        Err(e) => Err(e.duplicate()),
    }
}

impl<T: 'static> Future for AsyncResult<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        for s in &self.slots {
            if s.poll_done(cx).is_pending() {
                return Poll::Pending;
            }
        }
        Poll::Ready(self.collect())
    }
}

impl<T> std::fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ready = self.slots.iter().all(|s| s.is_done());
        f.debug_struct("AsyncResult").field("task", &self.task).field("ready", &ready).finish()
    }
}

/// The value of one call: the only item of its chunk.
pub(crate) fn decode_one<R: TaskValue>(outcomes: &[&Outcome], task: &'static str) -> Result<R> {
    let first = outcomes.first().ok_or(Error::ResultTaken)?;
    decode_chunk::<R>(first, task)?
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(Error::Codec(format!("task {task}: an empty chunk came back"))))
}

/// The values of a list of calls, in input order; the first failure in input order wins.
pub(crate) fn decode_all<R: TaskValue>(outcomes: &[&Outcome], task: &'static str) -> Result<Vec<R>> {
    let mut values = Vec::new();
    for outcome in outcomes {
        decode_chunk_into(outcome, task, &mut values)?;
    }
    Ok(values)
}
