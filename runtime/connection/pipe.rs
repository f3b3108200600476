//! `Pipe`: two connected ends made in this process.

use std::marker::PhantomData;

use super::channel::{Channel, DEFAULT_MAX_MESSAGE, Direction};
use super::conn::Connection;
use super::ring::{Link, RING_BYTES};
use crate::error::Result;

/// Makes a pair of connected [`Connection`]s: Python's `multiprocessing.Pipe`.
///
/// Both ends live in this process at first; a child made by [`fork`](crate::fork)
/// inherits them, so move one end into the child's closure and keep the other.
/// The messages travel through shared memory: a ring of 1 MiB per direction in
/// a memory file both ends map, so a message costs two copies and, while the
/// receiver keeps up, no system call. A socket pair beside the rings tells each
/// end when the other is gone (closed in every process). All descriptors are
/// close-on-exec.
///
/// ```
/// use mproc::Pipe;
///
/// let (parent, child) = Pipe::<(u32, String)>::duplex()?;
/// let p = mproc::fork(move || {
///     let (n, word) = child.recv().unwrap();
///     child.send(&(n * 2, word.to_uppercase())).unwrap();
/// })?;
/// parent.send(&(21, "hello".to_string()))?;
/// assert_eq!(parent.recv()?, (42, "HELLO".to_string()));
/// p.join()?;
///
/// // One way only: (receiver, sender), as Pipe(duplex=False) in Python.
/// let (rx, tx) = Pipe::<u8>::simplex()?;
/// tx.send(&7)?;
/// assert_eq!(rx.recv()?, 7);
/// assert!(rx.send(&8).is_err()); // Error::Misuse: the receiver cannot send
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct Pipe<T> {
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Pipe<T> {
    /// Two ends that can each send and receive.
    pub fn duplex() -> Result<(Connection<T>, Connection<T>)> {
        Self::make(Direction::Both, Direction::Both)
    }

    /// `(receiver, sender)`: the first end only receives, the second only sends.
    /// Sending on the receiver, or receiving (or polling) on the sender, is an
    /// [`Error::Misuse`](crate::Error::Misuse).
    pub fn simplex() -> Result<(Connection<T>, Connection<T>)> {
        Self::make(Direction::Receive, Direction::Send)
    }

    fn make(first: Direction, second: Direction) -> Result<(Connection<T>, Connection<T>)> {
        let (a, b) = Link::pair(RING_BYTES)?;
        let a = Channel::ring(a, first, DEFAULT_MAX_MESSAGE);
        let b = Channel::ring(b, second, DEFAULT_MAX_MESSAGE);
        Ok((Connection::from_channel(a), Connection::from_channel(b)))
    }
}
