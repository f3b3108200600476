//! The typed faces of the synchronization objects: queue, lock, event,
//! semaphore, barrier, re-entrant lock, condition.
//!
//! Their blocking calls wait **in the server**, on the thread that serves the
//! connection, while this process's other threads talk to the server through
//! other connections. A call with a timeout is answered when it runs out; one
//! without waits as long as it takes, but never on a server that is gone (its
//! connection ends, and the call fails at once). A process that dies while
//! waiting is forgotten by the server; one that dies holding a lock releases it.

use std::time::Duration;

use super::protocol::{Op, Response, Wait};
use super::proxy::{encode, proxy_type, some, thread_owner, unexpected};
use crate::error::{Error, Result};
use crate::task::TaskValue;

/// The answer to a wait with no timeout: `true`, or the server answered a
/// timeout it was not given.
fn waited(done: Result<bool>) -> Result<()> {
    match done? {
        true => Ok(()),
        false => Err(Error::Timeout),
    }
}

/// Holds what a proxy acquired (a lock, a semaphore's slot, a re-entrant
/// lock or a condition's lock) and gives it back when dropped; an error then,
/// the server being gone, is ignored: a server that is gone holds nothing.
///
/// ```
/// let mgr = mproc::Manager::start()?;
/// let sem = mgr.semaphore(1)?;
/// {
///     let _slot: mproc::manager::SemaphoreProxyGuard<'_> = sem.slot()?;
///     assert_eq!(sem.value()?, 0);
/// }
/// assert_eq!(sem.value()?, 1);
/// # Ok::<(), mproc::Error>(())
/// ```
#[must_use = "what the guard holds is given back as soon as it is dropped"]
pub struct ProxyGuard<'a, P> {
    proxy: &'a P,
    release: fn(&P) -> Result<()>,
}

impl<P: std::fmt::Debug> std::fmt::Debug for ProxyGuard<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyGuard").field("proxy", self.proxy).finish()
    }
}

impl<P> Drop for ProxyGuard<'_, P> {
    fn drop(&mut self) {
        let _ = (self.release)(self.proxy);
    }
}

/// Holds a [`LockProxy`] acquired: [`LockProxy::lock`].
pub type LockProxyGuard<'a> = ProxyGuard<'a, LockProxy>;
/// Holds a slot of a [`SemaphoreProxy`]: [`SemaphoreProxy::slot`].
pub type SemaphoreProxyGuard<'a> = ProxyGuard<'a, SemaphoreProxy>;
/// Holds an [`RLockProxy`] acquired (once): [`RLockProxy::lock`].
pub type RLockProxyGuard<'a> = ProxyGuard<'a, RLockProxy>;
/// Holds a [`ConditionProxy`]'s lock (once): [`ConditionProxy::lock`].
pub type ConditionProxyGuard<'a> = ProxyGuard<'a, ConditionProxy>;

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
        waited(self.proxy.flag(Op::LockAcquire { wait: Wait::Forever }))
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
        Ok(ProxyGuard { proxy: self, release: Self::release })
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
        waited(self.proxy.flag(Op::EventWait { wait: Wait::Forever }))
    }

    /// Waits at most `timeout` for the flag; whether it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.proxy.flag(Op::EventWait { wait: Wait::For(timeout) })
    }
}

proxy_type!(
    /// A semaphore that lives in a manager server: Python's
    /// `manager.Semaphore(n)` and `manager.BoundedSemaphore(n)`
    /// ([`Manager::semaphore`](super::Manager::semaphore),
    /// [`Manager::bounded_semaphore`](super::Manager::bounded_semaphore)).
    ///
    /// A slot taken by a process that then dies is **not** given back, as in
    /// Python: the server cannot tell a holder that died from a process that
    /// consumed a slot on purpose (a semaphore of 0 used as a signal). For
    /// exclusion that must survive a crash, use a [`LockProxy`], which the
    /// server releases when its holder's connection ends; on one machine,
    /// [`mproc::Semaphore`](crate::Semaphore) gives the slots of a dead
    /// process back.
    ///
    /// ```
    /// let mgr = mproc::Manager::start()?;
    /// let sem = mgr.bounded_semaphore(2)?;
    /// sem.acquire()?;
    /// {
    ///     let _slot = sem.slot()?;
    ///     assert_eq!(sem.value()?, 0);
    ///     assert!(!sem.try_acquire()?);
    /// } // given back here
    /// sem.release()?;
    /// assert!(sem.release().is_err()); // past its initial value
    /// # Ok::<(), mproc::Error>(())
    /// ```
    SemaphoreProxy<>
);

