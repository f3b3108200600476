//! The shared-memory transport of a [`Pipe`](super::Pipe): one byte ring per
//! direction in a memory file both ends map, eventfd doorbells to wake a
//! sleeper, and the socket pair kept only to learn that the other end is gone.
//!
//! ```text
//! memory file:  [header: 4 KiB][ring 0: written by end 0][ring 1: written by end 1]
//! end e holds:  the file, its socket, its own doorbell, the other end's doorbell
//! ```
//!
//! The rings carry the same byte stream a socket would (8-byte length, then the
//! message), so framing, limits and the end of the stream work as they do over a
//! socket. A ring's positions are byte counts that only grow: the reader owns
//! `head`, the writers own `tail`, and the bytes in `[head, tail)` are the
//! reader's. Copying a message in and out is the whole cost of a send and a
//! receive; no system call is made while both sides are busy.
//!
//! ## Sleeping and waking
//!
//! A receiver that finds nothing to read first watches the ring (spinning,
//! then yielding its processor between looks for up to [`YIELD_FOR`]). A
//! thread that still finds nothing to read (or no room to write) counts itself in
//! its end's `receivers` (`senders`), looks once more, and sleeps in `poll(2)` on
//! its end's doorbell and its socket. The other side, after moving `tail`
//! (`head`), looks at those counts and rings the doorbell when one is not zero.
//! Both sides put a full fence between their store and their load, so either the
//! sleeper sees the new bytes or the other side sees the sleeper.
//!
//! A doorbell is drained by whoever wakes, which might steal the ring meant for
//! another sleeper of the same end; so the drainer looks whether any sleeper left
//! could now go on and, if so, rings the bell again ([`Link::drain`]).
//!
//! ## The end of the stream
//!
//! Nothing is written on the sockets. A socket polls readable only when every
//! copy of the other end is closed (in every process): the reader then takes
//! what the ring still holds, and after that the stream has ended. A writer
//! whose reader is gone finds out the same way, when it has to wait for room,
//! and at a send after the reader took nothing for a while.
//!
//! ## Several processes on one end
//!
//! Writers of one ring, in one process or several, take the ring's robust
//! process-shared mutex for each message, so messages never interleave. A
//! writer that dies halfway through a message leaves the lock "owner died" and
//! the ring marked `partial`: the next writer marks the ring broken, and the
//! reader, having read the part that came, reports a message cut short.
//! Several processes *receiving* on one end would each read ahead parts of
//! messages, as over a socket: receive on an end from one process at a time.

use std::cell::UnsafeCell;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use crate::sys::fd;
use crate::sys::frame::Source;
use crate::sys::futex::{self, Acquired};
use crate::sys::shm::{self, Mapping};
use crate::sys::sock::{Kind, pair};

const MAGIC: u64 = u64::from_le_bytes(*b"mprocpip");

/// Bytes before the first ring (the header, rounded up to a page).
const HEADER_BYTES: u64 = 4096;

/// Bytes in each direction's ring. Pages are allocated as the ring first wraps
/// through them; a pipe that carries only small messages still touches every
/// page eventually, so this is also what a busy pipe costs in memory.
pub(crate) const RING_BYTES: u64 = 1 << 20;

/// `seen_at`: the reader moved `head` since the send before; the grace of
/// [`RECHECK_READER`] starts at the next send that finds it still.
const READER_MOVED: u64 = 0;
/// `seen_at`: no sender has made sure the reader is there yet.
const READER_NEVER_SEEN: u64 = u64::MAX;

/// Times a receiver looks at an empty ring, with a pause instruction between
/// looks, before it starts yielding its processor (a few microseconds in all).
const SPINS: u32 = 100;

/// How long, after its spins, a receiver that found nothing goes on looking
/// between `sched_yield` calls before it sleeps. Yielding instead of spinning
/// hands the processor to whichever thread is ready to run on it (often the
/// very peer being waited for, when there are more busy threads than cores).
const YIELD_FOR: Duration = Duration::from_micros(20);

