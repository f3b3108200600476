//! Named shared memory: Python's `multiprocessing.shared_memory.SharedMemory`.
//!
//! A segment is a file in `/dev/shm` (a tmpfs), mapped `MAP_SHARED` by every
//! process that has it. The name is the file's name there, the one Python and
//! C's `shm_open("/name")` use, so the three can share a segment.
//!
//! The module is in four parts: the handle and its life (this file), the
//! ownership records and the sweep of segments whose creator died
//! (`owner.rs`), the copies in and out of shared bytes (`bytes.rs`), and the
//! handle as a task argument (`wire.rs`).
//!
//! **Why `open(2)` in `/dev/shm` and not `shm_open(3)`.** On Linux, glibc's
//! and musl's `shm_open` are `open("/dev/shm/" + name, O_NOFOLLOW |
//! O_CLOEXEC | ..)`: the same file, so interoperability is the same. Naming
//! the directory ourselves keeps the segments, their ownership records and
//! the sweep that lists them in one place that cannot disagree, and gives
//! the error messages a path to show.

mod bytes;
mod owner;
mod wire;

use std::fmt;
use std::fs::{self, File, Permissions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::sys::shm::Mapping;
use owner::{Identity, Record};

/// Where segments live.
const DIR: &str = "/dev/shm";

/// Longest file name in the directory (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// A block of memory with a name, shared by every process that opens the name
/// or receives the handle: Python's `multiprocessing.shared_memory.SharedMemory`.
///
/// ```
/// use mproc::SharedMemory;
///
/// #[mproc::task]
/// fn greet(name: String) {
///     let shm = SharedMemory::open(&name).expect("created by the parent"); // attach by name…
///     shm.write_at(0, b"hello").expect("in range");
/// }
///
/// #[mproc::task]
/// fn shout(shm: SharedMemory) {
///     shm.write_at(0, b"HELLO").expect("in range"); // …or receive the handle
/// }
///
/// # fn main() -> mproc::Result<()> {
/// let name = format!("doc-shm-{}", std::process::id());
/// let shm = SharedMemory::create(&name, 4096)?;
/// mproc::spawn!(greet(name.clone()))?.join()?;
/// let mut buf = [0u8; 5];
/// shm.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
///
/// mproc::spawn!(shout(shm.clone()))?.join()?;
/// assert_eq!(&shm.to_vec()[..5], b"HELLO");
/// # Ok(()) }   // `shm` created the segment: dropping it unlinks the name
/// ```
///
/// # The name
///
/// A name is the segment's file name in `/dev/shm`: 1 to 255 bytes (at most
/// [`MAX_NAME_LEN`](SharedMemory::MAX_NAME_LEN) to create), no `/` or NUL, not `.` or `..`. One leading
/// `/` is allowed and ignored, as in C's `shm_open("/name")`; Python's
/// `SharedMemory(name="psm_x")` is `SharedMemory::open("psm_x")` here.
///
/// # Who unlinks
///
/// - The process that [`create`](Self::create)s a segment unlinks its name
///   when its last clone of that handle is dropped, unless
///   [`keep`](Self::keep) was called. Other processes keep using their
///   mappings: unlinking removes the name, not the memory, which lives until
///   the last process unmaps it.
/// - A handle made by [`open`](Self::open), or received as a task argument,
///   never unlinks on drop (CPython's bug 82300 is that attaching did).
/// - Any handle may [`unlink`](Self::unlink) the name explicitly.
/// - A creator that dies without unlinking (killed, or exiting without
///   running destructors) leaves the name behind; the next
///   [`create`](Self::create) in any mproc process of the same user, or a
///   call to [`sweep`](Self::sweep), unlinks it. Kept segments and segments
///   that mproc did not create are never swept.
///
/// # Reading and writing
///
/// Other processes may write the bytes at any moment, so a `&[u8]` or
/// `&mut [u8]` over them would be a data race (undefined behaviour) unless
/// the program makes sure otherwise. The safe methods copy instead:
/// [`read_at`](Self::read_at), [`write_at`](Self::write_at),
/// [`fill`](Self::fill) and [`to_vec`](Self::to_vec) access each shared byte
/// as a relaxed atomic byte (at `memcpy` speed on x86-64), so a read racing a
/// write may see a mix of old and new bytes but is never undefined behaviour.
/// Order the processes with a join, a message, a [`Lock`](crate::Lock) or an
/// event, as in Python.
///
/// Where the program does guarantee that no one writes meanwhile, the
/// `unsafe` [`as_slice`](Self::as_slice) and [`as_mut_slice`](Self::as_mut_slice)
/// lend the bytes as a slice; [`as_ptr`](Self::as_ptr) and
/// [`as_mut_ptr`](Self::as_mut_ptr) give the address for atomics of your own.
///
/// # Cloning and passing
///
/// A clone is the same handle (an `Arc`): it shares this process's mapping
/// and, in the creator, the duty to unlink. As a task argument the handle
/// travels as its descriptor (under every start method, even after the name
/// was unlinked), and arrives as an opener.
#[derive(Clone)]
pub struct SharedMemory {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    file: File,
    map: Mapping,
    size: usize,
    ino: u64,
    /// `Some` in the handles of the process that created the segment.
    owner: Mutex<Option<Owner>>,
}

/// The creator's duty to unlink, and how it stands.
struct Owner {
    /// The creating process: a child forked with a clone does not unlink.
    pid: u32,
    /// This segment's record, where one could be written.
    record: Option<Record>,
    state: OwnerState,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum OwnerState {
    /// Unlinked on drop.
    Owned,
    /// `keep()` was called: left in place.
    Kept,
    /// Already unlinked by hand.
    Unlinked,
}

impl SharedMemory {
    /// Longest name [`create`](Self::create) accepts, in bytes (its ownership
    /// record's name must fit in `NAME_MAX` too). [`open`](Self::open) takes
    /// names up to 255 bytes.
    pub const MAX_NAME_LEN: usize = NAME_MAX - owner::RECORD_OVERHEAD;

    /// Creates a segment of `size` bytes (zeroed, owner-only: mode `0600`)
    /// under `name`. Fails with [`io::ErrorKind::AlreadyExists`] if the name
    /// is taken.
    ///
    /// The memory is reserved now (`posix_fallocate`), so a segment larger
    /// than `/dev/shm` can hold is an error here ([`io::ErrorKind::StorageFull`])
    /// rather than a `SIGBUS` when a page is first touched. Reserving touches
    /// every page: about as long as writing the segment once.
    ///
    /// First, segments whose creator died are swept (see [`sweep`](Self::sweep)).
    pub fn create(name: &str, size: usize) -> Result<SharedMemory> {
        let name = check_name(name, Self::MAX_NAME_LEN)?;
        if size == 0 {
            return Err(invalid(format!("shared memory {name:?}: the size must be at least 1 byte")));
        }
        if size as u64 > crate::sys::shm::MAX_OFFSET {
            return Err(invalid(format!("shared memory {name:?}: a size of {size} bytes is out of range")));
        }
        // Best effort: a sweep that cannot list the directory must not stop a create.
        let _ = owner::sweep();

        let path = path(name);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| io_error(e, name, "cannot create"))?;
        // From here the name is ours; record that at once, so that a creator
        // killed from now on is swept.
        let ino = file.metadata().map_err(|e| io_error(e, name, "cannot create"))?.ino();
        // A record that cannot be written leaves the segment unswept, nothing worse.
        let record = Identity::current().map(|me| Record::new(me, ino, name)).filter(|r| r.write().is_ok());
        let undo = |e: Error| {
            let _ = owner::unlink_if_inode(name, ino);
            if let Some(r) = &record {
                let _ = r.remove();
            }
            e
        };
        // The umask may have cleared bits of 0600; the mode is exactly that.
        file.set_permissions(Permissions::from_mode(0o600)).map_err(|e| undo(io_error(e, name, "cannot create")))?;
        crate::sys::shm::set_len(file.as_fd(), size as u64).map_err(|e| undo(io_error(e, name, "cannot size")))?;
        reserve(&file, size).map_err(|e| undo(no_room(e, &file, name, size)))?;
        let map = Mapping::shared(file.as_fd(), size).map_err(|e| undo(io_error(e, name, "cannot map")))?;
        let owner = Owner { pid: std::process::id(), record: record.clone(), state: OwnerState::Owned };
        Ok(SharedMemory::from_parts(name.to_owned(), file, map, size, ino, Some(owner)))
    }

    /// Opens the segment called `name`. Fails with
    /// [`io::ErrorKind::NotFound`] if there is none. The handle never
    /// unlinks the name on drop.
    pub fn open(name: &str) -> Result<SharedMemory> {
        let name = check_name(name, NAME_MAX)?;
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path(name))
            .map_err(|e| io_error(e, name, "cannot open"))?;
        SharedMemory::attach(name.to_owned(), file)
    }

    /// Unlinks the segments whose creator died, as [`create`](Self::create)
    /// does first, and returns how many it unlinked.
    ///
    /// A segment is swept when all of these hold: an mproc process of this
    /// user created it (and recorded so, in the same directory, see below);
    /// that process no longer runs (it was killed, or exited without
    /// dropping the handle) — a pid reused since by another process does not
    /// count as it, thanks to the start time recorded with it; it ran in this
    /// pid namespace; [`keep`](Self::keep) was not called; and the name still
    /// refers to the same file. Segments made by Python, C or `keep()` have
    /// no record and are never touched. Processes that still map a swept
    /// segment keep their memory: only the name goes.
    ///
    /// Records are empty files named `.mproc-shm.<pid>.<start>.<pidns>.<inode>.<name>`
    /// in `/dev/shm`. Where `/proc` is not mounted none are written and the
    /// sweep does nothing.
    pub fn sweep() -> Result<usize> {
        owner::sweep().map_err(|e| Error::Io(io::Error::new(e.kind(), format!("cannot sweep {DIR}: {e}"))))
    }

    /// The name, without a leading `/` (Python's `name`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The size in bytes (Python's `size`): the file's size when it was
    /// opened.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// The size in bytes: the same as [`size`](Self::size).
    pub fn len(&self) -> usize {
        self.inner.size
    }

    /// Always `false`: a segment holds at least one byte.
    pub fn is_empty(&self) -> bool {
        self.inner.size == 0
    }

    /// Leaves the segment in place when the creator drops its handle or
    /// dies: it is not unlinked on drop and never swept. Call it on the
    /// creating handle (or a clone of it, in the creating process); unlink
    /// the name later with [`unlink`](Self::unlink), from any process.
    pub fn keep(&self) -> Result<()> {
        let mut owner = self.inner.lock_owner();
        let Some(o) = owner.as_mut().filter(|o| o.pid == std::process::id()) else {
            return Err(Error::Misuse {
                what: format!(
                    "keep() on shared memory {:?}: only the handle that created it, in its process, unlinks it; \
                     this one opened or received it, and never unlinks",
                    self.inner.name
                ),
            });
        };
        if o.state == OwnerState::Unlinked {
            return Err(Error::Misuse {
                what: format!("keep() on shared memory {:?}, which was already unlinked", self.inner.name),
            });
        }
        if let Some(r) = &o.record {
            r.remove().map_err(|e| io_error(e, &self.inner.name, "cannot keep"))?;
        }
        o.record = None;
        o.state = OwnerState::Kept;
        Ok(())
    }

    /// Removes the name (Python's `unlink`): later [`open`](Self::open)s fail,
    /// and the memory goes when the last process unmaps it. Fails with
    /// [`io::ErrorKind::NotFound`] if the name is gone already, or now
    /// refers to another segment (which is left alone).
    pub fn unlink(&self) -> Result<()> {
        let inner = &*self.inner;
        let removed =
            owner::unlink_if_inode(&inner.name, inner.ino).map_err(|e| io_error(e, &inner.name, "cannot unlink"))?;
        if let Some(o) = inner.lock_owner().as_mut().filter(|o| o.pid == std::process::id()) {
            if let Some(r) = o.record.take() {
                let _ = r.remove();
            }
            o.state = OwnerState::Unlinked;
        }
        if removed {
            Ok(())
        } else {
            Err(Error::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!("shared memory {:?} was already unlinked", inner.name),
            )))
        }
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`. Safe whatever other
    /// processes do meanwhile (see [Reading and writing](Self#reading-and-writing)).
    /// Out of range: [`Error::Misuse`].
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check_range("read_at", offset, buf.len())?;
        // SAFETY: the range lies inside the mapping (checked), which lives as
        // long as `self`; the safe API lends no reference to shared bytes;
        // `buf` is private and cannot overlap a shared mapping it was not
        // made from (an `as_slice` loan would have to be live, against its
        // contract).
        unsafe { bytes::load(self.inner.map.ptr().add(offset), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into the segment at `offset`. Safe whatever other
    /// processes do meanwhile. Out of range: [`Error::Misuse`].
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.check_range("write_at", offset, data.len())?;
        // SAFETY: as in `read_at`, with `data` as the private side.
        unsafe { bytes::store(data.as_ptr(), self.inner.map.ptr().add(offset), data.len()) };
        Ok(())
    }

    /// Sets every byte to `byte`.
    pub fn fill(&self, byte: u8) {
        // SAFETY: the whole mapping, which lives as long as `self`; no
        // reference to shared bytes is lent by the safe API.
        unsafe { bytes::fill(self.inner.map.ptr(), byte, self.inner.size) }
    }

    /// A copy of the whole segment.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.inner.size);
        // SAFETY: the whole mapping into the vector's spare capacity, which
        // holds `size` bytes; `set_len` follows the copy that initialised them.
        unsafe {
            bytes::load(self.inner.map.ptr(), v.spare_capacity_mut().as_mut_ptr().cast(), self.inner.size);
            v.set_len(self.inner.size);
        }
        v
    }

    /// The address of the first byte (page-aligned), valid while any clone of
    /// this handle lives. Reading through it races with other processes'
    /// writes: use atomics, or synchronise.
    pub fn as_ptr(&self) -> *const u8 {
        self.inner.map.ptr()
    }

    /// The address of the first byte, for writing (shared memory is mutable
    /// through a shared handle). See [`as_ptr`](Self::as_ptr).
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.inner.map.ptr()
    }

    /// The bytes as a slice, without copying.
    ///
    /// # Safety
    /// While the slice lives, nothing writes these bytes: no other process,
    /// no other thread, and no other handle or clone in this process
    /// ([`write_at`](Self::write_at), [`fill`](Self::fill), an
    /// [`as_mut_slice`](Self::as_mut_slice) loan). Typically: the writers were
    /// joined, or hold off until a message says the reader is done.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is `size` bytes, initialised (a file's bytes),
        // and lives as long as `&self`; the caller promises no writes meanwhile.
        unsafe { std::slice::from_raw_parts(self.inner.map.ptr(), self.inner.size) }
    }

    /// The bytes as a mutable slice, without copying (Python's `buf`).
    ///
    /// # Safety
    /// While the slice lives, nothing else reads or writes these bytes: no
    /// other process, no other thread, no other handle or clone in this
    /// process. Typically: the other processes wait for a message saying the
    /// writer is done.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; the caller promises exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.inner.map.ptr(), self.inner.size) }
    }

    fn check_range(&self, op: &str, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.inner.size => Ok(()),
            _ => Err(Error::Misuse {
                what: format!(
                    "{op} of {len} bytes at offset {offset} is out of range for shared memory {:?} of {} bytes",
                    self.inner.name, self.inner.size
                ),
            }),
        }
    }

    /// Maps an opened (or received) segment: an opener.
    fn attach(name: String, file: File) -> Result<SharedMemory> {
        let meta = file.metadata().map_err(|e| io_error(e, &name, "cannot open"))?;
        if !meta.file_type().is_file() {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "shared memory {name:?} is not a memory file (a SharedMemory reaches another process as a task \
                     argument)"
                ),
            )));
        }
        let size = match usize::try_from(meta.len()) {
            Ok(0) => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("shared memory {name:?} is empty (still being created?)"),
                )));
            }
            Ok(size) => size,
            Err(_) => return Err(invalid(format!("shared memory {name:?} is too large to map"))),
        };
        let map = Mapping::shared(file.as_fd(), size).map_err(|e| io_error(e, &name, "cannot map"))?;
        Ok(SharedMemory::from_parts(name, file, map, size, meta.ino(), None))
    }

    fn from_parts(name: String, file: File, map: Mapping, size: usize, ino: u64, owner: Option<Owner>) -> SharedMemory {
        // Like every handle's descriptor: a child forked to run a task does not keep it.
        crate::handle::track(file.as_raw_fd());
        SharedMemory { inner: Arc::new(Inner { name, file, map, size, ino, owner: Mutex::new(owner) }) }
    }
}

impl Inner {
    fn lock_owner(&self) -> std::sync::MutexGuard<'_, Option<Owner>> {
        // Nothing panics while holding it; a poisoned lock still holds a whole state.
        self.owner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Before the descriptor closes, so that its number is never tracked for a stranger.
        crate::handle::untrack(self.file.as_raw_fd());
        let owner = self.owner.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = owner.as_mut().filter(|o| o.pid == std::process::id() && o.state == OwnerState::Owned) {
            // Nowhere to report a failure from a destructor; a segment left
            // behind still has its record, and the sweep gets it later.
            if owner::unlink_if_inode(&self.name, self.ino).is_ok() {
                if let Some(r) = o.record.take() {
                    let _ = r.remove();
                }
            }
        }
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let creator = self.inner.lock_owner().as_ref().is_some_and(|o| o.pid == std::process::id());
        f.debug_struct("SharedMemory")
            .field("name", &self.inner.name)
            .field("size", &self.inner.size)
            .field("creator", &creator)
            .finish()
    }
}

/// Checks a name and drops one leading `/`.
fn check_name(name: &str, max: usize) -> Result<&str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let problem = if bare.is_empty() {
        Some("it is empty".to_owned())
    } else if bare.contains('/') {
        Some("it contains '/' (only one leading '/' is allowed)".to_owned())
    } else if bare.contains('\0') {
        Some("it contains a NUL byte".to_owned())
    } else if bare == "." || bare == ".." {
        Some("it is a directory name".to_owned())
    } else if bare.len() > max {
        Some(format!("it is {} bytes long, more than {max}", bare.len()))
    } else if bare.starts_with(owner::PREFIX) {
        Some(format!("names starting with {:?} are mproc's ownership records", owner::PREFIX))
    } else {
        None
    };
    match problem {
        Some(p) => Err(invalid(format!("invalid shared memory name {name:?}: {p}"))),
        None => Ok(bare),
    }
}

fn path(name: &str) -> String {
    format!("{DIR}/{name}")
}

fn invalid(message: String) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidInput, message))
}

/// An I/O error, its kind kept, its message naming the segment.
fn io_error(e: io::Error, name: &str, what: &str) -> Error {
    let hint = match e.kind() {
        io::ErrorKind::AlreadyExists => ": the name is taken (open it, or unlink it first)",
        io::ErrorKind::NotFound if what == "cannot open" => ": no such segment (was it created, or unlinked already?)",
        io::ErrorKind::NotFound => ": is /dev/shm mounted?",
        _ => "",
    };
    Error::Io(io::Error::new(e.kind(), format!("{what} shared memory {name:?} in {DIR}: {e}{hint}")))
}

/// Reserves the file's pages, so that touching them later cannot fail.
fn reserve(file: &File, size: usize) -> io::Result<()> {
    loop {
        // SAFETY: posix_fallocate on a descriptor is memory-safe; a bad one
        // yields EBADF. It returns the error number rather than setting errno.
        match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, size as libc::off_t) } {
            0 => return Ok(()),
            libc::EINTR => continue,
            n => return Err(io::Error::from_raw_os_error(n)),
        }
    }
}

/// The error for a reservation that failed, saying how much room there is.
fn no_room(e: io::Error, file: &File, name: &str, size: usize) -> Error {
    if e.raw_os_error() != Some(libc::ENOSPC) {
        return io_error(e, name, "cannot reserve memory for");
    }
    let free = nix::sys::statvfs::fstatvfs(file.as_fd())
        .map(|s| format!("{} bytes are free there", s.blocks_available() as u128 * s.fragment_size() as u128))
        .unwrap_or_else(|_| "it is full".to_owned());
    Error::Io(io::Error::new(
        e.kind(),
        format!(
            "cannot create shared memory {name:?} of {size} bytes: {DIR} cannot hold it ({free}); \
             use a smaller size, unlink segments no longer needed, or enlarge {DIR} (docker run --shm-size)"
        ),
    ))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn names_are_checked_and_one_leading_slash_is_dropped() {
        assert_eq!(check_name("/psm_1", NAME_MAX).unwrap(), "psm_1");
        assert_eq!(check_name("a.b-c", NAME_MAX).unwrap(), "a.b-c");
        let long = "x".repeat(SharedMemory::MAX_NAME_LEN + 1);
        for bad in ["", "/", "a/b", "//a", "a\0b", ".", "..", ".mproc-shm.1.2.3.4.x", &long] {
            assert!(check_name(bad, SharedMemory::MAX_NAME_LEN).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_record_name_fits_with_the_longest_name() {
        const { assert!(SharedMemory::MAX_NAME_LEN >= 128) };
        let widest = Record::parse(&format!(
            "{}{}.{}.{}.{}.{}",
            owner::PREFIX,
            i32::MAX,
            u64::MAX,
            u64::MAX,
            u64::MAX,
            "x".repeat(SharedMemory::MAX_NAME_LEN)
        ))
        .unwrap();
        assert_eq!(widest.file_name().len(), NAME_MAX);
    }
}
