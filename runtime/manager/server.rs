//! The manager server: a listener, the objects, and a thread per connection.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::protocol::{self, Blob, Fault, Kind, Request, Response};
use super::store::Store;
use crate::codec;
use crate::connection::{Address, Connection, Listener, ToAddress, Waitable};
use crate::error::{Error, Result};

/// Connections a server serves at once unless told otherwise ([`Server::set_max_connections`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// The largest request a server accepts unless told otherwise, and the largest
/// response a proxy accepts (64 MiB; [`Server::set_max_message`]).
pub const DEFAULT_MAX_MESSAGE: u64 = 64 << 20;

/// How long a server waits for a client to take an answer unless told otherwise
/// ([`Server::set_send_timeout`]).
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// How often idle threads look whether the server was stopped.
const POLL: Duration = Duration::from_millis(100);

/// Threads waiting for clients (each completes a client's handshake itself, so a
/// client that connects and stays silent holds one of them, for the handshake
/// timeout at most, and not the others).
const ACCEPTORS: usize = 4;

/// How long [`Server::serve`] waits, once stopped, for connections to finish
/// the request they are serving.
const DRAIN: Duration = Duration::from_secs(1);

/// A manager server you run yourself, to serve objects to other processes or
/// hosts: CPython's `BaseManager(address, authkey).get_server().serve_forever()`.
///
/// Publish objects under names ([`dict`](Self::dict), [`list`](Self::list),
/// [`namespace`](Self::namespace), [`value`](Self::value), [`queue`](Self::queue),
/// [`lock`](Self::lock), [`event`](Self::event), [`object`](Self::object)), then
/// [`serve`](Self::serve). Clients connect with [`Manager::connect`](super::Manager::connect)
/// and the same authkey, and ask for the objects by name
/// ([`Manager::get_dict`](super::Manager::get_dict), …); they may also make
/// anonymous objects of their own. Every connection is served on its own thread,
/// at most [`max_connections`](Self::max_connections) at once (more wait in the
/// listen queue).
///
/// The server stores keys and values as encoded bytes and never decodes them:
/// it does not need the types, and a client that sends garbage gets an error,
/// not the server. Values are plain serde data: unlike CPython's pickle, nothing
/// a client sends can make the server run code, except the `#[mproc::task]`
/// functions of the server's own binary named by `apply` and `call` requests,
/// on the stored value.
///
/// ```
/// use mproc::manager::Server;
///
/// let server = Server::bind("127.0.0.1:0", b"secret")?;
/// server.dict("scores");
/// let addr = server.local_addr()?;
/// let stop = server.handle();
/// let serving = std::thread::spawn(move || server.serve());
///
/// let mgr = mproc::Manager::connect(&addr, b"secret")?;
/// let scores = mgr.get_dict::<String, u32>("scores")?;
/// scores.insert("ada".into(), 3)?;
/// assert_eq!(scores.get(&"ada".into())?, Some(3));
///
/// stop.stop();
/// serving.join().unwrap()?;
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct Server {
    listener: Listener<()>,
    store: Arc<Store>,
    stop: Arc<StopFlag>,
    max_connections: usize,
    max_message: u64,
    send_timeout: Duration,
}

/// Stops a [`Server`]'s [`serve`](Server::serve) from another thread. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ServerHandle {
    stop: Arc<StopFlag>,
}

/// Whether the server was stopped, and an eventfd rung when it is, so that
/// threads asleep in `poll` wake at once (it is never drained: once stopped,
/// it stays readable).
#[derive(Debug)]
struct StopFlag {
    flag: AtomicBool,
    bell: OwnedFd,
}

impl StopFlag {
    fn new() -> Result<StopFlag> {
        Ok(StopFlag { flag: AtomicBool::new(false), bell: crate::sys::fd::eventfd()? })
    }

