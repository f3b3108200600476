//! Moving a connection made over a Unix socket into shared memory.
//!
//! Both ends of a Unix socket are on one machine, so once the handshake has
//! proved the key, the listener makes the two ends of a pipe (rings in a memory
//! file, doorbells, a socket pair: see `ring.rs`) and sends the client its end,
//! as descriptors attached to one last frame on the socket:
//!
//! ```text
//!   listener (accept)                                 client (connect)
//!   ... handshake ...                      <------    #WELCOME#
//!   [7]#RING#<end>  + SCM_RIGHTS: memory file, socket, client's doorbell, listener's doorbell
//!                                          ------>
//! ```
//!
//! Then both close the Unix socket and talk through the rings, as the two ends
//! of a [`Pipe`](super::Pipe) do: a round trip costs no system call while both
//! sides are busy, where a socket costs a write, a read and a wake-up each way.
//! Nothing else changes: the frames, limits and the end of the stream are the
//! same, and the connection can still be passed to another process.
//!
//! A listener that cannot make the rings (out of descriptors, of memory) says
//! so with the same frame, end number [`STAY`] and no descriptors, and both
//! stay on the socket: a connection costs five descriptors in shared memory
//! and one on a socket.
//!
//! Neither side may send anything else between the handshake and the offer:
//! the listener refuses a client that did (its bytes would be lost), and the
//! client takes the offer with `recvmsg`, reading exactly the frame.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use super::auth::{Peer, handshake_error, protocol};
use super::channel::{Channel, Direction};
use super::ring::Link;
use crate::error::{Error, Result};
use crate::sys::{fd, sock};

/// What the offer frame says, before the client's end number.
const OFFER: &[u8] = b"#RING#";

/// The end number that says: no shared memory, stay on the socket.
const STAY: u8 = u8::MAX;

/// The offer frame's length: the 8-byte frame header, [`OFFER`], the end number.
const OFFER_FRAME: usize = 8 + OFFER.len() + 1;

/// Bytes in each direction's ring of such a connection (256 KiB; a pipe's are
/// 1 MiB). A longer message streams through in pieces; the pages are allocated
/// as the ring first wraps through them, so this is what a busy connection
/// costs in memory on each side.
const RING_BYTES: u64 = 256 << 10;

/// The listener's side, after the handshake: makes the rings, sends the client
/// its end and returns this side's, closing the socket; or, if the rings
/// cannot be made, tells the client and keeps the socket.
pub(crate) fn offer(chan: Channel, peer: &Peer<'_>) -> Result<Channel> {
    offer_made(chan, peer, Link::pair(RING_BYTES))
}

/// [`offer`], with the rings made (or not) by the caller.
fn offer_made(chan: Channel, peer: &Peer<'_>, made: io::Result<(Link, Link)>) -> Result<Channel> {
    let sock = chan
        .idle_socket()
        .ok_or_else(|| protocol(peer, "it sent data before the listener had finished the handshake"))?;
    let (fds, end) = match &made {
        Ok((_, theirs)) => {
            let parts = theirs.parts();
            ([parts.file, parts.sock, parts.bell, parts.peer_bell].iter().map(|f| f.as_raw_fd()).collect(), parts.end)
        }
        Err(_) => (Vec::new(), STAY),
    };
    let mut frame = Vec::with_capacity(OFFER_FRAME);
    frame.extend_from_slice(&((OFFER.len() + 1) as u64).to_le_bytes());
    frame.extend_from_slice(OFFER);
    frame.push(end);
    loop {
        match sock::send_with_fds(sock, &frame, &fds) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !fd::wait_writable(sock, peer.deadline)? {
                    return Err(handshake_error(Error::Timeout, peer));
                }
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => {
                return Err(handshake_error(Error::Eof, peer));
            }
            Err(e) => return Err(handshake_error(Error::Io(e), peer)),
        }
    }
    match made {
        Ok((mine, _theirs)) => Ok(Channel::ring(mine, Direction::Both, chan.max())),
        Err(_) => Ok(chan),
    }
}

/// The client's side, after the handshake: takes the listener's offer and
/// returns its end of the rings, closing the socket; or, if the listener could
/// not make them, keeps the socket.
pub(crate) fn take(chan: Channel, peer: &Peer<'_>) -> Result<Channel> {
    let sock = chan
        .idle_socket()
        .ok_or_else(|| protocol(peer, "it sent data before the client had finished the handshake"))?;
    let (frame, fds) = read_offer(sock, peer.deadline).map_err(|e| handshake_error(e, peer))?;
    let (len, payload) = frame.split_at(8);
    let end = match payload.strip_prefix(OFFER) {
        Some(&[end]) if len == ((OFFER.len() + 1) as u64).to_le_bytes() => end,
        _ => return Err(protocol(peer, "it did not offer shared memory after the handshake")),
    };
    if end == STAY && fds.is_empty() {
        return Ok(chan);
    }
    let Ok([file, ring_sock, bell, peer_bell]) = <[OwnedFd; 4]>::try_from(fds) else {
        return Err(protocol(peer, "its shared-memory offer came without the four descriptors it needs"));
    };
    let link = Link::open(file, ring_sock, bell, peer_bell, end).map_err(|e| handshake_error(Error::Io(e), peer))?;
    Ok(Channel::ring(link, Direction::Both, chan.max()))
}

