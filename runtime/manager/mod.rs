//! Managers: objects that live in a server process, used from any number of
//! processes through proxies — Python's `multiprocessing.Manager()` and
//! `multiprocessing.managers`.
//!
//! - [`Manager::start`] starts a server process of your own (it ends with the
//!   `Manager`, and with your process however it ends) and talks to it over a
//!   Unix socket in a private directory, with a random authkey.
//! - [`Server`] serves published objects over TCP (or a Unix socket) to other
//!   hosts, and [`Manager::connect`] reaches it with the shared authkey.
//! - [`DictProxy`], [`ListProxy`], [`NamespaceProxy`], [`ValueProxy`],
//!   [`QueueProxy`], [`LockProxy`], [`RLockProxy`], [`EventProxy`],
//!   [`SemaphoreProxy`], [`BarrierProxy`], [`ConditionProxy`] and
//!   [`ObjectProxy`] are the
//!   typed faces of the objects: every method is a request (one, but for the
//!   closure `update`s and [`ObjectProxy::call`]: two), and returns a
//!   `Result`. They are plain data (address, authkey, object id), so they pass
//!   as task arguments under every start method, or inside messages.
//!
//! ## Atomic updates, and what the server runs
//!
//! Values are typed serde data, stored in the server as their encoding: unlike
//! CPython's pickle, nothing a client sends makes the server run code, except
//! what it asks for by name — the `#[mproc::task]` function of an `apply`
//! ([`DictProxy::apply`]) or of a custom object's [`call`](ObjectProxy::call),
//! which must be registered in the server's binary and runs on the stored
//! value, with the object locked.
//!
//! `d[k] = d[k] + 1` through two requests loses updates; two ways don't:
//!
//! | | `update(&k, \|v\| v + 1)` | `apply(&k, increment)` |
//! |---|---|---|
//! | the function | any closure, run in this process | a `#[mproc::task] fn(V) -> V`, run in the server |
//! | requests | two (read and hold, write and release) | one |
//! | others meanwhile | wait for the whole round trip and closure | wait for the task |
//!
//! The closure form holds the object for this process's connection between
//! its two requests: other clients' requests on the object wait; a panic in the
//! closure releases it unchanged, and so does the death of the process (the
//! server releases whatever a closed connection held). Prefer `apply` on hot
//! paths.
//!
//! ```
//! #[mproc::task]
//! fn record(d: mproc::manager::DictProxy<u32, String>, l: mproc::manager::ListProxy<u32>, i: u32) {
//!     d.insert(i, "a".into()).unwrap();
//!     l.push(i).unwrap();
//! }
//!
//! let mgr = mproc::Manager::start()?;
//! let (d, l) = (mgr.dict()?, mgr.list_from(0..5)?);
//! let children: Vec<_> = (0..4).map(|i| mproc::spawn!(record(d.clone(), l.clone(), i))).collect::<Result<_, _>>()?;
//! for child in children {
//!     child.join()?;
//! }
//! assert_eq!(d.len()?, 4);
//! assert_eq!(l.len()?, 9);
//! # Ok::<(), mproc::Error>(())
//! ```

mod collections;
mod local;
mod object;
mod protocol;
mod proxy;
mod remote;
mod server;
mod state;
mod store;
mod sync;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

pub use collections::{DictProxy, ListProxy, NamespaceProxy, ValueProxy};
pub use object::ObjectProxy;
pub use server::{DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE, DEFAULT_SEND_TIMEOUT, Server, ServerHandle};
pub use sync::{
    BarrierProxy, ConditionProxy, ConditionProxyGuard, EventProxy, LockProxy, LockProxyGuard, ProxyGuard, QueueProxy,
    RLockProxy, RLockProxyGuard, SemaphoreProxy, SemaphoreProxyGuard,
};

use local::Owned;
use protocol::{Blob, Kind};
use proxy::Proxy;
use remote::Remote;

use crate::codec;
use crate::connection::{Address, ToAddress};
use crate::error::Result;
use crate::start::StartMethod;
use crate::task::TaskValue;

