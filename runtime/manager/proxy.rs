//! Proxies: typed faces on objects that live in a manager server.
//!
//! A proxy is plain data: the server's address, the authkey and the object's
//! id. Its requests go through its [`Remote`]'s connections, opened on first
//! use in each process. Clones share the connections of the process they are
//! in, and so do proxies to one server that arrive separately (decoded from
//! task arguments or messages: [`Remote::shared`]). The typed faces are in `collections.rs` (dict, list, namespace, value),
//! `sync.rs` (queue, lock, event) and `object.rs` (custom objects); this file is
//! their shared core.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::protocol::{Blob, Fault, Kind, Op, Request, Response, Wait};
use super::remote::{Lease, Remote};
use crate::codec;
use crate::connection::Address;
use crate::error::{Error, Result};
use crate::task::{self, TaskFn, TaskValue};

/// The error a proxy call returns for a refused request.
fn fault(f: Fault) -> Error {
    match f {
        Fault::NoSuchObject(id) => Error::Misuse {
            what: format!("the manager has no object {id}: the proxy belongs to another manager, or to one restarted"),
        },
        Fault::Destroyed(id) => Error::Misuse {
            what: format!("the manager's object {id} was destroyed (by destroy() on a proxy to it): make a new one"),
        },
        Fault::NoSuchName(name) => {
            Error::Misuse { what: format!("the manager publishes nothing under the name {name:?}") }
        }
        Fault::WrongKind { expected, found } => {
            Error::Misuse { what: format!("the manager's object is a {}, not a {}", found.noun(), expected.noun()) }
        }
        Fault::WrongType { expected, found } => Error::Misuse {
            what: format!("the manager's custom object is a {found}, not a {expected}: ask for it with its own type"),
        },
        Fault::IndexOutOfRange { index, len } => {
            Error::Misuse { what: format!("list index {index} is out of range for a list of {len} items") }
        }
        Fault::UnknownTask(name) => Error::NotATask { name },
        Fault::Task { task, failure } => failure.into_error(&task),
        Fault::NotHeld(Kind::Lock) => Error::Misuse { what: "release of a manager lock that is not acquired".into() },
        Fault::NotHeld(Kind::RLock) => {
            Error::Misuse { what: "release of a manager re-entrant lock that this thread does not hold".into() }
        }
        Fault::NotHeld(Kind::Condition) => Error::Misuse {
            what: "this thread does not hold the manager condition's lock: acquire it (lock()) before wait or \
                   notify, and release only what you acquired"
                .into(),
        },
        Fault::NotHeld(kind) => {
            Error::Misuse { what: format!("release of a manager {} this connection does not hold", kind.noun()) }
        }
        Fault::OverReleased { bound } => Error::Misuse {
            what: format!(
                "release of a manager bounded semaphore already at its initial value {bound} (more releases than \
                 acquisitions)"
            ),
        },
        Fault::BrokenBarrier => Error::BrokenBarrier,
        Fault::Empty => Error::Empty,
        Fault::Timeout => Error::Timeout,
        Fault::BadRequest(what) => Error::Codec(format!("the manager could not read the request: {what}")),
    }
}

pub(crate) fn unexpected(response: Response) -> Error {
    match response {
        Response::Fault(f) => fault(f),
        other => Error::Codec(format!("the manager gave an unexpected answer: {other:?}")),
    }
}

/// This thread's number as the owner of a manager's re-entrant locks and
/// conditions: random, and made again in a forked child, which must not pass
/// for its parent's thread.
pub(crate) fn thread_owner() -> u64 {
    thread_local! {
        static OWNER: std::cell::Cell<(u32, u64)> = const { std::cell::Cell::new((0, 0)) };
    }
    OWNER.with(|owner| {
        let pid = std::process::id();
        match owner.get() {
            (p, id) if p == pid && id != 0 => id,
            _ => {
                let id = crate::sys::random::u64() | 1;
                owner.set((pid, id));
                id
            }
        }
    })
}

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Blob> {
    codec::encode(value).map(Blob)
}

pub(crate) fn decode<T: DeserializeOwned>(blob: &Blob) -> Result<T> {
    codec::decode(&blob.0)
        .map_err(|e| Error::Codec(format!("a value from the manager is not a {}: {e}", std::any::type_name::<T>())))
}

/// The name of the task behind `f`, checked to be registered.
pub(crate) fn task_name<F, A>(f: &F) -> Result<String>
where
    F: TaskFn<A>,
{
    Ok(task::of(f)?.name().to_string())
}