/// Reads exactly the offer frame and the descriptors attached to it.
fn read_offer(sock: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<([u8; OFFER_FRAME], Vec<OwnedFd>)> {
    let mut frame = [0u8; OFFER_FRAME];
    let mut fds = Vec::new();
    let mut have = 0;
    while have < OFFER_FRAME {
        match sock::recv_with_fds(sock, &mut frame[have..]) {
            Ok((0, _)) => return Err(Error::Eof),
            Ok((n, more)) => {
                have += n;
                fds.extend(more);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Error::Timeout);
                }
                fd::poll(&[sock], deadline)?;
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Err(Error::Eof),
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok((frame, fds))
}

#[cfg(test)]
mod test {
    use std::time::Duration;

    use super::*;
    use crate::sys::sock::{Kind, pair};

    fn peer(deadline_ms: u64) -> Peer<'static> {
        let timeout = Duration::from_millis(deadline_ms);
        Peer { name: "the test peer", timeout, deadline: Instant::now().checked_add(timeout) }
    }

    /// Two channels over a fresh socket pair, as `accept` and `connect` have them
    /// after the handshake.
    fn sockets() -> (Channel, Channel) {
        let (a, b) = pair(Kind::Stream).unwrap();
        (Channel::new(a, Direction::Both, 1 << 20).unwrap(), Channel::new(b, Direction::Both, 1 << 20).unwrap())
    }

    fn message(e: Error) -> String {
        e.to_string()
    }

    #[test]
    fn an_offer_taken_moves_both_ends_off_the_socket_and_they_talk_both_ways() {
        let (server, client) = sockets();
        let offered = std::thread::spawn(move || offer(server, &peer(5000)).unwrap());
        let client = take(client, &peer(5000)).unwrap();
        let server = offered.join().unwrap();
        assert!(client.idle_socket().is_none() && server.idle_socket().is_none());
        let big = vec![7u8; 600 << 10];
        let sender = std::thread::spawn(move || {
            client.send(&big, None).unwrap();
            client.send(b"after", None).unwrap();
            client
        });
        assert_eq!(server.recv(None).unwrap(), vec![7u8; 600 << 10]);
        assert_eq!(server.recv(None).unwrap(), b"after");
        let client = sender.join().unwrap();
        server.send(b"back", None).unwrap();
        assert_eq!(client.recv(None).unwrap(), b"back");
        drop(server);
        assert!(matches!(client.recv(None), Err(Error::Eof)));
    }

    #[test]
    fn a_listener_that_cannot_make_the_rings_keeps_both_ends_on_the_socket() {
        let (server, client) = sockets();
        let offered = std::thread::spawn(move || {
            offer_made(server, &peer(5000), Err(io::Error::from_raw_os_error(libc::EMFILE))).unwrap()
        });
        let client = take(client, &peer(5000)).unwrap();
        let server = offered.join().unwrap();
        assert!(client.idle_socket().is_some() && server.idle_socket().is_some());
        client.send(b"still talking", None).unwrap();
        assert_eq!(server.recv(None).unwrap(), b"still talking");
        server.send(b"yes", None).unwrap();
        assert_eq!(client.recv(None).unwrap(), b"yes");
    }

    #[test]
    fn a_frame_that_is_not_an_offer_is_refused_by_the_client() {
        let (server, client) = sockets();
        server.send(b"#RINX#\x01", None).unwrap();
        let err = message(take(client, &peer(5000)).unwrap_err());
        assert!(err.contains("did not offer shared memory"), "{err}");
    }

    #[test]
    fn an_offer_without_its_descriptors_is_refused_by_the_client() {
        let (server, client) = sockets();
        server.send(b"#RING#\x01", None).unwrap();
        let err = message(take(client, &peer(5000)).unwrap_err());
        assert!(err.contains("without the four descriptors"), "{err}");
    }

    #[test]
    fn a_client_that_waits_past_its_deadline_for_the_offer_times_out() {
        let (_server, client) = sockets();
        let err = message(take(client, &peer(50)).unwrap_err());
        assert!(err.contains("no answer within"), "{err}");
    }

    #[test]
    fn a_listener_that_hangs_up_instead_of_offering_is_an_error_for_the_client() {
        let (server, client) = sockets();
        drop(server);
        let err = message(take(client, &peer(5000)).unwrap_err());
        assert!(err.contains("closed the connection during the handshake"), "{err}");
    }

    #[test]
    fn a_client_that_sent_data_before_the_offer_is_refused_by_the_listener() {
        let (server, client) = sockets();
        client.send(b"too early", None).unwrap();
        client.send(b"and more", None).unwrap();
        // The listener reads its last handshake message; what came after it is read ahead.
        assert_eq!(server.recv(None).unwrap(), b"too early");
        let err = message(offer(server, &peer(5000)).unwrap_err());
        assert!(err.contains("sent data before"), "{err}");
    }
}