impl SemaphoreProxy {
    /// Takes a slot, waiting as long as it takes.
    pub fn acquire(&self) -> Result<()> {
        waited(self.proxy.flag(Op::SemaphoreAcquire { wait: Wait::Forever }))
    }

    /// Takes a slot if one is free now; whether it did.
    pub fn try_acquire(&self) -> Result<bool> {
        self.proxy.flag(Op::SemaphoreAcquire { wait: Wait::No })
    }

    /// Takes a slot, waiting at most `timeout`; whether it did.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.proxy.flag(Op::SemaphoreAcquire { wait: Wait::For(timeout) })
    }

    /// Gives a slot back (any process may, as any thread may in Python). For a
    /// bounded semaphore, [`Error::Misuse`] when that would pass its initial value.
    pub fn release(&self) -> Result<()> {
        self.proxy.done(Op::SemaphoreRelease)
    }

    /// Takes a slot and returns a guard that gives it back when dropped.
    pub fn slot(&self) -> Result<SemaphoreProxyGuard<'_>> {
        self.acquire()?;
        Ok(ProxyGuard { proxy: self, release: Self::release })
    }

    /// The free slots now (Python's `get_value()`).
    pub fn value(&self) -> Result<usize> {
        match self.proxy.call(Op::SemaphoreValue)? {
            Response::Len(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            other => Err(unexpected(other)),
        }
    }
}

proxy_type!(
    /// A barrier that lives in a manager server: Python's
    /// `manager.Barrier(parties)` ([`Manager::barrier`](super::Manager::barrier)),
    /// which parties on other hosts can wait at too.
    ///
    /// - **Broken.** [`abort`](Self::abort), a [`wait_timeout`](Self::wait_timeout)
    ///   that runs out ([`Error::Timeout`] for that party), or a party whose
    ///   process dies (or whose connection ends) while it waits breaks the
    ///   barrier: the waiting parties, and every later `wait`, fail with
    ///   [`Error::BrokenBarrier`] until [`reset`](Self::reset).
    ///
    /// ```
    /// let mgr = mproc::Manager::start()?;
    /// let b = mgr.barrier(2)?;
    /// let other = b.clone();
    /// let party = std::thread::spawn(move || other.wait());
    /// let mut indices = vec![b.wait()?, party.join().unwrap()?];
    /// indices.sort();
    /// assert_eq!(indices, [0, 1]);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    BarrierProxy<>
);

impl BarrierProxy {
    /// Waits until all parties are waiting: this party's index in
    /// `0..parties` (0 for the first to arrive). [`Error::BrokenBarrier`] if
    /// the barrier is or becomes broken.
    pub fn wait(&self) -> Result<usize> {
        self.wait_for(Wait::Forever)
    }

