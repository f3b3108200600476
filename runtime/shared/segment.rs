//! The memory behind a shared value or array: one memfd holding a header and
//! the elements, mapped `MAP_SHARED` by every process that has the handle.
//!
//! ```text
//! offset 0        header: magic "mprocVal", layout version, kind (Value, Array,
//!                 RawValue, RawArray), element size, alignment and type
//!                 fingerprint, element count; for Value and Array the robust,
//!                 process-shared mutex
//! data_offset     the elements: max(128, align_of::<T>()), so they are aligned
//!                 in every process (mappings start on a page)
//! ```
//!
//! The file is created zeroed (`ftruncate`), filled with the initial elements
//! and only then given its magic, so a header with the magic is whole. A
//! process that receives the descriptor reads the header with `pread` and
//! checks it against the type it expects (kind, element size, alignment and
//! fingerprint, and that the file holds all the elements) before mapping it.
//!
//! **Lock.** A Value's or Array's elements are read and written only by a
//! thread holding the header's mutex (see [`Segment::lock`]); when its owner
//! died holding it, the next locker is told so and takes it over. A raw
//! segment has no lock: its elements are only ever accessed atomically
//! (`words.rs`, `AtomicPod`).

use std::cell::{RefCell, UnsafeCell};
use std::fmt;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::mem::offset_of;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Once};

use super::Pod;
use crate::error::{Error, Result};
use crate::sys::futex::{self, Acquired};
use crate::sys::shm::{self, Mapping};

const MAGIC: u64 = u64::from_le_bytes(*b"mprocVal");
const VERSION: u32 = 1;
/// Bytes reserved for the header; the elements start here or at their
/// alignment, whichever is further.
const HEADER_SIZE: usize = 128;
/// Largest element alignment: mappings are only known to start on a page.
const MAX_ALIGN: usize = 4096;

/// Which handle type a segment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Value = 1,
    Array = 2,
    RawValue = 3,
    RawArray = 4,
}

impl Kind {
    fn from_u32(n: u32) -> Option<Kind> {
        [Kind::Value, Kind::Array, Kind::RawValue, Kind::RawArray].into_iter().find(|k| *k as u32 == n)
    }

    /// The type's name, for messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Value => "Value",
            Kind::Array => "Array",
            Kind::RawValue => "RawValue",
            Kind::RawArray => "RawArray",
        }
    }

    /// The name with its article, for messages ("an Array").
    pub(super) fn a(self) -> &'static str {
        match self {
            Kind::Value => "a Value",
            Kind::Array => "an Array",
            Kind::RawValue => "a RawValue",
            Kind::RawArray => "a RawArray",
        }
    }

    fn locked(self) -> bool {
        matches!(self, Kind::Value | Kind::Array)
    }

    fn memfd_name(self) -> &'static std::ffi::CStr {
        match self {
            Kind::Value | Kind::RawValue => c"mproc-value",
            Kind::Array | Kind::RawArray => c"mproc-array",
        }
    }
}

/// The header at the start of the memory file. Every field is an atomic (or
/// the mutex, in an `UnsafeCell`), so shared references to it may coexist with
/// other processes' writes.
#[repr(C)]
struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    kind: AtomicU32,
    elem_size: AtomicU64,
    elem_align: AtomicU64,
    len: AtomicU64,
    /// FNV-1a of the element type's name: one build of one program names a
    /// type the same way in each of its processes.
    type_hash: AtomicU64,
    lock: UnsafeCell<libc::pthread_mutex_t>,
}

const _: () = assert!(size_of::<Header>() <= HEADER_SIZE);
const _: () = assert!(HEADER_SIZE.is_power_of_two() && HEADER_SIZE <= MAX_ALIGN);
/// The header's fields before the mutex, read with `pread` before mapping.
const PREFIX: usize = offset_of!(Header, lock);

/// The element type, as the header records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ElemType {
    size: usize,
    align: usize,
    name: &'static str,
}

