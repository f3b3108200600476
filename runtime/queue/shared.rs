//! The queue's shared segment: one memfd holding a header and a byte ring,
//! mapped `MAP_SHARED` by every process that has the queue.
//!
//! ```text
//! offset 0      header (one page): magic, version, capacity, maxsize, closed flag,
//!               two copies of the state and the index of the current one,
//!               waiter counts, three futex words, the robust mutex
//! 4096          the ring: `capacity` bytes of records (see ring.rs)
//! 4096 + cap    the spill area: the payload of a message larger than the ring,
//!               written and read with pwrite/pread; the file grows to hold it
//!               and is cut back once it has been taken
//! ```
//!
//! **Lock.** Every operation holds the robust, process-shared mutex in the
//! header. A locker that gets "owner died" repairs (cuts the spill area back to
//! what the state says is in use) and marks the lock consistent.
//!
//! **Commit.** The state (head, tail, items, unfinished tasks, spill area) has
//! two copies. An operation copies its data first (the message into the ring or
//! out of it), then writes the new state into the copy not in use and switches
//! the index with one store: that store is the commit. A process killed before
//! it leaves the old state in force (a half-put message is beyond the tail and
//! never seen; a half-got message is still at the head); killed after it, the
//! new state is whole.
//!
//! **Waiting.** Each condition (not empty, not full, all tasks done) has a
//! futex word, a sequence number bumped under the lock whenever the condition
//! may have changed, and a count of registered waiters. A waiter registers
//! under the lock, reads the word, releases the lock and sleeps while the word
//! is unchanged. A waker that finds registered waiters issues `FUTEX_WAKE` and
//! takes registrations off the count, still holding the lock and before its
//! commit (see [`Segment::signal`] for why); finding none, it makes no system
//! call. A put wakes one consumer (the item serves one); a get wakes every
//! waiting producer (they may need different amounts of room) and, if items
//! remain, one more consumer; close wakes everyone. A waiter that leaves on its
//! own (timeout, death) leaves its registration behind: the count is then too
//! high, which costs one `FUTEX_WAKE` that wakes nobody and is then gone, never
//! a missed wake-up (the count never falls below the sleepers).

use std::cell::UnsafeCell;
use std::fs::File;
use std::io;
use std::mem::offset_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use super::ring::{self, Record, Ring, SPILLED, SPILLED_RECORD};
use crate::error::{Error, Result};
use crate::sys::futex::{self, Acquired};
use crate::sys::shm::{self, Mapping};

const MAGIC: u64 = u64::from_le_bytes(*b"mprocQue");
const VERSION: u32 = 1;
/// Bytes before the ring.
const HEADER_SIZE: u64 = 4096;
/// The ring's capacity is a multiple of this; so is every spill offset.
const GRANULE: u64 = 4096;
/// Smallest ring.
pub(super) const MIN_CAPACITY: u64 = GRANULE;
/// Largest ring.
pub(super) const MAX_CAPACITY: u64 = 1 << 40;
/// Largest message.
pub(super) const MAX_MESSAGE: u64 = 1 << 40;

/// One copy of the queue's state.
#[repr(C)]
struct StateCell {
    head: AtomicU64,
    tail: AtomicU64,
    items: AtomicU64,
    unfinished: AtomicU64,
    spill_bytes: AtomicU64,
    spill_next: AtomicU64,
}

/// The queue's state, as read under the lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct State {
    /// Ring position of the first record.
    pub head: u64,
    /// Ring position just past the last record.
    pub tail: u64,
    /// Messages in the queue.
    pub items: u64,
    /// Messages put and not yet marked done (`task_done`).
    pub unfinished: u64,
    /// Payload bytes in the spill area.
    pub spill_bytes: u64,
    /// Offset in the spill area where the next spilled payload goes.
    pub spill_next: u64,
}

impl State {
    /// Bytes the queue holds: the ring's records and the spilled payloads.
    fn used(&self) -> u64 {
        (self.tail - self.head).saturating_add(self.spill_bytes)
    }
}

