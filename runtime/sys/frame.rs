//! Length-prefixed frames over a byte stream.
//!
//! A frame is an 8-byte little-endian length followed by that many bytes. The
//! length is checked against a maximum before anything is allocated, and the
//! buffer grows only as bytes actually arrive, so a corrupt or hostile prefix
//! costs an error, not memory.

use std::io;
use std::os::fd::BorrowedFd;
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

/// Reassembles frames from reads that may stop anywhere, keeping partial data
/// between calls (so a read that times out halfway loses nothing).
#[derive(Debug)]
pub(crate) struct FrameReader {
    max: u64,
    header: [u8; HEADER],
    header_len: usize,
    body: Vec<u8>,
    body_len: Option<usize>,
}

impl FrameReader {
    pub(crate) fn new(max: u64) -> FrameReader {
        FrameReader { max, header: [0; HEADER], header_len: 0, body: Vec::new(), body_len: None }
    }

    /// True when no part of a frame has been read (a stream may end cleanly here).
    pub(crate) fn is_between_frames(&self) -> bool {
        self.header_len == 0 && self.body_len.is_none()
    }

    /// Reads what is available. On a blocking descriptor this returns only once a
    /// frame is complete or the stream ended.
    pub(crate) fn read_some(&mut self, fd: BorrowedFd<'_>) -> io::Result<Progress> {
        loop {
            let Some(len) = self.body_len else {
                let n = match sock::read(fd, &mut self.header[self.header_len..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Progress::Pending),
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    if self.header_len == 0 {
                        return Ok(Progress::Eof);
                    }
                    return Err(truncated());
                }
                self.header_len += n;
                if self.header_len == HEADER {
                    let len = u64::from_le_bytes(self.header);
                    if len > self.max {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("frame of {len} bytes exceeds the maximum of {} bytes", self.max),
                        ));
                    }
                    self.body_len = Some(len as usize);
                    self.body = Vec::new();
                }
                continue;
            };
            if self.body.len() == len {
                self.header_len = 0;
                self.body_len = None;
                return Ok(Progress::Frame(std::mem::take(&mut self.body)));
            }
            // Grow by what we are about to read, never by the claimed length.
            let want = (len - self.body.len()).min(1 << 20);
            let old = self.body.len();
            self.body.resize(old + want, 0);
            let r = sock::read(fd, &mut self.body[old..]);
            let n = match r {
                Ok(n) => n,
                Err(e) => {
                    self.body.truncate(old);
                    if e.kind() == io::ErrorKind::WouldBlock {
                        return Ok(Progress::Pending);
                    }
                    return Err(e);
                }
            };
            self.body.truncate(old + n);
            if n == 0 {
                return Err(truncated());
            }
        }
    }
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ended in the middle of a frame")
}

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
    fn partial_frames_survive_a_pending_read() {
        let (a, b) = pair(Kind::Stream).unwrap();
        crate::sys::fd::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&b), true).unwrap();
        sock::send(a.as_fd(), &5u64.to_le_bytes()).unwrap();
        sock::send(a.as_fd(), b"he").unwrap();
        let mut r = FrameReader::new(1024);
        assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Pending);
        sock::send(a.as_fd(), b"llo").unwrap();
        assert_eq!(r.read_some(b.as_fd()).unwrap(), Progress::Frame(b"hello".to_vec()));
    }
}
