//! `Connection<T>`: the typed face of a [`Channel`].

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::channel::{Channel, Direction, Endpoint, Transport, deadline_after};
use super::ring::Link;
use super::wait::Waitable;
use crate::codec;
use crate::error::{Error, Result};

/// One end of a connection carrying messages of type `T`: Python's
/// `multiprocessing.connection.Connection`.
///
/// Made by [`Pipe`](super::Pipe) (two ends in this process, to hand one to a child),
/// [`Listener::accept`](super::Listener::accept) and
/// [`Client::connect`](super::Client::connect).
///
/// - **Messages, not bytes.** Each [`send`](Self::send) or
///   [`send_bytes`](Self::send_bytes) is one message, received whole by one
///   [`recv`](Self::recv) or [`recv_bytes`](Self::recv_bytes), in the order sent.
///   Typed messages travel in the crate's codec (serde); bytes travel as they are.
///   Both kinds share one stream: a message is decoded as `T` only by `recv`.
/// - **The end of the stream.** Once the other end is closed (dropped or
///   [`close`](Self::close)d, or its process exited or was killed), a receive
///   returns [`Error::Eof`] after the messages already sent, and never blocks.
///   "Closed" means closed in every process: a child made by fork holds copies
///   of the descriptors its parent had, so the end of the stream comes when the
///   last copy goes.
/// - **Limits.** A message longer than [`max_message`](Self::max_message)
///   (default [`DEFAULT_MAX_MESSAGE`](super::DEFAULT_MAX_MESSAGE), 1 GiB) is
///   refused before anything is allocated for it; the connection then cannot
///   receive any more (the stream has no boundary left to resynchronise on) and
///   every later receive returns the same error.
/// - **Threads.** A `Connection` is `Send` and `Sync`. Messages sent from several
///   threads at once never interleave; several receiving threads each get whole
///   messages, none twice. [`poll`](Self::poll) and [`wait`](super::wait) read a
///   message that has arrived and hold it for the next receive,
///   except while another thread is blocked receiving on the same connection: then
///   they only look whether data arrived, and leave it to that thread. A message
///   held that way (or kept by a refused [`recv_bytes_into`](Self::recv_bytes_into))
///   does not wake a `wait` already asleep on another thread: wait on a connection
///   from the thread that polls it.
/// - **Blocking.** A send blocks while the other end's buffer is full (a pipe's
///   ring, a socket's buffer), so two processes that both send large messages
///   before either receives can deadlock, as in Python.
///
/// ```
/// use std::time::Duration;
/// use mproc::{Error, Pipe};
///
/// let (a, b) = Pipe::<String>::duplex()?;
/// a.send(&"hello".to_string())?;
/// a.send_bytes(b"raw")?;
/// assert!(b.poll(Some(Duration::from_secs(5)))?);
/// assert_eq!(b.recv()?, "hello");
/// assert_eq!(b.recv_bytes()?, b"raw");
/// drop(a);
/// assert!(matches!(b.recv(), Err(Error::Eof)));
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct Connection<T> {
    chan: Channel,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Connection<T> {
    pub(crate) fn from_channel(chan: Channel) -> Connection<T> {
        Connection { chan, _type: PhantomData }
    }

    /// Watches the incoming stream for a few microseconds when it is in shared
    /// memory, for a server about to sleep until its client's next request.
    /// Returns whether bytes came.
    pub(crate) fn spin_for_input(&self) -> bool {
        self.chan.spin_for_input()
    }

    /// Sends `bytes` as one message, as they are (no encoding).
    ///
    /// Returns [`Error::Eof`] when the other end is closed, [`Error::Misuse`] on the
    /// receiving end of a simplex pipe.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.chan.send(bytes, None)
    }

    /// [`send_bytes`](Self::send_bytes), waiting at most `timeout` for the other
    /// end to make room (it may be slow to read, or not read at all):
    /// [`Error::Timeout`] after that.
    ///
    /// **A timed-out send breaks this end for sending**: part of the message
    /// may have gone, and the stream has no boundary left for the other end to
    /// resynchronise on. Every later send fails with an [`Error::Io`] of kind
    /// `BrokenPipe`, and over a socket the other end sees the stream end in the
    /// middle of a message (receiving still works on this end). Drop the
    /// connection after a timeout.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, _b) = mproc::Pipe::<()>::duplex()?;
    /// let big = vec![0u8; 64 << 20]; // more than the pipe holds, and nobody reads
    /// assert!(matches!(a.send_bytes_timeout(&big, Duration::from_millis(50)), Err(mproc::Error::Timeout)));
    /// assert!(a.send_bytes(b"x").is_err());
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn send_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<()> {
        self.chan.send(bytes, deadline_after(timeout))
    }

    /// Receives the next message as bytes, waiting for it.
    ///
    /// Returns [`Error::Eof`] once the other end is closed and every message sent
    /// before has been received.
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        self.chan.recv(None)
    }

    /// [`recv_bytes`](Self::recv_bytes), waiting at most `timeout`: [`Error::Timeout`]
    /// if no whole message arrived by then (a part that did arrive is kept).
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>> {
        self.chan.recv(deadline_after(timeout))
    }

    /// Receives the next message into `buf` and returns its length.
    ///
    /// A message longer than `buf` is an [`Error::Misuse`] that gives both lengths,
    /// and **the message is kept**: the next receive of any kind (`recv_bytes`, a
    /// `recv_bytes_into` with a larger buffer, `recv`) returns it. This is Python's
    /// `BufferTooShort`, without the loss of the message.
    ///
    /// ```
    /// let (a, b) = mproc::Pipe::<()>::duplex()?;
    /// a.send_bytes(b"twelve bytes")?;
    /// let mut small = [0u8; 4];
    /// assert!(matches!(b.recv_bytes_into(&mut small), Err(mproc::Error::Misuse { .. })));
    /// let mut buf = [0u8; 64];
    /// let n = b.recv_bytes_into(&mut buf)?; // the same message, not lost
    /// assert_eq!(&buf[..n], b"twelve bytes");
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize> {
        self.chan.recv_into(buf, None)
    }

    /// Whether a message (or the end of the stream) can be received without
    /// blocking, waiting up to `timeout` for one; `None` waits as long as it takes,
    /// `Some(Duration::ZERO)` only looks.
    ///
    /// `true` means the next receive answers at once: a whole message is there
    /// (it is read off the stream and held), or the other end is closed.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        self.chan.poll(timeout.and_then(deadline_after))
    }

    /// The largest message this end accepts, in bytes.
    pub fn max_message(&self) -> u64 {
        self.chan.max()
    }

    /// Sets the largest message this end accepts (default 1 GiB). A message
    /// announced as longer is refused before anything is allocated for it. It
    /// applies from the next message that starts arriving; one already partly
    /// received was accepted under the old limit.
    pub fn set_max_message(&self, bytes: u64) {
        self.chan.set_max(bytes);
    }

    /// Whether this end can receive (false for the sending end of a simplex pipe).
    pub fn readable(&self) -> bool {
        self.chan.direction() != Direction::Send
    }

    /// Whether this end can send (false for the receiving end of a simplex pipe).
    pub fn writable(&self) -> bool {
        self.chan.direction() != Direction::Receive
    }

    /// Closes this end (as dropping it does). The other end then receives the
    /// messages already sent, then [`Error::Eof`], once no other process holds a
    /// copy of this end.
    pub fn close(self) {
        drop(self);
    }
}