impl ElemType {
    fn of<T>() -> ElemType {
        ElemType { size: size_of::<T>(), align: align_of::<T>(), name: std::any::type_name::<T>() }
    }

    fn hash(&self) -> u64 {
        self.name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
    }

    /// Where the elements start, and the file's whole size, for `len` of them.
    fn layout(&self, kind: Kind, len: usize) -> Result<(usize, usize)> {
        if self.align > MAX_ALIGN {
            return Err(Error::Misuse {
                what: format!(
                    "{} of {} needs {}-byte alignment; shared memory offers at most {MAX_ALIGN}",
                    kind.a(),
                    self.name,
                    self.align
                ),
            });
        }
        // Both powers of two: the larger is a multiple of the smaller.
        let data_offset = HEADER_SIZE.max(self.align);
        let total = len
            .checked_mul(self.size)
            .and_then(|b| b.checked_add(data_offset))
            .filter(|&t| t <= isize::MAX as usize && t as u64 <= shm::MAX_OFFSET);
        match total {
            Some(total) => Ok((data_offset, total)),
            None => Err(Error::Misuse {
                what: format!(
                    "{} of {len} elements of {} ({} bytes each) is larger than memory can hold",
                    kind.a(),
                    self.name,
                    self.size
                ),
            }),
        }
    }
}

/// One process's mapping of a shared value or array.
pub(super) struct Segment {
    fd: OwnedFd,
    map: Mapping,
    kind: Kind,
    len: usize,
    data_offset: usize,
    /// Device and inode of the memory file: the lock's identity in this
    /// process, whatever mapping reaches it.
    identity: (u64, u64),
}

impl Segment {
    /// Makes a new segment of `len` elements of `T`, zeroed and then given to
    /// `init` (a pointer to the first element, not yet shared with anyone).
    fn create<T: Pod>(kind: Kind, len: usize, init: impl FnOnce(*mut T)) -> Result<Segment> {
        let elem = ElemType::of::<T>();
        let (data_offset, total) = elem.layout(kind, len)?;
        let fd = shm::memfd(kind.memfd_name())?;
        shm::set_len(fd.as_fd(), total as u64)?;
        let map = Mapping::shared(fd.as_fd(), total)?;
        let (_, identity) = shm::stat(fd.as_fd())?;
        let seg = Segment { fd, map, kind, len, data_offset, identity };
        let h = seg.header();
        if kind.locked() {
            // SAFETY: the mapping is fresh and page-aligned, holds a whole
            // header, and no other process or thread can reach it yet.
            unsafe { futex::mutex_init(h.lock.get()) }?;
        }
        h.version.store(VERSION, Relaxed);
        h.kind.store(kind as u32, Relaxed);
        h.elem_size.store(elem.size as u64, Relaxed);
        h.elem_align.store(elem.align as u64, Relaxed);
        h.len.store(len as u64, Relaxed);
        h.type_hash.store(elem.hash(), Relaxed);
        init(seg.data());
        // Release: whoever sees the magic sees the header and elements above.
        h.magic.store(MAGIC, Release);
        crate::handle::track(seg.fd.as_raw_fd());
        Ok(seg)
    }