/// How long a sender that sees its reader take nothing trusts that the reader
/// is still there before it asks the socket again (see [`Link::check_reader`]).
const RECHECK_READER: Duration = Duration::from_millis(1);

/// One ring's shared state. The reader's line and the writers' line are apart,
/// so that the two sides do not take each other's cache line at every message.
#[repr(C)]
struct RingState {
    /// Bytes taken by the reader since the ring was made.
    head: AtomicU64,
    _reader_line: [u64; 7],
    /// Bytes put by writers since the ring was made (under `lock`).
    tail: AtomicU64,
    /// A writer holding `lock` has put part of a message and not the rest.
    partial: AtomicU32,
    /// A writer died in the middle of a message: the stream cannot go on.
    broken: AtomicU32,
    _writer_line: [u64; 6],
    /// Held by a writer for the whole of each message.
    lock: UnsafeCell<libc::pthread_mutex_t>,
}

/// One end's sleepers, as the other end needs to see them.
#[repr(C)]
struct EndState {
    /// Threads of this end asleep waiting for bytes.
    receivers: AtomicU32,
    /// Threads of this end asleep waiting for room.
    senders: AtomicU32,
    /// A `wait` or raw `poll` on this end may sleep on its doorbell uncounted:
    /// ring it for every message until this end next receives one.
    armed: AtomicU32,
    _line: [u32; 13],
}

#[repr(C)]
struct Header {
    magic: AtomicU64,
    capacity: AtomicU64,
    _line: [u64; 6],
    rings: [RingState; 2],
    ends: [EndState; 2],
}

const _: () = assert!(std::mem::size_of::<Header>() as u64 <= HEADER_BYTES);

/// One end of a shared-memory pipe.
#[derive(Debug)]
pub(crate) struct Link {
    map: Mapping,
    file: OwnedFd,
    sock: OwnedFd,
    /// This end's doorbell: its sleepers wait on it.
    bell: OwnedFd,
    /// The other end's doorbell: rung when it may go on.
    peer_bell: OwnedFd,
    /// An epoll instance over `bell` and `sock`: one descriptor that polls
    /// readable when this end may have something to do (for `wait`).
    waiter: OwnedFd,
    /// 0 or 1: this end writes ring `end` and reads ring `1 - end`.
    end: usize,
    capacity: u64,
    /// The socket said the other end is gone (it stays gone).
    peer_gone: AtomicBool,
    /// The reader's `head` when a sender last looked, and when the reader was
    /// last known to be there (nanoseconds after `born`, or [`READER_MOVED`] or
    /// [`READER_NEVER_SEEN`]).
    seen_head: AtomicU64,
    seen_at: AtomicU64,
    born: Instant,
}

/// The descriptors that make up an end, on its way to another process.
pub(crate) struct Parts<'a> {
    pub file: BorrowedFd<'a>,
    pub sock: BorrowedFd<'a>,
    pub bell: BorrowedFd<'a>,
    pub peer_bell: BorrowedFd<'a>,
    pub end: u8,
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the pipe's shared memory is corrupt: {what}"))
}

/// An epoll instance watching `bell` and `sock` for input.
fn waiter(bell: BorrowedFd<'_>, sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: no memory arguments; the result is checked.
    let r = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened and nothing else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(r) };
    for fd in [bell, sock] {
        let mut ev = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32, u64: 0 };
        // SAFETY: `ev` is a valid event for the duration of the call; both
        // descriptors are open.
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(ep)
}

