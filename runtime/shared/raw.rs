//! `RawValue<T>` and `RawArray<T>`: shared memory without a lock (Python's
//! `multiprocessing.RawValue` and `RawArray`), every access atomic.
//!
//! **Why this is sound.** Rust's memory model makes a data race (two accesses
//! to one location from different threads, one a write, not ordered, not both
//! atomic) undefined behaviour, volatile accesses included; another process
//! mapping the same memory is, for this purpose, one more thread. Raw memory
//! has no lock to order accesses, so none of them may be a plain read or
//! write: every access this crate makes to it is atomic (`words.rs` copies one
//! aligned unit at a time with atomics of that unit's size; `AtomicPod`
//! operates on the element's atomic twin, of the same size). A Raw handle
//! never lends a `&T` or `&[T]` (that would promise no one writes meanwhile);
//! it lends `&T::Atomic` for integers, which is what atomics are for. What
//! atomics per unit cannot give is a consistent multi-unit value: a `get` may
//! see units of two `set`s. [`Pod`] makes any such mix a valid `T`, so this is
//! a documented race, not undefined behaviour.

use std::fmt;

use super::segment::{Cells, Kind};
use super::{AtomicPod, Pod, words};
use crate::error::{Error, Result};

/// One value of a plain-old-data type in shared memory, without a lock:
/// Python's `multiprocessing.RawValue`.
///
/// For integers it is an atomic shared between processes: [`fetch_add`],
/// [`fetch_sub`], [`swap`] and [`compare_exchange`] are single atomic
/// operations, and [`as_atomic`](Self::as_atomic) lends the standard atomic
/// (`&AtomicI64`…) for the rest.
///
/// ```
/// use mproc::RawValue;
///
/// #[mproc::task]
/// fn count(hits: RawValue<u64>, n: u64) {
///     for _ in 0..n {
///         hits.fetch_add(1);
///     }
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let hits = RawValue::new(0u64)?;
/// let a = mproc::spawn!(count(hits.clone(), 1000))?;
/// let b = mproc::spawn!(count(hits.clone(), 1000))?;
/// a.join()?;
/// b.join()?;
/// assert_eq!(hits.get(), 2000);
/// # Ok(()) }
/// ```
///
/// For other types, [`get`](Self::get) and [`set`](Self::set) copy the value
/// one machine word at a time: a `T` of one word (`f64`, `u32`…) is read and
/// written atomically, a larger one is not, and a `get` concurrent with `set`s
/// may return a mix of their words. Use a [`Value`](crate::Value) (its lock
/// makes any access whole) for those. Every operation is `SeqCst` or, for
/// `get`/`set`, acquire/release.
///
/// [`fetch_add`]: Self::fetch_add
/// [`fetch_sub`]: Self::fetch_sub
/// [`swap`]: Self::swap
/// [`compare_exchange`]: Self::compare_exchange
pub struct RawValue<T: Pod> {
    cells: Cells<T>,
}

impl<T: Pod> Clone for RawValue<T> {
    fn clone(&self) -> Self {
        RawValue { cells: self.cells.clone() }
    }
}

impl<T: Pod> RawValue<T> {
    /// A new shared value holding `value`.
    pub fn new(value: T) -> Result<RawValue<T>> {
        Ok(RawValue { cells: Cells::from_slice(Kind::RawValue, std::slice::from_ref(&value))? })
    }

    /// The value, read one word at a time (atomic when `T` is one word).
    pub fn get(&self) -> T {
        let mut out = std::mem::MaybeUninit::<T>::uninit();
        // SAFETY: the value is aligned in a mapping alive while `self` is, and
        // raw memory is only accessed atomically (module docs); `out` is local.
        unsafe { words::load(self.cells.ptr(), out.as_mut_ptr(), 1) };
        // SAFETY: `load` wrote every byte of `out`, and any bytes are a valid T (Pod).
        unsafe { out.assume_init() }
    }

    /// Replaces the value, one word at a time (atomic when `T` is one word).
    pub fn set(&self, value: T) {
        // SAFETY: `value` is a whole, initialised T (Pod has no padding); the
        // destination as in `get`.
        unsafe { words::store(&value, self.cells.ptr(), 1) }
    }
}