    fn set(&self) {
        self.flag.store(true, Ordering::Release);
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a local array to an open eventfd; a full
        // counter (EAGAIN) means it is rung already.
        unsafe { libc::write(self.bell.as_raw_fd(), one.as_ptr().cast(), 8) };
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

impl Waitable for StopFlag {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        self.bell.as_fd()
    }

    fn is_ready(&self) -> bool {
        self.is_set()
    }
}

impl ServerHandle {
    /// Makes `serve` return: it stops accepting at once, and returns once the
    /// connections have finished the request they are serving (one second at most).
    pub fn stop(&self) {
        self.stop.set();
    }
}

impl Server {
    /// Listens on `addr` (TCP, or a Unix socket path) for clients that know
    /// `authkey`; see [`Listener::bind`] for the addresses and the key rules (an
    /// empty key is refused over TCP).
    pub fn bind(addr: impl ToAddress, authkey: &[u8]) -> Result<Server> {
        let listener = Listener::<()>::bind(addr, authkey)?;
        // Several threads accept on it: one that finds the client taken by
        // another must not block in accept(2).
        crate::sys::fd::set_nonblocking(listener.as_fd().as_raw_fd(), true)?;
        Ok(Server {
            listener,
            store: Arc::new(Store::default()),
            stop: Arc::new(StopFlag::new()?),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_message: DEFAULT_MAX_MESSAGE,
            send_timeout: DEFAULT_SEND_TIMEOUT,
        })
    }

    /// The address clients connect to (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> Result<Address> {
        self.listener.local_addr()
    }

    /// How many connections are served at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Sets how many connections are served at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`]; at least 1). A client past the limit waits in
    /// the listen queue until a connection closes.
    pub fn set_max_connections(&mut self, n: usize) {
        self.max_connections = n.max(1);
    }

    /// Sets the largest request accepted, in bytes (default [`DEFAULT_MAX_MESSAGE`]).
    /// A longer one is refused before anything is allocated for it, and its
    /// connection is closed.
    pub fn set_max_message(&mut self, bytes: u64) {
        self.max_message = bytes;
    }

    /// Sets how long the server waits for a client to take an answer (default
    /// [`DEFAULT_SEND_TIMEOUT`]): a client that stops reading its answers has
    /// its connection closed after that, so that it cannot keep a server thread
    /// (and the objects it holds) forever.
    pub fn set_send_timeout(&mut self, timeout: Duration) {
        self.send_timeout = timeout;
    }

