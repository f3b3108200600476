//! Where a [`Listener`](super::Listener) listens: a TCP address or a Unix socket path.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The address of a [`Listener`](super::Listener), as
/// [`local_addr`](super::Listener::local_addr) gives it and
/// [`Client::connect`](super::Client::connect) takes it.
///
/// Python tells the families apart by type (a `(host, port)` tuple is TCP, a string
/// is a Unix socket path); so does mproc, through [`ToAddress`]: strings and
/// socket addresses are TCP (`"127.0.0.1:0"`, `"localhost:5000"`, a
/// [`SocketAddr`]), [`Path`]s and [`PathBuf`]s are Unix socket paths.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// A TCP address.
    Tcp(SocketAddr),
    /// The path of a Unix-domain stream socket.
    Unix(PathBuf),
}

impl Address {
    /// True for a Unix socket path.
    pub fn is_unix(&self) -> bool {
        matches!(self, Address::Unix(_))
    }
}

impl fmt::Display for Address {
    /// `host:port` for TCP, the path for a Unix socket.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Address {
        Address::Tcp(a)
    }
}

impl From<PathBuf> for Address {
    fn from(p: PathBuf) -> Address {
        Address::Unix(p)
    }
}

impl From<&Path> for Address {
    fn from(p: &Path) -> Address {
        Address::Unix(p.to_path_buf())
    }
}

/// What [`Listener::bind`](super::Listener::bind) and
/// [`Client::connect`](super::Client::connect) accept as an address: anything
/// [`ToSocketAddrs`] accepts (strings such as `"127.0.0.1:0"` or
/// `"example.org:5000"`, `(host, port)` pairs, [`SocketAddr`]) for TCP; a [`Path`]
/// or [`PathBuf`] for a Unix socket; or an [`Address`].
pub trait ToAddress {
    /// The addresses to try, in order (a host name may resolve to several).
    fn to_addresses(&self) -> io::Result<Vec<Address>>;
}

macro_rules! tcp_to_address {
    ($($t:ty),* $(,)?) => {$(
        impl ToAddress for $t {
            fn to_addresses(&self) -> io::Result<Vec<Address>> {
                Ok(self.to_socket_addrs()?.map(Address::Tcp).collect())
            }
        }
    )*};
}

tcp_to_address!(
    str,
    String,
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16),
    (&str, u16),
    (String, u16),
    [SocketAddr],
);

impl ToAddress for Path {
    fn to_addresses(&self) -> io::Result<Vec<Address>> {
        Ok(vec![Address::Unix(self.to_path_buf())])
    }
}

impl ToAddress for PathBuf {
    fn to_addresses(&self) -> io::Result<Vec<Address>> {
        self.as_path().to_addresses()
    }
}

impl ToAddress for Address {
    fn to_addresses(&self) -> io::Result<Vec<Address>> {
        Ok(vec![self.clone()])
    }
}

impl<A: ToAddress + ?Sized> ToAddress for &A {
    fn to_addresses(&self) -> io::Result<Vec<Address>> {
        (**self).to_addresses()
    }
}
