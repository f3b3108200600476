//! The typed faces of the synchronization objects: queue, lock, event.
//!
//! Their blocking calls wait **in the server**, on the thread that serves the
//! connection, while this process's other threads talk to the server through
//! other connections. A call with a timeout is answered when it runs out; one
//! without waits as long as it takes, but never on a server that is gone (its
//! connection ends, and the call fails at once). A process that dies while
//! waiting is forgotten by the server; one that dies holding a lock releases it.

use std::time::Duration;

use super::protocol::{Op, Wait};
use super::proxy::{encode, proxy_type, some};
use crate::error::{Error, Result};
use crate::task::TaskValue;

proxy_type!(
    /// A FIFO queue that lives in a manager server: Python's `manager.Queue()`.
    /// Unbounded: `put` never waits.
    ///
    /// Made by [`Manager::queue`](super::Manager::queue) or found by name with
    /// [`Manager::get_queue`](super::Manager::get_queue). Unlike
    /// [`mproc::Queue`](crate::Queue), which lives in shared memory on one host,
    /// it can be used from other hosts, and a proxy is plain data (it can be
    /// sent inside a message): see [`DictProxy`](super::DictProxy).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mgr = mproc::Manager::start()?;
    /// let q = mgr.queue::<String>()?;
    /// q.put("job".into())?;
    /// assert_eq!(q.len()?, 1);
    /// assert_eq!(q.get()?, "job");
    /// assert!(matches!(q.try_get(), Err(mproc::Error::Empty)));
    /// assert!(matches!(q.get_timeout(Duration::from_millis(10)), Err(mproc::Error::Empty)));
    /// # Ok::<(), mproc::Error>(())
    /// ```
    QueueProxy<T>
);

impl<T: TaskValue> QueueProxy<T> {
    /// Appends `value`.
    pub fn put(&self, value: T) -> Result<()> {
        self.proxy.done(Op::QueuePut { value: encode(&value)? })
    }

    /// Removes and returns the first item, waiting for one as long as it takes.
    pub fn get(&self) -> Result<T> {
        self.take(Wait::Forever)
    }

    /// [`get`](Self::get), waiting at most `timeout`: [`Error::Empty`] after that
    /// (Python's `queue.Empty`, as [`mproc::Queue::get_timeout`](crate::Queue::get_timeout)).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.take(Wait::For(timeout)).map_err(|e| match e {
            Error::Timeout => Error::Empty,
            other => other,
        })
    }

    /// [`get`](Self::get) without waiting: [`Error::Empty`] if the queue is empty now.
    pub fn try_get(&self) -> Result<T> {
        self.take(Wait::No)
    }

    fn take(&self, wait: Wait) -> Result<T> {
        some(self.proxy.item(Op::QueueGet { wait })?)
    }

    /// How many items are in the queue now.
    pub fn len(&self) -> Result<usize> {
        self.proxy.len()
    }

    /// Whether the queue is empty now.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

proxy_type!(
    /// A lock that lives in a manager server: Python's `manager.Lock()`.
    ///
    /// Not re-entrant: a second `acquire` waits, from whichever process or
    /// thread. Any process may [`release`](Self::release) it, as any thread may
    /// release Python's `Lock`. It is acquired through one of this process's
    /// connections to the server, and **released by the server when that
    /// connection closes**: when the process exits or dies while holding it
    /// (SIGKILL included), or when that connection fails (a call on it timed
    /// out, say: then the lock may be released while the process believes it
    /// holds it).
    ///
    /// ```
    /// let mgr = mproc::Manager::start()?;
    /// let lock = mgr.lock()?;
    /// {
    ///     let _guard = lock.lock()?;
    ///     assert!(!lock.try_acquire()?);
    /// } // released here
    /// assert!(lock.try_acquire()?);
    /// lock.release()?;
    /// # Ok::<(), mproc::Error>(())
    /// ```
    LockProxy<>
);

impl LockProxy {
    /// Acquires the lock, waiting as long as it takes.
    pub fn acquire(&self) -> Result<()> {
        match self.proxy.flag(Op::LockAcquire { wait: Wait::Forever })? {
            true => Ok(()),
            false => Err(Error::Timeout),
        }
    }

    /// Acquires the lock if it is free now; whether it did.
    pub fn try_acquire(&self) -> Result<bool> {
        self.proxy.flag(Op::LockAcquire { wait: Wait::No })
    }

    /// Acquires the lock, waiting at most `timeout`; whether it did.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.proxy.flag(Op::LockAcquire { wait: Wait::For(timeout) })
    }

    /// Releases the lock; [`Error::Misuse`] if it is not acquired.
    pub fn release(&self) -> Result<()> {
        self.proxy.done(Op::LockRelease)
    }

    /// Acquires the lock and returns a guard that releases it when dropped.
    pub fn lock(&self) -> Result<LockProxyGuard<'_>> {
        self.acquire()?;
        Ok(LockProxyGuard { lock: self })
    }
}

/// Holds a [`LockProxy`] acquired; releases it when dropped (an error then,
/// the server being gone, is ignored: a server that is gone holds no lock).
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct LockProxyGuard<'a> {
    lock: &'a LockProxy,
}

impl Drop for LockProxyGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

proxy_type!(
    /// An event that lives in a manager server: Python's `manager.Event()`, a
    /// flag that processes wait for.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mgr = mproc::Manager::start()?;
    /// let ev = mgr.event()?;
    /// assert!(!ev.wait_timeout(Duration::from_millis(10))?);
    /// ev.set()?;
    /// assert!(ev.is_set()?);
    /// ev.wait()?;
    /// ev.clear()?;
    /// assert!(!ev.is_set()?);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    EventProxy<>
);

impl EventProxy {
    /// Sets the flag, waking every process waiting for it.
    pub fn set(&self) -> Result<()> {
        self.proxy.done(Op::EventSet)
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<()> {
        self.proxy.done(Op::EventClear)
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool> {
        self.proxy.flag(Op::EventIsSet)
    }

    /// Waits until the flag is set, as long as it takes.
    pub fn wait(&self) -> Result<()> {
        match self.proxy.flag(Op::EventWait { wait: Wait::Forever })? {
            true => Ok(()),
            false => Err(Error::Timeout),
        }
    }

    /// Waits at most `timeout` for the flag; whether it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.proxy.flag(Op::EventWait { wait: Wait::For(timeout) })
    }
}
