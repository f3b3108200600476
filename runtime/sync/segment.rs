//! The memory behind a synchronization primitive: one memfd, mapped
//! `MAP_SHARED` by every process that has the handle.
//!
//! ```text
//! offset 0      header: magic "mprocSyn", layout version, kind, recoveries
//!               (owner-died count), how much of the table is in use, the
//!               robust process-shared pthread mutex
//! 256           the kind's body: its futex words and counters (atomics only)
//! 4096          semaphores and barriers: the table of processes (table.rs)
//! ```
//!
//! The file is created zeroed, the mutex and body initialised, and only then
//! given its magic (a release store), so a header with the magic is whole. A
//! process that receives the descriptor reads the header prefix with `pread`
//! and checks magic, version and kind, and that the file is long enough,
//! before mapping it.

use std::cell::UnsafeCell;
use std::fs::File;
use std::io;
use std::mem::{ManuallyDrop, offset_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::Deadline;
use super::table::{Entry, Table};
use crate::error::{Error, Result};
use crate::sys::futex::{self, Acquired};
use crate::sys::shm::{self, Mapping};

const MAGIC: u64 = u64::from_le_bytes(*b"mprocSyn");
const VERSION: u32 = 1;
/// Where a kind's body starts.
const BODY_OFFSET: usize = 256;
/// Where the table starts, for the kinds that have one.
const TABLE_OFFSET: usize = 4096;
/// Entries in a table: processes that hold slots of one semaphore, or are
/// inside one barrier's wait, at the same time (more are served untracked).
pub(super) const TABLE_CAPACITY: usize = 1024;

/// Which primitive a segment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Lock = 1,
    RLock = 2,
    Semaphore = 3,
    BoundedSemaphore = 4,
    Event = 5,
    Condition = 6,
    Barrier = 7,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Lock => "Lock",
            Kind::RLock => "RLock",
            Kind::Semaphore => "Semaphore",
            Kind::BoundedSemaphore => "BoundedSemaphore",
            Kind::Event => "Event",
            Kind::Condition => "Condition",
            Kind::Barrier => "Barrier",
        }
    }

    /// The pthread mutex type: a Lock reports relocking by its owner
    /// (`EDEADLK`) rather than deadlocking; an RLock may be relocked.
    fn mutex_type(self) -> libc::c_int {
        match self {
            Kind::RLock => libc::PTHREAD_MUTEX_RECURSIVE,
            _ => libc::PTHREAD_MUTEX_ERRORCHECK,
        }
    }

    fn has_table(self) -> bool {
        matches!(self, Kind::Semaphore | Kind::BoundedSemaphore | Kind::Barrier)
    }

    fn file_len(self) -> usize {
        if self.has_table() { TABLE_OFFSET + TABLE_CAPACITY * size_of::<Entry>() } else { TABLE_OFFSET }
    }
}

#[repr(C)]
struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    kind: AtomicU32,
    /// How many times a locker found the mutex's owner dead.
    recoveries: AtomicU64,
    /// Table entries in use are all below this index.
    table_used: AtomicU32,
    _reserved: AtomicU32,
    mutex: UnsafeCell<libc::pthread_mutex_t>,
}

const _: () = assert!(size_of::<Header>() <= BODY_OFFSET);
const _: () = assert!(align_of::<Entry>() <= 8 && TABLE_OFFSET % align_of::<Entry>() == 0);

/// The kind-specific part of a header.
///
/// # Safety
/// Implementors are `#[repr(C)]` structs of atomics only, so that every bit
/// pattern (zeros in a fresh file, or whatever another process wrote) is
/// valid, and shared references may coexist with other processes' writes; at
/// most `4096 - 256` bytes, aligned to at most 8.
pub(super) unsafe trait Body {}

/// One process's mapping of a primitive.
#[derive(Debug)]
pub(super) struct Segment {
    fd: File,
    /// Unmapped on drop, unless a thread of this process holds the mutex.
    map: ManuallyDrop<Mapping>,
    kind: Kind,
    /// Device and inode of the memory file: the primitive's identity.
    identity: (u64, u64),
    /// Tells this mapping from the process's other mappings of the same file
    /// (semaphore slots are recorded per mapping, see `semaphore.rs`).
    map_id: u32,
}

/// Numbers for mappings, unique in a process.
static NEXT_MAP_ID: AtomicU32 = AtomicU32::new(1);

/// Proof that this thread holds the segment's mutex (for the kinds that use it
/// internally); releases it on drop.
pub(super) struct Locked<'a> {
    seg: &'a Segment,
    /// The previous owner died holding the mutex: the caller repairs what it
    /// protects (the mutex is already marked consistent).
    pub(super) owner_died: bool,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: the mutex was initialised (checked magic) and is mapped while
        // `seg` lives; this thread holds it (a `Locked` exists only after a
        // successful lock).
        unsafe { futex::mutex_unlock(self.seg.mutex()) }
    }
}

