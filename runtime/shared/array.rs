//! `Array<T>`: a fixed number of `T`s in shared memory, with a lock (Python's
//! `multiprocessing.Array`).

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::Pod;
use super::segment::{Cells, Kind, Locked};
use crate::error::Result;

/// A fixed-length array of a plain-old-data type in memory shared between
/// processes, with one lock for the whole array: Python's
/// `multiprocessing.Array`.
///
/// [`lock`](Self::lock) returns a guard that is a `&mut [T]` on the shared
/// memory itself, so filling, summing or sorting it are plain loops over
/// memory, as fast as over a `Vec`; [`get`](Self::get), [`set`](Self::set)
/// and [`to_vec`](Self::to_vec) take the lock for one access each.
///
/// ```
/// use mproc::Array;
///
/// #[mproc::task]
/// fn fill(a: Array<f64>) {
///     let mut a = a.lock().unwrap();
///     for (i, x) in a.iter_mut().enumerate() {
///         *x = i as f64;
///     }
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let a = Array::<f64>::new(1000)?; // zeroed
/// mproc::spawn!(fill(a.clone()))?.join()?;
/// let sum: f64 = a.lock()?.iter().sum();
/// assert_eq!(sum, 499_500.0);
/// a.lock()?[3] = -1.0;
/// assert_eq!(a.get(3)?, -1.0);
/// # Ok(()) }
/// ```
///
/// - **Types.** `T` is [`Pod`], as for [`Value`](crate::Value).
/// - **Indices** out of range are an [`Error::Misuse`](crate::Error::Misuse)
///   from `get` and `set` (through the guard, a slice, they panic as any
///   slice's do).
/// - **The lock** is one for the whole array, not recursive: while this thread
///   holds a guard, `lock`, `get`, `set` and `to_vec` return
///   [`Error::Misuse`](crate::Error::Misuse) instead of deadlocking.
/// - **Crashes.** A process killed holding the lock does not lock the others
///   out: the next guard's
///   [`previous_owner_died`](ArrayGuard::previous_owner_died) says so, and the
///   elements are what the dead process left (each a valid `T`).
/// - **Handles.** An `Array` can be a task argument under every start method,
///   but not part of a message; clones refer to the same memory.
/// - **Threads.** `Array<T>` is `Send`, `Sync` and `Clone`.
pub struct Array<T: Pod> {
    cells: Cells<T>,
}

impl<T: Pod> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array { cells: self.cells.clone() }
    }
}

impl<T: Pod> Array<T> {
    /// A new shared array of `len` elements, all bits zero (`0`, `0.0`).
    ///
    /// Errors: [`Error::Misuse`](crate::Error::Misuse) if `len` elements do not
    /// fit in memory (or `T` is aligned to more than 4096 bytes);
    /// [`Error::Io`](crate::Error::Io) if the shared memory cannot be made. The
    /// memory's pages are allocated as they are first touched.
    pub fn new(len: usize) -> Result<Array<T>> {
        Ok(Array { cells: Cells::zeroed(Kind::Array, len)? })
    }

    /// A new shared array holding a copy of `items` (Python's
    /// `Array('d', [1.0, 2.0])`).
    ///
    /// ```
    /// let a = mproc::Array::from_slice(&[1u32, 2, 3])?;
    /// assert_eq!(a.to_vec()?, [1, 2, 3]);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn from_slice(items: &[T]) -> Result<Array<T>> {
        Ok(Array { cells: Cells::from_slice(Kind::Array, items)? })
    }

    /// The number of elements (fixed when the array was made).
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the lock, waiting for it, and returns a guard that derefs to the
    /// whole array as a slice (`&mut [T]` on the shared memory): index it,
    /// iterate it, `copy_from_slice` into it. Released when the guard is dropped.
    ///
    /// Errors: [`Error::Misuse`](crate::Error::Misuse) if this thread already
    /// holds the lock; [`Error::Io`](crate::Error::Io) if the lock is broken.
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>> {
        Ok(ArrayGuard { ptr: self.cells.ptr(), len: self.len(), locked: self.cells.lock()? })
    }

    /// The element at `index`, read under the lock (Python's `a[i]`).
    ///
    /// Errors: [`Error::Misuse`](crate::Error::Misuse) if `index` is out of
    /// range or this thread holds the lock already.
    pub fn get(&self, index: usize) -> Result<T> {
        self.cells.check(index)?;
        Ok(self.lock()?[index])
    }

    /// Replaces the element at `index`, under the lock (Python's `a[i] = x`).
    ///
    /// Errors: as for [`get`](Self::get).
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        self.cells.check(index)?;
        self.lock()?[index] = value;
        Ok(())
    }

    /// A copy of every element, read under the lock (Python's `a[:]`).
    ///
    /// Errors as [`lock`](Self::lock): an [`Error::Misuse`](crate::Error::Misuse)
    /// if this thread holds the lock already (use `guard.to_vec()` instead).
    pub fn to_vec(&self) -> Result<Vec<T>> {
        Ok(self.lock()?.to_vec())
    }
}

impl<T: Pod> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cells.fmt(f)
    }
}

/// An `Array` is a handle: it can be a task argument under every start method.
/// The other process maps the same memory.
impl<T: Pod> serde::Serialize for Array<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.cells.serialize(s)
    }
}

impl<'de, T: Pod> serde::Deserialize<'de> for Array<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Array<T>, D::Error> {
        Ok(Array { cells: Cells::deserialize(d, Kind::Array)? })
    }
}

/// The lock of an [`Array`], held: derefs to the elements as a slice. Dropping
/// it releases the lock.
pub struct ArrayGuard<'a, T: Pod> {
    /// The first element, in the mapping that `locked` keeps alive.
    ptr: *mut T,
    len: usize,
    locked: Locked<'a>,
}

impl<T: Pod> ArrayGuard<'_, T> {
    /// Whether the process or thread that held the lock before died holding it.
    /// The elements are then whatever it left (each a valid `T`).
    pub fn previous_owner_died(&self) -> bool {
        self.locked.owner_died()
    }
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` is the first of `len` aligned, contiguous elements in a
        // mapping that lives as long as the guard's borrow (its size, at most
        // isize::MAX bytes, was checked when the array was made or opened);
        // holding the lock, this thread is the only one in any process accessing
        // them. Any bytes are valid Ts (Pod).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `deref`; the `&mut self` borrow makes the slice unique
        // within this thread too.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
