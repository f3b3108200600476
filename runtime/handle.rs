//! Passing handles to other processes: one mechanism for every handle type.
//!
//! A handle (a pipe end, a queue, later locks, shared memory, manager proxies)
//! is an open descriptor plus some plain data. When a handle is part of a
//! task's arguments, its `Serialize` impl calls [`serialize_fd`]: the
//! descriptor is duplicated into a side table and the encoded value holds its
//! index. The table travels beside the encoded arguments: with `SCM_RIGHTS` on
//! the child's channel under spawn and forkserver, by inheritance under fork,
//! and on a pool worker's channel with the job. On the other side, decoding
//! runs inside [`with_received`], and the handle's `Deserialize` impl calls
//! [`deserialize_fd`] to take its own duplicate of the descriptor at that index.
//!
//! Outside a task's arguments (a message sent over a pipe or a queue, say)
//! there is no side table, and encoding a handle is an error that says so:
//! handles are not passed inside messages.
//!
//! Under fork, a child inherits every descriptor of its parent, including the
//! handles it was not given: the end of a pipe the parent kept would then stay
//! open in the child, and the parent's reader would never see the end of the
//! stream. So live handle descriptors are tracked ([`track`]), and a forked
//! child that runs a task by name or serves as a pool worker points each of
//! them at `/dev/null` before it starts ([`drop_inherited`]); it works with the
//! duplicates that came with its arguments. A child forked to run a closure
//! keeps them all: the closure may have captured any of them.

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec;
use crate::error::Result;
use crate::sys::fd;

/// Most descriptors one set of task arguments may carry.
pub(crate) const MAX_HANDLES: usize = crate::sys::sock::MAX_FDS;

thread_local! {
    /// Descriptors collected while encoding task arguments (`None`: not encoding any).
    static SENDING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    /// Descriptors that came with the task arguments being decoded.
    static RECEIVED: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
}

/// Encodes task arguments, collecting duplicates of the descriptors of the
/// handles among them (in the order their indices refer to).
pub(crate) fn encode_with_handles<T: Serialize + ?Sized>(value: &T) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    let outer = SENDING.with(|s| s.replace(Some(Vec::new())));
    let encoded = codec::encode(value);
    let fds = SENDING.with(|s| s.replace(outer)).unwrap_or_default();
    Ok((encoded?, fds))
}

/// Runs `f` (which decodes task arguments) with `fds` available to the
/// handles among them. The descriptors are closed when `f` returns: each
/// decoded handle holds its own duplicate.
pub(crate) fn with_received<R>(fds: Vec<OwnedFd>, f: impl FnOnce() -> R) -> R {
    let outer = RECEIVED.with(|r| r.replace(Some(fds)));
    let result = f();
    RECEIVED.with(|r| r.replace(outer));
    result
}

/// A handle's descriptor inside encoded task arguments: its index in the side table.
#[derive(Serialize, Deserialize)]
struct FdIndex(u32);

/// Serializes `fd` as part of task arguments. `what` names the handle for the
/// error raised when it is encoded anywhere else.
pub(crate) fn serialize_fd<S: Serializer>(fd: BorrowedFd<'_>, what: &str, s: S) -> Result<S::Ok, S::Error> {
    let index = SENDING.with(|sending| {
        let mut sending = sending.borrow_mut();
        let Some(fds) = sending.as_mut() else {
            return Err(format!(
                "a {what} can be sent to another process only as a task argument (spawn!, a Process, a Pool or an \
                 Executor task), not inside a message"
            ));
        };
        // The same descriptor twice (two clones of one handle) travels once.
        if let Some(i) = fds.iter().position(|f| same_file(f.as_fd(), fd)) {
            return Ok(i);
        }
        if fds.len() >= MAX_HANDLES {
            return Err(format!("task arguments may hold at most {MAX_HANDLES} handles"));
        }
        let dup = fd::dup(fd).map_err(|e| format!("cannot duplicate the {what}'s descriptor: {e}"))?;
        fds.push(dup);
        Ok(fds.len() - 1)
    });
    match index {
        Ok(i) => FdIndex(i as u32).serialize(s),
        Err(message) => Err(S::Error::custom(message)),
    }
}