impl Locked<'_> {
    /// The table of processes, for the kinds that have one.
    pub(super) fn table(&self) -> Table<'_> {
        self.seg.table()
    }
}

fn not_a(kind: Kind, what: String) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidData, format!("the descriptor is not a {}: {what}", kind.name())))
}

impl Segment {
    /// Makes a new primitive of `kind`; `init` fills in its body before the
    /// header is published.
    pub(super) fn create(kind: Kind, init: impl FnOnce(&Segment)) -> Result<Segment> {
        let fd = shm::memfd(c"mproc-sync")?;
        let len = kind.file_len();
        shm::set_len(fd.as_fd(), len as u64)?;
        let map = Mapping::shared(fd.as_fd(), len)?;
        let (_, identity) = shm::stat(fd.as_fd())?;
        let seg = Segment { fd: File::from(fd), map: ManuallyDrop::new(map), kind, identity, map_id: next_map_id() };
        // SAFETY: the mapping is fresh and page-aligned and holds a whole header
        // (asserted at compile time); no other thread or process can reach it yet.
        unsafe { futex::mutex_init_typed(seg.mutex(), kind.mutex_type()) }?;
        init(&seg);
        let h = seg.header();
        h.kind.store(kind as u32, Relaxed);
        h.version.store(VERSION, Relaxed);
        h.magic.store(MAGIC, Release);
        crate::handle::track(seg.fd.as_raw_fd());
        Ok(seg)
    }

    /// Maps a primitive whose memory file arrived from another process, after
    /// checking that it is a `kind`.
    pub(super) fn open(fd: OwnedFd, kind: Kind) -> Result<Segment> {
        let fd = File::from(fd);
        let (size, identity) = shm::stat(fd.as_fd())?;
        let len = kind.file_len();
        if size < len as u64 {
            return Err(not_a(kind, format!("its file holds {size} bytes, less than the {len} it needs")));
        }
        let mut prefix = [0u8; 16];
        fd.read_exact_at(&mut prefix, 0)?;
        let word = |at: usize| u32::from_le_bytes([prefix[at], prefix[at + 1], prefix[at + 2], prefix[at + 3]]);
        let magic = u64::from(word(0)) | (u64::from(word(4)) << 32);
        let (version, found) = (word(offset_of!(Header, version)), word(offset_of!(Header, kind)));
        if magic != MAGIC {
            return Err(not_a(kind, "no synchronization header".into()));
        }
        if version != VERSION {
            return Err(not_a(kind, format!("layout version {version}, this build reads {VERSION}")));
        }
        if found != kind as u32 {
            return Err(not_a(kind, format!("it is of another kind ({found})")));
        }
        let map = Mapping::shared(fd.as_fd(), len)?;
        let seg = Segment { fd, map: ManuallyDrop::new(map), kind, identity, map_id: next_map_id() };
        if seg.header().magic.load(Acquire) != MAGIC || seg.header().kind.load(Relaxed) != kind as u32 {
            return Err(not_a(kind, "the header changed while it was being read".into()));
        }
        crate::handle::track(seg.fd.as_raw_fd());
        Ok(seg)
    }

    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    /// The memory file, for passing the primitive on.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Device and inode: equal for every mapping of the same primitive.
    pub(super) fn identity(&self) -> (u64, u64) {
        self.identity
    }

    pub(super) fn map_id(&self) -> u32 {
        self.map_id
    }

    fn base(&self) -> *mut u8 {
        self.map.ptr()
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping is page-aligned and at least TABLE_OFFSET bytes
        // long (checked at creation and opening), which holds a Header (asserted
        // at compile time); every field tolerates any bit pattern and concurrent
        // writers (atomics, and the mutex in an UnsafeCell); the reference
        // borrows `self`, which keeps the mapping alive.
        unsafe { &*self.base().cast::<Header>() }
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.header().mutex.get()
    }

    /// The kind's body.
    pub(super) fn body<B: Body>(&self) -> &B {
        const { assert!(size_of::<B>() <= TABLE_OFFSET - BODY_OFFSET && align_of::<B>() <= 8) };
        // SAFETY: BODY_OFFSET + size_of::<B>() <= TABLE_OFFSET, inside the
        // mapping; the address is 8-aligned (page + 256); `B: Body` is atomics
        // only, valid for any bit pattern and concurrent writers; the reference
        // borrows `self`, which keeps the mapping alive.
        unsafe { &*self.base().add(BODY_OFFSET).cast::<B>() }
    }

