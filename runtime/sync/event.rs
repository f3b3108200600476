//! `Event`: one futex word holding the flag and a generation number.
//!
//! The word is `generation << 1 | flag`. `set` turns the flag on and bumps
//! the generation (when the flag was off), `clear` turns it off. A waiter that
//! saw the word `w` returns once the flag is on or the generation differs from
//! `w`'s: so a `set` followed at once by a `clear` still releases everyone who
//! was waiting, as in Python, where `wait` returns True when woken by `set`.
//! No lock is involved, so no process can die holding one; a waiter killed
//! while registered leaves the waiter count one too high, which costs later
//! `set` calls one `FUTEX_WAKE` that wakes no one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use super::segment::{Body, Kind, Segment};
use super::{Deadline, Slept, sleep, wake};
use crate::error::Result;

#[repr(C)]
struct EventBody {
    /// Futex: `generation << 1 | flag`.
    word: AtomicU32,
    /// Threads registered as waiting (too high after a waiter is killed).
    waiters: AtomicU32,
}

// SAFETY: a repr(C) struct of atomics, 8 bytes, aligned to 4.
unsafe impl Body for EventBody {}

const FLAG: u32 = 1;

/// A flag shared between processes that others can wait for: Python's
/// `multiprocessing.Event`.
///
/// ```
/// use std::time::Duration;
/// use mproc::Event;
///
/// #[mproc::task]
/// fn starter(go: Event) {
///     go.set();
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let go = Event::new()?;
/// assert!(!go.wait_timeout(Duration::from_millis(10))); // not set yet
/// let child = mproc::spawn!(starter(go.clone()))?;
/// go.wait(); // returns once the child has set it
/// assert!(go.is_set());
/// child.join()?;
/// # Ok(()) }
/// ```
///
/// Setting, clearing and testing make no system call unless someone waits.
/// A waiter returns once the flag is set, even if it is cleared again before
/// the waiter runs.
#[derive(Clone)]
pub struct Event {
    seg: Arc<Segment>,
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Result<Event> {
        Ok(Event { seg: Arc::new(Segment::create(Kind::Event, |_| ())?) })
    }

    fn body(&self) -> &EventBody {
        self.seg.body::<EventBody>()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        let b = self.body();
        let changed =
            b.word.fetch_update(SeqCst, SeqCst, |w| (w & FLAG == 0).then(|| (w & !FLAG).wrapping_add(2) | FLAG));
        // SeqCst on both sides: either this load sees a waiter's registration,
        // or that waiter's load of the word sees the flag.
        if changed.is_ok() && b.waiters.load(SeqCst) > 0 {
            wake(&b.word, i32::MAX);
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.body().word.fetch_and(!FLAG, SeqCst);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.body().word.load(SeqCst) & FLAG != 0
    }

    /// Waits until the flag is set (returns at once if it is).
    pub fn wait(&self) {
        self.wait_until(Deadline::Never);
    }

    /// Waits at most `timeout` for the flag: whether it was set (Python's
    /// `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Deadline::after(timeout))
    }

    fn wait_until(&self, deadline: Deadline) -> bool {
        let b = self.body();
        let first = b.word.load(SeqCst);
        if first & FLAG != 0 {
            return true;
        }
        b.waiters.fetch_add(1, SeqCst);
        let set = loop {
            let w = b.word.load(SeqCst);
            if w & FLAG != 0 || (w >> 1) != (first >> 1) {
                break true;
            }
            match sleep(&b.word, w, deadline, None) {
                Ok(Slept::TimedOut) => break false,
                Ok(_) => {}
                // FUTEX_WAIT on a live mapping with a valid timeout does not
                // fail; were it to, pause rather than spin.
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        };
        b.waiters.fetch_sub(1, SeqCst);
        set || self.is_set()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("is_set", &self.is_set()).finish()
    }
}

/// An event is a handle: it can be a task argument under every start method.
impl serde::Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Event, D::Error> {
        Ok(Event { seg: Arc::new(Segment::deserialize(d, Kind::Event)?) })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_set_then_cleared_event_still_releases_the_waiter() {
        let ev = Event::new().unwrap();
        let other = ev.clone();
        let waiter = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(50));
        ev.set();
        ev.clear();
        assert!(waiter.join().unwrap());
        assert!(!ev.is_set());
    }
}