    /// Sets how long an accepted client has to complete the authentication
    /// handshake (default [`DEFAULT_HANDSHAKE_TIMEOUT`](crate::connection::DEFAULT_HANDSHAKE_TIMEOUT)).
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.listener.set_handshake_timeout(timeout);
    }

    /// A handle that stops [`serve`](Self::serve) from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle { stop: self.stop.clone() }
    }

    /// Publishes a new, empty dict under `name` (a name published before now
    /// refers to the new object). Clients get it with
    /// [`Manager::get_dict`](super::Manager::get_dict).
    pub fn dict(&self, name: &str) {
        self.publish(name, Kind::Dict, Vec::new(), None);
    }

    /// Publishes a new, empty list under `name`; clients get it with
    /// [`Manager::get_list`](super::Manager::get_list).
    pub fn list(&self, name: &str) {
        self.publish(name, Kind::List, Vec::new(), None);
    }

    /// Publishes a new, empty namespace under `name`; clients get it with
    /// [`Manager::get_namespace`](super::Manager::get_namespace).
    pub fn namespace(&self, name: &str) {
        self.publish(name, Kind::Namespace, Vec::new(), None);
    }

    /// Publishes a value holding `initial` under `name`; clients get it with
    /// [`Manager::get_value`](super::Manager::get_value) (with the same type).
    pub fn value<T: Serialize>(&self, name: &str, initial: &T) -> Result<()> {
        let init = Blob(codec::encode(initial)?);
        self.publish(name, Kind::Value, vec![init], None);
        Ok(())
    }

    /// Publishes a new, empty queue under `name`; clients get it with
    /// [`Manager::get_queue`](super::Manager::get_queue).
    pub fn queue(&self, name: &str) {
        self.publish(name, Kind::Queue, Vec::new(), None);
    }

    /// Publishes a new, free lock under `name`; clients get it with
    /// [`Manager::get_lock`](super::Manager::get_lock).
    pub fn lock(&self, name: &str) {
        self.publish(name, Kind::Lock, Vec::new(), None);
    }

    /// Publishes a new, clear event under `name`; clients get it with
    /// [`Manager::get_event`](super::Manager::get_event).
    pub fn event(&self, name: &str) {
        self.publish(name, Kind::Event, Vec::new(), None);
    }

    /// Publishes a new, free re-entrant lock under `name`; clients get it with
    /// [`Manager::get_rlock`](super::Manager::get_rlock).
    pub fn rlock(&self, name: &str) {
        self.publish(name, Kind::RLock, Vec::new(), None);
    }

    /// Publishes a new condition variable under `name`; clients get it with
    /// [`Manager::get_condition`](super::Manager::get_condition).
    pub fn condition(&self, name: &str) {
        self.publish(name, Kind::Condition, Vec::new(), None);
    }

    /// Publishes a semaphore with `value` free slots under `name`; clients get
    /// it with [`Manager::get_semaphore`](super::Manager::get_semaphore).
    pub fn semaphore(&self, name: &str, value: usize) -> Result<()> {
        self.publish(name, Kind::Semaphore, protocol::semaphore_init(value, None)?, None);
        Ok(())
    }

    /// Publishes a bounded semaphore with `value` free slots (which a release
    /// may not pass) under `name`; clients get it with
    /// [`Manager::get_semaphore`](super::Manager::get_semaphore).
    pub fn bounded_semaphore(&self, name: &str, value: usize) -> Result<()> {
        self.publish(name, Kind::Semaphore, protocol::semaphore_init(value, Some(value as u64))?, None);
        Ok(())
    }

    /// Publishes a barrier for `parties` parties (at least 1) under `name`;
    /// clients get it with [`Manager::get_barrier`](super::Manager::get_barrier).
    pub fn barrier(&self, name: &str, parties: usize) -> Result<()> {
        self.publish(name, Kind::Barrier, protocol::barrier_init(parties)?, None);
        Ok(())
    }

    /// Publishes a custom object holding `initial` under `name`; clients get it
    /// with [`Manager::get_object`](super::Manager::get_object), which checks
    /// that they ask for the same type `T` (by its name, `std::any::type_name`).
    pub fn object<T: Serialize>(&self, name: &str, initial: &T) -> Result<()> {
        let init = Blob(codec::encode(initial)?);
        self.publish(name, Kind::Object, vec![init], Some(std::any::type_name::<T>().to_string()));
        Ok(())
    }

    fn publish(&self, name: &str, kind: Kind, init: Vec<Blob>, type_name: Option<String>) {
        // Every kind is given what it needs here: nothing to refuse.
        let _ = self.store.publish(name, kind, init, type_name);
    }

    /// Serves clients until [`ServerHandle::stop`] is called. Errors only if a
    /// thread cannot be started at all.
    pub fn serve(&self) -> Result<()> {
        let active = Active::default();
        let acceptors = ACCEPTORS.min(self.max_connections);
        std::thread::scope(|scope| -> Result<()> {
            for i in 0..acceptors {
                let spawned = std::thread::Builder::new()
                    .name(format!("mproc-manager-accept-{i}"))
                    .spawn_scoped(scope, || self.accept_loop(&active));
                if let Err(e) = spawned {
                    self.stop.set();
                    return Err(Error::Io(e));
                }
            }
            Ok(())
        })?;
        active.drain(DRAIN);
        Ok(())
    }

    fn accept_loop(&self, active: &Arc<ActiveInner>) {
        while !self.stopped() {
            if !active.wait_for_slot(self.max_connections, &self.stop) {
                return;
            }
            match crate::connection::wait(&[&self.listener as &dyn Waitable, &*self.stop], Some(POLL)) {
                Ok(ready) if ready.is_empty() => continue,
                Ok(_) => {}
                Err(_) => {
                    std::thread::sleep(POLL);
                    continue;
                }
            }
            let conn = match self.listener.accept() {
                Ok(conn) => conn,
                // Taken by another acceptor.
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                // A client that failed the handshake (a wrong key, garbage, silence)
                // concerns that client only. Out of descriptors: breathe.
                Err(Error::Io(e)) if e.raw_os_error() == Some(libc::EMFILE) => {
                    std::thread::sleep(POLL);
                    continue;
                }
                Err(_) => continue,
            };
            conn.set_max_message(self.max_message);
            active.start(&self.store, &self.stop, conn, self.send_timeout);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.is_set()
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("address", &self.local_addr().ok())
            .field("max_connections", &self.max_connections)
            .field("max_message", &self.max_message)
            .field("send_timeout", &self.send_timeout)
            .finish_non_exhaustive()
    }
}

/// The connections being served, counted so that acceptors respect the bound
/// and `serve` can wait for them when stopped.
#[derive(Default)]
struct ActiveInner {
    count: Mutex<usize>,
    changed: Condvar,
}

type Active = Arc<ActiveInner>;