impl Link {
    /// Two connected ends (end 0, end 1) over rings of `capacity` bytes (a power
    /// of two, at least a page).
    pub(crate) fn pair(capacity: u64) -> io::Result<(Link, Link)> {
        debug_assert!(capacity.is_power_of_two() && capacity >= 4096);
        let file = shm::memfd(c"mproc-pipe")?;
        shm::set_len(file.as_fd(), HEADER_BYTES + 2 * capacity)?;
        let map = Mapping::shared(file.as_fd(), HEADER_BYTES as usize)?;
        let header = map.ptr().cast::<Header>();
        for ring in 0..2 {
            // SAFETY: the mapping is a page, larger than `Header` (checked at compile
            // time) and page-aligned; the memory file is new, so no one else uses the
            // mutex yet. `addr_of_mut!` makes no reference to the uninitialised mutex.
            unsafe { futex::mutex_init(UnsafeCell::raw_get(&raw const (*header).rings[ring].lock))? };
        }
        drop(map);
        // The rest of the header is zero, as a new memory file is: positions 0,
        // no sleepers, nothing partial or broken.
        let (s0, s1) = pair(Kind::Stream)?;
        let (b0, b1) = (fd::eventfd()?, fd::eventfd()?);
        let file1 = fd::dup(file.as_fd())?;
        let (p0, p1) = (fd::dup(b1.as_fd())?, fd::dup(b0.as_fd())?);
        {
            let map = Mapping::shared(file.as_fd(), HEADER_BYTES as usize)?;
            // SAFETY: as above; the magic is published last, with release order.
            let h = unsafe { &*map.ptr().cast::<Header>() };
            h.capacity.store(capacity, Ordering::Relaxed);
            h.magic.store(MAGIC, Ordering::Release);
        }
        let a = Link::open(file, s0, b0, p0, 0)?;
        let b = Link::open(file1, s1, b1, p1, 1)?;
        Ok((a, b))
    }

    /// Takes over an end from its descriptors (made by [`pair`](Self::pair), here
    /// or in another process), checking that the memory file is a pipe's.
    pub(crate) fn open(file: OwnedFd, sock: OwnedFd, bell: OwnedFd, peer_bell: OwnedFd, end: u8) -> io::Result<Link> {
        if end > 1 {
            return Err(corrupt(&format!("end {end} of a pipe that has two")));
        }
        let (size, _) = shm::stat(file.as_fd())?;
        if size < HEADER_BYTES {
            return Err(corrupt("the memory file is smaller than a pipe's header"));
        }
        let head = Mapping::shared(file.as_fd(), HEADER_BYTES as usize)?;
        // SAFETY: the mapping is a page, larger than `Header`; every field is an
        // atomic or a mutex only used through the pthread functions.
        let h = unsafe { &*head.ptr().cast::<Header>() };
        if h.magic.load(Ordering::Acquire) != MAGIC {
            return Err(corrupt("the memory file is not a pipe's"));
        }
        let capacity = h.capacity.load(Ordering::Relaxed);
        if !capacity.is_power_of_two()
            || capacity < 4096
            || Some(size) != capacity.checked_mul(2).map(|c| c + HEADER_BYTES)
        {
            return Err(corrupt(&format!("a ring of {capacity} bytes in a file of {size}")));
        }
        drop(head);
        let len = usize::try_from(size).map_err(|_| corrupt("the memory file is larger than the address space"))?;
        let map = Mapping::shared(file.as_fd(), len)?;
        fd::set_nonblocking(sock.as_raw_fd(), true)?;
        let waiter = waiter(bell.as_fd(), sock.as_fd())?;
        for f in [&file, &sock, &bell, &peer_bell, &waiter] {
            crate::handle::track(f.as_raw_fd());
        }
        Ok(Link {
            map,
            file,
            sock,
            bell,
            peer_bell,
            waiter,
            end: end as usize,
            capacity,
            peer_gone: AtomicBool::new(false),
            seen_head: AtomicU64::new(0),
            seen_at: AtomicU64::new(READER_NEVER_SEEN),
            born: Instant::now(),
        })
    }