impl<T: AtomicPod> RawValue<T> {
    /// The value as the standard atomic type (`&AtomicI64` for `i64`…), for
    /// operations and orderings beyond those below (`fetch_max`,
    /// `fetch_update`…).
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    ///
    /// let best = mproc::RawValue::new(3i32)?;
    /// best.as_atomic().fetch_max(7, Ordering::Relaxed);
    /// assert_eq!(best.get(), 7);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn as_atomic(&self) -> &T::Atomic {
        // SAFETY: the value is aligned, lives in a mapping kept alive by the
        // `&self` borrow, and is only accessed atomically, with accesses of its
        // size (module docs).
        unsafe { T::atomic(self.cells.ptr()) }
    }

    /// Adds `delta` (wrapping on overflow) and returns the previous value, as
    /// one atomic operation.
    pub fn fetch_add(&self, delta: T) -> T {
        T::fetch_add(self.as_atomic(), delta)
    }

    /// Subtracts `delta` (wrapping on overflow) and returns the previous value,
    /// as one atomic operation.
    pub fn fetch_sub(&self, delta: T) -> T {
        T::fetch_sub(self.as_atomic(), delta)
    }

    /// Stores `value` and returns the previous value, as one atomic operation.
    pub fn swap(&self, value: T) -> T {
        T::swap(self.as_atomic(), value)
    }

    /// Stores `new` if the value is `current`, as one atomic operation:
    /// `Ok(current)` if it did, `Err(actual)` with the value found otherwise.
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        T::compare_exchange(self.as_atomic(), current, new)
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawValue").field(&self.get()).finish()
    }
}

/// A `RawValue` is a handle: it can be a task argument under every start
/// method. The other process maps the same memory.
impl<T: Pod> serde::Serialize for RawValue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.cells.serialize(s)
    }
}

impl<'de, T: Pod> serde::Deserialize<'de> for RawValue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawValue<T>, D::Error> {
        Ok(RawValue { cells: Cells::deserialize(d, Kind::RawValue)? })
    }
}

/// A fixed-length array of a plain-old-data type in shared memory, without a
/// lock: Python's `multiprocessing.RawArray`.
///
/// Each element is read and written on its own, one machine word at a time
/// ([`get`](Self::get), [`set`](Self::set), [`to_vec`](Self::to_vec),
/// [`copy_from_slice`](Self::copy_from_slice)); integer elements also have
/// atomic [`fetch_add`](Self::fetch_add), [`fetch_sub`](Self::fetch_sub) and
/// [`swap`](Self::swap), and [`as_atomics`](Self::as_atomics) lends them as a
/// slice of standard atomics. There is no `&[T]` view: other processes may
/// write at any moment. For bulk work on a consistent array, use an
/// [`Array`](crate::Array) and its lock.
///
/// ```
/// use mproc::RawArray;
///
/// #[mproc::task]
/// fn histogram(bins: RawArray<u32>, data: Vec<u8>) {
///     for b in data {
///         bins.fetch_add(b as usize % 4, 1).unwrap();
///     }
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let bins = RawArray::<u32>::new(4)?;
/// let a = mproc::spawn!(histogram(bins.clone(), vec![0, 1, 2, 3, 4]))?;
/// let b = mproc::spawn!(histogram(bins.clone(), vec![5, 6, 7]))?;
/// a.join()?;
/// b.join()?;
/// assert_eq!(bins.to_vec(), [2, 2, 2, 2]);
/// # Ok(()) }
/// ```
pub struct RawArray<T: Pod> {
    cells: Cells<T>,
}

impl<T: Pod> Clone for RawArray<T> {
    fn clone(&self) -> Self {
        RawArray { cells: self.cells.clone() }
    }
}

impl<T: Pod> RawArray<T> {
    /// A new shared array of `len` elements, all bits zero.
    ///
    /// Errors: [`Error::Misuse`] if `len` elements do not fit in memory;
    /// [`Error::Io`] if the shared memory cannot be made.
    pub fn new(len: usize) -> Result<RawArray<T>> {
        Ok(RawArray { cells: Cells::zeroed(Kind::RawArray, len)? })
    }

