//! A server, as one process's proxies reach it: a pool of connections.
//!
//! A request takes an idle connection (or opens one), sends, waits for the
//! answer and puts the connection back, so that a thread blocked in the server
//! (a queue's `get`, a lock's `acquire`) never keeps the process's other
//! threads from talking to it. Connections are never closed while healthy: a
//! lock acquired through one belongs to it, and the server releases it when it
//! closes. A connection that failed (an I/O error, a timeout: the stream may be
//! out of step) is dropped.
//!
//! A closure `update` **pins** its connection to the thread for the time of
//! the closure: the object is held by that connection, and a request the
//! closure makes through this `Remote` goes through it too, instead of waiting
//! behind its own hold.
//!
//! Connections opened by another process (inherited through fork) are never
//! used: two processes writing requests into one socket would mix their frames.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use super::protocol::{Request, Response, Wait};
use super::server::DEFAULT_MAX_MESSAGE;
use crate::codec;
use crate::connection::{Address, Client, Connection};
use crate::error::{Error, Result};

/// How long a proxy waits to connect to its server and authenticate.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a proxy waits for the answer to a request that does not wait in
/// the server on purpose (past its own timeout, for one that does). Such a
/// request waits in the server only for an object's lock (held during an
/// `apply` task) or hold (held during another client's closure `update`).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(60);

type Conn = Arc<Connection<()>>;

/// This process's connections.
struct Links {
    /// The process they belong to.
    pid: u32,
    idle: Vec<Conn>,
    /// Connections pinned to a thread by a closure `update`, with how many
    /// updates nest on each.
    pinned: HashMap<ThreadId, (Conn, u32)>,
}

pub(crate) struct Remote {
    address: Address,
    authkey: Vec<u8>,
    links: Mutex<Links>,
}

/// A connection taken for one request or one closure `update`.
pub(crate) struct Lease {
    conn: Conn,
    pinned: bool,
}

/// This process's remotes, at most one per server (address and key) while any
/// proxy uses it: proxies that arrive separately (task arguments, messages)
/// share their connections instead of opening their own.
static REMOTES: Mutex<Vec<Weak<Remote>>> = Mutex::new(Vec::new());

