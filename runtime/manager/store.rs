//! The objects of a manager server, and the rules by which requests from many
//! connections share them.
//!
//! - Every object has its own lock: requests on different objects run in
//!   parallel (one thread per connection), requests on one object one at a
//!   time, a task of `apply` included, which is what makes `apply` atomic.
//! - A connection may **hold** an object across requests ([`Request::Hold`]
//!   … [`Request::Release`]): meanwhile other connections' requests on it wait.
//!   This is what makes a proxy's closure `update` (read, compute in the
//!   client, write) atomic. A hold ends with its release, or with the
//!   connection, however it ends: a client that dies holding an object (or a
//!   lock it acquired) does not wedge the others.
//! - Operations that wait (a queue's `get`, a lock's `acquire`, an event's
//!   `wait`, and any request on an object another connection holds) wait here,
//!   on the connection's thread, on the object's condition variable; every
//!   [`POLL`] they look whether their own client is still there and the server
//!   still serving, and give up otherwise.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::protocol::{Blob, Fault, Kind, Op, Request, Response, Wait};
use super::state::{State, apply};

/// How often a waiting request looks whether its client is gone.
const POLL: Duration = Duration::from_millis(100);

/// An object, and who holds it.
struct Inner {
    state: State,
    /// The connection holding the object, and how many holds it has.
    holder: Option<(u64, u32)>,
    /// Destroyed: out of the store, kept alive only by the requests that were
    /// waiting on it, which end with [`Fault::Destroyed`].
    destroyed: bool,
}

struct Object {
    inner: Mutex<Inner>,
    /// Signalled after every change, for the requests waiting on this object.
    changed: Condvar,
}

impl Object {
    fn new(state: State) -> Arc<Object> {
        Arc::new(Object { inner: Mutex::new(Inner { state, holder: None, destroyed: false }), changed: Condvar::new() })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Tasks run under catch_unwind and nothing else here panics; if
        // something ever did, every state is consistent between statements.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a request is, with respect to holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Hold,
    Release,
    /// Once no other connection holds the object: out of the store.
    Destroy,
}

/// One connection's standing with the store: its id, the objects it holds or
/// whose lock it acquired, and how to tell that its client is gone. Dropping it
/// (the connection ended) releases them all.
pub(crate) struct Session<'a> {
    store: &'a Store,
    id: u64,
    held: HashSet<u64>,
    gone: &'a dyn Fn() -> bool,
}

impl Session<'_> {
    /// Answers one request; `None` when the client went away (or the server
    /// stopped) while the request waited, and the connection should be closed.
    pub(crate) fn handle(&mut self, request: Request) -> Option<Response> {
        let answer = match request {
            Request::Create { kind, init, type_name } => {
                Some(self.store.create(kind, init, type_name).map(Response::Id))
            }
            Request::Lookup { name, kind, type_name } => {
                Some(self.store.lookup(&name, kind, type_name.as_deref()).map(Response::Id))
            }
            Request::Call { id, op } => self.call(id, Some(op), Mode::Plain),
            Request::Hold { id, op } => self.call(id, Some(op), Mode::Hold),
            Request::Release { id, op } => self.call(id, op, Mode::Release),
            Request::Destroy { id } => self.call(id, None, Mode::Destroy),
        };
        answer.map(|a| a.unwrap_or_else(Response::Fault))
    }

    fn call(&mut self, id: u64, op: Option<Op>, mode: Mode) -> Option<Result<Response, Fault>> {
        let placed = match (&op, mode) {
            (Some(Op::ObjectCall { .. }), Mode::Hold) | (Some(Op::ObjectCommit { .. }), Mode::Release) => true,
            (Some(Op::ObjectCall { .. }), _) => false,
            (Some(Op::ObjectCommit { .. }), _) => false,
            _ => true,
        };
        if !placed {
            return Some(Err(Fault::BadRequest(
                "a custom object's call and commit go in a hold and its release".into(),
            )));
        }
        let Some(object) = self.store.object(id) else {
            return Some(Err(self.store.missing(id)));
        };
        let wait = op.as_ref().map_or(Wait::No, Op::wait);
        let deadline = match wait {
            Wait::For(d) => Instant::now().checked_add(d),
            Wait::No | Wait::Forever => None,
        };
        let mut inner = object.lock();
        let mut waited = false;
        loop {
            if inner.destroyed {
                return Some(Err(Fault::Destroyed(id)));
            }
            let free = inner.holder.is_none_or(|(conn, _)| conn == self.id);
            if mode == Mode::Release
                || (free && (wait == Wait::No || op.as_ref().is_none_or(|op| inner.state.ready_for(op, self.id))))
            {
                break;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                // Ran out, whether waiting for the item or for the holder.
                let answer = op.as_ref().map_or(Response::Done, |op| inner.state.give_up(op, self.id));
                drop(inner);
                object.changed.notify_all();
                return Some(Ok(answer));
            }
            if (self.gone)() {
                return None;
            }
            let step = deadline.map_or(POLL, |d| (d - now).min(POLL));
            inner = object.changed.wait_timeout(inner, step).unwrap_or_else(PoisonError::into_inner).0;
            waited = true;
        }
        // A waiter whose client went meanwhile must not take the item (or the lock) it waited for.
        if waited && (self.gone)() {
            return None;
        }
        let answer = match mode {
            Mode::Plain => op.map_or(Ok(Response::Done), |op| apply(&mut inner.state, op, self.id)),
            Mode::Hold => op.map_or(Ok(Response::Done), |op| apply(&mut inner.state, op, self.id)).inspect(|_| {
                let depth = inner.holder.map_or(0, |(_, depth)| depth);
                inner.holder = Some((self.id, depth + 1));
                self.held.insert(id);
            }),
            Mode::Release => match inner.holder {
                Some((conn, depth)) if conn == self.id => {
                    let answer = op.map_or(Ok(Response::Done), |op| apply(&mut inner.state, op, self.id));
                    if depth > 1 {
                        inner.holder = Some((conn, depth - 1));
                    } else {
                        inner.holder = None;
                        inner.state.drop_pending();
                    }
                    answer
                }
                _ => Err(Fault::NotHeld(inner.state.kind())),
            },
            Mode::Destroy => {
                // Requests waiting on it wake (below) and find it destroyed.
                inner.destroyed = true;
                inner.holder = None;
                self.held.remove(&id);
                self.store.remove(id);
                Ok(Response::Done)
            }
        };
        // What the connection may leave behind when it ends: a lock it acquired,
        // a barrier or a condition it waits at. Looked at then.
        if answer.is_ok()
            && mode != Mode::Destroy
            && matches!(inner.state.kind(), Kind::Lock | Kind::RLock | Kind::Condition | Kind::Barrier)
        {
            self.held.insert(id);
        }
        drop(inner);
        object.changed.notify_all();
        Some(answer)
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        for id in self.held.drain() {
            let Some(object) = self.store.object(id) else { continue };
            let mut inner = object.lock();
            if inner.holder.is_some_and(|(conn, _)| conn == self.id) {
                inner.holder = None;
                inner.state.drop_pending();
            }
            inner.state.forget_connection(self.id);
            drop(inner);
            object.changed.notify_all();
        }
    }
}

