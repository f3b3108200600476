//! `wait`: sleep until one of several objects is ready (Python's
//! `multiprocessing.connection.wait`).

use std::os::fd::BorrowedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::deadline_after;
use crate::error::Result;
use crate::sys::fd;

/// Something [`wait`] can wait for: it has a descriptor that becomes readable when
/// the object may have become ready, and a way to tell whether it is ready now.
///
/// Implemented by [`Connection`](super::Connection) (ready: a message or the end of
/// the stream can be received without blocking) and [`Listener`](super::Listener)
/// (ready: a client is waiting to be accepted). Implement it for your own types
/// to wait on them together with connections.
///
/// The contract that keeps [`wait`] from spinning: when
/// [`wait_fd`](Self::wait_fd) polls readable, [`is_ready`](Self::is_ready) either
/// returns `true` or consumes what made the descriptor readable.
pub trait Waitable {
    /// The descriptor to sleep on. It must stay the same while the object lives.
    fn wait_fd(&self) -> BorrowedFd<'_>;

    /// Whether the object is ready now, without blocking. It may do non-blocking
    /// work to find out (a connection reads what arrived, to see whether a whole
    /// message is there) and may be ready without its descriptor being readable
    /// (a connection holding a message it already read). An object in error
    /// counts as ready, so that the caller's next call reports the error.
    ///
    /// The default: ready when [`wait_fd`](Self::wait_fd) is readable (or in error).
    fn is_ready(&self) -> bool {
        fd::poll(&[self.wait_fd()], Some(Instant::now())).map_or(true, |r| r.iter().any(|r| r.readable))
    }
}

impl<W: Waitable + ?Sized> Waitable for &W {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        (**self).wait_fd()
    }
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
}

impl<W: Waitable + ?Sized> Waitable for &mut W {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        (**self).wait_fd()
    }
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
}

impl<W: Waitable + ?Sized> Waitable for Box<W> {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        (**self).wait_fd()
    }
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
}

impl<W: Waitable + ?Sized> Waitable for Arc<W> {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        (**self).wait_fd()
    }
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
}

impl<W: Waitable + ?Sized> Waitable for Rc<W> {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        (**self).wait_fd()
    }
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
}

/// Waits until at least one of `objects` is ready, or `timeout` passes, and returns
/// the indices of those that are ready, in ascending order (empty on timeout).
///
/// `None` waits as long as it takes; `Some(Duration::ZERO)` only looks. An empty
/// `objects` returns an empty list at once. For a [`Connection`](super::Connection),
/// ready means a receive answers at once (a whole message is there, or the other
/// end is closed); a message a connection already holds counts, even though its
/// socket has nothing more to read.
///
/// Objects of one type go in a slice of that type (`&conns` for a
/// `Vec<Connection<T>>`); mixed ones as `&dyn Waitable`:
///
/// ```
/// use mproc::connection::{wait, Waitable};
/// use mproc::Pipe;
/// use std::time::Duration;
///
/// let (a, b) = Pipe::<u32>::duplex()?;
/// let (c, d) = Pipe::<String>::duplex()?;
/// b.send(&7)?;
/// let ready = wait(&[&a as &dyn Waitable, &c], Some(Duration::from_secs(5)))?;
/// assert_eq!(ready, vec![0]);
/// assert_eq!(a.recv()?, 7);
/// assert!(wait(&[&a as &dyn Waitable, &c], Some(Duration::ZERO))?.is_empty());
/// # drop(d);
/// # Ok::<(), mproc::Error>(())
/// ```
pub fn wait<W: Waitable>(objects: &[W], timeout: Option<Duration>) -> Result<Vec<usize>> {
    if objects.is_empty() {
        return Ok(Vec::new());
    }
    let deadline = timeout.and_then(deadline_after);
    loop {
        let ready: Vec<usize> = objects.iter().enumerate().filter(|(_, o)| o.is_ready()).map(|(i, _)| i).collect();
        if !ready.is_empty() {
            return Ok(ready);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }
        let fds: Vec<BorrowedFd<'_>> = objects.iter().map(Waitable::wait_fd).collect();
        fd::poll(&fds, deadline)?;
    }
}