/// The one item of an answer that always has one.
pub(crate) fn some<T>(item: Option<T>) -> Result<T> {
    item.ok_or_else(|| Error::Codec("the manager returned no value".into()))
}

/// The untyped core of every proxy: its server and its object.
#[derive(Clone)]
pub(crate) struct Proxy {
    pub(crate) remote: Arc<Remote>,
    pub(crate) id: u64,
}

impl Proxy {
    /// Makes a new object of `kind` in the server.
    pub(crate) fn create(
        remote: &Arc<Remote>,
        kind: Kind,
        init: Vec<Blob>,
        type_name: Option<String>,
    ) -> Result<Proxy> {
        match remote.request(&Request::Create { kind, init, type_name }, Wait::No)? {
            Response::Id(id) => Ok(Proxy { remote: remote.clone(), id }),
            other => Err(unexpected(other)),
        }
    }

    /// The object published under `name`, which must be of `kind` (and, for a
    /// custom object, of the type named `type_name`).
    pub(crate) fn lookup(remote: &Arc<Remote>, name: &str, kind: Kind, type_name: Option<String>) -> Result<Proxy> {
        match remote.request(&Request::Lookup { name: name.to_string(), kind, type_name }, Wait::No)? {
            Response::Id(id) => Ok(Proxy { remote: remote.clone(), id }),
            other => Err(unexpected(other)),
        }
    }