    fn table(&self) -> Table<'_> {
        let entries: &[Entry] = if self.kind.has_table() {
            // SAFETY: kinds with a table map TABLE_OFFSET + TABLE_CAPACITY
            // entries (checked at creation and opening); TABLE_OFFSET is aligned
            // for Entry (asserted); Entry is atomics only; the slice borrows `self`.
            unsafe { std::slice::from_raw_parts(self.base().add(TABLE_OFFSET).cast::<Entry>(), TABLE_CAPACITY) }
        } else {
            &[]
        };
        Table::new(entries, &self.header().table_used)
    }

    /// How many times a locker found the mutex's owner dead.
    pub(super) fn recoveries(&self) -> u64 {
        self.header().recoveries.load(Relaxed)
    }

    /// Takes the mutex for an internal operation, marking it consistent if its
    /// owner died (the caller then repairs, see [`Locked::owner_died`]).
    pub(super) fn lock(&self) -> Result<Locked<'_>> {
        match self.acquire(Deadline::Never)? {
            Some(owner_died) => Ok(Locked { seg: self, owner_died }),
            // Deadline::Never never gives up.
            None => Err(Error::Io(io::Error::other("the primitive's lock could not be taken"))),
        }
    }

    /// Takes the mutex as a user's lock: `Some(previous owner died)`, or
    /// `None` when `deadline` passed (or, for an error-checking mutex, when
    /// this thread already holds it and the caller is not willing to wait).
    pub(super) fn acquire(&self, deadline: Deadline) -> Result<Option<bool>> {
        let m = self.mutex();
        // SAFETY (all three calls): the mutex was initialised (the magic was
        // checked) and stays mapped while `self` lives.
        let got = match deadline {
            Deadline::Never => unsafe { futex::mutex_lock(m) }.map(Some),
            Deadline::Now => unsafe { futex::mutex_trylock(m) },
            Deadline::At(_) => match deadline.left() {
                Some(Some(left)) => unsafe { futex::mutex_lock_timeout(m, left) },
                _ => unsafe { futex::mutex_trylock(m) },
            },
        };
        match got {
            Ok(None) => Ok(None),
            Ok(Some(Acquired::Clean)) => Ok(Some(false)),
            Ok(Some(Acquired::OwnerDied)) => {
                self.header().recoveries.fetch_add(1, Relaxed);
                // SAFETY: as above; this thread holds the mutex now.
                unsafe { futex::mutex_consistent(m) }?;
                Ok(Some(true))
            }
            Err(e) if e.raw_os_error() == Some(libc::EDEADLK) => match deadline {
                Deadline::Never => Err(Error::Misuse {
                    what: format!(
                        "this thread already holds this {}: acquiring it again would wait forever (an RLock may be \
                         acquired again by its owner)",
                        self.kind.name()
                    ),
                }),
                _ => Ok(None),
            },
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Releases the mutex taken with [`acquire`](Self::acquire).
    pub(super) fn release(&self) -> Result<()> {
        // SAFETY: the mutex was initialised and stays mapped while `self`
        // lives; the checked unlock answers EPERM when this thread does not
        // hold it.
        match unsafe { futex::mutex_unlock_checked(self.mutex()) } {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(Error::Misuse {
                what: format!(
                    "release of a {} this thread does not hold (it is held by another thread or process, or by no \
                     one)",
                    self.kind.name()
                ),
            }),
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Whether a thread of this process holds the mutex now (the owner's tid is
    /// one of this process's tasks).
    fn held_in_this_process(&self) -> bool {
        // SAFETY: the mutex was initialised and is mapped while `self` lives.
        let tid = unsafe { futex::mutex_owner(self.mutex()) };
        tid != 0 && std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
    }

    /// Serializes the primitive as a task argument.
    pub(super) fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        crate::handle::serialize_fd(self.fd(), self.kind.name(), s)
    }

    /// Deserializes a primitive of `kind` passed as a task argument.
    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
        kind: Kind,
    ) -> std::result::Result<Segment, D::Error> {
        use serde::de::Error as _;
        let fd = crate::handle::deserialize_fd(d)?;
        Segment::open(fd, kind).map_err(D::Error::custom)
    }
}

fn next_map_id() -> u32 {
    NEXT_MAP_ID.fetch_add(1, Relaxed)
}

impl Drop for Segment {
    fn drop(&mut self) {
        // A robust mutex held by a thread sits on that thread's robust list, in
        // glibc's memory and the kernel's view: unmapping it would leave the
        // list pointing at nothing, and glibc writes through its neighbours'
        // links. So a mapping whose mutex a thread of this process still holds
        // (a Lock acquired without a guard, or a forgotten guard) stays mapped.
        if !(matches!(self.kind, Kind::Lock | Kind::RLock) && self.held_in_this_process()) {
            // SAFETY: the mapping is dropped once, here, and not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.map) };
        }
        // Before the descriptor closes, so that its number is never tracked for a stranger.
        crate::handle::untrack(self.fd.as_raw_fd());
    }
}