    /// Maps a segment whose memory file arrived from another process, after
    /// checking that it is a `kind` of `T`.
    fn open<T: Pod>(fd: OwnedFd, kind: Kind) -> Result<Segment> {
        let elem = ElemType::of::<T>();
        let not_this = |what: String| {
            Error::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the descriptor is not {}<{}>: {what}", kind.a(), elem.name),
            ))
        };
        let file = File::from(fd);
        let (size, identity) = shm::stat(file.as_fd())?;
        if size < HEADER_SIZE as u64 {
            return Err(not_this(format!("its file holds {size} bytes, less than a header")));
        }
        let mut prefix = [0u8; PREFIX];
        file.read_exact_at(&mut prefix, 0)?;
        let word = |at: usize| u64::from_le_bytes(prefix[at..at + 8].try_into().unwrap_or_default());
        let half = |at: usize| u32::from_le_bytes(prefix[at..at + 4].try_into().unwrap_or_default());
        if word(offset_of!(Header, magic)) != MAGIC {
            return Err(not_this("it holds no shared value or array".into()));
        }
        let version = half(offset_of!(Header, version));
        if version != VERSION {
            return Err(not_this(format!("layout version {version}, this build reads {VERSION}")));
        }
        let found = half(offset_of!(Header, kind));
        if found != kind as u32 {
            let name = Kind::from_u32(found).map_or("a corrupt header", Kind::a);
            return Err(not_this(format!("it is {name}")));
        }
        let (size_of_elem, align, hash) = (
            word(offset_of!(Header, elem_size)),
            word(offset_of!(Header, elem_align)),
            word(offset_of!(Header, type_hash)),
        );
        if size_of_elem != elem.size as u64 || align != elem.align as u64 || hash != elem.hash() {
            return Err(not_this(format!(
                "its elements are of another type ({size_of_elem} bytes, aligned to {align})"
            )));
        }
        let len = usize::try_from(word(offset_of!(Header, len)))
            .map_err(|_| not_this("its length does not fit in memory".into()))?;
        let (data_offset, total) = elem.layout(kind, len).map_err(|e| not_this(e.to_string()))?;
        if size < total as u64 {
            return Err(not_this(format!("its file holds {size} bytes, less than its {len} elements need")));
        }
        let map = Mapping::shared(file.as_fd(), total)?;
        let seg = Segment { fd: OwnedFd::from(file), map, kind, len, data_offset, identity };
        let h = seg.header();
        if h.magic.load(Acquire) != MAGIC || h.len.load(Relaxed) != len as u64 {
            return Err(not_this("the header changed while it was being read".into()));
        }
        crate::handle::track(seg.fd.as_raw_fd());
        Ok(seg)
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping is page-aligned and at least HEADER_SIZE bytes
        // long (checked at creation or opening), which holds a Header (asserted
        // at compile time); every field tolerates concurrent writers (atomics,
        // and the mutex in an UnsafeCell) and, but for the mutex, any bit
        // pattern; the mutex is used only after the magic (written after it was
        // initialised) was seen. The reference borrows `self`, which keeps the
        // mapping alive.
        unsafe { &*self.map.ptr().cast::<Header>() }
    }

    /// The first element.
    fn data<T>(&self) -> *mut T {
        // SAFETY: `data_offset <= total`, the mapping's length (checked by
        // `layout`), so the result is inside the mapping or one past its end
        // (no elements).
        unsafe { self.map.ptr().add(self.data_offset) }.cast()
    }

    /// Takes the lock (Value and Array only). A thread that already holds it
    /// gets `Misuse`, not a deadlock.
    fn lock(&self) -> Result<Locked<'_>> {
        if held_here(self.identity) {
            return Err(Error::Misuse {
                what: format!(
                    "this thread already holds this {}'s lock (a guard from lock() is alive): read and write \
                     through that guard, or drop it first",
                    self.kind.name()
                ),
            });
        }
        let m = self.header().lock.get();
        // SAFETY: a locked kind's mutex was initialised before the magic was
        // written (checked when opening), and stays mapped while `self` lives.
        let how = unsafe { futex::mutex_lock(m) }.map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTRECOVERABLE) => Error::Io(io::Error::other(format!(
                "this {}'s lock cannot be recovered; make a new one",
                self.kind.name()
            ))),
            _ => Error::Io(e),
        })?;
        // From here on, dropping `locked` releases the lock.
        let locked = Locked { seg: self, owner_died: how == Acquired::OwnerDied, _not_send: PhantomData };
        let _ = HELD.try_with(|held| held.borrow_mut().push((self.identity, fork_generation())));
        if locked.owner_died {
            // Nothing to repair: any bytes are valid elements (Pod), so a write
            // cut short left valid, if partly updated, data.
            // SAFETY: as above; this thread holds the lock.
            unsafe { futex::mutex_consistent(m) }?;
        }
        Ok(locked)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // Before the descriptor closes, so that its number is never tracked for a stranger.
        crate::handle::untrack(self.fd.as_raw_fd());
    }
}

