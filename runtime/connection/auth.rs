//! The authentication handshake: each side proves it knows the authkey, by
//! HMAC-SHA256 challenge and response, before any message is delivered.
//!
//! It is CPython's (3.12 and later) in both directions, on this crate's frames:
//!
//! ```text
//!   server (accept)                                   client (connect)
//!   #CHALLENGE#{sha256}<32 random bytes>   ------>
//!                                          <------    {sha256}<HMAC(key, "{sha256}<random>")>
//!   #WELCOME#   (or #FAILURE#, and stop)   ------>
//!                                          <------    #CHALLENGE#{sha256}<32 random bytes>
//!   {sha256}<HMAC(key, ...)>               ------>
//!                                          <------    #WELCOME#   (or #FAILURE#)
//! ```
//!
//! The server answers a challenge only after the client has proved it knows the
//! key, so an outsider learns nothing it could replay. Digests are compared in
//! constant time. The nonces come from `getrandom(2)`. Handshake frames are capped
//! at a few hundred bytes, so a peer that speaks something else costs an error, not
//! memory, and the whole exchange is bounded by a deadline, so a silent peer cannot
//! hold `accept` (or `connect`) forever.

use std::io;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::channel::Channel;
use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
/// The digest named in front of a challenge and a response, as CPython does.
const DIGEST: &[u8] = b"{sha256}";
const NONCE_LEN: usize = 32;
/// The shortest nonce accepted from a peer (CPython's minimum is 20).
const MIN_NONCE_LEN: usize = 20;

/// Largest frame read during the handshake.
pub(crate) const HANDSHAKE_MAX: u64 = 256;

/// Who is on the other end, and how long the handshake may take: for messages.
pub(crate) struct Peer<'a> {
    /// `client 127.0.0.1:53124`, `the server at /tmp/sock`, …
    pub(crate) name: &'a str,
    pub(crate) timeout: Duration,
    pub(crate) deadline: Option<Instant>,
}

/// The listener's side: challenge the client, then answer its challenge.
pub(crate) fn serve(chan: &Channel, key: &[u8], peer: &Peer<'_>) -> Result<()> {
    deliver_challenge(chan, key, peer)?;
    answer_challenge(chan, key, peer)
}

/// The client's side: answer the listener's challenge, then challenge it.
pub(crate) fn client(chan: &Channel, key: &[u8], peer: &Peer<'_>) -> Result<()> {
    answer_challenge(chan, key, peer)?;
    deliver_challenge(chan, key, peer)
}

fn deliver_challenge(chan: &Channel, key: &[u8], peer: &Peer<'_>) -> Result<()> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::sys::random::fill(&mut nonce)?;
    let message = [DIGEST, &nonce].concat();
    send(chan, &[CHALLENGE, &message].concat(), peer)?;
    let response = recv(chan, peer)?;
    let proved = match response.strip_prefix(DIGEST) {
        Some(digest) => mac(key)?.chain_update(&message).verify_slice(digest).is_ok(),
        None => false,
    };
    if !proved {
        // Tell the peer, so that it fails with AuthenticationFailed too rather than
        // with a closed connection; it may be gone already.
        let _ = chan.send(FAILURE, peer.deadline);
        return Err(Error::AuthenticationFailed);
    }
    send(chan, WELCOME, peer)
}

fn answer_challenge(chan: &Channel, key: &[u8], peer: &Peer<'_>) -> Result<()> {
    let challenge = recv(chan, peer)?;
    let Some(message) = challenge.strip_prefix(CHALLENGE) else {
        return Err(protocol(peer, "its first message is not an authentication challenge"));
    };
    let Some(nonce) = message.strip_prefix(DIGEST) else {
        return Err(protocol(peer, "it asks for a digest other than {sha256}"));
    };
    if nonce.len() < MIN_NONCE_LEN {
        return Err(protocol(peer, "its challenge is too short to be safe to answer"));
    }
    let digest = mac(key)?.chain_update(message).finalize().into_bytes();
    send(chan, &[DIGEST, digest.as_slice()].concat(), peer)?;
    let verdict = recv(chan, peer)?;
    if verdict == WELCOME {
        Ok(())
    } else if verdict == FAILURE {
        Err(Error::AuthenticationFailed)
    } else {
        Err(protocol(peer, "it answered neither #WELCOME# nor #FAILURE#"))
    }
}

fn mac(key: &[u8]) -> Result<HmacSha256> {
    // HMAC takes keys of any length; the error exists for other MACs.
    HmacSha256::new_from_slice(key)
        .map_err(|e| Error::Io(io::Error::new(io::ErrorKind::InvalidInput, format!("authkey refused: {e}"))))
}

fn send(chan: &Channel, frame: &[u8], peer: &Peer<'_>) -> Result<()> {
    chan.send(frame, peer.deadline).map_err(|e| handshake_error(e, peer))
}

fn recv(chan: &Channel, peer: &Peer<'_>) -> Result<Vec<u8>> {
    chan.recv(peer.deadline).map_err(|e| handshake_error(e, peer))
}

/// Rewords what went wrong on the wire into one line that says it happened
/// during authentication, and with whom.
pub(crate) fn handshake_error(e: Error, peer: &Peer<'_>) -> Error {
    let name = peer.name;
    match e {
        Error::Eof => Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("authentication with {name} failed: it closed the connection during the handshake"),
        )),
        Error::Timeout => Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("authentication with {name} failed: no answer within {:?} (the handshake timeout)", peer.timeout),
        )),
        Error::Io(e) if e.kind() == io::ErrorKind::InvalidData => {
            protocol(peer, "it sent a message far longer than any handshake message")
        }
        Error::Io(e) => {
            Error::Io(io::Error::new(e.kind(), format!("authentication with {name} failed during the handshake: {e}")))
        }
        other => other,
    }
}

pub(crate) fn protocol(peer: &Peer<'_>, what: &str) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("authentication with {} failed: {what}; it does not speak the mproc connection protocol", peer.name),
    ))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn digests_verify_only_under_the_same_key() {
        let digest = mac(b"key").unwrap().chain_update(b"message").finalize().into_bytes();
        assert!(mac(b"key").unwrap().chain_update(b"message").verify_slice(&digest).is_ok());
        assert!(mac(b"other").unwrap().chain_update(b"message").verify_slice(&digest).is_err());
        assert!(mac(b"key").unwrap().chain_update(b"message").verify_slice(&digest[..16]).is_err());
    }
}
