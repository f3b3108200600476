//! Length-prefixed frames over a byte stream.
//!
//! A frame is an 8-byte little-endian length followed by that many bytes. The
//! length is checked against a maximum before anything is allocated, and the
//! buffer grows only as bytes actually arrive, so a corrupt or hostile prefix
//! costs an error, not memory.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Instant;

use super::fd::wait_writable;
use super::sock;

/// Largest frame accepted by default (1 GiB).
pub(crate) const DEFAULT_MAX_FRAME: u64 = 1 << 30;

const HEADER: usize = 8;

/// Writes one frame, waiting for room when the descriptor is non-blocking.
/// `deadline` bounds the whole write; on timeout the error kind is `TimedOut`.
pub(crate) fn write_frame(fd: BorrowedFd<'_>, payload: &[u8], deadline: Option<Instant>) -> io::Result<()> {
    let header = (payload.len() as u64).to_le_bytes();
    // Usually one system call carries the whole frame; a full socket buffer
    // leaves the rest to the loop below.
    let sent = match sock::send_parts(fd, &[&header, payload]) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    if sent < HEADER {
        write_all(fd, &header[sent..], deadline)?;
        write_all(fd, payload, deadline)
    } else {
        write_all(fd, &payload[sent - HEADER..], deadline)
    }
}

