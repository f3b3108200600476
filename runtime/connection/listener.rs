//! `Listener` and `Client`: connections between unrelated processes or hosts, over
//! TCP or a Unix socket, authenticated by a shared key.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::address::{Address, ToAddress};
use super::auth::{self, HANDSHAKE_MAX, Peer};
use super::channel::{Channel, DEFAULT_MAX_MESSAGE, Direction, deadline_after};
use super::conn::Connection;
use super::upgrade;
use super::wait::Waitable;
use crate::error::{Error, Result};

/// How long [`Listener::accept`] gives a client to complete the authentication
/// handshake (10 seconds; see [`Listener::set_handshake_timeout`]).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Client::connect`] gives the listener to accept it and complete the
/// handshake (60 seconds; see [`Client::connect_timeout`]).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

enum Socket {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
        /// The process that made the socket file: only it removes the file on drop
        /// (a child made by fork holds a copy of the listener, not the file).
        owner: u32,
    },
}

/// A server socket that accepts authenticated connections: Python's
/// `multiprocessing.connection.Listener`.
///
/// Bind it to a TCP address (`"127.0.0.1:0"`, `"0.0.0.0:5000"`, anything
/// [`ToSocketAddrs`](std::net::ToSocketAddrs) takes) or to a Unix socket path (a
/// [`Path`](std::path::Path) or [`PathBuf`]); see [`Address`]. Every client must
/// prove it knows the same `authkey`, and the listener proves it to the client,
/// by HMAC-SHA256 challenge and response in both directions (as CPython 3.12
/// does), before any message is exchanged.
///
/// **The authkey.** Over TCP it must not be empty: anyone who can reach the port
/// could connect. An empty key is allowed for a Unix socket, whose file
/// permissions already say who may connect (the handshake still runs, with the
/// empty key, so both ends must agree on it).
///
/// **Timeouts.** A client has [`DEFAULT_HANDSHAKE_TIMEOUT`] (10 s) to complete the
/// handshake once accepted, so a silent or slow client cannot hold
/// [`accept`](Self::accept) forever; change it with
/// [`set_handshake_timeout`](Self::set_handshake_timeout). Waiting for a client to
/// arrive has no timeout: use [`wait`](super::wait) on the listener for that.
///
/// A Unix socket path must not exist when binding; the listener removes the
/// socket file when it is dropped.
///
/// **Over a Unix socket**, both ends are on one machine: once the handshake is
/// done, the connection moves into shared memory (rings of 256 KiB each way, as
/// a [`Pipe`](super::Pipe)'s), which makes a round trip several times faster
/// than the socket's. Nothing else changes for the caller.
///
/// ```
/// use mproc::connection::{Client, Listener};
///
/// let listener = Listener::<String>::bind("127.0.0.1:0", b"secret")?;
/// let addr = listener.local_addr()?;
/// let client = std::thread::spawn(move || -> mproc::Result<String> {
///     let conn = Client::<String>::connect(&addr, b"secret")?;
///     conn.send(&"hello".to_string())?;
///     conn.recv()
/// });
/// let conn = listener.accept()?;
/// assert_eq!(conn.recv()?, "hello");
/// conn.send(&"welcome".to_string())?;
/// assert_eq!(client.join().unwrap()?, "welcome");
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct Listener<T> {
    socket: Socket,
    authkey: Vec<u8>,
    handshake_timeout: Duration,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Listener<T> {
    /// Listens on `addr` for clients that know `authkey`.
    ///
    /// A host name that resolves to several addresses binds the first that works.
    /// An empty `authkey` is an [`Error::Misuse`] for TCP (see above).
    pub fn bind(addr: impl ToAddress, authkey: &[u8]) -> Result<Listener<T>> {
        let mut last = None;
        for address in addr.to_addresses()? {
            check_authkey(&address, authkey)?;
            let bound = match &address {
                Address::Tcp(a) => TcpListener::bind(a).map(Socket::Tcp),
                Address::Unix(path) => UnixListener::bind(path).map(|listener| Socket::Unix {
                    listener,
                    path: path.clone(),
                    owner: std::process::id(),
                }),
            };
            match bound {
                Ok(socket) => {
                    return Ok(Listener {
                        socket,
                        authkey: authkey.to_vec(),
                        handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
                        _type: PhantomData,
                    });
                }
                Err(e) => last = Some(io::Error::new(e.kind(), format!("cannot listen on {address}: {e}"))),
            }
        }
        Err(Error::Io(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "cannot listen: the address resolved to nothing")
        })))
    }

    /// The address clients connect to (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> Result<Address> {
        match &self.socket {
            Socket::Tcp(l) => Ok(Address::Tcp(l.local_addr()?)),
            Socket::Unix { path, .. } => Ok(Address::Unix(path.clone())),
        }
    }

    /// How long an accepted client has to complete the handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Sets how long an accepted client has to complete the handshake (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.handshake_timeout = timeout;
    }

    /// Waits for the next client, authenticates it and returns the connection.
    ///
    /// A client that fails the handshake is an error for this call only, and the
    /// listener goes on accepting: [`Error::AuthenticationFailed`] for a wrong key
    /// (the client gets the same error, and nothing is delivered either way), an
    /// [`Error::Io`] that says what happened for a client that speaks another
    /// protocol, disconnects, or stays silent past the handshake timeout.
    pub fn accept(&self) -> Result<Connection<T>> {
        let (fd, name, local): (OwnedFd, String, bool) = match &self.socket {
            Socket::Tcp(l) => {
                let (stream, peer) = l.accept()?;
                stream.set_nodelay(true)?;
                (stream.into(), format!("client {peer}"), false)
            }
            Socket::Unix { listener, path, .. } => {
                let (stream, _) = listener.accept()?;
                (stream.into(), format!("a client of {}", path.display()), true)
            }
        };
        let mut chan = Channel::new(fd, Direction::Both, HANDSHAKE_MAX)?;
        let peer =
            Peer { name: &name, timeout: self.handshake_timeout, deadline: deadline_after(self.handshake_timeout) };
        auth::serve(&chan, &self.authkey, &peer)?;
        if local {
            chan = upgrade::offer(chan, &peer)?;
        }
        chan.set_max(DEFAULT_MAX_MESSAGE);
        Ok(Connection::from_channel(chan))
    }
}

