//! Proxies: typed faces on objects that live in a manager server.
//!
//! A proxy is plain data: the server's address, the authkey and the object's
//! id. It opens its connection on first use, in each process: a connection
//! made by another process (inherited through fork) is never used, since two
//! processes writing requests into one socket would mix their frames. Clones
//! share the connection of the process they are in; requests from several
//! threads through one connection take turns.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::protocol::{Blob, Fault, Kind, Op, Request, Response};
use super::server::DEFAULT_MAX_MESSAGE;
use crate::codec;
use crate::connection::{Address, Client, Connection};
use crate::error::{Error, Result};
use crate::task::{self, TaskFn, TaskValue};

/// How long a proxy waits to connect to its server and authenticate.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a proxy waits for the answer to a request. Requests never wait for
/// one another in the server except for an object's lock (held during an
/// `update` task), so only a stuck server or task gets near it.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A server, as one process's proxies reach it.
pub(crate) struct Remote {
    address: Address,
    authkey: Vec<u8>,
    link: Mutex<Option<Link>>,
}

/// A connection, and the process that opened it.
struct Link {
    pid: u32,
    conn: Connection<()>,
}

impl Remote {
    pub(crate) fn new(address: Address, authkey: Vec<u8>) -> Remote {
        Remote { address, authkey, link: Mutex::new(None) }
    }

    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    fn link(&self) -> MutexGuard<'_, Option<Link>> {
        // Nothing panics with the lock held; the slot is consistent either way.
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens this process's connection now (to learn early that the server is
    /// not there or the key is wrong).
    pub(crate) fn connect(&self) -> Result<()> {
        let mut link = self.link();
        self.ensure(&mut link).map(drop)
    }

    /// Closes this process's connection, if open.
    pub(crate) fn disconnect(&self) {
        self.link().take();
    }