impl ActiveInner {
    /// Waits until fewer than `max` connections are served; false once stopped.
    fn wait_for_slot(&self, max: usize, stop: &StopFlag) -> bool {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *count >= max {
            if stop.is_set() {
                return false;
            }
            count = self.changed.wait_timeout(count, POLL).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    /// Serves `conn` on a thread of its own.
    fn start(self: &Arc<Self>, store: &Arc<Store>, stop: &Arc<StopFlag>, conn: Connection<()>, send_timeout: Duration) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        let (me, store, stop) = (self.clone(), store.clone(), stop.clone());
        let spawned = std::thread::Builder::new().name("mproc-manager-conn".into()).spawn(move || {
            serve_connection(&conn, &store, &stop, send_timeout);
            drop(conn);
            me.finished();
        });
        if spawned.is_err() {
            // No thread for it: the connection was dropped with the closure.
            self.finished();
        }
    }

    fn finished(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        self.changed.notify_all();
    }

    /// Waits up to `limit` for every connection to close.
    fn drain(&self, limit: Duration) {
        let end = Instant::now() + limit;
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            count = self.changed.wait_timeout(count, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

/// Answers the requests of one client until it disconnects, breaks the
/// protocol beyond repair (a frame over the limit, a frame cut short), does not
/// take an answer within `send_timeout`, or the server stops. Whatever the
/// connection held is released when it ends (the session's drop).
fn serve_connection(conn: &Connection<()>, store: &Store, stop: &StopFlag, send_timeout: Duration) {
    // A client sends nothing while it waits for an answer: anything arriving
    // during a wait, the end of the stream included, means it gave up or went.
    let gone = || stop.is_set() || !matches!(conn.poll(Some(Duration::ZERO)), Ok(false));
    let mut session = store.session(&gone);
    loop {
        // A client busy with requests sends the next one within microseconds: a
        // connection in shared memory watches for it before going to sleep.
        // Asleep until a request (or the end of the stream) comes or the server stops.
        if (!conn.spin_for_input() && crate::connection::wait(&[conn as &dyn Waitable, stop], None).is_err())
            || stop.is_set()
        {
            return;
        }
        let frame = match conn.recv_bytes_timeout(Duration::ZERO) {
            Ok(frame) => frame,
            Err(Error::Timeout) => continue,
            Err(_) => return,
        };
        // A frame that is not a request is answered (frames still line up), not fatal.
        let response = match codec::decode::<Request>(&frame) {
            Ok(request) => match session.handle(request) {
                Some(response) => response,
                // The client went while its request waited.
                None => return,
            },
            Err(e) => Response::Fault(Fault::BadRequest(e.to_string())),
        };
        let bytes = match codec::encode(&response) {
            Ok(bytes) => bytes,
            Err(e) => match codec::encode(&Response::Fault(Fault::BadRequest(e.to_string()))) {
                Ok(bytes) => bytes,
                Err(_) => return,
            },
        };
        // A timed-out send leaves the stream out of step: the connection ends.
        if conn.send_bytes_timeout(&bytes, send_timeout).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::connection::Client;

    fn request(conn: &Connection<()>, request: &Request) -> Response {
        conn.send_bytes(&codec::encode(request).unwrap()).unwrap();
        codec::decode(&conn.recv_bytes_timeout(Duration::from_secs(10)).unwrap()).unwrap()
    }

    #[test]
    fn a_client_that_does_not_read_its_answers_is_cut_off_after_the_send_timeout() {
        let mut server = Server::bind("127.0.0.1:0", b"key").unwrap();
        server.set_max_connections(1);
        server.set_send_timeout(Duration::from_millis(300));
        // An answer far larger than what the socket buffers hold.
        server.value("big", &vec![7u8; 32 << 20]).unwrap();
        let addr = server.local_addr().unwrap();
        let stop = server.handle();
        std::thread::scope(|s| {
            s.spawn(|| server.serve());
            let silent = Client::<()>::connect(&addr, b"key").unwrap();
            let lookup = Request::Lookup { name: "big".into(), kind: Kind::Value, type_name: None };
            let Response::Id(id) = request(&silent, &lookup) else { panic!("no id") };
            silent
                .send_bytes(&codec::encode(&Request::Call { id, op: super::super::protocol::Op::ValueGet }).unwrap())
                .unwrap();
            // The only connection slot is freed once the server gives up on the silent client.
            let started = Instant::now();
            let next = Client::<()>::connect(&addr, b"key").unwrap();
            let lookup = Request::Lookup { name: "big".into(), kind: Kind::Value, type_name: None };
            assert!(matches!(request(&next, &lookup), Response::Id(_)));
            assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
            drop(silent);
            stop.stop();
        });
    }
}
