//! `SimpleQueue` and `JoinableQueue`: faces on the same shared queue.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::shared::Wait;
use super::{Queue, QueueBuilder};
use crate::error::Result;

/// Python's `multiprocessing.SimpleQueue`: an unbounded queue with just
/// [`put`](Self::put), [`get`](Self::get), [`is_empty`](Self::is_empty) and
/// [`close`](Self::close).
///
/// It is a [`Queue`] underneath, with the same guarantees (see there): a put
/// copies the message into shared memory before it returns, `close` is
/// queue-wide, and a clone refers to the same queue.
///
/// ```
/// let q = mproc::SimpleQueue::<String>::new()?;
/// q.put("hello".to_string())?;
/// assert!(!q.is_empty());
/// assert_eq!(q.get()?, "hello");
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct SimpleQueue<T> {
    inner: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue { inner: self.inner.clone() }
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> SimpleQueue<T> {
    /// An empty queue, holding at most 4 MiB of encoded messages at once.
    pub fn new() -> Result<SimpleQueue<T>> {
        Ok(SimpleQueue { inner: Queue::new()? })
    }

    /// An empty queue whose ring holds `bytes` bytes of encoded messages.
    pub fn with_capacity_bytes(bytes: usize) -> Result<SimpleQueue<T>> {
        Ok(SimpleQueue { inner: QueueBuilder::new().capacity_bytes(bytes).build()? })
    }

    /// Puts `value` at the end (see [`Queue::put`]).
    pub fn put(&self, value: T) -> Result<()> {
        self.inner.put(value)
    }

    /// Takes the item at the front, waiting for one (see [`Queue::get`]).
    pub fn get(&self) -> Result<T> {
        self.inner.get()
    }
}

impl<T> SimpleQueue<T> {
    /// Whether the queue holds no item now.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Closes the queue for every process (see [`Queue::close`]).
    pub fn close(&self) {
        self.inner.close();
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue").field("type", &std::any::type_name::<T>()).finish()
    }
}

/// A simple queue is a handle, like [`Queue`]: it can be a task argument.
impl<T> Serialize for SimpleQueue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.inner.serialize_as("SimpleQueue", s)
    }
}

impl<'de, T> serde::Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<SimpleQueue<T>, D::Error> {
        <Queue<T> as serde::Deserialize>::deserialize(d).map(|inner| SimpleQueue { inner })
    }
}

/// Python's `multiprocessing.JoinableQueue`: a [`Queue`] that also counts
/// unfinished tasks.
///
/// Every put adds one unfinished task; a consumer calls
/// [`task_done`](Self::task_done) once it has finished with an item it got;
/// [`join`](Self::join) waits until the count is back to zero. The count lives
/// in the queue's shared memory, so producers, consumers and joiners may be in
/// different processes.
///
/// ```
/// let q = mproc::JoinableQueue::<u32>::new()?;
/// q.put(1)?;
/// q.put(2)?;
/// assert!(!q.join_timeout(std::time::Duration::from_millis(10))?);
/// while let Ok(_item) = q.try_get() {
///     q.task_done()?;
/// }
/// q.join()?; // returns at once: every item is done
/// assert!(matches!(q.task_done(), Err(mproc::Error::Misuse { .. })));
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct JoinableQueue<T> {
    inner: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue { inner: self.inner.clone() }
    }
}

impl<T> JoinableQueue<T> {
    pub(super) fn from_queue(inner: Queue<T>) -> JoinableQueue<T> {
        JoinableQueue { inner }
    }

    /// Marks one item as finished. Calling it more times than items were put is
    /// an [`Error::Misuse`](crate::Error::Misuse) (Python's `ValueError`), and
    /// changes nothing.
    pub fn task_done(&self) -> Result<()> {
        self.inner.seg.task_done()
    }

    /// Waits until every item ever put has been marked done with
    /// [`task_done`](Self::task_done).
    pub fn join(&self) -> Result<()> {
        self.inner.seg.join(Wait::Forever).map(drop)
    }

    /// [`join`](Self::join), waiting at most `timeout`: `Ok(false)` if items were
    /// still unfinished then.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        self.inner.seg.join(Wait::after(timeout))
    }

    /// The number of items put and not yet marked done.
    pub fn unfinished_tasks(&self) -> usize {
        self.inner.seg.snapshot().map_or(0, |s| s.unfinished as usize)
    }

    /// The number of items in the queue now (see [`Queue::len`]).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the queue holds no item now.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Whether a put would find no room now (see [`Queue::is_full`]).
    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }

    /// The item limit, `None` for none.
    pub fn maxsize(&self) -> Option<usize> {
        self.inner.maxsize()
    }

    /// The ring's size in bytes.
    pub fn capacity_bytes(&self) -> usize {
        self.inner.capacity_bytes()
    }

    /// Closes the queue for every process (see [`Queue::close`]). The unfinished
    /// count is not affected: `join` still waits for `task_done`.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether the queue was closed (by any process).
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> JoinableQueue<T> {
    /// A queue with no limit on the number of items.
    pub fn new() -> Result<JoinableQueue<T>> {
        QueueBuilder::new().build_joinable()
    }

    /// A queue that holds at most `maxsize` items.
    pub fn bounded(maxsize: usize) -> Result<JoinableQueue<T>> {
        QueueBuilder::new().maxsize(maxsize).build_joinable()
    }

    /// Options; finish with [`QueueBuilder::build_joinable`].
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder::new()
    }

    /// Puts `value` at the end, waiting for room, and counts one more unfinished
    /// task (see [`Queue::put`]).
    pub fn put(&self, value: T) -> Result<()> {
        self.inner.put(value)
    }

    /// [`put`](Self::put), waiting at most `timeout`: [`Error::Full`](crate::Error::Full) after that.
    pub fn put_timeout(&self, value: T, timeout: Duration) -> Result<()> {
        self.inner.put_timeout(value, timeout)
    }

    /// [`put`](Self::put) without waiting: [`Error::Full`](crate::Error::Full) if there is no room now.
    pub fn try_put(&self, value: T) -> Result<()> {
        self.inner.try_put(value)
    }

    /// Takes the item at the front, waiting for one (see [`Queue::get`]).
    pub fn get(&self) -> Result<T> {
        self.inner.get()
    }

    /// [`get`](Self::get), waiting at most `timeout`: [`Error::Empty`](crate::Error::Empty) after that.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.inner.get_timeout(timeout)
    }

    /// [`get`](Self::get) without waiting: [`Error::Empty`](crate::Error::Empty) if the queue is empty now.
    pub fn try_get(&self) -> Result<T> {
        self.inner.try_get()
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.len())
            .field("unfinished_tasks", &self.unfinished_tasks())
            .finish()
    }
}

/// A joinable queue is a handle, like [`Queue`]: it can be a task argument.
impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.inner.serialize_as("JoinableQueue", s)
    }
}

impl<'de, T> serde::Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<JoinableQueue<T>, D::Error> {
        <Queue<T> as serde::Deserialize>::deserialize(d).map(|inner| JoinableQueue { inner })
    }
}
