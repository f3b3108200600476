//! Queues between processes: Python's `multiprocessing.Queue`, `SimpleQueue`
//! and `JoinableQueue`.
//!
//! A queue lives in shared memory (one memfd holding a header and a byte ring),
//! so putting and getting is a copy under a lock, with no system call when no one
//! waits. Any number of processes (and threads) may put and get. See
//! the Queues section of `docs/design.md` for the layout, the lock and how waiting works.
//!
//! Unlike CPython's queue there is no feeder thread: `put` encodes and copies the
//! message before it returns, so an encoding error reaches the caller, a process
//! may exit right after `put` without losing the message, and a process that
//! joins its children before draining the queue does not deadlock on
//! unflushed data (a child whose puts have returned has nothing left to flush;
//! a put does wait while the queue is full).

mod joinable;
mod ring;
mod shared;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, Result};
pub use joinable::{JoinableQueue, SimpleQueue};
use shared::{Segment, Wait};

/// The default capacity of a queue's ring, in bytes (4 MiB).
const DEFAULT_CAPACITY_BYTES: usize = 4 << 20;

/// A multi-producer, multi-consumer FIFO queue shared between processes:
/// Python's `multiprocessing.Queue`.
///
/// Make it with [`new`](Self::new) (no limit on the number of items),
/// [`bounded`](Self::bounded) (Python's `maxsize`) or [`builder`](Self::builder),
/// then hand clones to child processes as task arguments. A clone is cheap and
/// refers to the same queue.
///
/// ```
/// use mproc::Queue;
///
/// #[mproc::task]
/// fn squares(jobs: Queue<u64>, results: Queue<u64>) {
///     // Closed and drained: the producer is done.
///     while let Ok(n) = jobs.get() {
///         results.put(n * n).unwrap();
///     }
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let jobs = Queue::<u64>::new()?;
/// let results = Queue::<u64>::new()?;
/// let worker = mproc::spawn!(squares(jobs.clone(), results.clone()))?;
/// for n in 1..=4 {
///     jobs.put(n)?;
/// }
/// jobs.close(); // the worker's get() returns Err(Closed) once the queue is drained
/// worker.join()?;
/// let mut got: Vec<u64> = (0..4).map(|_| results.get()).collect::<Result<_, _>>()?;
/// got.sort();
/// assert_eq!(got, [1, 4, 9, 16]);
/// assert!(matches!(results.try_get(), Err(mproc::Error::Empty)));
/// # Ok(()) }
/// ```
///
/// - **Messages.** Each value is encoded with the crate's codec when it is put
///   (an encoding error is returned by `put`, and nothing is queued) and decoded
///   by the `get` that takes it. Items come out in the order they went in; each
///   goes to exactly one `get`.
/// - **Synchronous put.** Unlike CPython there is no feeder thread: when `put`
///   returns, the message is in the queue's shared memory. A producer may exit
///   right after it, and a parent may join its children before draining the
///   queue without deadlocking on unflushed data.
/// - **Limits.** A bounded queue holds at most `maxsize` items. Every queue also
///   holds at most its [capacity in bytes](QueueBuilder::capacity_bytes) of
///   encoded messages (default 4 MiB; each message
///   takes its length plus 8 to 15 bytes); a put waits while there is no room. A
///   message larger than the capacity is accepted when the queue is empty, and
///   is then the only one in it.
/// - **Close.** [`close`](Self::close) is queue-wide, not per process as in
///   Python: afterwards every put fails with [`Error::Closed`], and gets return
///   the items still queued, then [`Error::Closed`] instead of waiting. That is
///   how consumers learn that the producers are done.
/// - **Timeouts and errors.** As in Python: `try_put` and `put_timeout` fail
///   with [`Error::Full`], `try_get` and `get_timeout` with [`Error::Empty`].
/// - **Crashes.** A process killed at any point, even in the middle of a put or
///   a get and holding the queue's lock, leaves the queue whole: the lock passes
///   to the next process, a message half put is not there, a message half taken
///   still is.
/// - **Handles.** A queue can be a task argument under every start method (its
///   memory file travels with the arguments), but not part of a message: sending
///   one through a pipe or another queue is an [`Error::Codec`] that says so.
/// - **Threads.** `Queue<T>` is `Send`, `Sync` and `Clone`.
pub struct Queue<T> {
    seg: Arc<Segment>,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue { seg: self.seg.clone(), _type: PhantomData }
    }
}