/// [`write_frame`] on a blocking socket, with `fds` attached to the frame's first
/// byte (they arrive with it: see [`read_frame_with_fds`]).
pub(crate) fn write_frame_with_fds(fd: BorrowedFd<'_>, payload: &[u8], fds: &[OwnedFd]) -> io::Result<()> {
    if fds.is_empty() {
        return write_frame(fd, payload, None);
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let header = (payload.len() as u64).to_le_bytes();
    let sent = sock::send_parts_with_fds(fd, &[&header, payload], &raw)?;
    if sent < HEADER {
        write_all(fd, &header[sent..], None)?;
        write_all(fd, payload, None)
    } else {
        write_all(fd, &payload[sent - HEADER..], None)
    }
}

/// Reads one whole frame from a blocking socket, and the descriptors that came
/// with it; `None` at a clean end of stream. Never reads past the frame.
pub(crate) fn read_frame_with_fds(fd: BorrowedFd<'_>, max: u64) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut fds = Vec::new();
    let mut header = [0u8; HEADER];
    let mut have = 0;
    while have < HEADER {
        let (n, mut more) = sock::recv_with_fds(fd, &mut header[have..])?;
        fds.append(&mut more);
        if n == 0 {
            if have == 0 && fds.is_empty() {
                return Ok(None);
            }
            return Err(truncated());
        }
        have += n;
    }
    let len = u64::from_le_bytes(header);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the maximum of {max} bytes"),
        ));
    }
    let len = len as usize;
    let mut body = Vec::new();
    while body.len() < len {
        // Grow by what we are about to read, never by the claimed length.
        let old = body.len();
        body.resize(old + (len - old).min(1 << 20), 0);
        let (n, mut more) = sock::recv_with_fds(fd, &mut body[old..])?;
        fds.append(&mut more);
        body.truncate(old + n);
        if n == 0 {
            return Err(truncated());
        }
    }
    Ok(Some((body, fds)))
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8], deadline: Option<Instant>) -> io::Result<()> {
    while !buf.is_empty() {
        match sock::send(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !wait_writable(fd, deadline)? {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out writing a frame"));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What one call to [`FrameReader::read_some`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// A whole frame arrived.
    Frame(Vec<u8>),
    /// Nothing more can be read now (non-blocking descriptor).
    Pending,
    /// The stream ended cleanly between frames.
    Eof,
}

/// Frames up to this size are assembled in the reader's buffer; larger ones are
/// read straight into their own allocation.
const SMALL: usize = 64 << 10;

/// Reassembles frames from reads that may stop anywhere, keeping partial data
/// between calls (so a read that times out halfway loses nothing).
///
/// A reader made with [`new`](FrameReader::new) never reads past the frame in
/// progress, so the descriptor can be handed on afterwards; one made with
/// [`buffered`](FrameReader::buffered) owns its stream and reads ahead, so that
/// many small frames cost one system call.
#[derive(Debug)]
pub(crate) struct FrameReader {
    max: u64,
    /// Bytes read and not handed out yet are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    read_ahead: bool,
    /// A frame larger than [`SMALL`] being read in place: its body so far, and its length.
    large: Option<(Vec<u8>, usize)>,
    /// Descriptors received on the stream and not taken yet (`None`: not receiving any).
    fds: Option<VecDeque<OwnedFd>>,
}

impl FrameReader {
    /// A reader that takes exactly one frame at a time from the stream.
    pub(crate) fn new(max: u64) -> FrameReader {
        FrameReader { max, buf: Vec::new(), start: 0, end: 0, read_ahead: false, large: None, fds: None }
    }

    /// Changes the largest frame accepted, from the next frame whose length has
    /// not been read yet.
    pub(crate) fn set_max(&mut self, max: u64) {
        self.max = max;
    }

    /// The bytes taken off the stream and not handed out yet, as they came (a
    /// partial frame included), so that another reader can go on where this one is.
    pub(crate) fn unread(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        if let Some((body, len)) = &self.large {
            bytes.extend_from_slice(&(*len as u64).to_le_bytes());
            bytes.extend_from_slice(body);
        }
        bytes.extend_from_slice(&self.buf[self.start..self.end]);
        bytes
    }

    /// Puts bytes taken from another reader ([`unread`](Self::unread)) in front
    /// of what this one will read. For a reader that has read nothing yet.
    pub(crate) fn preload(&mut self, bytes: &[u8]) {
        let avail = self.end - self.start;
        if self.buf.len() < avail + bytes.len() {
            self.buf.resize(avail + bytes.len(), 0);
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.buf[avail..avail + bytes.len()].copy_from_slice(bytes);
        self.start = 0;
        self.end = avail + bytes.len();
    }

    /// Makes the reader collect descriptors sent on the stream (`SCM_RIGHTS`),
    /// to be claimed with [`take_fds`](Self::take_fds) in the order they came.
    pub(crate) fn receiving_fds(mut self) -> FrameReader {
        self.fds = Some(VecDeque::new());
        self
    }

    /// The next `n` descriptors received, oldest first; `None` if fewer came.
    pub(crate) fn take_fds(&mut self, n: usize) -> Option<Vec<OwnedFd>> {
        let fds = self.fds.as_mut()?;
        if fds.len() < n {
            return None;
        }
        Some(fds.drain(..n).collect())
    }

    /// A reader that reads ahead (up to 64 KiB at a time); it must be the only
    /// reader of its stream for as long as the stream is used.
    pub(crate) fn buffered(max: u64) -> FrameReader {
        FrameReader { max, buf: vec![0; HEADER + SMALL], start: 0, end: 0, read_ahead: true, large: None, fds: None }
    }

    /// True when no part of a frame has been read (a stream may end cleanly here).
    pub(crate) fn is_between_frames(&self) -> bool {
        self.large.is_none() && self.start == self.end
    }

    /// True when a whole frame is already buffered, so `read_some` returns it
    /// without reading (a poll on the descriptor would not see it).
    pub(crate) fn has_frame(&self) -> bool {
        let avail = self.end - self.start;
        if self.large.as_ref().is_some_and(|(body, len)| body.len() == *len) {
            return true;
        }
        avail >= HEADER && (avail - HEADER) as u64 >= self.buffered_len()
    }

    /// The length announced by the buffered header (call with a header buffered).
    fn buffered_len(&self) -> u64 {
        let mut header = [0u8; HEADER];
        header.copy_from_slice(&self.buf[self.start..self.start + HEADER]);
        u64::from_le_bytes(header)
    }

    /// Reads what is available. On a blocking descriptor this returns only once a
    /// frame is complete or the stream ended.
    pub(crate) fn read_some(&mut self, fd: BorrowedFd<'_>) -> io::Result<Progress> {
        let mut fds = self.fds.take();
        let progress = self.read_from(&mut FdSource { fd, fds: &mut fds });
        self.fds = fds;
        progress
    }

    /// [`read_some`](Self::read_some) from any byte stream.
    pub(crate) fn read_from(&mut self, source: &mut impl Source) -> io::Result<Progress> {
        loop {
            if let Some((body, len)) = &mut self.large {
                let len = *len;
                if body.len() == len {
                    let frame = std::mem::take(body);
                    self.large = None;
                    return Ok(Progress::Frame(frame));
                }
                // Grow with what arrives (doubling), never by the claimed length at once.
                let want = (len - body.len()).min(body.len().max(1 << 20));
                let n = match source.append(body, want) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Progress::Pending),
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    return Err(truncated());
                }
                continue;
            }
            let avail = self.end - self.start;
            let need = if avail < HEADER {
                HEADER - avail
            } else {
                let len = self.buffered_len();
                if len > self.max {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("frame of {len} bytes exceeds the maximum of {} bytes", self.max),
                    ));
                }
                let len = len as usize;
                let body = self.start + HEADER;
                if avail - HEADER >= len {
                    let frame = self.buf[body..body + len].to_vec();
                    self.start = body + len;
                    if self.start == self.end {
                        self.start = 0;
                        self.end = 0;
                    }
                    return Ok(Progress::Frame(frame));
                }
                if len > SMALL {
                    let mut frame = Vec::new();
                    frame.extend_from_slice(&self.buf[body..self.end]);
                    self.start = 0;
                    self.end = 0;
                    self.large = Some((frame, len));
                    continue;
                }
                HEADER + len - avail
            };
            let ask = if !self.read_ahead {
                need
            } else if self.buf.len() - self.end >= need {
                self.buf.len() - self.end
            } else {
                self.buf.len() - avail
            };
            if self.end + ask > self.buf.len() && self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end = avail;
                self.start = 0;
            }
            if self.end + ask > self.buf.len() {
                self.buf.resize(self.end + ask, 0);
            }
            let n = match source.read(&mut self.buf[self.end..self.end + ask]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Progress::Pending),
                Err(e) => return Err(e),
            };
            if n == 0 {
                if avail == 0 {
                    return Ok(Progress::Eof);
                }
                return Err(truncated());
            }
            self.end += n;
        }
    }
}