/// A connection to a manager server, and the factory of its proxies:
/// Python's `multiprocessing.Manager()` (a server of your own, [`start`](Self::start))
/// or `BaseManager(address, authkey).connect()` ([`connect`](Self::connect)).
///
/// A started manager's server stops when the `Manager` is dropped or
/// [`shut down`](Self::shutdown); proxies still held then fail their calls with
/// an error (never a hang).
///
/// ```
/// let mgr = mproc::Manager::start()?;
/// let d = mgr.dict::<String, i64>()?;
/// d.insert("k".into(), 1)?;
/// assert_eq!(d.get(&"k".into())?, Some(1));
/// mgr.shutdown()?;
/// assert!(d.get(&"k".into()).is_err());
/// # Ok::<(), mproc::Error>(())
/// ```
pub struct Manager {
    remote: Arc<Remote>,
    owned: Mutex<Option<Owned>>,
}

impl Manager {
    /// Starts a manager server in a new process, under the default start
    /// method, and connects to it.
    ///
    /// The server listens on a Unix socket in a new directory of the temp dir
    /// that only this user can enter (mode 0700), and requires a random 32-byte
    /// authkey, which its proxies carry. It ends when this `Manager` is dropped
    /// or shut down, and when this process ends, however it ends (it watches a
    /// pipe whose other end this process holds).
    pub fn start() -> Result<Manager> {
        Self::start_owned(None)
    }

    /// [`start`](Self::start), with the server process started by `method`.
    pub fn start_with(method: StartMethod) -> Result<Manager> {
        Self::start_owned(Some(method))
    }

    fn start_owned(method: Option<StartMethod>) -> Result<Manager> {
        let (owned, socket, authkey) = Owned::start(method)?;
        let mgr = Manager { remote: Remote::shared(Address::Unix(socket), authkey), owned: Mutex::new(None) };
        *mgr.owned() = Some(owned);
        Ok(mgr)
    }