thread_local! {
    /// The locks this thread holds: (memory file identity, fork generation).
    /// The generation tells a forked child that an entry it inherited from the
    /// thread that forked is its parent's, not its own.
    static HELD: RefCell<Vec<((u64, u64), u64)>> = const { RefCell::new(Vec::new()) };
}

/// How many forks this process's ancestry went through since it registered
/// the fork handler: a different number in a forked child than in its parent.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    FORKS.fetch_add(1, Relaxed);
}

/// This process's fork generation (see [`FORKS`]). Cheaper than `getpid`,
/// which is a system call on every lock.
fn fork_generation() -> u64 {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a child handler that only bumps an atomic, which is
        // async-signal-safe, as a handler run in the child of a multithreaded
        // process must be. Registration happens before any entry is recorded, so
        // every later fork bumps the generation.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    FORKS.load(Relaxed)
}

/// Whether this thread holds the lock of the memory file `identity`.
fn held_here(identity: (u64, u64)) -> bool {
    let generation = fork_generation();
    HELD.try_with(|held| held.borrow().contains(&(identity, generation))).unwrap_or(false)
}

/// Proof that this thread holds a segment's lock; releases it on drop.
pub(super) struct Locked<'a> {
    seg: &'a Segment,
    owner_died: bool,
    /// A pthread mutex is released by the thread that took it.
    _not_send: PhantomData<*mut ()>,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let entry = (self.seg.identity, fork_generation());
        let _ = HELD.try_with(|held| {
            let mut held = held.borrow_mut();
            if let Some(i) = held.iter().rposition(|&e| e == entry) {
                held.swap_remove(i);
            }
        });
        // SAFETY: the mutex was initialised and is mapped while `seg` lives;
        // this thread holds it (a Locked exists only after a successful lock,
        // and is not Send).
        unsafe { futex::mutex_unlock(self.seg.header().lock.get()) }
    }
}

/// The typed core of the four handle types: a shared segment of `T`s.
pub(super) struct Cells<T> {
    seg: Arc<Segment>,
    _type: PhantomData<T>,
}

impl<T> Clone for Cells<T> {
    fn clone(&self) -> Self {
        Cells { seg: self.seg.clone(), _type: PhantomData }
    }
}

impl<T: Pod> Cells<T> {
    /// `len` zeroed elements.
    pub(super) fn zeroed(kind: Kind, len: usize) -> Result<Cells<T>> {
        Cells::with(kind, len, |_| ())
    }

    /// A copy of `items`.
    pub(super) fn from_slice(kind: Kind, items: &[T]) -> Result<Cells<T>> {
        Cells::with(kind, items.len(), |data| {
            // SAFETY: `data` is the fresh segment's first element, aligned, with
            // room for `items.len()` elements, and no one else can reach it yet.
            unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), data, items.len()) }
        })
    }

    fn with(kind: Kind, len: usize, init: impl FnOnce(*mut T)) -> Result<Cells<T>> {
        Ok(Cells { seg: Arc::new(Segment::create(kind, len, init)?), _type: PhantomData })
    }

    /// Opens a segment received as a task argument.
    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D, kind: Kind) -> Result<Cells<T>, D::Error> {
        use serde::de::Error as _;
        let fd = crate::handle::deserialize_fd(d)?;
        let seg = Segment::open::<T>(fd, kind).map_err(D::Error::custom)?;
        Ok(Cells { seg: Arc::new(seg), _type: PhantomData })
    }
}

impl<T> Cells<T> {
    pub(super) fn len(&self) -> usize {
        self.seg.len
    }