impl Remote {
    /// The remote of this process for the server at `address` with `authkey`:
    /// the one in use, or a new one.
    pub(crate) fn shared(address: Address, authkey: Vec<u8>) -> Arc<Remote> {
        // Held for a few instructions at a time; a child forked while another
        // thread held it would wait forever, so after a while it gives up and
        // makes a remote of its own (which works the same, unshared).
        let mut tries = 0;
        let mut all = loop {
            match REMOTES.try_lock() {
                Ok(all) => break all,
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) if tries < 1000 => {
                    tries += 1;
                    std::thread::yield_now();
                }
                Err(TryLockError::WouldBlock) => return Arc::new(Remote::new(address, authkey)),
            }
        };
        all.retain(|w| w.strong_count() > 0);
        let found = all.iter().filter_map(Weak::upgrade).find(|r| r.address == address && r.authkey == authkey);
        found.unwrap_or_else(|| {
            let remote = Arc::new(Remote::new(address, authkey));
            all.push(Arc::downgrade(&remote));
            remote
        })
    }

    pub(crate) fn new(address: Address, authkey: Vec<u8>) -> Remote {
        let links = Links { pid: std::process::id(), idle: Vec::new(), pinned: HashMap::new() };
        Remote { address, authkey, links: Mutex::new(links) }
    }

    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    pub(crate) fn authkey(&self) -> &[u8] {
        &self.authkey
    }

    fn links(&self) -> MutexGuard<'_, Links> {
        // Nothing panics with the lock held; the pool is consistent either way.
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        if links.pid != pid {
            // Inherited through fork: the parent's. Dropping closes only our copies.
            links.idle.clear();
            links.pinned.clear();
            links.pid = pid;
        }
        links
    }

    /// Opens a connection now, and keeps it (to learn early that the server is
    /// not there or the key is wrong).
    pub(crate) fn connect(&self) -> Result<()> {
        let lease = self.take()?;
        self.give_back(lease, true);
        Ok(())
    }

    /// Closes this process's connections (those in use close when their
    /// request ends).
    pub(crate) fn disconnect(&self) {
        let mut links = self.links();
        links.idle.clear();
        links.pinned.clear();
    }

    /// This thread's pinned connection, or an idle one, or a new one.
    fn take(&self) -> Result<Lease> {
        {
            let mut links = self.links();
            if let Some((conn, _)) = links.pinned.get(&std::thread::current().id()) {
                return Ok(Lease { conn: conn.clone(), pinned: true });
            }
            if let Some(conn) = links.idle.pop() {
                return Ok(Lease { conn, pinned: false });
            }
        }
        let conn = Client::<()>::connect_timeout(&self.address, &self.authkey, CONNECT_TIMEOUT)
            .map_err(|e| self.unreachable(e))?;
        conn.set_max_message(DEFAULT_MAX_MESSAGE);
        Ok(Lease { conn: Arc::new(conn), pinned: false })
    }

    /// Puts a connection back after use; a failed one is dropped (and unpinned).
    fn give_back(&self, lease: Lease, healthy: bool) {
        let mut links = self.links();
        if lease.pinned {
            if !healthy {
                links.pinned.remove(&std::thread::current().id());
            }
        } else if healthy && links.pid == std::process::id() {
            links.idle.push(lease.conn);
        }
    }

    /// Sends one request on a connection taken for it and waits for its response.
    pub(crate) fn request(&self, request: &Request, wait: Wait) -> Result<Response> {
        let bytes = codec::encode(request)?;
        let lease = self.take()?;
        let answer = self.exchange(&lease.conn, &bytes, wait);
        self.give_back(lease, answer.is_ok());
        answer
    }

    /// Takes a connection for a closure `update` and pins it to this thread
    /// until [`unpin`](Self::unpin).
    pub(crate) fn pin(&self) -> Result<Lease> {
        let lease = self.take()?;
        let mut links = self.links();
        let entry = links.pinned.entry(std::thread::current().id()).or_insert_with(|| (lease.conn.clone(), 0));
        entry.1 += 1;
        Ok(Lease { conn: lease.conn, pinned: true })
    }

    /// Ends a [`pin`](Self::pin); the connection goes back to the pool when
    /// the outermost one ends, if `healthy`.
    pub(crate) fn unpin(&self, lease: Lease, healthy: bool) {
        let mut links = self.links();
        let me = std::thread::current().id();
        let last = match links.pinned.get_mut(&me) {
            Some((conn, depth)) if Arc::ptr_eq(conn, &lease.conn) => {
                *depth -= 1;
                *depth == 0 || !healthy
            }
            // Dropped after a failure, or by a fork: nothing to put back.
            _ => return,
        };
        if last {
            links.pinned.remove(&me);
            if healthy {
                links.idle.push(lease.conn);
            }
        }
    }

    /// Sends a request on a pinned connection.
    pub(crate) fn request_on(&self, lease: &Lease, request: &Request, wait: Wait) -> Result<Response> {
        let bytes = codec::encode(request)?;
        self.exchange(&lease.conn, &bytes, wait)
    }

    fn exchange(&self, conn: &Connection<()>, bytes: &[u8], wait: Wait) -> Result<Response> {
        // A server that died or stopped closes the connection: the receive ends
        // with Eof, without waiting, however long it was told to wait.
        let deadline = match wait {
            Wait::No => Instant::now().checked_add(CALL_TIMEOUT),
            Wait::For(d) => Instant::now().checked_add(d).and_then(|t| t.checked_add(CALL_TIMEOUT)),
            Wait::Forever => None,
        };
        conn.send_bytes(bytes)
            .and_then(|()| match deadline {
                Some(d) => conn.recv_bytes_timeout(d.saturating_duration_since(Instant::now())),
                None => conn.recv_bytes(),
            })
            .map_err(|e| self.lost(e))
            .and_then(|frame| codec::decode(&frame))
    }

    fn unreachable(&self, e: Error) -> Error {
        match e {
            Error::Io(e) => Error::Io(io::Error::new(
                e.kind(),
                format!("cannot reach the manager at {}: {e} (has it shut down?)", self.address),
            )),
            other => other,
        }
    }

    fn lost(&self, e: Error) -> Error {
        match e {
            Error::Io(e) => Error::Io(io::Error::new(
                e.kind(),
                format!("the connection to the manager at {} failed: {e}", self.address),
            )),
            // Eof: the server closed the connection (it shut down or died).
            other => other,
        }
    }
}