    fn ensure<'a>(&self, link: &'a mut Option<Link>) -> Result<&'a Connection<()>> {
        let pid = std::process::id();
        if link.as_ref().is_some_and(|l| l.pid != pid) {
            // Inherited through fork: the parent's. Dropping closes only our copy.
            *link = None;
        }
        if link.is_none() {
            let conn = Client::<()>::connect_timeout(&self.address, &self.authkey, CONNECT_TIMEOUT)
                .map_err(|e| self.unreachable(e))?;
            conn.set_max_message(DEFAULT_MAX_MESSAGE);
            *link = Some(Link { pid, conn });
        }
        match link {
            Some(l) => Ok(&l.conn),
            None => Err(Error::Closed),
        }
    }

    /// Sends one request and waits for its response.
    pub(crate) fn request(&self, request: &Request) -> Result<Response> {
        let bytes = codec::encode(request)?;
        let mut link = self.link();
        let conn = self.ensure(&mut link)?;
        let answer = conn.send_bytes(&bytes).and_then(|()| conn.recv_bytes_timeout(CALL_TIMEOUT));
        match answer {
            Ok(frame) => codec::decode(&frame),
            Err(e) => {
                // The stream may be out of step (a late answer would be taken for
                // the next one's): the next request opens a new connection.
                *link = None;
                Err(self.lost(e))
            }
        }
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

/// The error a proxy call returns for a refused request.
fn fault(f: Fault) -> Error {
    match f {
        Fault::NoSuchObject(id) => Error::Misuse {
            what: format!("the manager has no object {id}: the proxy belongs to another manager, or to one restarted"),
        },
        Fault::NoSuchName(name) => {
            Error::Misuse { what: format!("the manager publishes nothing under the name {name:?}") }
        }
        Fault::WrongKind { expected, found } => {
            Error::Misuse { what: format!("the manager's object is a {}, not a {}", found.noun(), expected.noun()) }
        }
        Fault::IndexOutOfRange { index, len } => {
            Error::Misuse { what: format!("list index {index} is out of range for a list of {len} items") }
        }
        Fault::UnknownTask(name) => Error::NotATask { name },
        Fault::Task { task, failure } => failure.into_error(&task),
        Fault::BadRequest(what) => Error::Codec(format!("the manager could not read the request: {what}")),
    }
}

fn unexpected(response: Response) -> Error {
    match response {
        Response::Fault(f) => fault(f),
        other => Error::Codec(format!("the manager gave an unexpected answer: {other:?}")),
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Blob> {
    codec::encode(value).map(Blob)
}

fn decode<T: DeserializeOwned>(blob: &Blob) -> Result<T> {
    codec::decode(&blob.0)
        .map_err(|e| Error::Codec(format!("a value from the manager is not a {}: {e}", std::any::type_name::<T>())))
}

/// The name of the task behind `f`, checked to be registered.
fn task_name<F, A>(f: &F) -> Result<String>
where
    F: TaskFn<A>,
{
    Ok(task::of(f)?.name().to_string())
}

/// The untyped core of every proxy: its server and its object.
#[derive(Clone)]
pub(crate) struct Proxy {
    remote: Arc<Remote>,
    id: u64,
}

impl Proxy {
    /// Makes a new object of `kind` in the server.
    pub(crate) fn create(remote: &Arc<Remote>, kind: Kind, init: Vec<Blob>) -> Result<Proxy> {
        match remote.request(&Request::Create { kind, init })? {
            Response::Id(id) => Ok(Proxy { remote: remote.clone(), id }),
            other => Err(unexpected(other)),
        }
    }

    /// The object published under `name`, which must be of `kind`.
    pub(crate) fn lookup(remote: &Arc<Remote>, name: &str, kind: Kind) -> Result<Proxy> {
        match remote.request(&Request::Lookup { name: name.to_string(), kind })? {
            Response::Id(id) => Ok(Proxy { remote: remote.clone(), id }),
            other => Err(unexpected(other)),
        }
    }

    fn call(&self, op: Op) -> Result<Response> {
        self.remote.request(&Request::Call { id: self.id, op })
    }

    fn done(&self, op: Op) -> Result<()> {
        match self.call(op)? {
            Response::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    fn item<T: DeserializeOwned>(&self, op: Op) -> Result<Option<T>> {
        match self.call(op)? {
            Response::Item(item) => item.as_ref().map(decode).transpose(),
            other => Err(unexpected(other)),
        }
    }

    /// For an answer that is an item: whether there was one (left undecoded).
    fn present(&self, op: Op) -> Result<bool> {
        match self.call(op)? {
            Response::Item(item) => Ok(item.is_some()),
            other => Err(unexpected(other)),
        }
    }

    fn items<T: DeserializeOwned>(&self, op: Op) -> Result<Vec<T>> {
        match self.call(op)? {
            Response::Items(items) => items.iter().map(decode).collect(),
            other => Err(unexpected(other)),
        }
    }

    fn flag(&self, op: Op) -> Result<bool> {
        match self.call(op)? {
            Response::Bool(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    fn len(&self) -> Result<usize> {
        match self.call(Op::Len)? {
            Response::Len(n) => usize::try_from(n).map_err(|_| Error::Codec(format!("a length of {n}"))),
            other => Err(unexpected(other)),
        }
    }
}

impl PartialEq for Proxy {
    fn eq(&self, other: &Proxy) -> bool {
        self.id == other.id && self.remote.address == other.remote.address
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The authkey stays out of logs.
        f.debug_struct("Proxy").field("address", &self.remote.address).field("id", &self.id).finish_non_exhaustive()
    }
}

/// A proxy on the wire: where its server is, the key, and which object.
#[derive(Serialize, Deserialize)]
struct Wire {
    address: Address,
    authkey: Blob,
    id: u64,
}

impl Serialize for Proxy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let wire =
            Wire { address: self.remote.address.clone(), authkey: Blob(self.remote.authkey.clone()), id: self.id };
        wire.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Proxy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Proxy, D::Error> {
        let Wire { address, authkey, id } = Wire::deserialize(d)?;
        Ok(Proxy { remote: Arc::new(Remote::new(address, authkey.0)), id })
    }
}

macro_rules! proxy_type {
    ($(#[$doc:meta])* $name:ident < $($t:ident),* >) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize)]
        #[serde(transparent, bound = "")]
        pub struct $name<$($t),*> {
            proxy: Proxy,
            #[serde(skip)]
            _types: PhantomData<fn() -> ($($t,)*)>,
        }

        impl<$($t),*> $name<$($t),*> {
            pub(crate) fn from_proxy(proxy: Proxy) -> Self {
                $name { proxy, _types: PhantomData }
            }
        }

        /// A clone refers to the same object in the server.
        impl<$($t),*> Clone for $name<$($t),*> {
            fn clone(&self) -> Self {
                $name { proxy: self.proxy.clone(), _types: PhantomData }
            }
        }

        /// Equal when they refer to the same object of the same server.
        impl<$($t),*> PartialEq for $name<$($t),*> {
            fn eq(&self, other: &Self) -> bool {
                self.proxy == other.proxy
            }
        }

        impl<$($t),*> fmt::Debug for $name<$($t),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("address", &self.proxy.remote.address)
                    .field("id", &self.proxy.id)
                    .finish_non_exhaustive()
            }
        }
    };
}

proxy_type!(
    /// A dict that lives in a manager server: Python's `manager.dict()`.
    ///
    /// Made by [`Manager::dict`](super::Manager::dict) or found by name with
    /// [`Manager::get_dict`](super::Manager::get_dict). Every method is one
    /// request to the server and returns a `Result` (the server may be gone).
    /// Iteration order is insertion order, as in Python.
    ///
    /// **Keys** are compared by their encoding, so `K` must encode
    /// deterministically: every type made of numbers, strings, `Vec`s, tuples,
    /// `BTreeMap`s and derived structs and enums does; a `HashMap` or `HashSet`
    /// (whose order varies) inside a key does not. Two different key types that
    /// encode alike (`u32` and `u64`, say) would meet: use one `K` per dict.
    ///
    /// A proxy is plain data (address, key, object id): clone it, pass it as a
    /// task argument under any start method, or inside a message. **It carries
    /// the manager's authkey**: send it only where the key may go.
    ///
    /// ```
    /// #[mproc::task]
    /// fn increment(n: u64) -> u64 { n + 1 }
    ///
    /// let mgr = mproc::Manager::start()?;
    /// let d = mgr.dict::<String, u64>()?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.update(&"a".into(), increment)?, Some(2));      // atomic, in the server
    /// assert_eq!(d.update_or(&"b".into(), 0, increment)?, 1);      // a missing key starts at 0
    /// assert_eq!(d.items()?, vec![("a".into(), 2), ("b".into(), 1)]);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    DictProxy<K, V>
);

impl<K: TaskValue, V: TaskValue> DictProxy<K, V> {
    /// Sets `key` to `value`; returns the value it had.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        self.proxy.item(Op::DictInsert { key: encode(&key)?, value: encode(&value)? })
    }

    /// The value under `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        self.proxy.item(Op::DictGet { key: encode(key)? })
    }

    /// Removes `key`; returns the value it had.
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        self.proxy.item(Op::DictRemove { key: encode(key)? })
    }

    /// Whether `key` is there.
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        self.proxy.flag(Op::DictContains { key: encode(key)? })
    }

    /// How many keys.
    pub fn len(&self) -> Result<usize> {
        self.proxy.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> Result<Vec<K>> {
        self.proxy.items(Op::DictKeys)
    }

    /// The values, in insertion order of their keys.
    pub fn values(&self) -> Result<Vec<V>> {
        self.proxy.items(Op::DictValues)
    }

    /// The pairs, in insertion order: one consistent snapshot.
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        match self.proxy.call(Op::DictItems)? {
            Response::Pairs(pairs) => pairs.iter().map(|(k, v)| Ok((decode(k)?, decode(v)?))).collect(),
            other => Err(unexpected(other)),
        }
    }

    /// Removes every key.
    pub fn clear(&self) -> Result<()> {
        self.proxy.done(Op::Clear)
    }

    /// Replaces the value under `key` with `task(value)`, atomically: the task
    /// runs **in the server**, with the dict locked, so concurrent updates from
    /// any number of processes are never lost. Returns the new value, or `None`
    /// (and does nothing) when the key is missing; see
    /// [`update_or`](Self::update_or).
    ///
    /// `task` must be a `#[mproc::task] fn(V) -> V` (checked when compiling, and
    /// [`Error::NotATask`] if it lacks the attribute). The server finds it by
    /// name, so it must be registered in the server's binary: always true for
    /// [`Manager::start`](super::Manager::start); for a [`Server`](super::Server)
    /// of another program, that program must define the same task (same module
    /// path and name). A panicking task is [`Error::Panicked`] and leaves the
    /// value as it was. Keep it short: it holds the dict's lock.
    pub fn update<F>(&self, key: &K, task: F) -> Result<Option<V>>
    where
        F: TaskFn<(V,), Output = V>,
    {
        let op = Op::DictUpdate { key: encode(key)?, task: task_name(&task)?, default: None };
        self.proxy.item(op)
    }

    /// [`update`](Self::update), starting from `default` when the key is
    /// missing (Python's `d[k] = task(d.get(k, default))`, atomically). Returns
    /// the new value.
    pub fn update_or<F>(&self, key: &K, default: V, task: F) -> Result<V>
    where
        F: TaskFn<(V,), Output = V>,
    {
        let op = Op::DictUpdate { key: encode(key)?, task: task_name(&task)?, default: Some(encode(&default)?) };
        self.proxy.item(op)?.ok_or_else(|| Error::Codec("the manager returned no value for update_or".into()))
    }
}

proxy_type!(
    /// A list that lives in a manager server: Python's `manager.list()`.
    ///
    /// Made by [`Manager::list`](super::Manager::list) (or
    /// [`list_from`](super::Manager::list_from)) or found by name with
    /// [`Manager::get_list`](super::Manager::get_list). Every method is one
    /// request to the server. A proxy is plain data: see [`DictProxy`].
    ///
    /// ```
    /// let mgr = mproc::Manager::start()?;
    /// let l = mgr.list_from(0..3i64)?;
    /// l.push(3)?;
    /// l.set(0, 10)?;
    /// assert_eq!(l.get(0)?, Some(10));
    /// assert_eq!(l.pop()?, Some(3));
    /// assert_eq!(l.to_vec()?, vec![10, 1, 2]);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    ListProxy<T>
);

impl<T: TaskValue> ListProxy<T> {
    /// Appends `value`.
    pub fn push(&self, value: T) -> Result<()> {
        self.proxy.done(Op::ListPush { value: encode(&value)? })
    }

    /// Appends every item of `values`, in one request.
    pub fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<()> {
        let values = values.into_iter().map(|v| encode(&v)).collect::<Result<_>>()?;
        self.proxy.done(Op::ListExtend { values })
    }

    /// The item at `index`; `None` past the end.
    pub fn get(&self, index: usize) -> Result<Option<T>> {
        self.proxy.item(Op::ListGet { index: index as u64 })
    }

    /// Replaces the item at `index`; an [`Error::Misuse`] past the end (Python's
    /// `IndexError`).
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        self.proxy.done(Op::ListSet { index: index as u64, value: encode(&value)? })
    }

    /// Removes and returns the last item.
    pub fn pop(&self) -> Result<Option<T>> {
        self.proxy.item(Op::ListPop)
    }

    /// How many items.
    pub fn len(&self) -> Result<usize> {
        self.proxy.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every item.
    pub fn clear(&self) -> Result<()> {
        self.proxy.done(Op::Clear)
    }

    /// A copy of the items, in order: one consistent snapshot.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        self.proxy.items(Op::ToVec)
    }

    /// Replaces the item at `index` with `task(item)`, atomically, in the
    /// server (see [`DictProxy::update`]). Returns the new item, or `None` past
    /// the end.
    pub fn update<F>(&self, index: usize, task: F) -> Result<Option<T>>
    where
        F: TaskFn<(T,), Output = T>,
    {
        self.proxy.item(Op::ListUpdate { index: index as u64, task: task_name(&task)? })
    }
}

proxy_type!(
    /// A namespace that lives in a manager server: Python's
    /// `manager.Namespace()`, attributes by name, each of its own type.
    ///
    /// ```
    /// let mgr = mproc::Manager::start()?;
    /// let ns = mgr.namespace()?;
    /// ns.set("x", 10u32)?;
    /// ns.set("label", "ten".to_string())?;
    /// assert_eq!(ns.get::<u32>("x")?, Some(10));
    /// assert_eq!(ns.get::<String>("missing")?, None);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    NamespaceProxy<>
);

impl NamespaceProxy {
    /// Sets the attribute `name`.
    pub fn set<T: TaskValue>(&self, name: &str, value: T) -> Result<()> {
        self.proxy.present(Op::NamespaceSet { name: name.to_string(), value: encode(&value)? }).map(drop)
    }

    /// The attribute `name`, read as a `T` (the type it was set with).
    pub fn get<T: TaskValue>(&self, name: &str) -> Result<Option<T>> {
        self.proxy.item(Op::NamespaceGet { name: name.to_string() })
    }

    /// Removes the attribute `name`; whether it was there.
    pub fn remove(&self, name: &str) -> Result<bool> {
        self.proxy.present(Op::NamespaceRemove { name: name.to_string() })
    }

    /// How many attributes.
    pub fn len(&self) -> Result<usize> {
        self.proxy.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

proxy_type!(
    /// One value that lives in a manager server: Python's `manager.Value()`.
    ///
    /// ```
    /// #[mproc::task]
    /// fn double(n: i64) -> i64 { n * 2 }
    ///
    /// let mgr = mproc::Manager::start()?;
    /// let v = mgr.value(21i64)?;
    /// assert_eq!(v.update(double)?, 42);
    /// v.set(7)?;
    /// assert_eq!(v.get()?, 7);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    ValueProxy<T>
);

impl<T: TaskValue> ValueProxy<T> {
    /// The value.
    pub fn get(&self) -> Result<T> {
        self.proxy.item(Op::ValueGet)?.ok_or_else(|| Error::Codec("the manager returned no value".into()))
    }

    /// Replaces the value.
    pub fn set(&self, value: T) -> Result<()> {
        self.proxy.done(Op::ValueSet { value: encode(&value)? })
    }

    /// Replaces the value with `task(value)`, atomically, in the server (see
    /// [`DictProxy::update`]); returns the new value.
    pub fn update<F>(&self, task: F) -> Result<T>
    where
        F: TaskFn<(T,), Output = T>,
    {
        let op = Op::ValueUpdate { task: task_name(&task)? };
        self.proxy.item(op)?.ok_or_else(|| Error::Codec("the manager returned no value".into()))
    }
}