    /// [`wait`](Self::wait), for at most `timeout`: after that the barrier is
    /// broken (for every party) and this one gets [`Error::Timeout`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize> {
        self.wait_for(Wait::For(timeout))
    }

    fn wait_for(&self, wait: Wait) -> Result<usize> {
        let index = self.proxy.pinned(|send| match send(Op::BarrierArrive)? {
            Response::Arrived { index, last: true } => Ok(index),
            Response::Arrived { index, last: false } => match send(Op::BarrierWait { wait })? {
                Response::Bool(true) => Ok(index),
                Response::Bool(false) => Err(Error::Timeout),
                other => Err(unexpected(other)),
            },
            other => Err(unexpected(other)),
        })?;
        Ok(usize::try_from(index).unwrap_or(usize::MAX))
    }

    /// Breaks the barrier: waiting parties and later waits fail with
    /// [`Error::BrokenBarrier`] until [`reset`](Self::reset).
    pub fn abort(&self) -> Result<()> {
        self.proxy.done(Op::BarrierAbort)
    }

    /// Returns the barrier to its first state. Parties waiting now fail with
    /// [`Error::BrokenBarrier`]; later waits work as on a new barrier.
    pub fn reset(&self) -> Result<()> {
        self.proxy.done(Op::BarrierReset)
    }

    /// Parties waiting now (0 while broken).
    pub fn n_waiting(&self) -> Result<usize> {
        self.count(Op::BarrierWaiting)
    }

    /// The number of parties.
    pub fn parties(&self) -> Result<usize> {
        self.count(Op::BarrierParties)
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> Result<bool> {
        self.proxy.flag(Op::BarrierBroken)
    }

    fn count(&self, op: Op) -> Result<usize> {
        match self.proxy.call(op)? {
            Response::Len(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            other => Err(unexpected(other)),
        }
    }
}

/// Acquires a re-entrant lock (or a condition's) for this thread.
fn owned_acquire(proxy: &super::proxy::Proxy, wait: Wait) -> Result<bool> {
    proxy.flag(Op::OwnedAcquire { wait, owner: thread_owner() })
}

/// Ends one acquisition of a re-entrant lock (or a condition's) by this thread.
fn owned_release(proxy: &super::proxy::Proxy) -> Result<()> {
    proxy.done(Op::OwnedRelease { owner: thread_owner() })
}

proxy_type!(
    /// A re-entrant lock that lives in a manager server: Python's
    /// `manager.RLock()` ([`Manager::rlock`](super::Manager::rlock)).
    ///
    /// It belongs to the thread that acquired it, in whichever process: that
    /// thread may acquire it again (and must release it as many times); no
    /// other thread or process may release it ([`Error::Misuse`]). Like a
    /// [`LockProxy`], it is released by the server when the connection it was
    /// first acquired through closes (its process exited or died).
    ///
    /// ```
    /// let mgr = mproc::Manager::start()?;
    /// let lock = mgr.rlock()?;
    /// let _outer = lock.lock()?;
    /// let _inner = lock.lock()?; // the same thread: no wait
    /// let other = lock.clone();
    /// assert!(!std::thread::spawn(move || other.try_acquire()).join().unwrap()?);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    RLockProxy<>
);

impl RLockProxy {
    /// Acquires the lock (once more, if this thread holds it), waiting as long as it takes.
    pub fn acquire(&self) -> Result<()> {
        waited(owned_acquire(&self.proxy, Wait::Forever))
    }

    /// Acquires the lock if this thread can now; whether it did.
    pub fn try_acquire(&self) -> Result<bool> {
        owned_acquire(&self.proxy, Wait::No)
    }

    /// Acquires the lock, waiting at most `timeout`; whether it did.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        owned_acquire(&self.proxy, Wait::For(timeout))
    }

    /// Ends one acquisition by this thread; [`Error::Misuse`] if it holds none.
    pub fn release(&self) -> Result<()> {
        owned_release(&self.proxy)
    }

    /// Acquires the lock and returns a guard that releases it when dropped.
    pub fn lock(&self) -> Result<RLockProxyGuard<'_>> {
        self.acquire()?;
        Ok(ProxyGuard { proxy: self, release: Self::release })
    }
}