/// A byte stream frames are read from: a descriptor, or a pipe's ring in shared memory.
pub(crate) trait Source {
    /// Reads up to `buf.len()` bytes: `Ok(0)` at the end of the stream, an error
    /// of kind `WouldBlock` when nothing is there now.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Reads up to `want` more bytes onto the end of `body`, as [`read`](Self::read).
    fn append(&mut self, body: &mut Vec<u8>, want: usize) -> io::Result<usize> {
        append_by_read(self, body, want)
    }
}

/// [`Source::append`] through [`Source::read`], into zero-filled room.
fn append_by_read(source: &mut (impl Source + ?Sized), body: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    let old = body.len();
    body.resize(old + want, 0);
    let r = source.read(&mut body[old..]);
    body.truncate(old + *r.as_ref().unwrap_or(&0));
    r
}

/// A descriptor as a [`Source`], collecting the descriptors that come with the
/// bytes into `fds` when it is `Some`.
struct FdSource<'a, 'fd> {
    fd: BorrowedFd<'fd>,
    fds: &'a mut Option<VecDeque<OwnedFd>>,
}

impl Source for FdSource<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.fds {
            None => sock::read(self.fd, buf),
            Some(queue) => {
                let (n, got) = sock::recv_with_fds(self.fd, buf)?;
                queue.extend(got);
                Ok(n)
            }
        }
    }

    fn append(&mut self, body: &mut Vec<u8>, want: usize) -> io::Result<usize> {
        if self.fds.is_some() {
            // Descriptors may come with these bytes: read through recvmsg.
            return append_by_read(self, body, want);
        }
        // Straight into the spare capacity: a large frame is not zero-filled first.
        let old = body.len();
        body.reserve(want);
        loop {
            // SAFETY: `reserve` made room for `want` bytes after `old`; read(2) writes
            // at most that many there and reports how many it wrote.
            let r = unsafe { libc::read(self.fd.as_raw_fd(), body.as_mut_ptr().add(old).cast(), want) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let n = r as usize;
            // SAFETY: the kernel initialised these `n` bytes, within the capacity reserved above.
            unsafe { body.set_len(old + n) };
            return Ok(n);
        }
    }
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ended in the middle of a frame")
}

