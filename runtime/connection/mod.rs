//! Connections between processes: Python's `multiprocessing.connection`.
//!
//! - [`Pipe`] makes two connected [`Connection`]s in this process, to hand one
//!   to a child (a forked closure inherits it).
//! - [`Listener`] and [`Client`] connect unrelated processes, or hosts, over TCP
//!   or a Unix socket, after both ends prove they know a shared key.
//! - [`wait`] sleeps until one of several connections (or anything
//!   [`Waitable`]) is ready.
//!
//! ## On the wire
//!
//! A connection carries a stream of **frames** (through shared memory for a
//! [`Pipe`], and for a [`Listener`]/[`Client`] connection over a Unix socket once
//! its handshake is done; over TCP, the socket): an 8-byte little-endian length,
//! then that many bytes. A typed message ([`Connection::send`]) is one
//! frame holding the value in the crate's codec; [`Connection::send_bytes`] sends
//! the bytes as they are. The receiver checks each length against its maximum
//! ([`Connection::set_max_message`], default [`DEFAULT_MAX_MESSAGE`], 1 GiB)
//! before allocating anything and grows its buffer only as bytes arrive, so a
//! corrupt or hostile length costs an error, not memory.
//!
//! ## Authentication
//!
//! [`Listener::accept`] and [`Client::connect`] run CPython's HMAC-SHA256
//! challenge-and-response in both directions before handing out the connection:
//! a wrong key is [`Error::AuthenticationFailed`](crate::Error::AuthenticationFailed)
//! on both sides and no message is delivered. The handshake is bounded by a
//! timeout ([`DEFAULT_HANDSHAKE_TIMEOUT`] for `accept`, [`DEFAULT_CONNECT_TIMEOUT`]
//! for `connect`). The frames are this crate's, not CPython's: an mproc process
//! talks to mproc processes only.

mod address;
mod auth;
mod channel;
mod conn;
mod listener;
mod pipe;
mod ring;
mod upgrade;
mod wait;

pub use address::{Address, ToAddress};
pub use channel::DEFAULT_MAX_MESSAGE;
pub use conn::Connection;
pub use listener::{Client, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, Listener};
pub use pipe::Pipe;
pub use wait::{Waitable, wait};