    /// Destroys the object in the server (see the typed proxies' `destroy`).
    pub(crate) fn destroy(&self) -> Result<()> {
        match self.remote.request(&Request::Destroy { id: self.id }, Wait::No)? {
            Response::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Runs `f` with a way to send requests on one connection taken for the
    /// whole of it: the server knows a barrier's party and a condition's
    /// waiter by its connection.
    pub(crate) fn pinned<R>(&self, f: impl FnOnce(&dyn Fn(Op) -> Result<Response>) -> Result<R>) -> Result<R> {
        let lease = self.remote.pin()?;
        let send = |op: Op| {
            let wait = op.wait();
            self.remote.request_on(&lease, &Request::Call { id: self.id, op }, wait)
        };
        let result = f(&send);
        self.remote.unpin(lease, result.is_ok());
        result
    }

    pub(crate) fn call(&self, op: Op) -> Result<Response> {
        let wait = op.wait();
        self.remote.request(&Request::Call { id: self.id, op }, wait)
    }

    pub(crate) fn done(&self, op: Op) -> Result<()> {
        match self.call(op)? {
            Response::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub(crate) fn item<T: DeserializeOwned>(&self, op: Op) -> Result<Option<T>> {
        match self.call(op)? {
            Response::Item(item) => item.as_ref().map(decode).transpose(),
            other => Err(unexpected(other)),
        }
    }

    /// For an answer that is an item: whether there was one (left undecoded).
    pub(crate) fn present(&self, op: Op) -> Result<bool> {
        match self.call(op)? {
            Response::Item(item) => Ok(item.is_some()),
            other => Err(unexpected(other)),
        }
    }

    pub(crate) fn items<T: DeserializeOwned>(&self, op: Op) -> Result<Vec<T>> {
        match self.call(op)? {
            Response::Items(items) => items.iter().map(decode).collect(),
            other => Err(unexpected(other)),
        }
    }

    pub(crate) fn flag(&self, op: Op) -> Result<bool> {
        match self.call(op)? {
            Response::Bool(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    pub(crate) fn len(&self) -> Result<usize> {
        match self.call(Op::Len)? {
            Response::Len(n) => usize::try_from(n).map_err(|_| Error::Codec(format!("a length of {n}"))),
            other => Err(unexpected(other)),
        }
    }

    /// Runs `read` (an operation answered with an item) and holds the object
    /// until the returned [`Held`] is released or dropped: the first half of a
    /// closure `update`.
    pub(crate) fn hold(&self, read: Op) -> Result<(Held<'_>, Option<Blob>)> {
        let lease = self.remote.pin()?;
        match self.remote.request_on(&lease, &Request::Hold { id: self.id, op: read }, Wait::No) {
            Ok(Response::Item(item)) => Ok((Held { proxy: self, lease: Some(lease) }, item)),
            Ok(other) => {
                // Refused: nothing is held.
                self.remote.unpin(lease, true);
                Err(unexpected(other))
            }
            Err(e) => {
                self.remote.unpin(lease, false);
                Err(e)
            }
        }
    }
}

/// A closure `update` on `proxy`: the value `read` finds (or `default`),
/// changed by `f` in this process, written by `write`, the object held in the
/// server from the read to the write — or, with neither a value nor a default,
/// nothing done.
pub(crate) fn update_with<V: TaskValue>(
    proxy: &Proxy,
    read: Op,
    default: Option<V>,
    f: impl FnOnce(V) -> V,
    write: impl FnOnce(Blob) -> Op,
) -> Result<Option<V>> {
    let (held, item) = proxy.hold(read)?;
    let current = match item.as_ref().map(decode::<V>).transpose()? {
        Some(v) => v,
        None => match default {
            Some(v) => v,
            None => {
                held.release(None)?;
                return Ok(None);
            }
        },
    };
    // A panic here drops `held`, which releases the object unchanged.
    let new = f(current);
    held.release(Some(write(encode(&new)?)))?;
    Ok(Some(new))
}

/// An object this process holds in the server (between the two halves of a
/// closure `update`). Dropping it (the closure panicked, a value did not
/// encode) releases the object unchanged; if even that fails, the connection is
/// dropped, which releases it too.
pub(crate) struct Held<'a> {
    proxy: &'a Proxy,
    lease: Option<Lease>,
}

impl Held<'_> {
    /// Applies `write` (if any) and releases the object.
    pub(crate) fn release(mut self, write: Option<Op>) -> Result<()> {
        self.finish(write).and_then(|response| match response {
            Response::Done | Response::Item(_) => Ok(()),
            other => Err(unexpected(other)),
        })
    }

    fn finish(&mut self, write: Option<Op>) -> Result<Response> {
        let Some(lease) = self.lease.take() else { return Err(Error::Closed) };
        let request = Request::Release { id: self.proxy.id, op: write };
        let answer = self.proxy.remote.request_on(&lease, &request, Wait::No);
        self.proxy.remote.unpin(lease, answer.is_ok());
        answer
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.lease.is_some() {
            let _ = self.finish(None);
        }
    }
}

impl PartialEq for Proxy {
    fn eq(&self, other: &Proxy) -> bool {
        self.id == other.id && self.remote.address() == other.remote.address()
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The authkey stays out of logs.
        f.debug_struct("Proxy").field("address", self.remote.address()).field("id", &self.id).finish_non_exhaustive()
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
            Wire { address: self.remote.address().clone(), authkey: Blob(self.remote.authkey().to_vec()), id: self.id };
        wire.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Proxy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Proxy, D::Error> {
        let Wire { address, authkey, id } = Wire::deserialize(d)?;
        Ok(Proxy { remote: Remote::shared(address, authkey.0), id })
    }
}

/// Declares a typed proxy: a [`Proxy`] and phantom types, plain data on the
/// wire, cloned and compared as the object it refers to.
macro_rules! proxy_type {
    ($(#[$doc:meta])* $name:ident < $($t:ident),* >) => {
        $(#[$doc])*
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent, bound = "")]
        pub struct $name<$($t),*> {
            proxy: $crate::manager::proxy::Proxy,
            #[serde(skip)]
            _types: std::marker::PhantomData<fn() -> ($($t,)*)>,
        }

        impl<$($t),*> $name<$($t),*> {
            pub(crate) fn from_proxy(proxy: $crate::manager::proxy::Proxy) -> Self {
                $name { proxy, _types: std::marker::PhantomData }
            }

            /// Frees the object in the server now, and its name if it is
            /// published. Objects otherwise live as long as their server: a
            /// proxy is plain data, copied into other processes, so the server
            /// cannot know when the last one is gone.
            ///
            /// Afterwards every proxy to the object, in any process, gets an
            /// [`Error::Misuse`](crate::Error::Misuse) that says it was destroyed,
            /// and so do requests waiting on it (a queue's `get`, a lock's
            /// `acquire`, an event's `wait`). A closure `update` in progress in
            /// another process finishes first.
            pub fn destroy(self) -> $crate::Result<()> {
                self.proxy.destroy()
            }
        }

        /// A clone refers to the same object in the server.
        impl<$($t),*> Clone for $name<$($t),*> {
            fn clone(&self) -> Self {
                $name { proxy: self.proxy.clone(), _types: std::marker::PhantomData }
            }
        }

        /// Equal when they refer to the same object of the same server.
        impl<$($t),*> PartialEq for $name<$($t),*> {
            fn eq(&self, other: &Self) -> bool {
                self.proxy == other.proxy
            }
        }

        impl<$($t),*> std::fmt::Debug for $name<$($t),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("address", self.proxy.remote.address())
                    .field("id", &self.proxy.id)
                    .finish_non_exhaustive()
            }
        }
    };
}

pub(crate) use proxy_type;