#[cfg(test)]
/// Reads one whole frame from a blocking descriptor; `None` at a clean end of stream.
pub(crate) fn read_frame(fd: BorrowedFd<'_>, max: u64) -> io::Result<Option<Vec<u8>>> {
    let mut r = FrameReader::new(max);
    match r.read_some(fd)? {
        Progress::Frame(f) => Ok(Some(f)),
        Progress::Eof => Ok(None),
        Progress::Pending => Err(io::Error::new(io::ErrorKind::WouldBlock, "descriptor is non-blocking")),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sys::sock::{Kind, pair};
    use std::os::fd::AsFd;

    #[test]
    fn frames_keep_their_boundaries_and_order() {
        let (a, b) = pair(Kind::Stream).unwrap();
        write_frame(a.as_fd(), b"one", None).unwrap();
        write_frame(a.as_fd(), b"", None).unwrap();
        write_frame(a.as_fd(), b"three", None).unwrap();
        drop(a);
        let mut r = FrameReader::new(DEFAULT_MAX_FRAME);
        assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Frame(b"one".to_vec()));
        assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Frame(Vec::new()));
        assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Frame(b"three".to_vec()));
        assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Eof);
    }

    #[test]
    fn oversized_length_prefix_is_an_error_without_allocating() {
        let (a, b) = pair(Kind::Stream).unwrap();
        sock::send(a.as_fd(), &u64::MAX.to_le_bytes()).unwrap();
        let err = FrameReader::new(1024).read_some(b.as_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn stream_ending_inside_a_frame_is_an_error() {
        let (a, b) = pair(Kind::Stream).unwrap();
        sock::send(a.as_fd(), &10u64.to_le_bytes()).unwrap();
        sock::send(a.as_fd(), b"abc").unwrap();
        drop(a);
        let err = FrameReader::new(1024).read_some(b.as_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn buffered_reader_splits_many_frames_read_at_once() {
        let (a, b) = pair(Kind::Stream).unwrap();
        let sizes = [0usize, 1, 7, 8, 9, 1000, SMALL - 1, SMALL, SMALL + 1, 3 * SMALL + 5, 12];
        // More than a socket buffer holds: write from another thread.
        let writer = std::thread::spawn(move || {
            for (i, n) in sizes.iter().enumerate() {
                write_frame(a.as_fd(), &vec![i as u8; *n], None).unwrap();
            }
        });
        let mut r = FrameReader::buffered(DEFAULT_MAX_FRAME);
        for (i, n) in sizes.iter().enumerate() {
            assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Frame(vec![i as u8; *n]));
        }
        writer.join().unwrap();
        assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Eof);
    }

    #[test]
    fn exact_reader_leaves_the_next_frame_in_the_stream() {
        let (a, b) = pair(Kind::Stream).unwrap();
        write_frame(a.as_fd(), b"first", None).unwrap();
        write_frame(a.as_fd(), b"second", None).unwrap();
        assert_eq!(read_frame(b.as_fd(), 1024).unwrap(), Some(b"first".to_vec()));
        assert_eq!(read_frame(b.as_fd(), 1024).unwrap(), Some(b"second".to_vec()));
    }

    #[test]
    fn buffered_reader_reports_a_whole_buffered_frame() {
        let (a, b) = pair(Kind::Stream).unwrap();
        write_frame(a.as_fd(), b"one", None).unwrap();
        write_frame(a.as_fd(), b"two", None).unwrap();
        let mut r = FrameReader::buffered(1024);
        assert!(!r.has_frame());
        assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Frame(b"one".to_vec()));
        assert!(r.has_frame());
        assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Frame(b"two".to_vec()));
        assert!(!r.has_frame());
    }

    #[test]
    fn unread_bytes_carry_over_to_another_reader() {
        let (a, b) = pair(Kind::Stream).unwrap();
        crate::sys::fd::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&b), true).unwrap();
        for frame in [&b"first"[..], b"second", b"third"] {
            write_frame(a.as_fd(), frame, None).unwrap();
        }
        sock::send(a.as_fd(), &100u64.to_le_bytes()).unwrap();
        sock::send(a.as_fd(), b"part").unwrap();
        let mut r = FrameReader::buffered(1024);
        assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Frame(b"first".to_vec()));
        let mut next = FrameReader::buffered(1024);
        next.preload(&r.unread());
        assert_eq!(next.read_some(b.as_fd()).unwrap(), Progress::Frame(b"second".to_vec()));
        assert_eq!(next.read_some(b.as_fd()).unwrap(), Progress::Frame(b"third".to_vec()));
        assert_eq!(next.read_some(b.as_fd()).unwrap(), Progress::Pending);
        sock::send(a.as_fd(), &[7u8; 96]).unwrap();
        let mut expected = b"part".to_vec();
        expected.extend_from_slice(&[7u8; 96]);
        assert_eq!(next.read_some(b.as_fd()).unwrap(), Progress::Frame(expected));
    }

    #[test]
    fn partial_frames_survive_a_pending_read() {
        let (a, b) = pair(Kind::Stream).unwrap();
        crate::sys::fd::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&b), true).unwrap();
        for mut r in [FrameReader::new(1024), FrameReader::buffered(1024)] {
            sock::send(a.as_fd(), &5u64.to_le_bytes()).unwrap();
            sock::send(a.as_fd(), b"he").unwrap();
            assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Pending);
            sock::send(a.as_fd(), b"llo").unwrap();
            assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Frame(b"hello".to_vec()));
        }
    }
}