/// Options for a new queue: the item limit and the ring's size.
///
/// ```
/// let q = mproc::Queue::<String>::builder().maxsize(100).capacity_bytes(64 << 20).build()?;
/// assert_eq!(q.maxsize(), Some(100));
/// assert_eq!(q.capacity_bytes(), 64 << 20);
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct QueueBuilder<T> {
    maxsize: Option<usize>,
    capacity_bytes: usize,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Clone for QueueBuilder<T> {
    fn clone(&self) -> Self {
        QueueBuilder { maxsize: self.maxsize, capacity_bytes: self.capacity_bytes, _type: PhantomData }
    }
}

impl<T> fmt::Debug for QueueBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueBuilder")
            .field("maxsize", &self.maxsize)
            .field("capacity_bytes", &self.capacity_bytes)
            .finish()
    }
}

impl<T> Default for QueueBuilder<T> {
    fn default() -> Self {
        QueueBuilder { maxsize: None, capacity_bytes: DEFAULT_CAPACITY_BYTES, _type: PhantomData }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> QueueBuilder<T> {
    /// No item limit, the default capacity.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` items in the queue (Python's `maxsize`); `0` is refused by
    /// `build` (a queue that holds nothing): leave it unset for no limit.
    pub fn maxsize(mut self, n: usize) -> Self {
        self.maxsize = Some(n);
        self
    }

    /// The ring's size in bytes (rounded up to a multiple of 4096, at least
    /// 4096, at most 1 TiB). It bounds the encoded messages the queue holds at
    /// once; the memory is shared and allocated as it is first used.
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.capacity_bytes = bytes;
        self
    }

    fn segment(&self) -> Result<Segment> {
        let maxsize = match self.maxsize {
            None => 0,
            Some(0) => {
                return Err(Error::Misuse {
                    what: "a queue with maxsize 0 would never accept an item: Queue::new() makes a queue with no \
                           item limit (Python's maxsize=0)"
                        .into(),
                });
            }
            Some(n) => n as u64,
        };
        Segment::create(maxsize, self.capacity_bytes as u64)
    }

    /// Makes the [`Queue`].
    pub fn build(&self) -> Result<Queue<T>> {
        Ok(Queue::from_segment(self.segment()?))
    }

    /// Makes a [`JoinableQueue`] with these options.
    pub fn build_joinable(&self) -> Result<JoinableQueue<T>> {
        Ok(JoinableQueue::from_queue(self.build()?))
    }
}

impl<T> Queue<T> {
    fn from_segment(seg: Segment) -> Queue<T> {
        Queue { seg: Arc::new(seg), _type: PhantomData }
    }

    /// The number of items in the queue now (Python's `qsize()`; other
    /// processes may change it at any moment).
    pub fn len(&self) -> usize {
        self.seg.snapshot().map_or(0, |s| s.items as usize)
    }

    /// Whether the queue holds no item now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a put would find no room now: `maxsize` items are queued, or the
    /// ring is full.
    pub fn is_full(&self) -> bool {
        self.seg.is_full()
    }

    /// The item limit, `None` for none.
    pub fn maxsize(&self) -> Option<usize> {
        match self.seg.maxsize() {
            0 => None,
            n => Some(n as usize),
        }
    }

    /// The ring's size in bytes.
    pub fn capacity_bytes(&self) -> usize {
        self.seg.capacity() as usize
    }

    /// Closes the queue, for every process that has it: later puts fail with
    /// [`Error::Closed`]; gets return the items still queued, then
    /// [`Error::Closed`] instead of waiting. Waiting puts and gets wake up.
    /// Closing twice is harmless. The queue's memory is freed when the last
    /// handle to it, in any process, is dropped.
    pub fn close(&self) {
        self.seg.close();
    }

    /// Whether the queue was closed (by any process).
    pub fn is_closed(&self) -> bool {
        self.seg.is_closed()
    }

    /// Test hook: runs `f` while holding the queue's lock.
    #[doc(hidden)]
    pub fn __with_lock_held<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        self.seg.with_lock_held(f)
    }

    /// Test hook: holds the queue's lock for `d`.
    #[doc(hidden)]
    pub fn __hold_lock_for(&self, d: Duration) -> Result<()> {
        self.seg.with_lock_held(|| std::thread::sleep(d))
    }

    /// Test hook: copies the head item's bytes out under the lock, runs `f` with
    /// the lock held, and returns without taking the item off the queue.
    #[doc(hidden)]
    pub fn __stall_in_get(&self, mut f: impl FnMut()) -> Result<()> {
        self.seg.stall_get(&mut f).map(drop)
    }

