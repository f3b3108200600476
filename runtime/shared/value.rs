//! `Value<T>`: one `T` in shared memory, with a lock (Python's
//! `multiprocessing.Value`).

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::Pod;
use super::segment::{Cells, Kind, Locked};
use crate::error::Result;

/// One value of a plain-old-data type in memory shared between processes, with
/// a lock: Python's `multiprocessing.Value`.
///
/// Make it in the parent, hand clones to children as task arguments, and every
/// process sees the same value. [`get`](Self::get) and [`set`](Self::set) each
/// take the lock for one read or one write; [`lock`](Self::lock) holds it for
/// as long as its guard lives, which is how to update the value without losing
/// another process's update in between:
///
/// ```
/// use mproc::Value;
///
/// #[mproc::task]
/// fn count(hits: Value<i64>, n: i64) {
///     for _ in 0..n {
///         *hits.lock().unwrap() += 1; // read, add and write, holding the lock
///     }
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let hits = Value::new(0i64)?;
/// let workers: Vec<_> = (0..4)
///     .map(|_| mproc::spawn!(count(hits.clone(), 1000)))
///     .collect::<mproc::Result<_>>()?;
/// for w in workers {
///     w.join()?;
/// }
/// assert_eq!(hits.get()?, 4000);
/// # Ok(()) }
/// ```
///
/// `hits.set(hits.get()? + 1)` would be wrong: another process may write between
/// the `get` and the `set`, and its update is lost. There is deliberately no
/// such `add`; an integer without a lock that only ever needs atomic updates
/// is a [`RawValue`](crate::RawValue) (`fetch_add`).
///
/// - **Types.** `T` is [`Pod`]: integers, floats, arrays of them, or your own
///   `#[repr(C)]` struct of such fields. Anything else (a `String`, a `Vec`) is
///   a compile error; send it through a [`Queue`](crate::Queue).
/// - **The lock** is per value, held by one thread of one process at a time.
///   It is not recursive (Python's is): while this thread holds a guard,
///   `lock()`, `get` and `set` return [`Error::Misuse`](crate::Error::Misuse)
///   instead of deadlocking (use the guard).
/// - **Crashes.** A process killed while holding the lock does not lock the
///   others out: the next `lock()` succeeds and its guard's
///   [`previous_owner_died`](ValueGuard::previous_owner_died) says so. The
///   value is whatever the dead process left, possibly half-written for a
///   multi-word `T` (still a valid `T`).
/// - **Handles.** A `Value` can be a task argument under every start method,
///   but not part of a message. Clones refer to the same value; the memory is
///   freed when the last handle in any process is dropped.
/// - **Threads.** `Value<T>` is `Send`, `Sync` and `Clone`.
pub struct Value<T: Pod> {
    cells: Cells<T>,
}

impl<T: Pod> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value { cells: self.cells.clone() }
    }
}

impl<T: Pod> Value<T> {
    /// A new shared value holding `value`.
    ///
    /// Errors: [`Error::Io`](crate::Error::Io) if the shared memory cannot be
    /// made; [`Error::Misuse`](crate::Error::Misuse) for a `T` aligned to more
    /// than 4096 bytes.
    pub fn new(value: T) -> Result<Value<T>> {
        Ok(Value { cells: Cells::from_slice(Kind::Value, std::slice::from_ref(&value))? })
    }

    /// Takes the lock, waiting for it, and returns a guard through which to
    /// read and write the value (Python's `with v.get_lock():`). The lock is
    /// released when the guard is dropped.
    ///
    /// ```
    /// let v = mproc::Value::new(1.5f64)?;
    /// {
    ///     let mut g = v.lock()?;
    ///     *g *= 2.0;
    ///     *g += 1.0;
    /// } // released here
    /// assert_eq!(v.get()?, 4.0);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    ///
    /// Errors: [`Error::Misuse`](crate::Error::Misuse) if this thread already
    /// holds the lock (the lock is not recursive);
    /// [`Error::Io`](crate::Error::Io) if the lock is broken.
    pub fn lock(&self) -> Result<ValueGuard<'_, T>> {
        Ok(ValueGuard { ptr: self.cells.ptr(), locked: self.cells.lock()? })
    }

    /// The value, read under the lock (Python's `v.value`).
    ///
    /// Errors as [`lock`](Self::lock): an [`Error::Misuse`](crate::Error::Misuse)
    /// if this thread holds the lock already (a guard is alive; waiting would
    /// never end: read through the guard instead).
    pub fn get(&self) -> Result<T> {
        Ok(*self.lock()?)
    }

    /// Replaces the value, under the lock (Python's `v.value = x`). Errors as
    /// [`get`](Self::get).
    pub fn set(&self, value: T) -> Result<()> {
        *self.lock()? = value;
        Ok(())
    }
}

impl<T: Pod> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cells.fmt(f)
    }
}

/// A `Value` is a handle: it can be a task argument under every start method.
/// The other process maps the same memory.
impl<T: Pod> serde::Serialize for Value<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.cells.serialize(s)
    }
}

impl<'de, T: Pod> serde::Deserialize<'de> for Value<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Value<T>, D::Error> {
        Ok(Value { cells: Cells::deserialize(d, Kind::Value)? })
    }
}

/// The lock of a [`Value`], held: reads and writes the value through `*guard`.
/// Dropping it releases the lock.
pub struct ValueGuard<'a, T: Pod> {
    /// The value, in the mapping that `locked` keeps alive.
    ptr: *mut T,
    locked: Locked<'a>,
}

impl<T: Pod> ValueGuard<'_, T> {
    /// Whether the process or thread that held the lock before died holding it
    /// (the robust mutex's `EOWNERDEAD`). The value is then whatever it left
    /// (a valid `T`, perhaps not the one it meant to write); the lock works as
    /// usual from here on.
    pub fn previous_owner_died(&self) -> bool {
        self.locked.owner_died()
    }
}

impl<T: Pod> Deref for ValueGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `ptr` is the value's aligned place in a mapping that lives as
        // long as the guard's borrow; holding the lock, this thread is the only
        // one in any process accessing it (every access to a Value's memory is
        // made under the lock, and the mutex's lock and unlock order them).
        // The bytes are a valid T whatever they hold (Pod).
        unsafe { &*self.ptr }
    }
}

impl<T: Pod> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; the `&mut self` borrow makes the reference
        // unique within this thread too.
        unsafe { &mut *self.ptr }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