/// The header at the start of the memory file. Every field is an atomic (or
/// the mutex, in an `UnsafeCell`), so any bit pattern is a valid header and
/// shared references to it may coexist with other processes' writes.
#[repr(C)]
struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    _reserved: AtomicU32,
    capacity: AtomicU64,
    maxsize: AtomicU64,
    closed: AtomicU32,
    /// Which of `states` is in force (its low bit).
    current: AtomicU32,
    /// How many times a locker found the owner dead.
    recoveries: AtomicU64,
    states: [StateCell; 2],
    get_waiters: AtomicU32,
    put_waiters: AtomicU32,
    join_waiters: AtomicU32,
    /// Futex: bumped when items may have arrived (or the queue closed).
    not_empty: AtomicU32,
    /// Futex: bumped when room may have appeared (or the queue closed).
    not_full: AtomicU32,
    /// Futex: bumped when the unfinished count reached zero.
    all_done: AtomicU32,
    lock: UnsafeCell<libc::pthread_mutex_t>,
}

const _: () = assert!(size_of::<Header>() as u64 <= HEADER_SIZE);
const _: () = assert!(align_of::<Header>() as u64 <= GRANULE);

/// How long an operation may wait.
#[derive(Clone, Copy, Debug)]
pub(super) enum Wait {
    /// Not at all.
    Never,
    /// Until this instant.
    Until(Instant),
    /// As long as it takes.
    Forever,
}

impl Wait {
    /// `Forever` for `None`, else until `now + timeout` (or forever, if that
    /// is beyond what `Instant` holds).
    pub(super) fn after(timeout: Duration) -> Wait {
        Instant::now().checked_add(timeout).map_or(Wait::Forever, Wait::Until)
    }

    /// How long a sleep may last now: `None` if the caller must not sleep,
    /// `Some(None)` for no limit.
    fn left(self) -> Option<Option<Duration>> {
        match self {
            Wait::Never => None,
            Wait::Forever => Some(None),
            Wait::Until(d) => {
                let left = d.saturating_duration_since(Instant::now());
                (!left.is_zero()).then_some(Some(left))
            }
        }
    }
}

/// Where a message goes.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Into the ring, as a record of this many bytes.
    Inline { record: u64 },
    /// Into the spill area; a 16-byte record in the ring says where.
    Spill { len: u64 },
}

impl Plan {
    /// Bytes the message counts for against the capacity.
    fn charge(self) -> u64 {
        match self {
            Plan::Inline { record } => record,
            Plan::Spill { len } => SPILLED_RECORD + len,
        }
    }
}

/// One process's mapping of a queue.
#[derive(Debug)]
pub(super) struct Segment {
    /// The memory file (a `File` for positioned reads and writes of spills).
    fd: File,
    map: Mapping,
    /// The ring's capacity and the item limit (0: none), read once and checked
    /// when the segment was made or opened; never read from the memory again.
    capacity: u64,
    maxsize: u64,
    /// Device and inode of the memory file, to recognise it later.
    identity: (u64, u64),
}

/// Proof that this thread holds the queue's lock; releases it on drop.
struct Locked<'a> {
    seg: &'a Segment,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: the mutex was initialised (checked magic) and is mapped while
        // `seg` lives; this thread holds it (a `Locked` exists only after a
        // successful lock).
        unsafe { futex::mutex_unlock(self.seg.header().lock.get()) }
    }
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidData, format!("the queue's shared memory is corrupt: {what}")))
}

fn round_up(n: u64, to: u64) -> Option<u64> {
    Some(n.checked_add(to - 1)? / to * to)
}

impl Segment {
    /// Makes a new queue: a memory file, mapped, its header initialised.
    pub(super) fn create(maxsize: u64, capacity: u64) -> Result<Segment> {
        let capacity = round_up(capacity.clamp(MIN_CAPACITY, MAX_CAPACITY), GRANULE).unwrap_or(MAX_CAPACITY);
        let total = HEADER_SIZE + capacity;
        let fd = shm::memfd(c"mproc-queue")?;
        shm::set_len(fd.as_fd(), total)?;
        let map = Mapping::shared(fd.as_fd(), to_usize(total)?)?;
        let (_, identity) = shm::stat(fd.as_fd())?;
        let seg = Segment { fd: File::from(fd), map, capacity, maxsize, identity };
        let h = seg.header();
        // SAFETY: the mapping is fresh and page-aligned, holds a whole header,
        // and no other process or thread can reach it yet.
        unsafe { futex::mutex_init(h.lock.get()) }?;
        h.capacity.store(capacity, Relaxed);
        h.maxsize.store(maxsize, Relaxed);
        h.version.store(VERSION, Relaxed);
        h.magic.store(MAGIC, Release);
        crate::handle::track(seg.fd.as_raw_fd());
        Ok(seg)
    }