/// Deserializes a descriptor written by [`serialize_fd`]: a duplicate the
/// caller owns.
pub(crate) fn deserialize_fd<'de, D: Deserializer<'de>>(d: D) -> Result<OwnedFd, D::Error> {
    let FdIndex(index) = FdIndex::deserialize(d)?;
    RECEIVED.with(|received| {
        let received = received.borrow();
        let Some(fds) = received.as_ref() else {
            return Err(D::Error::custom("a handle arrived outside task arguments (no descriptors came with it)"));
        };
        let Some(fd) = fds.get(index as usize) else {
            return Err(D::Error::custom(format!("handle {index} is missing: {} descriptors came", fds.len())));
        };
        fd::dup(fd.as_fd()).map_err(|e| D::Error::custom(format!("cannot duplicate a received descriptor: {e}")))
    })
}

/// Whether two descriptors refer to the same file (same device and inode: two
/// ends of one socket pair differ). Files with no type of their own (eventfds,
/// epoll instances: "anonymous inodes") all share one inode, so two of them are
/// never taken for the same.
fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    if a.as_raw_fd() == b.as_raw_fd() {
        return true;
    }
    match (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) {
        (Ok(x), Ok(y)) => x.st_mode & libc::S_IFMT != 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino,
        _ => false,
    }
}

/// Descriptors of live handles in this process (-1: free slot). Fixed and
/// lock-free, because a forked child reads it with whatever locks other
/// threads held at the fork.
static LIVE: [AtomicI32; 1024] = [const { AtomicI32::new(-1) }; 1024];

/// Records a live handle's descriptor (see [`drop_inherited`]). Past 1024 live
/// handles, more go untracked: a forked child then keeps them open.
pub(crate) fn track(fd: RawFd) {
    for slot in &LIVE {
        if slot.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return;
        }
    }
}

/// Forgets a handle's descriptor; call before closing it.
pub(crate) fn untrack(fd: RawFd) {
    for slot in &LIVE {
        if slot.compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return;
        }
    }
}

/// In a forked child: points every inherited handle descriptor at `/dev/null`,
/// so that this process holds no copy of handles it was not given. The numbers
/// stay taken, so an object still holding one (in a global, say) cannot reach
/// another file through a reused number.
pub(crate) fn drop_inherited() {
    let Some(null) = fd::shared_dev_null() else { return };
    for slot in &LIVE {
        let raw = slot.swap(-1, Ordering::AcqRel);
        if raw >= 0 {
            let _ = fd::dup2(null.as_raw_fd(), raw);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sys::sock::{Kind, pair};

    #[test]
    fn two_eventfds_are_never_taken_for_the_same_file() {
        let open = || {
            // SAFETY: no memory arguments; the result is checked and owned once.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            assert!(fd >= 0);
            // SAFETY: a descriptor just opened, owned by nothing else.
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
        };
        let (a, b) = (open(), open());
        assert!(!same_file(a.as_fd(), b.as_fd()));
        assert!(same_file(a.as_fd(), a.as_fd()));
    }

    /// A minimal handle: just a descriptor.
    struct Holder(OwnedFd);

    impl Serialize for Holder {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_fd(self.0.as_fd(), "test handle", s)
        }
    }

    impl<'de> Deserialize<'de> for Holder {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Holder, D::Error> {
            deserialize_fd(d).map(Holder)
        }
    }

    #[test]
    fn handles_in_arguments_travel_as_indices_with_their_descriptors() {
        let (a, b) = pair(Kind::Stream).unwrap();
        let args = (7u32, Holder(a), Holder(b));
        let (bytes, fds) = encode_with_handles(&args).unwrap();
        assert_eq!(fds.len(), 2);
        let (n, x, y): (u32, Holder, Holder) = with_received(fds, || codec::decode(&bytes)).unwrap();
        assert_eq!(n, 7);
        // The decoded ends are still a connected pair.
        crate::sys::sock::send(x.0.as_fd(), b"hi").unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(crate::sys::sock::read(y.0.as_fd(), &mut buf).unwrap(), 2);
    }

    #[test]
    fn the_same_handle_twice_travels_once() {
        let (a, _b) = pair(Kind::Stream).unwrap();
        let twin = fd::dup(a.as_fd()).unwrap();
        let (_, fds) = encode_with_handles(&(Holder(a), Holder(twin))).unwrap();
        assert_eq!(fds.len(), 1);
    }

    #[test]
    fn a_handle_inside_a_plain_message_is_an_error_that_says_so() {
        let (a, _b) = pair(Kind::Stream).unwrap();
        let err = codec::encode(&Holder(a)).unwrap_err();
        assert!(err.to_string().contains("only as a task argument"), "{err}");
    }
}