    /// The first element: aligned for `T`, followed by `len() - 1` more, all
    /// mapped while `self` lives.
    pub(super) fn ptr(&self) -> *mut T {
        self.seg.data()
    }

    pub(super) fn lock(&self) -> Result<Locked<'_>> {
        self.seg.lock()
    }

    pub(super) fn kind(&self) -> Kind {
        self.seg.kind
    }

    /// An index checked against the length: `Misuse` when out of range.
    pub(super) fn check(&self, index: usize) -> Result<()> {
        if index < self.len() {
            Ok(())
        } else {
            Err(Error::Misuse {
                what: format!("index {index} is out of range for {} of {} elements", self.kind().a(), self.len()),
            })
        }
    }

    /// Passes the segment's memory file as a task argument.
    pub(super) fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::handle::serialize_fd(self.seg.fd.as_fd(), self.kind().name(), s)
    }
}

impl<T> fmt::Debug for Cells<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(self.kind().name())
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Locked<'_> {
    /// Whether the previous holder died holding the lock.
    pub(super) fn owner_died(&self) -> bool {
        self.owner_died
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sys::fd;

    fn reopen<T: Pod>(seg: &Segment, kind: Kind) -> Result<Segment> {
        Segment::open::<T>(fd::dup(seg.fd.as_fd())?, kind)
    }

    #[test]
    fn a_segment_reopened_as_itself_shares_its_elements() {
        let seg = Segment::create::<i64>(Kind::Value, 1, |p| {
            // SAFETY: the fresh segment's one aligned element.
            unsafe { p.write(-5) }
        })
        .unwrap();
        let twin = reopen::<i64>(&seg, Kind::Value).unwrap();
        let _locked = twin.lock().unwrap();
        // SAFETY: the segment's one element, aligned, read under the lock.
        assert_eq!(unsafe { twin.data::<i64>().read() }, -5);
    }

    #[test]
    fn a_memory_file_that_is_not_a_shared_value_is_refused() {
        let fd = shm::memfd(c"test").unwrap();
        shm::set_len(fd.as_fd(), 4096).unwrap();
        let err = Segment::open::<i64>(fd, Kind::Value).err().unwrap().to_string();
        assert!(err.contains("not a Value<i64>") && err.contains("no shared value"), "{err}");
    }

    #[test]
    fn a_segment_opened_as_another_kind_or_element_type_is_refused() {
        let seg = Segment::create::<i64>(Kind::Value, 1, |_| ()).unwrap();
        let err = reopen::<i64>(&seg, Kind::Array).err().unwrap().to_string();
        assert!(err.contains("it is a Value"), "{err}");
        let err = reopen::<u64>(&seg, Kind::Value).err().unwrap().to_string();
        assert!(err.contains("another type"), "{err}");
    }

    #[test]
    fn a_header_promising_more_elements_than_the_file_holds_is_refused() {
        let seg = Segment::create::<u8>(Kind::RawArray, 10, |_| ()).unwrap();
        seg.header().len.store(1 << 20, Relaxed);
        let err = reopen::<u8>(&seg, Kind::RawArray).err().unwrap().to_string();
        assert!(err.contains("less than its 1048576 elements need"), "{err}");
    }

    #[test]
    fn elements_start_aligned_past_the_header() {
        #[derive(Clone, Copy)]
        #[repr(C, align(512))]
        struct Wide([u8; 512]);
        // SAFETY: 512 bytes, no padding, any bit pattern valid.
        unsafe impl Pod for Wide {}
        let seg = Segment::create::<Wide>(Kind::Array, 3, |_| ()).unwrap();
        assert_eq!(seg.data_offset, 512);
        assert_eq!(seg.data::<Wide>() as usize % 512, 0);
        assert_eq!(Segment::create::<u8>(Kind::Array, 3, |_| ()).unwrap().data_offset, HEADER_SIZE);
    }
}