proxy_type!(
    /// A condition variable that lives in a manager server, with its own
    /// re-entrant lock: Python's `manager.Condition()`
    /// ([`Manager::condition`](super::Manager::condition)).
    ///
    /// Hold the lock ([`lock`](Self::lock) or [`acquire`](Self::acquire)) to
    /// [`wait`](Self::wait) or [`notify`](Self::notify); a wait lets the lock
    /// go while it waits and has it back when it returns. Calls without the
    /// lock are [`Error::Misuse`]. The lock belongs to the thread, as an
    /// [`RLockProxy`]'s does. A waiter whose process dies is forgotten, and a
    /// notification meant for it goes to the next waiter.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mgr = mproc::Manager::start()?;
    /// let (cond, ready) = (mgr.condition()?, mgr.value(false)?);
    /// let (c, r) = (cond.clone(), ready.clone());
    /// let setter = std::thread::spawn(move || -> mproc::Result<()> {
    ///     let _held = c.lock()?;
    ///     r.set(true)?;
    ///     c.notify_all()
    /// });
    /// {
    ///     let _held = cond.lock()?;
    ///     assert!(cond.wait_for_timeout(|| ready.get().unwrap(), Duration::from_secs(10))?);
    /// }
    /// setter.join().unwrap()?;
    /// # Ok::<(), mproc::Error>(())
    /// ```
    ConditionProxy<>
);

impl ConditionProxy {
    /// Acquires the lock (once more, if this thread holds it), waiting as long as it takes.
    pub fn acquire(&self) -> Result<()> {
        waited(owned_acquire(&self.proxy, Wait::Forever))
    }

    /// Acquires the lock if this thread can now; whether it did.
    pub fn try_acquire(&self) -> Result<bool> {
        owned_acquire(&self.proxy, Wait::No)
    }

    /// Ends one acquisition of the lock by this thread; [`Error::Misuse`] if it holds none.
    pub fn release(&self) -> Result<()> {
        owned_release(&self.proxy)
    }

    /// Acquires the lock and returns a guard that releases it when dropped.
    pub fn lock(&self) -> Result<ConditionProxyGuard<'_>> {
        self.acquire()?;
        Ok(ProxyGuard { proxy: self, release: Self::release })
    }

    /// Lets the lock go, waits until notified, and has the lock back (as many
    /// times as this thread had acquired it). [`Error::Misuse`] without the lock.
    pub fn wait(&self) -> Result<()> {
        self.wait_with(Wait::Forever).map(drop)
    }

    /// [`wait`](Self::wait), for a notification at most `timeout`; whether one
    /// came. Either way the lock is held again when it returns (which may take
    /// longer than `timeout`, as in Python, if another thread holds it then).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_with(Wait::For(timeout))
    }

    fn wait_with(&self, wait: Wait) -> Result<bool> {
        let owner = thread_owner();
        self.proxy.pinned(|send| {
            let (ticket, depth) = match send(Op::ConditionWaitStart { owner })? {
                Response::Waiting { ticket, depth } => (ticket, depth),
                other => return Err(unexpected(other)),
            };
            let notified = match send(Op::ConditionWaitEnd { wait, ticket })? {
                Response::Bool(b) => b,
                other => return Err(unexpected(other)),
            };
            match send(Op::ConditionReacquire { owner, depth })? {
                Response::Done => Ok(notified),
                other => Err(unexpected(other)),
            }
        })
    }

    /// Waits until `predicate` (evaluated with the lock held) is true.
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool) -> Result<()> {
        while !predicate() {
            self.wait()?;
        }
        Ok(())
    }

    /// [`wait_for`](Self::wait_for), for at most `timeout` in all; the
    /// predicate's last value.
    pub fn wait_for_timeout(&self, mut predicate: impl FnMut() -> bool, timeout: Duration) -> Result<bool> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            if predicate() {
                return Ok(true);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(std::time::Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return Ok(false);
            }
            self.wait_timeout(left)?;
        }
    }

    /// Wakes up to `n` waiters (the longest waiting first). [`Error::Misuse`]
    /// without the lock.
    pub fn notify(&self, n: usize) -> Result<()> {
        self.proxy.done(Op::ConditionNotify { owner: thread_owner(), n: n as u64 })
    }

    /// Wakes every waiter. [`Error::Misuse`] without the lock.
    pub fn notify_all(&self) -> Result<()> {
        self.proxy.done(Op::ConditionNotify { owner: thread_owner(), n: u64::MAX })
    }
}