impl<T: Serialize> Connection<T> {
    /// Sends `value` as one message, encoded with the crate's codec.
    ///
    /// Returns [`Error::Eof`] when the other end is closed, [`Error::Codec`] if the
    /// value cannot be encoded, [`Error::Misuse`] on the receiving end of a simplex
    /// pipe.
    pub fn send(&self, value: &T) -> Result<()> {
        let bytes = codec::encode(value)?;
        self.chan.send(&bytes, None)
    }
}

impl<T: DeserializeOwned> Connection<T> {
    /// Receives the next message and decodes it as `T`, waiting for it.
    ///
    /// Returns [`Error::Eof`] once the other end is closed and every message sent
    /// before has been received; [`Error::Codec`] if the message is not a `T` (it is
    /// consumed, and the next one can be received).
    pub fn recv(&self) -> Result<T> {
        decode(self.chan.recv(None)?)
    }

    /// [`recv`](Self::recv), waiting at most `timeout`: [`Error::Timeout`] if no
    /// whole message arrived by then (a part that did arrive is kept).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        decode(self.chan.recv(deadline_after(timeout))?)
    }
}

fn decode<T: DeserializeOwned>(bytes: Vec<u8>) -> Result<T> {
    codec::decode(&bytes).map_err(|e| match e {
        Error::Codec(what) => Error::Codec(format!(
            "a received message of {} bytes is not a {}: {what}",
            bytes.len(),
            std::any::type_name::<T>()
        )),
        other => other,
    })
}

