//! The element types a shared value or array may hold: [`Pod`], and the
//! integers that also have atomic operations, [`AtomicPod`].
//!
//! A shared value is a few bytes of memory that several processes read and
//! write. Nothing runs when one of them writes (no constructor, no drop), a
//! process may die halfway through a write, and a reader without a lock may see
//! half of one write and half of another. So the type must be valid whatever
//! its bytes hold, and must mean the same thing in every process (no pointers).

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize, AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize,
};

/// Plain old data: a type that may live in a [`Value`](crate::Value),
/// [`Array`](crate::Array), [`RawValue`](crate::RawValue) or
/// [`RawArray`](crate::RawArray).
///
/// Implemented for every integer type (`u8` … `u128`, `i8` … `i128`, `usize`,
/// `isize`), `f32`, `f64`, and arrays `[T; N]` of them. Not for `bool` or
/// `char` (not every bit pattern is one), references or pointers (an address
/// means nothing in another process), or anything owning memory (`String`,
/// `Vec`): send those through a [`Queue`](crate::Queue) instead.
///
/// Your own struct qualifies when it is `#[repr(C)]` and made of `Pod` fields
/// with no padding between or after them:
///
/// ```
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// #[repr(C)]
/// struct Point {
///     x: f64,
///     y: f64,
/// }
///
/// // SAFETY: repr(C), two f64 fields, no padding; any 16 bytes are a valid Point.
/// unsafe impl mproc::Pod for Point {}
///
/// let p = mproc::Value::new(Point { x: 1.0, y: 2.0 })?;
/// p.lock()?.y += 1.0;
/// assert_eq!(p.get()?, Point { x: 1.0, y: 3.0 });
/// # Ok::<(), mproc::Error>(())
/// ```
///
/// Whether a type is `Pod` is checked when the program is compiled:
///
/// ```compile_fail
/// let v = mproc::Value::new(String::from("no"))?; // String owns memory: not Pod
/// # Ok::<(), mproc::Error>(())
/// ```
///
/// # Safety
///
/// Implementing `Pod` promises, for every value of the type:
///
/// - **any bit pattern is valid**: every sequence of `size_of::<T>()` bytes is
///   a value of `T` (no `bool`, `char`, enums, `NonZero*`, references), since a
///   reader may see bytes from two writes or from a write cut short by a death;
/// - **no padding**: every byte of a value is initialised (`#[repr(C)]` with
///   fields laid out so that none is needed), since values are copied word by
///   word as integers;
/// - **no pointers or handles**: the bytes mean the same in every process
///   (no raw pointers, no file descriptors you expect to be open over there);
/// - **no interior mutability** (no `Cell`, atomics, `UnsafeCell`), and an
///   alignment of at most 4096 bytes (a larger one is refused when the value
///   is made).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not plain old data, so it cannot live in shared memory",
    label = "not `mproc::Pod`",
    note = "a Value or Array holds integers, floats, arrays of them, or your own `#[repr(C)]` struct of such fields \
            (with `unsafe impl mproc::Pod`); send other data through a Queue"
)]
pub unsafe trait Pod: Copy + Send + Sync + 'static {}

macro_rules! pod {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive number: every bit pattern is a value, no padding,
        // no pointer, no interior mutability.
        unsafe impl Pod for $t {}
    )*};
}

pod!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

// SAFETY: an array of Pod elements has no padding (its size is N times the
// element's size, which is a multiple of the element's alignment), and any bit
// pattern is valid because it is valid for each element.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

mod sealed {
    pub trait Sealed {}
}

/// An integer type with a native atomic twin (`i64` ↔ `AtomicI64` …): the
/// elements of a [`RawValue`](crate::RawValue) or [`RawArray`](crate::RawArray)
/// that offer `fetch_add`, `fetch_sub`, `swap` and `compare_exchange`.
///
/// Implemented for `u8` … `u64`, `i8` … `i64`, `usize` and `isize`; sealed
/// (only this crate implements it). `u128`/`i128` have no stable atomic type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no atomic operations in shared memory",
    label = "not `mproc::AtomicPod`",
    note = "fetch_add, fetch_sub, swap and compare_exchange exist for integers up to 64 bits; for other types use a \
            Value or Array, whose lock() makes any update atomic"
)]
pub trait AtomicPod: Pod + sealed::Sealed {
    /// The standard atomic type with the same size and alignment
    /// (`AtomicI64` for `i64`…), as lent by
    /// [`RawValue::as_atomic`](crate::RawValue::as_atomic).
    type Atomic: Send + Sync + 'static;

    /// Views the element at `ptr` as its atomic type.
    ///
    /// # Safety
    /// `ptr` must be aligned, valid for reads and writes for `'a`, and only
    /// ever accessed atomically with accesses of this size while `'a` lasts.
    #[doc(hidden)]
    unsafe fn atomic<'a>(ptr: *mut Self) -> &'a Self::Atomic;
    #[doc(hidden)]
    fn fetch_add(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn fetch_sub(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn swap(a: &Self::Atomic, v: Self) -> Self;
    #[doc(hidden)]
    fn compare_exchange(a: &Self::Atomic, current: Self, new: Self) -> Result<Self, Self>;
}

macro_rules! atomic_pod {
    ($($t:ty => $a:ty),*) => {$(
        // The raw copies in `words.rs` touch an element of this type as one
        // access of its own size (the alignment equals the size), so they and
        // these atomics never mix access sizes on one location.
        const _: () = assert!(align_of::<$t>() == size_of::<$t>() && align_of::<$a>() == align_of::<$t>());

        impl sealed::Sealed for $t {}

        impl AtomicPod for $t {
            type Atomic = $a;

            unsafe fn atomic<'a>(ptr: *mut $t) -> &'a $a {
                // SAFETY: the atomic type has the integer's size and alignment
                // (asserted above); validity, lifetime and atomic-only access are
                // guaranteed by the caller.
                unsafe { <$a>::from_ptr(ptr) }
            }

            fn fetch_add(a: &$a, v: $t) -> $t {
                a.fetch_add(v, SeqCst)
            }

            fn fetch_sub(a: &$a, v: $t) -> $t {
                a.fetch_sub(v, SeqCst)
            }

            fn swap(a: &$a, v: $t) -> $t {
                a.swap(v, SeqCst)
            }

            fn compare_exchange(a: &$a, current: $t, new: $t) -> Result<$t, $t> {
                a.compare_exchange(current, new, SeqCst, SeqCst)
            }
        }
    )*};
}

atomic_pod!(
    u8 => AtomicU8, u16 => AtomicU16, u32 => AtomicU32, u64 => AtomicU64, usize => AtomicUsize,
    i8 => AtomicI8, i16 => AtomicI16, i32 => AtomicI32, i64 => AtomicI64, isize => AtomicIsize
);
