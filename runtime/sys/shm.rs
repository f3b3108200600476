//! Shared memory: anonymous memory files (memfd), their size, positioned reads
//! and writes, and shared mappings.
//!
//! A memfd is a file in memory with no name in any directory: it exists while a
//! descriptor or a mapping refers to it, and its pages are allocated when first
//! touched. Mapped `MAP_SHARED`, the same pages are seen by every process that
//! maps it, whatever address each one maps it at.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// Largest offset a memory file can be addressed at.
pub(crate) const MAX_OFFSET: u64 = i64::MAX as u64;

/// Creates an empty memory file (close-on-exec). `name` shows in `/proc/PID/fd`.
pub(crate) fn memfd(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let fd = cvt(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: the kernel just returned this descriptor; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets the file's size (growing it with zeros, or cutting it).
pub(crate) fn set_len(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    if len > MAX_OFFSET {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "file size out of range"));
    }
    loop {
        // SAFETY: ftruncate on a descriptor is memory-safe; a bad one yields EBADF.
        match cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(|_| ()),
        }
    }
}

/// The file's size, device and inode.
pub(crate) fn stat(fd: BorrowedFd<'_>) -> io::Result<(u64, (u64, u64))> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok((st.st_size.max(0) as u64, (st.st_dev as u64, st.st_ino as u64)))
}

/// Frees the pages of `[offset, offset + len)` (they read as zeros again),
/// keeping the file's size.
pub(crate) fn punch_hole(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    if offset.saturating_add(len) > MAX_OFFSET {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "range out of range"));
    }
    // SAFETY: fallocate on a descriptor is memory-safe; a bad one yields EBADF.
    cvt(unsafe {
        libc::fallocate(
            fd.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            len as libc::off_t,
        )
    })?;
    Ok(())
}

/// A shared, readable and writable mapping of the start of a file, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Mapping is an address range owned by this value; the memory is
// shared with other processes anyway, so sharing it between threads adds
// nothing: whoever reads or writes through `ptr` must synchronise (atomics, or
// a lock held in the memory itself).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `fd`, `MAP_SHARED`. The file must be at
    /// least `len` bytes long (touching a page past its end raises SIGBUS), which
    /// this checks.
    pub(crate) fn shared(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty mapping"));
        }
        let (size, _) = stat(fd)?;
        if size < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the memory file holds {size} bytes, less than the {len} to map"),
            ));
        }
        // SAFETY: a fresh mapping chosen by the kernel (no fixed address), so no
        // existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        match NonNull::new(p.cast::<u8>()) {
            Some(ptr) => Ok(Mapping { ptr, len }),
            None => Err(io::Error::other("mmap returned a null address")),
        }
    }

    /// The first byte of the mapping (page-aligned).
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned and nothing else
        // unmaps them; no reference into the mapping outlives the Mapping (users
        // borrow it).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileExt;

    #[test]
    fn a_memfd_is_mapped_shared_and_read_back_with_pread() {
        let fd = memfd(c"test").unwrap();
        set_len(fd.as_fd(), 8192).unwrap();
        let a = Mapping::shared(fd.as_fd(), 8192).unwrap();
        let b = Mapping::shared(fd.as_fd(), 8192).unwrap();
        // SAFETY: both mappings are 8192 bytes long; nothing else uses them.
        unsafe {
            *a.ptr().add(5000) = 42;
            assert_eq!(*b.ptr().add(5000), 42);
        }
        let mut byte = [0u8];
        File::from(fd).read_exact_at(&mut byte, 5000).unwrap();
        assert_eq!(byte[0], 42);
    }

    #[test]
    fn mapping_more_than_the_file_holds_is_refused() {
        let fd = memfd(c"test").unwrap();
        set_len(fd.as_fd(), 4096).unwrap();
        assert!(Mapping::shared(fd.as_fd(), 8192).is_err());
    }

    #[test]
    fn writes_past_the_end_grow_the_file_and_holes_read_as_zeros() {
        let fd = memfd(c"test").unwrap();
        let file = File::from(fd.try_clone().unwrap());
        file.write_all_at(&[7u8; 10_000], 4096).unwrap();
        assert_eq!(stat(fd.as_fd()).unwrap().0, 14_096);
        punch_hole(fd.as_fd(), 4096, 8192).unwrap();
        let mut buf = [1u8; 4];
        file.read_exact_at(&mut buf, 5000).unwrap();
        assert_eq!(buf, [0; 4]);
        assert!(file.read_exact_at(&mut buf, 14_094).is_err());
    }
}
