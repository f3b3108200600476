//! Copies in and out of a segment, every shared byte accessed as a relaxed
//! atomic byte.
//!
//! Another process may write a segment while this one reads it (or the other
//! way round). Under Rust's memory model a plain (or volatile) access racing
//! with a write is undefined behaviour, and another process mapping the same
//! pages is, for this purpose, one more thread. An atomic access is not: so
//! every access these functions make to shared bytes is, in the abstract
//! machine, an `AtomicU8` load or store with `Relaxed` ordering — the
//! "atomic per byte" copy of RFC 3301. A read racing a write may see some
//! bytes old and some new; that is the documented race, never undefined
//! behaviour.
//!
//! A loop of `AtomicU8` accesses is that semantics written out, and it is
//! what other targets run. It is also about eight times slower than `memcpy`
//! (the compiler may not merge or vectorise atomics). On x86-64 the copy
//! calls the C library's `memcpy`/`memset` from inside an `asm!` block
//! instead, at full speed:
//!
//! - the block is opaque to the compiler, which knows only that it may read
//!   and write any memory reachable from its operands; it cannot see a
//!   `memcpy` there (a plain `libc::memcpy(..)` call it would recognise, and
//!   treat as a non-atomic copy);
//! - the Rust reference lets an `asm!` block do whatever some sequence of
//!   abstract-machine operations could do; what `memcpy` does to the shared
//!   bytes is exactly what a sequence of relaxed atomic byte loads and
//!   stores does, since x86-64 performs every access (scalar, string or
//!   vector, temporal or not) with single-copy atomicity at byte granularity:
//!   no byte is ever torn, and a byte written twice by overlapping tail
//!   stores is two relaxed stores of one value.
//!
//! Ordering: the copies are `Relaxed`. A reader learns that a writer has
//! finished through some synchronising operation (a process `join`, a queue
//! or pipe message, a lock, an event), which orders them as it orders
//! everything else.

/// Copies `n` bytes from shared memory at `src` to private memory at `dst`.
///
/// # Safety
/// `src` is valid for reads of `n` bytes of a mapping that stays mapped during
/// the call, and no reference (`&[u8]`/`&mut [u8]`) to those bytes is live in
/// this process; `dst` is valid for writes of `n` bytes and does not overlap
/// `src`.
pub(super) unsafe fn load(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { imp::copy(src, dst, n, Shared::Source) }
}

/// Copies `n` bytes from private memory at `src` to shared memory at `dst`.
///
/// # Safety
/// `dst` is valid for writes of `n` bytes of a mapping that stays mapped
/// during the call, and no reference to those bytes is live in this process;
/// `src` is valid for reads of `n` initialised bytes and does not overlap
/// `dst`.
pub(super) unsafe fn store(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { imp::copy(src, dst, n, Shared::Destination) }
}

/// Sets `n` bytes of shared memory at `dst` to `byte`.
///
/// # Safety
/// As for [`store`]'s `dst`.
pub(super) unsafe fn fill(dst: *mut u8, byte: u8, n: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { imp::fill(dst, byte, n) }
}

/// Which side of a copy is the shared one (the fallback needs to know; the
/// x86-64 path treats both alike).
#[derive(Clone, Copy)]
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
enum Shared {
    Source,
    Destination,
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::Shared;

    /// # Safety
    /// See [`super::load`] and [`super::store`].
    pub(super) unsafe fn copy(src: *const u8, dst: *mut u8, n: usize, _: Shared) {
        let memcpy: unsafe extern "C" fn(*mut libc::c_void, *const libc::c_void, usize) -> *mut libc::c_void =
            libc::memcpy;
        // SAFETY: the caller guarantees both ranges are valid and disjoint,
        // which is all memcpy needs. The call follows the C ABI: arguments in
        // rdi, rsi, rdx; every caller-saved register (and the flags) declared
        // clobbered by `clobber_abi("C")`; the stack is aligned for a call on
        // entry to an asm! block without `nostack`, and the compiler keeps
        // nothing in the red zone below it; the direction flag is clear on
        // entry, as the ABI requires. The module doc says why the bytes'
        // accesses are relaxed atomic ones in the abstract machine.
        unsafe {
            std::arch::asm!(
                "call {f}",
                f = in(reg) memcpy,
                in("rdi") dst,
                in("rsi") src,
                in("rdx") n,
                clobber_abi("C"),
            );
        }
    }

    /// # Safety
    /// See [`super::fill`].
    pub(super) unsafe fn fill(dst: *mut u8, byte: u8, n: usize) {
        let memset: unsafe extern "C" fn(*mut libc::c_void, libc::c_int, usize) -> *mut libc::c_void = libc::memset;
        // SAFETY: as in `copy`: a valid range for memset, a C ABI call from an
        // asm! block that declares the C clobbers.
        unsafe {
            std::arch::asm!(
                "call {f}",
                f = in(reg) memset,
                in("rdi") dst,
                in("esi") libc::c_int::from(byte),
                in("rdx") n,
                clobber_abi("C"),
            );
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use std::sync::atomic::AtomicU8;
    use std::sync::atomic::Ordering::Relaxed;

    use super::Shared;

    /// # Safety
    /// See [`super::load`] and [`super::store`].
    pub(super) unsafe fn copy(src: *const u8, dst: *mut u8, n: usize, shared: Shared) {
        for i in 0..n {
            // SAFETY: `i < n` lies inside both ranges (the caller's promise);
            // the shared byte is only accessed atomically, the private one is
            // not shared.
            unsafe {
                match shared {
                    Shared::Source => *dst.add(i) = AtomicU8::from_ptr(src.add(i).cast_mut()).load(Relaxed),
                    Shared::Destination => AtomicU8::from_ptr(dst.add(i)).store(*src.add(i), Relaxed),
                }
            }
        }
    }

    /// # Safety
    /// See [`super::fill`].
    pub(super) unsafe fn fill(dst: *mut u8, byte: u8, n: usize) {
        for i in 0..n {
            // SAFETY: `i < n` lies inside the range; the byte is shared and
            // written atomically.
            unsafe { AtomicU8::from_ptr(dst.add(i)).store(byte, Relaxed) }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn load_store_and_fill_copy_exactly_the_bytes_asked() {
        let mut shared = vec![0u8; 100];
        let data: Vec<u8> = (0..40).collect();
        // SAFETY: all ranges lie inside their vectors, which do not overlap.
        unsafe {
            fill(shared.as_mut_ptr(), 9, 100);
            store(data.as_ptr(), shared.as_mut_ptr().add(30), 40);
        }
        let mut back = vec![0u8; 50];
        // SAFETY: as above.
        unsafe { load(shared.as_ptr().add(25), back.as_mut_ptr(), 50) };
        assert_eq!(&back[..5], &[9; 5]);
        assert_eq!(&back[5..45], &data[..]);
        assert_eq!(&back[45..], &[9; 5]);
        // SAFETY: zero bytes: nothing is touched.
        unsafe { fill(shared.as_mut_ptr(), 1, 0) };
        assert_eq!(shared[0], 9);
    }
}