    /// Maps a queue whose memory file arrived from another process, after
    /// checking that it is one: its size, magic, version and capacity.
    pub(super) fn open(fd: OwnedFd) -> Result<Segment> {
        let fd = File::from(fd);
        let not_a_queue = |what: String| {
            Error::Io(io::Error::new(io::ErrorKind::InvalidData, format!("the descriptor is not a queue: {what}")))
        };
        let (size, identity) = shm::stat(fd.as_fd())?;
        if size < HEADER_SIZE {
            return Err(not_a_queue(format!("its file holds {size} bytes, less than a queue header")));
        }
        let mut prefix = [0u8; 32];
        fd.read_exact_at(&mut prefix, 0)?;
        let word = |at: usize| u64::from_le_bytes(prefix[at..at + 8].try_into().unwrap_or_default());
        let (magic, version) = (word(offset_of!(Header, magic)), word(offset_of!(Header, version)) as u32);
        let (capacity, maxsize) = (word(offset_of!(Header, capacity)), word(offset_of!(Header, maxsize)));
        if magic != MAGIC {
            return Err(not_a_queue("no queue header".into()));
        }
        if version != VERSION {
            return Err(not_a_queue(format!("layout version {version}, this build reads {VERSION}")));
        }
        if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) || capacity % GRANULE != 0 {
            return Err(corrupt(format!("capacity {capacity}")));
        }
        if size < HEADER_SIZE + capacity {
            return Err(corrupt(format!("its file holds {size} bytes, less than its {capacity}-byte ring needs")));
        }
        let map = Mapping::shared(fd.as_fd(), to_usize(HEADER_SIZE + capacity)?)?;
        let seg = Segment { fd, map, capacity, maxsize, identity };
        let h = seg.header();
        if h.magic.load(Acquire) != MAGIC || h.capacity.load(Relaxed) != capacity || h.maxsize.load(Relaxed) != maxsize
        {
            return Err(corrupt("the header changed while it was being read"));
        }
        crate::handle::track(seg.fd.as_raw_fd());
        Ok(seg)
    }

    /// The memory file, for passing the queue on.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(super) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(super) fn maxsize(&self) -> u64 {
        self.maxsize
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping is page-aligned and at least HEADER_SIZE bytes long
        // (checked at creation or opening), which holds a Header (asserted at
        // compile time); every field tolerates any bit pattern and concurrent
        // writers (atomics, and the mutex in an UnsafeCell); the reference borrows
        // `self`, which keeps the mapping alive.
        unsafe { &*self.map.ptr().cast::<Header>() }
    }

    fn ring(&self) -> Ring {
        // SAFETY: the mapping is HEADER_SIZE + capacity bytes long, so the ring's
        // bytes lie inside it; capacity is a non-zero multiple of GRANULE (checked),
        // so of 8; the Ring is used only under the lock, for as long as `self` lives.
        unsafe { Ring::new(self.map.ptr().add(HEADER_SIZE as usize), self.capacity) }
    }

    /// Where the spill area starts in the file.
    fn spill_base(&self) -> u64 {
        HEADER_SIZE + self.capacity
    }

    /// Takes the lock, repairing the queue if its previous owner died holding it.
    fn lock(&self) -> Result<Locked<'_>> {
        let m = self.header().lock.get();
        // SAFETY: the mutex was initialised (the magic was checked) and stays
        // mapped while `self` lives.
        let how = unsafe { futex::mutex_lock(m) }.map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTRECOVERABLE) => Error::Io(io::Error::other(
                "the queue's lock cannot be recovered (a process died while repairing it); make a new queue",
            )),
            _ => Error::Io(e),
        })?;
        let locked = Locked { seg: self };
        if how == Acquired::OwnerDied {
            self.recover(&locked);
            // SAFETY: as above; this thread holds the lock.
            unsafe { futex::mutex_consistent(m) }?;
        }
        Ok(locked)
    }

    /// After the lock's owner died: the state in force is whole (the commit
    /// rule), so only the spill area may hold bytes of an uncommitted message;
    /// cut the file back to what the state uses.
    fn recover(&self, locked: &Locked<'_>) {
        self.header().recoveries.fetch_add(1, Relaxed);
        let Ok(s) = self.state(locked) else { return };
        if self.is_own_file().is_err() {
            return;
        }
        let keep = self.spill_base() + s.spill_next;
        if shm::stat(self.fd.as_fd()).is_ok_and(|(size, _)| size > keep) {
            let _ = shm::set_len(self.fd.as_fd(), keep);
        }
    }

    /// The state in force, checked.
    fn state(&self, _locked: &Locked<'_>) -> Result<State> {
        let h = self.header();
        let c = &h.states[(h.current.load(Acquire) & 1) as usize];
        let s = State {
            head: c.head.load(Relaxed),
            tail: c.tail.load(Relaxed),
            items: c.items.load(Relaxed),
            unfinished: c.unfinished.load(Relaxed),
            spill_bytes: c.spill_bytes.load(Relaxed),
            spill_next: c.spill_next.load(Relaxed),
        };
        check_state(&s, self.capacity)?;
        Ok(s)
    }

    /// Makes `s` the state in force: the commit point of every operation.
    fn commit(&self, _locked: &Locked<'_>, s: &State) {
        let h = self.header();
        let next = (h.current.load(Relaxed) & 1) ^ 1;
        let c = &h.states[next as usize];
        c.head.store(s.head, Relaxed);
        c.tail.store(s.tail, Relaxed);
        c.items.store(s.items, Relaxed);
        c.unfinished.store(s.unfinished, Relaxed);
        c.spill_bytes.store(s.spill_bytes, Relaxed);
        c.spill_next.store(s.spill_next, Relaxed);
        // Release: the copy above, and the message bytes before it, are visible
        // to whoever sees the new index.
        h.current.store(next, Release);
    }

    /// Whether the descriptor still refers to this queue's file: a child forked
    /// to run a task by name has its inherited handles pointed at `/dev/null`.
    fn is_own_file(&self) -> Result<()> {
        match shm::stat(self.fd.as_fd()) {
            Ok((_, id)) if id == self.identity => Ok(()),
            _ => Err(Error::Misuse {
                what: "this queue was inherited by a forked child rather than passed to it, and its descriptor is \
                       gone: pass the queue as a task argument"
                    .into(),
            }),
        }
    }

    fn plan(&self, len: usize) -> Result<Plan> {
        let len = len as u64;
        if len > MAX_MESSAGE {
            return Err(Error::Codec(format!(
                "a message of {len} bytes is larger than a queue carries ({MAX_MESSAGE} bytes)"
            )));
        }
        Ok(match ring::inline_record(len) {
            Some(record) if record <= self.capacity => Plan::Inline { record },
            _ => Plan::Spill { len },
        })
    }

    fn has_room(&self, s: &State, plan: Plan) -> bool {
        if self.maxsize != 0 && s.items >= self.maxsize {
            return false;
        }
        let used = s.used();
        // A message larger than the capacity is taken when the queue is empty.
        used == 0 || used.saturating_add(plan.charge()) <= self.capacity
    }

    /// Puts one encoded message, waiting for room as `wait` allows.
    pub(super) fn put(&self, bytes: &[u8], wait: Wait) -> Result<()> {
        self.put_with(bytes, wait, None)
    }

    /// [`put`](Self::put); with `stall`, copies the message, then runs `stall`
    /// with the lock held and returns without committing (a test hook).
    fn put_with(&self, bytes: &[u8], wait: Wait, stall: Option<&mut dyn FnMut()>) -> Result<()> {
        let plan = self.plan(bytes.len())?;
        let h = self.header();
        loop {
            let locked = self.lock()?;
            if h.closed.load(Relaxed) != 0 {
                return Err(Error::Closed);
            }
            let s = self.state(&locked)?;
            if self.has_room(&s, plan) {
                let new = self.write(&locked, &s, bytes, plan)?;
                if let Some(stall) = stall {
                    stall();
                    return Ok(());
                }
                // One consumer: the item serves one.
                self.signal(&locked, &h.not_empty, &h.get_waiters, 1);
                self.commit(&locked, &new);
                return Ok(());
            }
            let Some(left) = wait.left() else { return Err(Error::Full) };
            h.put_waiters.store(h.put_waiters.load(Relaxed).saturating_add(1), Relaxed);
            let seq = h.not_full.load(Relaxed);
            drop(locked);
            futex::wait(&h.not_full, seq, left)?;
        }
    }

    /// Copies the message into the ring (or the spill area) and returns the
    /// state that commits it.
    fn write(&self, _locked: &Locked<'_>, s: &State, bytes: &[u8], plan: Plan) -> Result<State> {
        let ring = self.ring();
        let mut new = *s;
        match plan {
            Plan::Inline { record } => {
                if !(ring.write_u64(s.tail, bytes.len() as u64) && ring.write(s.tail + 8, bytes)) {
                    return Err(corrupt("a record does not fit the ring"));
                }
                new.tail += record;
            }
            Plan::Spill { len } => {
                self.is_own_file()?;
                let offset = s.spill_next;
                let end = round_up(offset.saturating_add(len), GRANULE)
                    .filter(|end| self.spill_base().saturating_add(*end) <= shm::MAX_OFFSET)
                    .ok_or_else(|| Error::Io(io::Error::other("the queue's spill area is exhausted")))?;
                if let Err(e) = self.fd.write_all_at(bytes, self.spill_base() + offset) {
                    // Give back whatever part was written (out of memory, say).
                    let _ = shm::set_len(self.fd.as_fd(), self.spill_base() + offset);
                    return Err(Error::Io(e));
                }
                if !(ring.write_u64(s.tail, SPILLED | len) && ring.write_u64(s.tail + 8, offset)) {
                    return Err(corrupt("a record does not fit the ring"));
                }
                new.tail += SPILLED_RECORD;
                new.spill_bytes += len;
                new.spill_next = end;
            }
        }
        new.items += 1;
        new.unfinished = new.unfinished.saturating_add(1);
        Ok(new)
    }

    /// Takes the message at the head, waiting for one as `wait` allows.
    /// After [`close`](Self::close), an empty queue answers [`Error::Closed`].
    pub(super) fn get(&self, wait: Wait) -> Result<Vec<u8>> {
        self.get_with(wait, None)
    }

    /// [`get`](Self::get); with `stall`, copies the message out, then runs
    /// `stall` with the lock held and returns the message without committing
    /// (a test hook).
    fn get_with(&self, wait: Wait, stall: Option<&mut dyn FnMut()>) -> Result<Vec<u8>> {
        let h = self.header();
        loop {
            let locked = self.lock()?;
            let s = self.state(&locked)?;
            if s.items > 0 {
                let (bytes, new, spilled) = self.read_head(&locked, &s)?;
                if let Some(stall) = stall {
                    stall();
                    return Ok(bytes);
                }
                // Every waiting producer: they may need different amounts of room.
                self.signal(&locked, &h.not_full, &h.put_waiters, i32::MAX);
                if new.items > 0 {
                    // Pass the turn on: a consumer woken for an item may have
                    // died before taking it, or another may have taken it first.
                    self.signal(&locked, &h.not_empty, &h.get_waiters, 1);
                }
                self.commit(&locked, &new);
                if let Some((offset, len)) = spilled {
                    self.release_spill(&new, offset, len);
                }
                return Ok(bytes);
            }
            if h.closed.load(Relaxed) != 0 {
                return Err(Error::Closed);
            }
            let Some(left) = wait.left() else { return Err(Error::Empty) };
            h.get_waiters.store(h.get_waiters.load(Relaxed).saturating_add(1), Relaxed);
            let seq = h.not_empty.load(Relaxed);
            drop(locked);
            futex::wait(&h.not_empty, seq, left)?;
        }
    }

    /// Copies out the message at the head; returns it, the state that commits
    /// taking it, and where its payload was in the spill area, if it was there.
    #[allow(clippy::type_complexity)]
    fn read_head(&self, _locked: &Locked<'_>, s: &State) -> Result<(Vec<u8>, State, Option<(u64, u64)>)> {
        let ring = self.ring();
        let used = s.tail - s.head;
        let word = ring.read_u64(s.head).ok_or_else(|| corrupt("the ring is unreadable"))?;
        let (record, size) = Record::parse(word, used).map_err(corrupt)?;
        let mut new = *s;
        new.head += size;
        new.items -= 1;
        let spilled = match record {
            Record::Inline { len } => {
                let mut bytes = vec![0u8; to_usize(len)?];
                if !ring.read(s.head + 8, &mut bytes) {
                    return Err(corrupt("a record does not fit the ring"));
                }
                return Ok((bytes, new, None));
            }
            Record::Spilled { len } => {
                let offset = ring.read_u64(s.head + 8).ok_or_else(|| corrupt("the ring is unreadable"))?;
                if len > s.spill_bytes
                    || offset % GRANULE != 0
                    || offset.checked_add(len).is_none_or(|e| e > s.spill_next)
                {
                    return Err(corrupt(format!(
                        "a spilled message of {len} bytes at {offset} lies outside the spill area in use"
                    )));
                }
                (offset, len)
            }
        };
        let (offset, len) = spilled;
        self.is_own_file()?;
        let at = self.spill_base() + offset;
        let (size, _) = shm::stat(self.fd.as_fd())?;
        if size < at + len {
            return Err(corrupt(format!("a spilled message of {len} bytes ends past the file ({size} bytes)")));
        }
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(to_usize(len)?).map_err(|_| {
            Error::Io(io::Error::new(io::ErrorKind::OutOfMemory, format!("no memory for a message of {len} bytes")))
        })?;
        bytes.resize(len as usize, 0);
        self.fd.read_exact_at(&mut bytes, at)?;
        new.spill_bytes -= len;
        if new.spill_bytes == 0 {
            new.spill_next = 0;
        }
        Ok((bytes, new, Some(spilled)))
    }

    /// Frees the pages of a spilled payload that was taken (lock held): the
    /// whole spill area when it is now empty, else just that payload's pages.
    fn release_spill(&self, new: &State, offset: u64, len: u64) {
        if new.spill_bytes == 0 {
            let _ = shm::set_len(self.fd.as_fd(), self.spill_base());
        } else if let Some(padded) = round_up(len, GRANULE) {
            let _ = shm::punch_hole(self.fd.as_fd(), self.spill_base() + offset, padded);
        }
    }

    /// Tells the waiters on `word` that what they wait for may have changed:
    /// bumps the word, and if any are registered, wakes `n` of them (`i32::MAX`:
    /// all) and takes as many registrations off the count (all, for all).
    ///
    /// Called with the lock held and **before** the commit, in this order, so
    /// that a process killed at any point wakes nobody in vain and strands nobody:
    /// killed before the wake, it commits nothing either; between the wake and
    /// the commit, the woken process finds the lock's owner dead, sees the old
    /// state and waits again; between the wake and taking registrations off, the
    /// count is too high (one wasted wake later), never too low.
    fn signal(&self, _locked: &Locked<'_>, word: &AtomicU32, waiters: &AtomicU32, n: i32) {
        bump(word);
        let registered = waiters.load(Relaxed);
        if registered == 0 {
            return;
        }
        // It cannot fail on a valid address; if it did, the waiter would wait
        // for the next wake.
        let _ = futex::wake(word, n);
        waiters.store(if n == i32::MAX { 0 } else { registered.saturating_sub(n as u32) }, Relaxed);
    }

    /// The state, read under the lock.
    pub(super) fn snapshot(&self) -> Result<State> {
        let locked = self.lock()?;
        self.state(&locked)
    }

    /// Whether a put would find no room now.
    pub(super) fn is_full(&self) -> bool {
        self.snapshot().is_ok_and(|s| {
            (self.maxsize != 0 && s.items >= self.maxsize) || (s.used() > 0 && s.used() + 8 > self.capacity)
        })
    }

    pub(super) fn is_closed(&self) -> bool {
        self.header().closed.load(Acquire) != 0
    }

    /// Closes the queue for every process: puts fail, gets drain then fail.
    pub(super) fn close(&self) {
        let h = self.header();
        match self.lock() {
            Ok(locked) => {
                self.signal(&locked, &h.not_empty, &h.get_waiters, i32::MAX);
                self.signal(&locked, &h.not_full, &h.put_waiters, i32::MAX);
                h.closed.store(1, Release);
            }
            Err(_) => {
                // The lock is unusable, and so is the queue: tell everyone anyway.
                h.closed.store(1, Release);
                bump(&h.not_empty);
                bump(&h.not_full);
                let _ = futex::wake(&h.not_empty, i32::MAX);
                let _ = futex::wake(&h.not_full, i32::MAX);
            }
        }
    }

    /// Marks one message done (`JoinableQueue::task_done`).
    pub(super) fn task_done(&self) -> Result<()> {
        let h = self.header();
        let locked = self.lock()?;
        let mut s = self.state(&locked)?;
        if s.unfinished == 0 {
            return Err(Error::Misuse {
                what: "task_done() was called more times than items were put on the queue".into(),
            });
        }
        s.unfinished -= 1;
        if s.unfinished == 0 {
            self.signal(&locked, &h.all_done, &h.join_waiters, i32::MAX);
        }
        self.commit(&locked, &s);
        Ok(())
    }

    /// Waits until every message put has been marked done; false on timeout.
    pub(super) fn join(&self, wait: Wait) -> Result<bool> {
        let h = self.header();
        loop {
            let locked = self.lock()?;
            if self.state(&locked)?.unfinished == 0 {
                return Ok(true);
            }
            let Some(left) = wait.left() else { return Ok(false) };
            h.join_waiters.store(h.join_waiters.load(Relaxed).saturating_add(1), Relaxed);
            let seq = h.all_done.load(Relaxed);
            drop(locked);
            futex::wait(&h.all_done, seq, left)?;
        }
    }

    /// Test hook: runs `f` with the lock held.
    pub(super) fn with_lock_held<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let _locked = self.lock()?;
        Ok(f())
    }

    /// Test hook: copies a message in, runs `f` with the lock held, never commits.
    pub(super) fn stall_put(&self, bytes: &[u8], f: &mut dyn FnMut()) -> Result<()> {
        self.put_with(bytes, Wait::Never, Some(f))
    }

    /// Test hook: copies the head message out, runs `f` with the lock held,
    /// never commits.
    pub(super) fn stall_get(&self, f: &mut dyn FnMut()) -> Result<Vec<u8>> {
        self.get_with(Wait::Never, Some(f))
    }

    /// The memory file's size in bytes.
    pub(super) fn file_len(&self) -> u64 {
        shm::stat(self.fd.as_fd()).map_or(0, |(size, _)| size)
    }

    /// How many times a locker found the lock's owner dead.
    pub(super) fn recoveries(&self) -> u64 {
        self.header().recoveries.load(Relaxed)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // Before the descriptor closes, so that its number is never tracked for a stranger.
        crate::handle::untrack(self.fd.as_raw_fd());
    }
}

