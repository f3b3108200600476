//! Copies in and out of the memory of a [`RawValue`](crate::RawValue) or
//! [`RawArray`](crate::RawArray), as atomic accesses of at most one machine
//! word each.
//!
//! Raw memory has no lock, so other processes (and threads) may write it while
//! this one reads. Under Rust's memory model a plain (or volatile) read that
//! races with a write is undefined behaviour; an atomic one is not. So every
//! access to raw memory, here and through [`AtomicPod`](super::AtomicPod), is
//! atomic, and of one size per element type: the *unit* below, which for the
//! integers equals their size (so the atomics lent by `as_atomic` and these
//! copies never mix sizes on one location). A value larger than a unit is read
//! or written one unit at a time, so a reader may see units from two different
//! writes: a valid value still, because [`Pod`] promises that any bytes are.
//!
//! Each unit access is `Relaxed`; a whole copy is preceded (store) by a release
//! fence or followed (load) by an acquire fence, so a reader that sees a value
//! also sees what its writer did before writing it.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, fence};

use super::Pod;

/// Bytes per atomic access for elements of `T`: the largest of 8, 4, 2 and 1
/// that `T`'s alignment allows (so every unit of an element is aligned, and a
/// whole number of units makes an element, whose size is a multiple of its
/// alignment).
const fn unit<T>() -> usize {
    let a = align_of::<T>();
    if a >= 8 && align_of::<AtomicU64>() <= a {
        8
    } else if a >= 4 && align_of::<AtomicU32>() <= a {
        4
    } else if a >= 2 && align_of::<AtomicU16>() <= a {
        2
    } else {
        1
    }
}

/// An unsigned integer with an atomic twin of the same size and alignment.
trait Word: Copy {
    /// # Safety
    /// `p` is aligned, valid for reads, and only accessed atomically.
    unsafe fn load(p: *mut Self) -> Self;
    /// # Safety
    /// `p` is aligned, valid for writes, and only accessed atomically.
    unsafe fn store(p: *mut Self, v: Self);
}

macro_rules! word {
    ($($w:ty => $a:ty),*) => {$(
        impl Word for $w {
            unsafe fn load(p: *mut $w) -> $w {
                // SAFETY: guaranteed by the caller; the atomic type has the
                // integer's size, and `unit` picks it only where it is aligned.
                unsafe { <$a>::from_ptr(p) }.load(Relaxed)
            }

            unsafe fn store(p: *mut $w, v: $w) {
                // SAFETY: as for `load`.
                unsafe { <$a>::from_ptr(p) }.store(v, Relaxed)
            }
        }
    )*};
}

word!(u8 => AtomicU8, u16 => AtomicU16, u32 => AtomicU32, u64 => AtomicU64);

/// Copies `n` elements from shared memory at `src` to private memory at `dst`.
///
/// # Safety
/// `src` is aligned for `T`, valid for reads of `n` elements, and only ever
/// accessed atomically with units of [`unit::<T>()`](unit); `dst` is aligned
/// for `T`, valid for writes of `n` elements and not shared.
pub(super) unsafe fn load<T: Pod>(src: *mut T, dst: *mut T, n: usize) {
    let bytes = n * size_of::<T>();
    // SAFETY: forwarded from the caller; the unit divides T's alignment and size.
    unsafe {
        match unit::<T>() {
            8 => load_words::<u64>(src.cast(), dst.cast(), bytes / 8),
            4 => load_words::<u32>(src.cast(), dst.cast(), bytes / 4),
            2 => load_words::<u16>(src.cast(), dst.cast(), bytes / 2),
            _ => load_words::<u8>(src.cast(), dst.cast(), bytes),
        }
    }
    fence(Acquire);
}

/// Copies `n` elements from private memory at `src` to shared memory at `dst`.
///
/// # Safety
/// `src` is aligned for `T` and valid for reads of `n` initialised elements
/// (every byte initialised: `Pod` has no padding); `dst` is aligned for `T`,
/// valid for writes of `n` elements, and only ever accessed atomically with
/// units of [`unit::<T>()`](unit).
pub(super) unsafe fn store<T: Pod>(src: *const T, dst: *mut T, n: usize) {
    fence(Release);
    let bytes = n * size_of::<T>();
    // SAFETY: forwarded from the caller; the unit divides T's alignment and size.
    unsafe {
        match unit::<T>() {
            8 => store_words::<u64>(src.cast(), dst.cast(), bytes / 8),
            4 => store_words::<u32>(src.cast(), dst.cast(), bytes / 4),
            2 => store_words::<u16>(src.cast(), dst.cast(), bytes / 2),
            _ => store_words::<u8>(src.cast(), dst.cast(), bytes),
        }
    }
}

/// # Safety
/// As for [`load`], in units of `W`.
unsafe fn load_words<W: Word>(src: *mut W, dst: *mut W, count: usize) {
    for k in 0..count {
        // SAFETY: `k < count` units lie inside both ranges; `src` is shared and
        // read atomically, `dst` is private and aligned.
        unsafe { dst.add(k).write(W::load(src.add(k))) }
    }
}

/// # Safety
/// As for [`store`], in units of `W`.
unsafe fn store_words<W: Word>(src: *const W, dst: *mut W, count: usize) {
    for k in 0..count {
        // SAFETY: `k < count` units lie inside both ranges; `src` is private,
        // aligned and initialised; `dst` is shared and written atomically.
        unsafe { W::store(dst.add(k), src.add(k).read()) }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_unit_is_the_largest_word_the_alignment_allows() {
        assert_eq!(unit::<u8>(), 1);
        assert_eq!(unit::<[u8; 3]>(), 1);
        assert_eq!(unit::<i16>(), 2);
        assert_eq!(unit::<f32>(), 4);
        assert_eq!(unit::<[u32; 3]>(), 4);
        assert_eq!(unit::<f64>(), 8);
        assert_eq!(unit::<u128>(), 8);
    }

    #[test]
    fn values_round_trip_whatever_the_unit() {
        fn round_trip<T: Pod + PartialEq + std::fmt::Debug>(v: [T; 3]) {
            let mut shared = v;
            let mut back = v;
            let zero = [v[0]; 3];
            // SAFETY: local arrays of three elements, nothing else uses them.
            unsafe {
                store(zero.as_ptr(), shared.as_mut_ptr(), 3);
                store(v.as_ptr(), shared.as_mut_ptr(), 3);
                load(shared.as_mut_ptr(), back.as_mut_ptr(), 3);
            }
            assert_eq!(back, v);
        }
        round_trip([1u8, 2, 3]);
        round_trip([[1u8, 2, 3], [4, 5, 6], [7, 8, 9]]);
        round_trip([-1i16, 7, i16::MIN]);
        round_trip([1.5f32, -0.0, f32::MAX]);
        round_trip([1.5f64, -2.25, f64::MIN_POSITIVE]);
        round_trip([u128::MAX, 1 << 100, 3]);
    }
}