    /// Connects to the manager [`Server`] at `addr` (from this host or another),
    /// authenticating with `authkey`: [`Error::AuthenticationFailed`](crate::Error::AuthenticationFailed)
    /// if the server has another key.
    ///
    /// Get the server's published objects by name ([`get_dict`](Self::get_dict),
    /// …), or make anonymous ones ([`dict`](Self::dict), …). Dropping this
    /// `Manager` leaves the server running.
    pub fn connect(addr: impl ToAddress, authkey: &[u8]) -> Result<Manager> {
        let mut last = None;
        for address in addr.to_addresses()? {
            let remote = Arc::new(Remote::new(address, authkey.to_vec()));
            match remote.connect() {
                Ok(()) => return Ok(Manager { remote, owned: Mutex::new(None) }),
                Err(e @ crate::Error::AuthenticationFailed) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            crate::Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "cannot connect: the address resolved to nothing",
            ))
        }))
    }

    /// The server's address (a Unix socket path for a started manager).
    pub fn address(&self) -> &Address {
        self.remote.address()
    }

    /// The server process's id, for a started manager.
    pub fn pid(&self) -> Option<crate::Pid> {
        self.owned().as_ref().map(Owned::pid)
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, Option<Owned>> {
        self.owned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops a started manager's server and waits for it to exit (it is killed
    /// if it does not within a few seconds), and removes its socket directory.
    /// Does nothing the second time, or for a [`connect`](Self::connect)ed
    /// manager (other than closing this process's connection).
    pub fn shutdown(&self) -> Result<()> {
        self.remote.disconnect();
        if let Some(owned) = self.owned().take() {
            owned.stop();
        }
        Ok(())
    }

    /// A new, empty dict in the server: Python's `manager.dict()`.
    pub fn dict<K: TaskValue, V: TaskValue>(&self) -> Result<DictProxy<K, V>> {
        Proxy::create(&self.remote, Kind::Dict, Vec::new(), None).map(DictProxy::from_proxy)
    }

    /// A new, empty list in the server: Python's `manager.list()`.
    pub fn list<T: TaskValue>(&self) -> Result<ListProxy<T>> {
        self.list_from(std::iter::empty())
    }

    /// A new list holding `items`: Python's `manager.list(range(5))`.
    pub fn list_from<T: TaskValue>(&self, items: impl IntoIterator<Item = T>) -> Result<ListProxy<T>> {
        let init = items.into_iter().map(|v| codec::encode(&v).map(Blob)).collect::<Result<_>>()?;
        Proxy::create(&self.remote, Kind::List, init, None).map(ListProxy::from_proxy)
    }

    /// A new, empty namespace in the server: Python's `manager.Namespace()`.
    pub fn namespace(&self) -> Result<NamespaceProxy> {
        Proxy::create(&self.remote, Kind::Namespace, Vec::new(), None).map(NamespaceProxy::from_proxy)
    }

    /// A new value in the server, holding `initial`: Python's `manager.Value(t, v)`.
    pub fn value<T: TaskValue>(&self, initial: T) -> Result<ValueProxy<T>> {
        let init = vec![Blob(codec::encode(&initial)?)];
        Proxy::create(&self.remote, Kind::Value, init, None).map(ValueProxy::from_proxy)
    }

    /// A new, empty queue in the server: Python's `manager.Queue()`.
    pub fn queue<T: TaskValue>(&self) -> Result<QueueProxy<T>> {
        Proxy::create(&self.remote, Kind::Queue, Vec::new(), None).map(QueueProxy::from_proxy)
    }

    /// A new, free lock in the server: Python's `manager.Lock()`.
    pub fn lock(&self) -> Result<LockProxy> {
        Proxy::create(&self.remote, Kind::Lock, Vec::new(), None).map(LockProxy::from_proxy)
    }

    /// A new, clear event in the server: Python's `manager.Event()`.
    pub fn event(&self) -> Result<EventProxy> {
        Proxy::create(&self.remote, Kind::Event, Vec::new(), None).map(EventProxy::from_proxy)
    }

    /// A new semaphore in the server with `value` free slots: Python's
    /// `manager.Semaphore(value)`.
    pub fn semaphore(&self, value: usize) -> Result<SemaphoreProxy> {
        Proxy::create(&self.remote, Kind::Semaphore, protocol::semaphore_init(value, None)?, None)
            .map(SemaphoreProxy::from_proxy)
    }

    /// A new bounded semaphore in the server with `value` free slots, which a
    /// release may not pass: Python's `manager.BoundedSemaphore(value)`.
    pub fn bounded_semaphore(&self, value: usize) -> Result<SemaphoreProxy> {
        Proxy::create(&self.remote, Kind::Semaphore, protocol::semaphore_init(value, Some(value as u64))?, None)
            .map(SemaphoreProxy::from_proxy)
    }

    /// A new barrier in the server for `parties` parties (at least 1): Python's
    /// `manager.Barrier(parties)`.
    pub fn barrier(&self, parties: usize) -> Result<BarrierProxy> {
        Proxy::create(&self.remote, Kind::Barrier, protocol::barrier_init(parties)?, None).map(BarrierProxy::from_proxy)
    }

    /// A new, free re-entrant lock in the server: Python's `manager.RLock()`.
    pub fn rlock(&self) -> Result<RLockProxy> {
        Proxy::create(&self.remote, Kind::RLock, Vec::new(), None).map(RLockProxy::from_proxy)
    }

    /// A new condition variable in the server, with its own re-entrant lock:
    /// Python's `manager.Condition()`.
    pub fn condition(&self) -> Result<ConditionProxy> {
        Proxy::create(&self.remote, Kind::Condition, Vec::new(), None).map(ConditionProxy::from_proxy)
    }

    /// A new custom object in the server, holding `initial`: what CPython's
    /// `BaseManager.register` gives, with operations of your own
    /// ([`ObjectProxy::call`]).
    pub fn object<T: TaskValue>(&self, initial: T) -> Result<ObjectProxy<T>> {
        let init = vec![Blob(codec::encode(&initial)?)];
        Proxy::create(&self.remote, Kind::Object, init, Some(object::type_name::<T>())).map(ObjectProxy::from_proxy)
    }

    /// The dict the server published as `name` ([`Server::dict`]).
    pub fn get_dict<K: TaskValue, V: TaskValue>(&self, name: &str) -> Result<DictProxy<K, V>> {
        Proxy::lookup(&self.remote, name, Kind::Dict, None).map(DictProxy::from_proxy)
    }

    /// The list the server published as `name` ([`Server::list`]).
    pub fn get_list<T: TaskValue>(&self, name: &str) -> Result<ListProxy<T>> {
        Proxy::lookup(&self.remote, name, Kind::List, None).map(ListProxy::from_proxy)
    }

    /// The namespace the server published as `name` ([`Server::namespace`]).
    pub fn get_namespace(&self, name: &str) -> Result<NamespaceProxy> {
        Proxy::lookup(&self.remote, name, Kind::Namespace, None).map(NamespaceProxy::from_proxy)
    }

    /// The value the server published as `name` ([`Server::value`]).
    pub fn get_value<T: TaskValue>(&self, name: &str) -> Result<ValueProxy<T>> {
        Proxy::lookup(&self.remote, name, Kind::Value, None).map(ValueProxy::from_proxy)
    }

    /// The queue the server published as `name` ([`Server::queue`]).
    pub fn get_queue<T: TaskValue>(&self, name: &str) -> Result<QueueProxy<T>> {
        Proxy::lookup(&self.remote, name, Kind::Queue, None).map(QueueProxy::from_proxy)
    }

    /// The lock the server published as `name` ([`Server::lock`]).
    pub fn get_lock(&self, name: &str) -> Result<LockProxy> {
        Proxy::lookup(&self.remote, name, Kind::Lock, None).map(LockProxy::from_proxy)
    }

    /// The event the server published as `name` ([`Server::event`]).
    pub fn get_event(&self, name: &str) -> Result<EventProxy> {
        Proxy::lookup(&self.remote, name, Kind::Event, None).map(EventProxy::from_proxy)
    }

    /// The semaphore (bounded or not) the server published as `name`
    /// ([`Server::semaphore`], [`Server::bounded_semaphore`]).
    pub fn get_semaphore(&self, name: &str) -> Result<SemaphoreProxy> {
        Proxy::lookup(&self.remote, name, Kind::Semaphore, None).map(SemaphoreProxy::from_proxy)
    }

    /// The barrier the server published as `name` ([`Server::barrier`]).
    pub fn get_barrier(&self, name: &str) -> Result<BarrierProxy> {
        Proxy::lookup(&self.remote, name, Kind::Barrier, None).map(BarrierProxy::from_proxy)
    }

    /// The re-entrant lock the server published as `name` ([`Server::rlock`]).
    pub fn get_rlock(&self, name: &str) -> Result<RLockProxy> {
        Proxy::lookup(&self.remote, name, Kind::RLock, None).map(RLockProxy::from_proxy)
    }

    /// The condition the server published as `name` ([`Server::condition`]).
    pub fn get_condition(&self, name: &str) -> Result<ConditionProxy> {
        Proxy::lookup(&self.remote, name, Kind::Condition, None).map(ConditionProxy::from_proxy)
    }

    /// The custom object the server published as `name` ([`Server::object`]),
    /// which must be a `T`: [`Error::Misuse`](crate::Error::Misuse) naming both
    /// types otherwise (types are compared by `std::any::type_name`, which is
    /// the same for the same type in builds of the same code).
    pub fn get_object<T: TaskValue>(&self, name: &str) -> Result<ObjectProxy<T>> {
        Proxy::lookup(&self.remote, name, Kind::Object, Some(object::type_name::<T>())).map(ObjectProxy::from_proxy)
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The authkey stays out of logs.
        f.debug_struct("Manager").field("address", self.address()).field("pid", &self.pid()).finish_non_exhaustive()
    }
}