/// All the objects of one server.
pub(crate) struct Store {
    objects: RwLock<HashMap<u64, Arc<Object>>>,
    names: Mutex<HashMap<String, u64>>,
    /// The first id this server gave: ids start at a random point, so that an
    /// id from another server is told from one of this server's destroyed objects.
    first_id: u64,
    next_id: AtomicU64,
    next_session: AtomicU64,
}

impl Default for Store {
    fn default() -> Store {
        // Below 2^48: room for more ids than a server will ever give.
        let first_id = crate::sys::random::u64() >> 16;
        Store {
            objects: RwLock::default(),
            names: Mutex::default(),
            first_id,
            next_id: AtomicU64::new(first_id),
            next_session: AtomicU64::new(0),
        }
    }
}

impl Store {
    /// A new connection's session. `gone` says whether its client went away
    /// (or the server is stopping), for the requests that wait.
    pub(crate) fn session<'a>(&'a self, gone: &'a dyn Fn() -> bool) -> Session<'a> {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        Session { store: self, id, held: HashSet::new(), gone }
    }

    fn create(&self, kind: Kind, init: Vec<Blob>, type_name: Option<String>) -> Result<u64, Fault> {
        let state = State::new(kind, init, type_name)?;
        Ok(self.insert(state))
    }

    fn insert(&self, state: State) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.objects.write().unwrap_or_else(PoisonError::into_inner).insert(id, Object::new(state));
        id
    }

    /// Makes an object and publishes it under `name` (replacing what was there).
    pub(crate) fn publish(
        &self,
        name: &str,
        kind: Kind,
        init: Vec<Blob>,
        type_name: Option<String>,
    ) -> Result<u64, Fault> {
        let id = self.create(kind, init, type_name)?;
        self.names.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_string(), id);
        Ok(id)
    }

    fn lookup(&self, name: &str, kind: Kind, type_name: Option<&str>) -> Result<u64, Fault> {
        let id = self.names.lock().unwrap_or_else(PoisonError::into_inner).get(name).copied();
        let id = id.ok_or_else(|| Fault::NoSuchName(name.to_string()))?;
        let object = self.object(id).ok_or_else(|| self.missing(id))?;
        let inner = object.lock();
        let found = inner.state.kind();
        if found != kind {
            return Err(Fault::WrongKind { expected: kind, found });
        }
        if let (Some(expected), Some(found)) = (type_name, inner.state.type_name())
            && expected != found
        {
            return Err(Fault::WrongType { expected: expected.to_string(), found: found.to_string() });
        }
        Ok(id)
    }

    /// Why there is no object `id`: destroyed, or never one of this server's.
    fn missing(&self, id: u64) -> Fault {
        if (self.first_id..self.next_id.load(Ordering::Relaxed)).contains(&id) {
            Fault::Destroyed(id)
        } else {
            Fault::NoSuchObject(id)
        }
    }

    /// Takes the object `id` out of the store, and its names.
    fn remove(&self, id: u64) {
        self.objects.write().unwrap_or_else(PoisonError::into_inner).remove(&id);
        self.names.lock().unwrap_or_else(PoisonError::into_inner).retain(|_, named| *named != id);
    }

    fn object(&self, id: u64) -> Option<Arc<Object>> {
        self.objects.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::codec;

    fn blob<T: serde::Serialize>(v: T) -> Blob {
        Blob(codec::encode(&v).unwrap())
    }

    fn create(session: &mut Session<'_>, kind: Kind) -> u64 {
        match session.handle(Request::Create { kind, init: vec![blob(0u8)], type_name: Some("u8".into()) }) {
            Some(Response::Id(id)) => id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_operation_on_the_wrong_kind_is_a_fault_that_names_both() {
        let store = Store::default();
        let mut session = store.session(&|| false);
        let id = create(&mut session, Kind::List);
        match session.handle(Request::Call { id, op: Op::DictGet { key: blob(1) } }) {
            Some(Response::Fault(Fault::WrongKind { expected: Kind::Dict, found: Kind::List })) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_object_is_a_fault() {
        let store = Store::default();
        let mut session = store.session(&|| false);
        assert!(matches!(
            session.handle(Request::Call { id: 99, op: Op::Len }),
            Some(Response::Fault(Fault::NoSuchObject(99)))
        ));
    }

    #[test]
    fn a_held_object_makes_other_sessions_wait_until_the_holder_ends() {
        let store = Store::default();
        let mut holder = store.session(&|| false);
        let id = create(&mut holder, Kind::Value);
        assert!(matches!(holder.handle(Request::Hold { id, op: Op::ValueGet }), Some(Response::Item(Some(_)))));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let mut other = store.session(&|| false);
                other.handle(Request::Call { id, op: Op::ValueGet })
            });
            std::thread::sleep(Duration::from_millis(300));
            assert!(!waiter.is_finished(), "a request went past another connection's hold");
            drop(holder);
            assert!(matches!(waiter.join().unwrap(), Some(Response::Item(Some(_)))));
        });
    }

    #[test]
    fn a_waiting_request_whose_client_is_gone_gives_up() {
        let store = Store::default();
        let mut session = store.session(&|| true);
        let id = create(&mut session, Kind::Queue);
        assert!(session.handle(Request::Call { id, op: Op::QueueGet { wait: Wait::Forever } }).is_none());
    }

    #[test]
    fn a_destroyed_object_leaves_the_store_and_its_id_says_destroyed() {
        let store = Store::default();
        let mut session = store.session(&|| false);
        let id = create(&mut session, Kind::Dict);
        assert!(matches!(session.handle(Request::Destroy { id }), Some(Response::Done)));
        assert!(store.object(id).is_none());
        assert!(matches!(
            session.handle(Request::Call { id, op: Op::Len }),
            Some(Response::Fault(Fault::Destroyed(got))) if got == id
        ));
    }

    #[test]
    fn an_id_this_store_never_gave_is_no_such_object_not_destroyed() {
        let store = Store::default();
        let mut session = store.session(&|| false);
        let id = create(&mut session, Kind::Dict);
        for other in [id + 1, id.wrapping_sub(1), u64::MAX] {
            assert!(matches!(
                session.handle(Request::Destroy { id: other }),
                Some(Response::Fault(Fault::NoSuchObject(got))) if got == other
            ));
        }
    }

    #[test]
    fn destroy_waits_until_another_session_releases_its_hold() {
        let store = Store::default();
        let mut holder = store.session(&|| false);
        let id = create(&mut holder, Kind::Value);
        assert!(matches!(holder.handle(Request::Hold { id, op: Op::ValueGet }), Some(Response::Item(Some(_)))));
        std::thread::scope(|s| {
            let destroyer = s.spawn(|| store.session(&|| false).handle(Request::Destroy { id }));
            std::thread::sleep(Duration::from_millis(300));
            assert!(!destroyer.is_finished(), "destroyed an object another connection holds");
            assert!(matches!(holder.handle(Request::Release { id, op: None }), Some(Response::Done)));
            assert!(matches!(destroyer.join().unwrap(), Some(Response::Done)));
        });
    }

    #[test]
    fn a_release_without_a_hold_is_not_held() {
        let store = Store::default();
        let mut session = store.session(&|| false);
        let id = create(&mut session, Kind::Value);
        assert!(matches!(
            session.handle(Request::Release { id, op: None }),
            Some(Response::Fault(Fault::NotHeld(Kind::Value)))
        ));
    }

    #[test]
    fn a_call_outside_a_hold_is_a_bad_request() {
        let store = Store::default();
        let mut session = store.session(&|| false);
        let id = create(&mut session, Kind::Object);
        let op = Op::ObjectCall { task: "t".into(), arg: blob(()) };
        assert!(matches!(session.handle(Request::Call { id, op }), Some(Response::Fault(Fault::BadRequest(_)))));
    }
}