    /// Test hook: the size of the queue's memory file (header, ring, spill area).
    #[doc(hidden)]
    pub fn __memory_file_len(&self) -> u64 {
        self.seg.file_len()
    }

    /// Test hook: how many times a process found the lock's owner dead.
    #[doc(hidden)]
    pub fn __recoveries(&self) -> u64 {
        self.seg.recoveries()
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Queue<T> {
    /// A queue with no limit on the number of items (Python's `Queue()`), and the
    /// default capacity in bytes.
    pub fn new() -> Result<Queue<T>> {
        QueueBuilder::new().build()
    }

    /// A queue that holds at most `maxsize` items (Python's `Queue(maxsize)`).
    /// `bounded(0)` is an [`Error::Misuse`]: `new()` is the queue with no limit.
    pub fn bounded(maxsize: usize) -> Result<Queue<T>> {
        QueueBuilder::new().maxsize(maxsize).build()
    }

    /// Options: [`maxsize`](QueueBuilder::maxsize), [`capacity_bytes`](QueueBuilder::capacity_bytes).
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder::new()
    }

    /// Puts `value` at the end of the queue, waiting while there is no room.
    ///
    /// The value is encoded and copied into the queue before this returns.
    /// Errors: [`Error::Closed`] once the queue is closed, [`Error::Codec`] if the
    /// value cannot be encoded (nothing is queued).
    pub fn put(&self, value: T) -> Result<()> {
        self.seg.put(&codec::encode(&value)?, Wait::Forever)
    }

    /// [`put`](Self::put), waiting at most `timeout` for room: [`Error::Full`]
    /// after that (Python's `queue.Full`).
    pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<()> {
        self.seg.put(&codec::encode(&value)?, Wait::after(timeout))
    }

    /// [`put`](Self::put) without waiting: [`Error::Full`] if there is no room now
    /// (Python's `put_nowait`).
    pub fn try_put(&self, value: T) -> Result<()> {
        self.seg.put(&codec::encode(&value)?, Wait::Never)
    }

    /// Takes the item at the front of the queue, waiting for one.
    ///
    /// Errors: [`Error::Closed`] once the queue is closed and empty;
    /// [`Error::Codec`] if the item does not decode as `T` (it is taken; the next
    /// get goes on with the next item).
    pub fn get(&self) -> Result<T> {
        decode(self.seg.get(Wait::Forever)?)
    }

    /// [`get`](Self::get), waiting at most `timeout`: [`Error::Empty`] after
    /// that (Python's `queue.Empty`).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        decode(self.seg.get(Wait::after(timeout))?)
    }

    /// [`get`](Self::get) without waiting: [`Error::Empty`] if the queue is empty
    /// now (Python's `get_nowait`).
    pub fn try_get(&self) -> Result<T> {
        decode(self.seg.get(Wait::Never)?)
    }

    /// Test hook: copies `value` into the queue under the lock, runs `f` with
    /// the lock held, and returns without making the item part of the queue.
    #[doc(hidden)]
    pub fn __stall_in_put(&self, value: T, mut f: impl FnMut()) -> Result<()> {
        self.seg.stall_put(&codec::encode(&value)?, &mut f)
    }
}

fn decode<T: DeserializeOwned>(bytes: Vec<u8>) -> Result<T> {
    codec::decode(&bytes).map_err(|e| match e {
        Error::Codec(what) => Error::Codec(format!(
            "a queued message of {} bytes is not a {}: {what}",
            bytes.len(),
            std::any::type_name::<T>()
        )),
        other => other,
    })
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.len())
            .field("maxsize", &self.maxsize())
            .field("capacity_bytes", &self.capacity_bytes())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A queue is a handle: it can be a task argument (`spawn!(worker(q.clone()))`)
/// under every start method. The other process maps the same memory.
impl<T> Serialize for Queue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.serialize_as("Queue", s)
    }
}

impl<T> Queue<T> {
    fn serialize_as<S: serde::Serializer>(&self, what: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
        crate::handle::serialize_fd(self.seg.fd(), what, s)
    }
}

impl<'de, T> serde::Deserialize<'de> for Queue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Queue<T>, D::Error> {
        use serde::de::Error as _;
        let fd = crate::handle::deserialize_fd(d)?;
        Segment::open(fd).map(Queue::from_segment).map_err(D::Error::custom)
    }
}