/// Bumps a futex sequence word (lock held: a plain read and write would do,
/// but the word is shared, so it stays atomic).
fn bump(word: &AtomicU32) {
    word.store(word.load(Relaxed).wrapping_add(1), Release);
}

fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::Io(io::Error::other(format!("{n} bytes do not fit in memory"))))
}

/// Checks a state read from shared memory before anything trusts it.
fn check_state(s: &State, capacity: u64) -> Result<()> {
    // Positions only grow, by at most the bytes that went through the queue:
    // 2^62 is beyond reach (4 EiB), and leaves room for arithmetic on them.
    if s.head > s.tail || s.tail > 1 << 62 || s.tail - s.head > capacity || s.head % 8 != 0 || s.tail % 8 != 0 {
        return Err(corrupt(format!("head {} and tail {} in a {capacity}-byte ring", s.head, s.tail)));
    }
    let ring_bytes = s.tail - s.head;
    if (s.items == 0) != (ring_bytes == 0) || s.items > ring_bytes / 8 {
        return Err(corrupt(format!("{} items in {ring_bytes} bytes", s.items)));
    }
    if s.spill_next % GRANULE != 0 || s.spill_next > shm::MAX_OFFSET / 2 || s.spill_bytes > s.spill_next {
        return Err(corrupt(format!("spill area {} bytes used of {}", s.spill_bytes, s.spill_next)));
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn state(head: u64, tail: u64, items: u64) -> State {
        State { head, tail, items, ..State::default() }
    }

    #[test]
    fn consistent_states_pass_the_check() {
        assert!(check_state(&state(0, 0, 0), 4096).is_ok());
        assert!(check_state(&state(8000, 8000 + 4096, 3), 4096).is_ok());
        let spilled = State { head: 16, tail: 32, items: 1, spill_bytes: 5000, spill_next: 8192, ..State::default() };
        assert!(check_state(&spilled, 4096).is_ok());
    }

    #[test]
    fn corrupt_states_are_errors() {
        for bad in [
            state(16, 8, 0),                      // head past tail
            state(0, 4096 + 8, 1),                // more than the ring holds
            state(3, 11, 1),                      // unaligned
            state(0, 16, 0),                      // bytes but no items
            state(0, 0, 1),                       // items but no bytes
            state(0, 16, 3),                      // more items than records fit
            state(u64::MAX - 7, u64::MAX - 7, 0), // positions out of reach
            State { spill_bytes: 10, ..state(0, 0, 0) },
            State { spill_next: 100, ..state(0, 0, 0) },
        ] {
            let err = check_state(&bad, 4096).unwrap_err();
            assert!(err.to_string().contains("corrupt"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_memory_file_that_is_not_a_queue_is_refused() {
        let fd = shm::memfd(c"test").unwrap();
        assert!(Segment::open(fd.try_clone().unwrap()).is_err()); // empty
        shm::set_len(fd.as_fd(), 1 << 20).unwrap();
        let err = Segment::open(fd.try_clone().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a queue"), "{err}");
    }

    #[test]
    fn a_header_with_a_capacity_beyond_the_file_is_refused() {
        let seg = Segment::create(0, 8192).unwrap();
        let fd = seg.fd().try_clone_to_owned().unwrap();
        seg.header().capacity.store(1 << 30, Relaxed);
        let err = Segment::open(fd).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn a_corrupt_record_length_is_an_error_not_a_read_out_of_bounds() {
        let seg = Segment::create(0, 4096).unwrap();
        seg.put(b"hello", Wait::Never).unwrap();
        // Overwrite the record's length with one far beyond the ring.
        assert!(seg.ring().write_u64(0, 1 << 40));
        let err = seg.get(Wait::Never).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        // Put it back: the queue works again.
        assert!(seg.ring().write_u64(0, 5));
        assert_eq!(seg.get(Wait::Never).unwrap(), b"hello");
    }

    #[test]
    fn records_wrap_around_the_end_of_the_ring() {
        let seg = Segment::create(0, 4096).unwrap();
        let msg: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        // 1008-byte records, at most three queued: every fourth straddles the
        // end of the 4096-byte ring.
        let mut next = 0u8;
        for round in 0..20u8 {
            let mut m = msg.clone();
            m[0] = round;
            seg.put(&m, Wait::Never).unwrap();
            if round >= 2 {
                let got = seg.get(Wait::Never).unwrap();
                assert_eq!((got[0], &got[1..]), (next, &msg[1..]));
                next += 1;
            }
        }
        while let Ok(got) = seg.get(Wait::Never) {
            assert_eq!((got[0], &got[1..]), (next, &msg[1..]));
            next += 1;
        }
        assert_eq!(next, 20);
        let s = seg.snapshot().unwrap();
        assert_eq!(s.items, 0);
        assert!(s.tail > 4096 * 4);
    }

    #[test]
    fn an_uncommitted_put_or_get_leaves_the_state_as_it_was() {
        let seg = Segment::create(0, 4096).unwrap();
        seg.put(b"first", Wait::Never).unwrap();
        seg.stall_put(b"half-put", &mut || {}).unwrap();
        assert_eq!(seg.stall_get(&mut || {}).unwrap(), b"first");
        assert_eq!(seg.snapshot().unwrap().items, 1);
        assert_eq!(seg.get(Wait::Never).unwrap(), b"first");
        assert!(matches!(seg.get(Wait::Never), Err(Error::Empty)));
    }

    #[test]
    fn a_message_larger_than_the_ring_goes_through_the_spill_area_and_is_freed() {
        let seg = Segment::create(0, 4096).unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        seg.put(&big, Wait::Never).unwrap();
        // Nothing else fits while it is there.
        assert!(matches!(seg.put(b"x", Wait::Never), Err(Error::Full)));
        assert_eq!(seg.get(Wait::Never).unwrap(), big);
        assert_eq!(shm::stat(seg.fd()).unwrap().0, HEADER_SIZE + 4096);
        assert_eq!(seg.snapshot().unwrap(), State { head: 16, tail: 16, unfinished: 1, ..State::default() });
    }
}