/// A connection is a handle: it can be a task argument (`spawn!(worker(conn))`),
/// under every start method. The child gets its own descriptors for the same
/// stream (a pipe's shared memory, doorbells and socket; a connection's socket),
/// and whatever this end had already read off it and not handed out
/// (a message `poll` held, messages read ahead), which it receives first.
impl<T> Serialize for Connection<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeTuple};
        let (endpoint, direction, max, unread) = self.chan.transferable().map_err(S::Error::custom)?;
        let outgoing = match endpoint {
            Endpoint::Socket(fd) => Outgoing::Socket(Descriptor(fd)),
            Endpoint::Ring(p) => Outgoing::Ring {
                file: Descriptor(p.file),
                sock: Descriptor(p.sock),
                bell: Descriptor(p.bell),
                peer_bell: Descriptor(p.peer_bell),
                end: p.end,
            },
        };
        let mut t = s.serialize_tuple(4)?;
        t.serialize_element(&outgoing)?;
        t.serialize_element(&direction)?;
        t.serialize_element(&max)?;
        t.serialize_element(&Unread(&unread))?;
        t.end()
    }
}

impl<'de, T> serde::Deserialize<'de> for Connection<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Connection<T>, D::Error> {
        use serde::de::Error as _;
        let (incoming, direction, max, ReceivedBytes(unread)): (Incoming, Direction, u64, ReceivedBytes) =
            serde::Deserialize::deserialize(d)?;
        let transport = match incoming {
            Incoming::Socket(Received(fd)) => Transport::Socket(fd),
            Incoming::Ring { file, sock, bell, peer_bell, end } => {
                Transport::Ring(Link::open(file.0, sock.0, bell.0, peer_bell.0, end).map_err(D::Error::custom)?)
            }
        };
        let chan = Channel::with_unread(transport, direction, max, &unread).map_err(D::Error::custom)?;
        Ok(Connection::from_channel(chan))
    }
}

/// Bytes read off the stream and not handed out yet, on their way to the new end.
struct Unread<'a>(&'a [u8]);

impl Serialize for Unread<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        crate::codec::bytes::serialize(self.0, s)
    }
}

struct ReceivedBytes(Vec<u8>);

impl<'de> serde::Deserialize<'de> for ReceivedBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<ReceivedBytes, D::Error> {
        crate::codec::bytes::deserialize(d).map(ReceivedBytes)
    }
}

/// A connection's descriptors on their way out.
#[derive(serde::Serialize)]
enum Outgoing<'a> {
    Socket(Descriptor<'a>),
    Ring { file: Descriptor<'a>, sock: Descriptor<'a>, bell: Descriptor<'a>, peer_bell: Descriptor<'a>, end: u8 },
}

/// A connection's descriptors on their way in.
#[derive(serde::Deserialize)]
enum Incoming {
    Socket(Received),
    Ring { file: Received, sock: Received, bell: Received, peer_bell: Received, end: u8 },
}

/// A descriptor of a connection on its way out, as a handle.
struct Descriptor<'a>(BorrowedFd<'a>);

impl Serialize for Descriptor<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        crate::handle::serialize_fd(self.0, "Connection", s)
    }
}

/// A descriptor of a connection on its way in.
struct Received(std::os::fd::OwnedFd);

impl<'de> serde::Deserialize<'de> for Received {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Received, D::Error> {
        crate::handle::deserialize_fd(d).map(Received)
    }
}

impl<T> Connection<T> {
    /// Writes `bytes` into the stream as they are, with no message framing: for
    /// tests that feed a receiver corrupt or partial messages. Not a public API.
    #[doc(hidden)]
    pub fn __write_raw(&self, bytes: &[u8]) -> Result<()> {
        self.chan.write_raw(bytes)
    }
}

impl<T> Waitable for Connection<T> {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        self.chan.as_fd()
    }

    /// Ready when a receive would answer at once: a whole message is held (read
    /// off the socket earlier, by `poll` or an earlier `wait`) or has arrived, or
    /// the stream ended. For the sending end of a simplex pipe: when the receiver
    /// closed.
    fn is_ready(&self) -> bool {
        self.chan.ready_now()
    }
}

impl<T> AsFd for Connection<T> {
    /// A descriptor for your own `poll`/`epoll`: the socket of a connection made
    /// by a [`Listener`](super::Listener) or [`Client`](super::Client); for a
    /// [`Pipe`](super::Pipe)'s end, one that polls readable when a message may have
    /// arrived or the other end closed (call [`poll`](Self::poll) with a zero timeout
    /// to know, as it may be a stale wake-up). Reading or writing it
    /// directly desynchronises the message stream.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.chan.as_fd()
    }
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::os::fd::AsRawFd;
        f.debug_struct("Connection")
            .field("type", &std::any::type_name::<T>())
            .field("fd", &self.chan.as_fd().as_raw_fd())
            .field("readable", &self.readable())
            .field("writable", &self.writable())
            .finish()
    }
}