impl<T> Waitable for Listener<T> {
    /// Ready when a client is waiting to be accepted.
    fn wait_fd(&self) -> BorrowedFd<'_> {
        match &self.socket {
            Socket::Tcp(l) => l.as_fd(),
            Socket::Unix { listener, .. } => listener.as_fd(),
        }
    }
}

impl<T> AsFd for Listener<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.wait_fd()
    }
}

impl<T> Drop for Listener<T> {
    fn drop(&mut self) {
        if let Socket::Unix { path, owner, .. } = &self.socket {
            if *owner == std::process::id() {
                // Nothing to do if it is already gone.
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl<T> fmt::Debug for Listener<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The authkey stays out of logs.
        let mut d = f.debug_struct("Listener");
        match &self.socket {
            Socket::Tcp(l) => d.field("address", &l.local_addr().ok()),
            Socket::Unix { path, .. } => d.field("address", path),
        };
        d.field("handshake_timeout", &self.handshake_timeout).finish_non_exhaustive()
    }
}

/// Connects to a [`Listener`]: Python's `multiprocessing.connection.Client`.
///
/// ```
/// use mproc::connection::{Client, Listener};
///
/// let listener = Listener::<u64>::bind("127.0.0.1:0", b"secret")?;
/// let addr = listener.local_addr()?;
/// let server = std::thread::spawn(move || listener.accept()?.recv());
/// Client::<u64>::connect(addr, b"secret")?.send(&42)?;
/// assert_eq!(server.join().unwrap()?, 42);
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct Client<T> {
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Client<T> {
    /// Connects to the listener at `addr` and authenticates with `authkey` (the
    /// listener must have the same). Waits up to [`DEFAULT_CONNECT_TIMEOUT`] (60 s)
    /// for the listener to accept and complete the handshake.
    ///
    /// Errors: [`Error::AuthenticationFailed`] if the keys differ (on both sides);
    /// [`Error::Misuse`] for an empty key over TCP; [`Error::Io`] if nothing listens
    /// there, or the listener does not answer in time or speaks another protocol.
    pub fn connect(addr: impl ToAddress, authkey: &[u8]) -> Result<Connection<T>> {
        Self::connect_timeout(addr, authkey, DEFAULT_CONNECT_TIMEOUT)
    }

    /// [`connect`](Self::connect), giving up after `timeout` (for the connection and
    /// the handshake together). A host name that resolves to several addresses tries
    /// each in turn, within the same `timeout`.
    pub fn connect_timeout(addr: impl ToAddress, authkey: &[u8], timeout: Duration) -> Result<Connection<T>> {
        let deadline = deadline_after(timeout);
        let mut last = None;
        for address in addr.to_addresses()? {
            check_authkey(&address, authkey)?;
            match open(&address, deadline) {
                Ok(fd) => {
                    let mut chan = Channel::new(fd, Direction::Both, HANDSHAKE_MAX)?;
                    let name = format!("the listener at {address}");
                    let peer = Peer { name: &name, timeout, deadline };
                    auth::client(&chan, authkey, &peer)?;
                    if address.is_unix() {
                        chan = upgrade::take(chan, &peer)?;
                    }
                    chan.set_max(DEFAULT_MAX_MESSAGE);
                    return Ok(Connection::from_channel(chan));
                }
                Err(e) => last = Some(io::Error::new(e.kind(), format!("cannot connect to {address}: {e}"))),
            }
        }
        Err(Error::Io(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "cannot connect: the address resolved to nothing")
        })))
    }
}

impl<T> fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish()
    }
}

/// Opens the stream socket to `address` (close-on-exec, as std makes every socket).
fn open(address: &Address, deadline: Option<Instant>) -> io::Result<OwnedFd> {
    match address {
        Address::Tcp(a) => {
            let stream = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out before connecting"));
                    }
                    TcpStream::connect_timeout(a, left)?
                }
                None => TcpStream::connect(a)?,
            };
            stream.set_nodelay(true)?;
            Ok(stream.into())
        }
        Address::Unix(path) => Ok(UnixStream::connect(path)?.into()),
    }
}

fn check_authkey(address: &Address, authkey: &[u8]) -> Result<()> {
    if authkey.is_empty() && !address.is_unix() {
        return Err(Error::Misuse {
            what: format!(
                "an empty authkey over TCP ({address}) would let anyone who reaches the port connect: \
                 give both ends the same secret key (an empty key is allowed for Unix socket paths only)"
            ),
        });
    }
    Ok(())
}