    /// A new shared array holding a copy of `items`.
    pub fn from_slice(items: &[T]) -> Result<RawArray<T>> {
        Ok(RawArray { cells: Cells::from_slice(Kind::RawArray, items)? })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index` (atomic when `T` is one word).
    ///
    /// Errors: [`Error::Misuse`] if `index` is out of range.
    pub fn get(&self, index: usize) -> Result<T> {
        self.cells.check(index)?;
        let mut out = std::mem::MaybeUninit::<T>::uninit();
        // SAFETY: `index < len`, so the element is inside the mapping, aligned;
        // raw memory is only accessed atomically (module docs); `out` is local.
        unsafe { words::load(self.cells.ptr().add(index), out.as_mut_ptr(), 1) };
        // SAFETY: `load` wrote every byte of `out`; any bytes are a valid T (Pod).
        Ok(unsafe { out.assume_init() })
    }

    /// Replaces the element at `index` (atomic when `T` is one word).
    ///
    /// Errors: [`Error::Misuse`] if `index` is out of range.
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        self.cells.check(index)?;
        // SAFETY: `value` is a whole, initialised T (Pod has no padding); the
        // destination as in `get`.
        unsafe { words::store(&value, self.cells.ptr().add(index), 1) };
        Ok(())
    }

    /// A copy of every element, each read on its own (not a snapshot of the
    /// whole array while other processes write).
    pub fn to_vec(&self) -> Vec<T> {
        let n = self.len();
        let mut v = Vec::with_capacity(n);
        // SAFETY: the source is `n` aligned elements inside the mapping, only
        // accessed atomically; the destination is `v`'s spare capacity (at least
        // `n` aligned elements), private to this call.
        unsafe { words::load(self.cells.ptr(), v.as_mut_ptr(), n) };
        // SAFETY: `load` initialised all `n` elements (any bytes are valid Ts).
        unsafe { v.set_len(n) };
        v
    }

    /// Overwrites every element with `items`, each written on its own.
    ///
    /// Errors: [`Error::Misuse`] if `items.len()` differs from `len()`.
    pub fn copy_from_slice(&self, items: &[T]) -> Result<()> {
        if items.len() != self.len() {
            return Err(Error::Misuse {
                what: format!(
                    "copy_from_slice got {} items for a RawArray of {} elements: the lengths must match",
                    items.len(),
                    self.len()
                ),
            });
        }
        // SAFETY: `items` are initialised Ts (Pod has no padding); the
        // destination is `len` aligned elements inside the mapping, only
        // accessed atomically.
        unsafe { words::store(items.as_ptr(), self.cells.ptr(), items.len()) };
        Ok(())
    }
}

impl<T: AtomicPod> RawArray<T> {
    /// The elements as a slice of standard atomics (`&[AtomicU32]` for `u32`…),
    /// for any atomic operation with any ordering.
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    ///
    /// let flags = mproc::RawArray::<u8>::new(8)?;
    /// flags.as_atomics()[2].store(1, Ordering::Release);
    /// assert_eq!(flags.get(2)?, 1);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn as_atomics(&self) -> &[T::Atomic] {
        let ptr = self.cells.ptr().cast::<T::Atomic>();
        // SAFETY: `len` aligned integers lie inside a mapping kept alive by the
        // `&self` borrow and are only accessed atomically, with accesses of
        // their size (module docs); the atomic type has the same size and
        // alignment (asserted for every AtomicPod, a sealed trait), so the slice
        // covers exactly them. With no elements, the pointer is still aligned
        // and non-null, which is all an empty slice needs.
        unsafe { std::slice::from_raw_parts(ptr, self.len()) }
    }

    fn atomic(&self, index: usize) -> Result<&T::Atomic> {
        self.cells.check(index)?;
        // SAFETY: `index < len`; otherwise as for `as_atomics`.
        Ok(unsafe { T::atomic(self.cells.ptr().add(index)) })
    }

    /// Adds `delta` to the element at `index` (wrapping on overflow) and
    /// returns its previous value, as one atomic operation.
    ///
    /// Errors: [`Error::Misuse`] if `index` is out of range.
    pub fn fetch_add(&self, index: usize, delta: T) -> Result<T> {
        Ok(T::fetch_add(self.atomic(index)?, delta))
    }

    /// Subtracts `delta` from the element at `index` (wrapping) and returns its
    /// previous value, as one atomic operation.
    ///
    /// Errors: [`Error::Misuse`] if `index` is out of range.
    pub fn fetch_sub(&self, index: usize, delta: T) -> Result<T> {
        Ok(T::fetch_sub(self.atomic(index)?, delta))
    }

    /// Stores `value` at `index` and returns the previous value, as one atomic
    /// operation.
    ///
    /// Errors: [`Error::Misuse`] if `index` is out of range.
    pub fn swap(&self, index: usize, value: T) -> Result<T> {
        Ok(T::swap(self.atomic(index)?, value))
    }
}

impl<T: Pod> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cells.fmt(f)
    }
}

/// A `RawArray` is a handle: it can be a task argument under every start
/// method. The other process maps the same memory.
impl<T: Pod> serde::Serialize for RawArray<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.cells.serialize(s)
    }
}

impl<'de, T: Pod> serde::Deserialize<'de> for RawArray<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawArray<T>, D::Error> {
        Ok(RawArray { cells: Cells::deserialize(d, Kind::RawArray)? })
    }
}