    /// This end's descriptors, for another process to take it over with [`open`](Self::open).
    pub(crate) fn parts(&self) -> Parts<'_> {
        Parts {
            file: self.file.as_fd(),
            sock: self.sock.as_fd(),
            bell: self.bell.as_fd(),
            peer_bell: self.peer_bell.as_fd(),
            end: self.end as u8,
        }
    }

    /// The descriptor `wait` sleeps on: readable when the doorbell rang or the
    /// other end is gone.
    pub(crate) fn wait_fd(&self) -> BorrowedFd<'_> {
        self.waiter.as_fd()
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a header checked in `open` and lives as
        // long as `self`; every field is an atomic or a mutex used only through
        // the pthread functions.
        unsafe { &*self.map.ptr().cast::<Header>() }
    }

    fn rx(&self) -> &RingState {
        &self.header().rings[1 - self.end]
    }

    fn tx(&self) -> &RingState {
        &self.header().rings[self.end]
    }

    fn me(&self) -> &EndState {
        &self.header().ends[self.end]
    }

    fn peer(&self) -> &EndState {
        &self.header().ends[1 - self.end]
    }

    /// The first byte of ring `ring`.
    fn ring_base(&self, ring: usize) -> *mut u8 {
        // SAFETY: `open` checked that the mapping holds the header and two rings
        // of `capacity` bytes.
        unsafe { self.map.ptr().add((HEADER_BYTES + ring as u64 * self.capacity) as usize) }
    }

    fn ring_bell(bell: BorrowedFd<'_>) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a local array. A full counter (EAGAIN) means
        // the bell is ringing already; nothing else can fail on an open eventfd.
        unsafe { libc::write(bell.as_raw_fd(), one.as_ptr().cast(), 8) };
    }

    /// Whether the other end is gone: every copy of it, in every process, closed.
    /// Once true it stays true.
    pub(crate) fn peer_closed(&self) -> bool {
        if self.peer_gone.load(Ordering::Acquire) {
            return true;
        }
        let gone = fd::poll(&[self.sock.as_fd()], Some(Instant::now())).map_or(true, |r| r.iter().any(|r| r.readable));
        if gone {
            self.peer_gone.store(true, Ordering::Release);
        }
        gone
    }

    /// The most bytes copied in or out of a ring before the other side is told:
    /// a quarter of the ring, so that a large message streams through with both
    /// sides copying at once.
    fn piece(&self) -> u64 {
        self.capacity / 4
    }

    /// Bytes in the incoming ring now (or an error for a corrupt ring).
    fn incoming(&self) -> io::Result<u64> {
        let rx = self.rx();
        let used = rx.tail.load(Ordering::Acquire).wrapping_sub(rx.head.load(Ordering::Relaxed));
        if used > self.capacity {
            return Err(corrupt(&format!("{used} bytes in a ring of {}", self.capacity)));
        }
        Ok(used)
    }

    /// Whether a receive would find something now: bytes in the ring, a broken
    /// ring, or the end of the stream.
    pub(crate) fn input_now(&self) -> bool {
        self.incoming().map_or(true, |n| n > 0) || self.rx().broken.load(Ordering::Acquire) != 0 || self.peer_closed()
    }

    /// Copies up to `len` bytes out of the incoming ring to `dst` and gives their
    /// room back to the writer. Returns how many.
    ///
    /// # Safety
    /// `dst` must be valid for writes of `len` bytes.
    unsafe fn take(&self, dst: *mut u8, len: usize) -> io::Result<usize> {
        let rx = self.rx();
        let head = rx.head.load(Ordering::Relaxed);
        let used = self.incoming()?;
        // A piece at a time, giving each piece's room back before copying the next,
        // so that the writer refills the ring while the reader empties it.
        let n = used.min(len as u64).min(self.piece());
        if n == 0 {
            return Ok(0);
        }
        let at = head & (self.capacity - 1);
        let first = n.min(self.capacity - at);
        let base = self.ring_base(1 - self.end);
        // SAFETY: `[head, head + n)` is within `[head, tail)`, which the writers
        // filled before publishing `tail` (acquired in `incoming`) and do not touch
        // until `head` moves past it; `at + first <= capacity` and `n - first` bytes
        // from the ring's start are inside the ring; `dst` is valid for `len >= n`
        // bytes, and cannot overlap the shared mapping that we own.
        unsafe {
            std::ptr::copy_nonoverlapping(base.add(at as usize), dst, first as usize);
            std::ptr::copy_nonoverlapping(base, dst.add(first as usize), (n - first) as usize);
        }
        rx.head.store(head + n, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.peer().senders.load(Ordering::Relaxed) > 0 {
            Self::ring_bell(self.peer_bell.as_fd());
        }
        Ok(n as usize)
    }

    /// The state of the incoming stream when the ring is empty: ended, broken,
    /// or nothing yet (`WouldBlock`); bytes that came meanwhile are copied as by
    /// [`take`](Self::take).
    ///
    /// # Safety
    /// As for [`take`](Self::take).
    unsafe fn when_empty(&self, buf: *mut u8, len: usize) -> io::Result<usize> {
        if self.rx().broken.load(Ordering::Acquire) != 0 {
            // SAFETY: forwarded from the caller.
            let n = unsafe { self.take(buf, len)? };
            if n > 0 {
                return Ok(n);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a sender died in the middle of a message and the stream cannot go on",
            ));
        }
        if self.peer_closed() {
            // Bytes put before the other end closed are in the ring by now.
            // SAFETY: forwarded from the caller.
            return unsafe { self.take(buf, len) };
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Marks that a `wait` may sleep on this end's descriptor without being
    /// counted, so that senders ring the doorbell until this end next receives.
    pub(crate) fn arm(&self) {
        self.me().armed.store(1, Ordering::SeqCst);
    }

    /// This end received a message: `wait` is done with it.
    pub(crate) fn disarm(&self) {
        let armed = &self.me().armed;
        if armed.load(Ordering::Relaxed) != 0 {
            armed.store(0, Ordering::Relaxed);
        }
    }

    /// Clears the doorbell after a wake-up, then rings it again if a sleeper of
    /// this end other than the caller may now go on (the caller uncounted itself
    /// before): the wake-up drained may have been meant for it.
    pub(crate) fn drain(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a local array; EAGAIN (not rung) is fine.
        unsafe { libc::read(self.bell.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
        fence(Ordering::SeqCst);
        let me = self.me();
        let receivers = me.receivers.load(Ordering::Relaxed) > 0 && self.input_now();
        let senders = me.senders.load(Ordering::Relaxed) > 0 && self.room().is_ok_and(|n| n > 0);
        if receivers || senders {
            Self::ring_bell(self.bell.as_fd());
        }
    }

    /// Sleeps until there may be input, or `deadline` passes. The caller found
    /// none; it looks again after this returns.
    pub(crate) fn sleep_for_input(&self, deadline: Option<Instant>) -> io::Result<()> {
        if self.spin_for_input() {
            return Ok(());
        }
        let receivers = &self.me().receivers;
        receivers.fetch_add(1, Ordering::SeqCst);
        let result = if self.input_now() { Ok(()) } else { self.sleep(deadline) };
        receivers.fetch_sub(1, Ordering::SeqCst);
        self.drain();
        result
    }

    /// Watches the incoming ring before the caller goes to sleep, spinning
    /// [`SPINS`] times, then yielding the processor between looks for up to
    /// [`YIELD_FOR`]: a
    /// peer that is busy sending (or answering) puts the next message in sooner
    /// than a sleep and a wake-up take (two system calls and a context switch
    /// each). Yielding keeps a watcher from holding a processor that the peer,
    /// or anyone else, needs. Returns whether bytes came.
    pub(crate) fn spin_for_input(&self) -> bool {
        let rx = self.rx();
        let head = rx.head.load(Ordering::Relaxed);
        let came = || rx.tail.load(Ordering::Acquire) != head;
        for _ in 0..SPINS {
            if came() {
                return true;
            }
            std::hint::spin_loop();
        }
        // The clock is read only now: a receiver whose bytes come while it
        // spins (the common case between busy peers) reads no clock at all.
        let start = Instant::now();
        while start.elapsed() < YIELD_FOR {
            if came() {
                return true;
            }
            std::thread::yield_now();
        }
        came()
    }

    fn sleep(&self, deadline: Option<Instant>) -> io::Result<()> {
        let ready = fd::poll(&[self.bell.as_fd(), self.sock.as_fd()], deadline)?;
        if ready.get(1).is_some_and(|r| r.readable) {
            self.peer_gone.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Free bytes in the outgoing ring.
    fn room(&self) -> io::Result<u64> {
        let tx = self.tx();
        let used = tx.tail.load(Ordering::Relaxed).wrapping_sub(tx.head.load(Ordering::Acquire));
        if used > self.capacity {
            return Err(corrupt(&format!("{used} bytes in a ring of {}", self.capacity)));
        }
        Ok(self.capacity - used)
    }

    /// Whether the reader is still there, asking the socket only when the reader
    /// has taken nothing since the last time a sender looked and that was more than
    /// [`RECHECK_READER`] ago. A reader that keeps taking is there.
    fn check_reader(&self) -> io::Result<()> {
        let head = self.tx().head.load(Ordering::Relaxed);
        if self.seen_head.load(Ordering::Relaxed) != head {
            // The reader took something since the last send: it is there.
            self.seen_head.store(head, Ordering::Relaxed);
            self.seen_at.store(READER_MOVED, Ordering::Relaxed);
            return Ok(());
        }
        let now = (self.born.elapsed().as_nanos() as u64).clamp(1, READER_NEVER_SEEN - 1);
        match self.seen_at.load(Ordering::Relaxed) {
            READER_MOVED => {
                self.seen_at.store(now, Ordering::Relaxed);
                return Ok(());
            }
            READER_NEVER_SEEN => {}
            at if now.saturating_sub(at) < RECHECK_READER.as_nanos() as u64 => return Ok(()),
            _ => {}
        }
        if self.peer_closed() {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        self.seen_at.store(now, Ordering::Relaxed);
        Ok(())
    }

    /// Writes `parts` into the outgoing ring as one piece of the stream (no other
    /// writer's bytes come between them), waiting for room as needed. A `deadline`
    /// that passes is an error of kind `TimedOut`; a reader that is gone, `EPIPE`.
    pub(crate) fn send(&self, parts: &[&[u8]], deadline: Option<Instant>) -> io::Result<()> {
        self.check_reader()?;
        let tx = self.tx();
        let lock = tx.lock.get();
        // SAFETY: the mutex was initialised by `pair` and lives in the mapping,
        // which outlives this call.
        let acquired = unsafe { futex::mutex_lock(lock)? };
        if acquired == Acquired::OwnerDied {
            if tx.partial.load(Ordering::Relaxed) != 0 {
                tx.broken.store(1, Ordering::Release);
                Self::ring_bell(self.peer_bell.as_fd());
            }
            // SAFETY: this thread holds the lock.
            unsafe { futex::mutex_consistent(lock)? };
        }
        let result = if tx.broken.load(Ordering::Relaxed) != 0 {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "a sender died in the middle of a message on this pipe, which cannot carry more",
            ))
        } else {
            self.put(parts, deadline)
        };
        if result.is_err() && tx.partial.load(Ordering::Relaxed) != 0 {
            // Part of a message went and the rest never will: the stream is cut.
            tx.broken.store(1, Ordering::Release);
            Self::ring_bell(self.peer_bell.as_fd());
        }
        tx.partial.store(0, Ordering::Relaxed);
        // SAFETY: this thread holds the lock.
        unsafe { futex::mutex_unlock(lock) };
        result
    }

    /// [`send`](Self::send)'s copying, lock held.
    fn put(&self, parts: &[&[u8]], deadline: Option<Instant>) -> io::Result<()> {
        let tx = self.tx();
        let base = self.ring_base(self.end);
        let mask = self.capacity - 1;
        let (mut part, mut offset) = (0, 0);
        while part < parts.len() {
            let room = self.room()?.min(self.piece());
            if room == 0 {
                self.sleep_for_room(deadline)?;
                continue;
            }
            let tail = tx.tail.load(Ordering::Relaxed);
            let mut put = 0u64;
            while put < room && part < parts.len() {
                let src = &parts[part][offset..];
                let n = (src.len() as u64).min(room - put);
                let at = (tail + put) & mask;
                let first = n.min(self.capacity - at);
                // SAFETY: `[tail + put, tail + put + n)` lies in the free part of the
                // ring (`put + n <= room`), which the reader does not touch until
                // `tail` is published past it; the two pieces are inside the ring
                // (`at + first <= capacity`); `src` holds at least `n` bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), base.add(at as usize), first as usize);
                    std::ptr::copy_nonoverlapping(src.as_ptr().add(first as usize), base, (n - first) as usize);
                }
                put += n;
                offset += n as usize;
                if offset == parts[part].len() {
                    part += 1;
                    offset = 0;
                }
            }
            if part < parts.len() {
                tx.partial.store(1, Ordering::Relaxed);
            }
            tx.tail.store(tail + put, Ordering::Release);
            fence(Ordering::SeqCst);
            let peer = self.peer();
            if peer.receivers.load(Ordering::Relaxed) > 0 || peer.armed.load(Ordering::Relaxed) != 0 {
                Self::ring_bell(self.peer_bell.as_fd());
            }
        }
        Ok(())
    }

    /// Sleeps until the outgoing ring may have room; `EPIPE` if the reader is gone.
    fn sleep_for_room(&self, deadline: Option<Instant>) -> io::Result<()> {
        let senders = &self.me().senders;
        senders.fetch_add(1, Ordering::SeqCst);
        let result = if self.room()? > 0 {
            Ok(())
        } else if self.peer_closed() {
            Err(io::Error::from_raw_os_error(libc::EPIPE))
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            Err(io::Error::new(io::ErrorKind::TimedOut, "timed out writing a frame"))
        } else {
            self.sleep(deadline)
        };
        senders.fetch_sub(1, Ordering::SeqCst);
        self.drain();
        result
    }

    /// The incoming ring as a [`Source`] for a frame reader.
    pub(crate) fn source(&self) -> RingSource<'_> {
        RingSource(self)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Before the descriptors close, so that their numbers are never tracked for a stranger.
        for f in [&self.file, &self.sock, &self.bell, &self.peer_bell, &self.waiter] {
            crate::handle::untrack(f.as_raw_fd());
        }
    }
}

/// Reads the incoming ring of a [`Link`].
pub(crate) struct RingSource<'a>(&'a Link);

impl Source for RingSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { self.0.take(buf.as_mut_ptr(), buf.len())? };
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        // SAFETY: as above.
        unsafe { self.0.when_empty(buf.as_mut_ptr(), buf.len()) }
    }

    fn append(&mut self, body: &mut Vec<u8>, want: usize) -> io::Result<usize> {
        body.reserve(want);
        let spare: &mut [MaybeUninit<u8>] = &mut body.spare_capacity_mut()[..want];
        let dst = spare.as_mut_ptr().cast::<u8>();
        // SAFETY: `dst` is valid for writes of `want` bytes (reserved above).
        let mut n = unsafe { self.0.take(dst, want)? };
        if n == 0 && want > 0 {
            // SAFETY: as above.
            n = unsafe { self.0.when_empty(dst, want)? };
        }
        let len = body.len();
        // SAFETY: `take` initialised the first `n <= want` bytes of the spare capacity.
        unsafe { body.set_len(len + n) };
        Ok(n)
    }
}
