//! Random numbers from the kernel (`getrandom(2)`): authentication nonces,
//! manager keys and socket directory names, object ids, owner numbers.

use std::io;

/// Fills `buf` from the kernel's random source (`getrandom(2)`, blocking only until
/// the pool is first initialised at boot).
pub(crate) fn fill(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes for the
        // duration of the call; getrandom writes at most that many.
        let r = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += r as usize;
    }
    Ok(())
}

/// A random number. Should the kernel's source fail (it does not, once the
/// pool is initialised at boot), the standard library's randomly keyed hasher
/// stands in.
pub(crate) fn u64() -> u64 {
    let mut bytes = [0u8; 8];
    match fill(&mut bytes) {
        Ok(()) => u64::from_ne_bytes(bytes),
        Err(_) => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::hash::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.finish()
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn fill_makes_different_bytes_each_time() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn u64_differs_from_call_to_call() {
        assert_ne!(u64(), u64());
    }
}
