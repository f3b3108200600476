//! The objects a manager server holds, and what each request does to them.
//!
//! Every object has its own lock: requests on different objects run in
//! parallel (one thread per connection), requests on one object one at a time,
//! an update task included, which is what makes `update` atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::protocol::{Blob, Fault, Kind, Op, Request, Response};
use crate::task::{self, Report};

/// A dict in insertion order (Python's), keyed by the encoding of the key.
#[derive(Default)]
struct OrderedMap {
    /// Key → (its place in the order, the value).
    entries: HashMap<Blob, (u64, Blob)>,
    /// Place → key, in insertion order.
    order: BTreeMap<u64, Blob>,
    next: u64,
}

impl OrderedMap {
    fn insert(&mut self, key: Blob, value: Blob) -> Option<Blob> {
        if let Some((_, old)) = self.entries.get_mut(&key) {
            // Python keeps an existing key where it was.
            return Some(std::mem::replace(old, value));
        }
        self.order.insert(self.next, key.clone());
        self.entries.insert(key, (self.next, value));
        self.next += 1;
        None
    }

    fn get(&self, key: &Blob) -> Option<&Blob> {
        self.entries.get(key).map(|(_, v)| v)
    }

    fn remove(&mut self, key: &Blob) -> Option<Blob> {
        let (place, value) = self.entries.remove(key)?;
        self.order.remove(&place);
        Some(value)
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    fn keys(&self) -> impl Iterator<Item = &Blob> {
        self.order.values()
    }

    fn pairs(&self) -> impl Iterator<Item = (&Blob, &Blob)> {
        self.order.values().filter_map(|k| self.entries.get(k).map(|(_, v)| (k, v)))
    }
}

enum State {
    Dict(OrderedMap),
    List(Vec<Blob>),
    Namespace(OrderedMap),
    Value(Blob),
}

impl State {
    fn kind(&self) -> Kind {
        match self {
            State::Dict(_) => Kind::Dict,
            State::List(_) => Kind::List,
            State::Namespace(_) => Kind::Namespace,
            State::Value(_) => Kind::Value,
        }
    }
}

struct Object {
    state: Mutex<State>,
}

impl Object {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Update tasks run under catch_unwind and nothing else here panics; if
        // something ever did, every state is consistent between statements.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// All the objects of one server.
#[derive(Default)]
pub(crate) struct Store {
    objects: RwLock<HashMap<u64, Arc<Object>>>,
    names: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
}

impl Store {
    /// Answers one request.
    pub(crate) fn handle(&self, request: Request) -> Response {
        let answer = match request {
            Request::Create { kind, init } => self.create(kind, init).map(Response::Id),
            Request::Lookup { name, kind } => self.lookup(&name, kind).map(Response::Id),
            Request::Call { id, op } => match self.object(id) {
                Some(object) => apply(&mut object.lock(), op),
                None => Err(Fault::NoSuchObject(id)),
            },
        };
        answer.unwrap_or_else(Response::Fault)
    }

    fn create(&self, kind: Kind, init: Vec<Blob>) -> Result<u64, Fault> {
        let state = match kind {
            Kind::Dict => State::Dict(OrderedMap::default()),
            Kind::List => State::List(init),
            Kind::Namespace => State::Namespace(OrderedMap::default()),
            Kind::Value => match init.into_iter().next() {
                Some(v) => State::Value(v),
                None => return Err(Fault::BadRequest("a value object needs an initial value".into())),
            },
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let object = Arc::new(Object { state: Mutex::new(state) });
        self.objects.write().unwrap_or_else(PoisonError::into_inner).insert(id, object);
        Ok(id)
    }

    /// Makes an object and publishes it under `name` (replacing what was there).
    pub(crate) fn publish(&self, name: &str, kind: Kind, init: Vec<Blob>) -> u64 {
        let state = match kind {
            Kind::Dict => State::Dict(OrderedMap::default()),
            Kind::List => State::List(init),
            Kind::Namespace => State::Namespace(OrderedMap::default()),
            Kind::Value => State::Value(init.into_iter().next().unwrap_or(Blob(Vec::new()))),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let object = Arc::new(Object { state: Mutex::new(state) });
        self.objects.write().unwrap_or_else(PoisonError::into_inner).insert(id, object);
        self.names.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_string(), id);
        id
    }

    fn lookup(&self, name: &str, kind: Kind) -> Result<u64, Fault> {
        let id = self.names.lock().unwrap_or_else(PoisonError::into_inner).get(name).copied();
        let id = id.ok_or_else(|| Fault::NoSuchName(name.to_string()))?;
        let object = self.object(id).ok_or(Fault::NoSuchObject(id))?;
        let found = object.lock().kind();
        if found != kind {
            return Err(Fault::WrongKind { expected: kind, found });
        }
        Ok(id)
    }

    fn object(&self, id: u64) -> Option<Arc<Object>> {
        self.objects.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }
}

/// Applies `op` to an object, its lock held.
fn apply(state: &mut State, op: Op) -> Result<Response, Fault> {
    let found = state.kind();
    Ok(match (state, op) {
        (State::Dict(map), Op::DictInsert { key, value }) => Response::Item(map.insert(key, value)),
        (State::Dict(map), Op::DictGet { key }) => Response::Item(map.get(&key).cloned()),
        (State::Dict(map), Op::DictRemove { key }) => Response::Item(map.remove(&key)),
        (State::Dict(map), Op::DictContains { key }) => Response::Bool(map.get(&key).is_some()),
        (State::Dict(map), Op::DictKeys) => Response::Items(map.keys().cloned().collect()),
        (State::Dict(map), Op::DictValues | Op::ToVec) => {
            Response::Items(map.pairs().map(|(_, v)| v.clone()).collect())
        }
        (State::Dict(map), Op::DictItems) => {
            Response::Pairs(map.pairs().map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        (State::Dict(map), Op::DictUpdate { key, task, default }) => {
            let Some(current) = map.get(&key).or(default.as_ref()) else {
                return Ok(Response::Item(None));
            };
            let new = run_update(&task, current)?;
            map.insert(key, new.clone());
            Response::Item(Some(new))
        }
        (State::Dict(map) | State::Namespace(map), Op::Len) => Response::Len(map.len() as u64),
        (State::Dict(map) | State::Namespace(map), Op::Clear) => {
            map.clear();
            Response::Done
        }
        (State::List(items), Op::ListPush { value }) => {
            items.push(value);
            Response::Done
        }
        (State::List(items), Op::ListExtend { values }) => {
            items.extend(values);
            Response::Done
        }
        (State::List(items), Op::ListGet { index }) => Response::Item(at(items, index).cloned()),
        (State::List(items), Op::ListSet { index, value }) => {
            let len = items.len() as u64;
            let slot = at_mut(items, index).ok_or(Fault::IndexOutOfRange { index, len })?;
            *slot = value;
            Response::Done
        }
        (State::List(items), Op::ListPop) => Response::Item(items.pop()),
        (State::List(items), Op::ListUpdate { index, task }) => {
            let Some(slot) = at_mut(items, index) else {
                return Ok(Response::Item(None));
            };
            let new = run_update(&task, slot)?;
            *slot = new.clone();
            Response::Item(Some(new))
        }
        (State::List(items), Op::Len) => Response::Len(items.len() as u64),
        (State::List(items), Op::Clear) => {
            items.clear();
            Response::Done
        }
        (State::List(items), Op::ToVec) => Response::Items(items.clone()),
        (State::Namespace(map), Op::NamespaceSet { name, value }) => Response::Item(map.insert(name_key(name), value)),
        (State::Namespace(map), Op::NamespaceGet { name }) => Response::Item(map.get(&name_key(name)).cloned()),
        (State::Namespace(map), Op::NamespaceRemove { name }) => Response::Item(map.remove(&name_key(name))),
        (State::Value(value), Op::ValueGet) => Response::Item(Some(value.clone())),
        (State::Value(value), Op::ValueSet { value: new }) => {
            *value = new;
            Response::Done
        }
        (State::Value(value), Op::ValueUpdate { task }) => {
            let new = run_update(&task, value)?;
            *value = new.clone();
            Response::Item(Some(new))
        }
        (_, op) => return Err(Fault::WrongKind { expected: expected_kind(&op), found }),
    })
}

/// A namespace stores attribute names as their UTF-8 bytes.
fn name_key(name: String) -> Blob {
    Blob(name.into_bytes())
}

fn at(items: &[Blob], index: u64) -> Option<&Blob> {
    usize::try_from(index).ok().and_then(|i| items.get(i))
}

fn at_mut(items: &mut [Blob], index: u64) -> Option<&mut Blob> {
    usize::try_from(index).ok().and_then(|i| items.get_mut(i))
}

/// The kind an operation applies to, for the message when it met another kind.
fn expected_kind(op: &Op) -> Kind {
    match op {
        Op::DictInsert { .. }
        | Op::DictGet { .. }
        | Op::DictRemove { .. }
        | Op::DictContains { .. }
        | Op::DictKeys
        | Op::DictValues
        | Op::DictItems
        | Op::DictUpdate { .. } => Kind::Dict,
        Op::ListPush { .. }
        | Op::ListExtend { .. }
        | Op::ListGet { .. }
        | Op::ListSet { .. }
        | Op::ListPop
        | Op::ListUpdate { .. }
        | Op::Len
        | Op::Clear
        | Op::ToVec => Kind::List,
        Op::NamespaceSet { .. } | Op::NamespaceGet { .. } | Op::NamespaceRemove { .. } => Kind::Namespace,
        Op::ValueGet | Op::ValueSet { .. } | Op::ValueUpdate { .. } => Kind::Value,
    }
}

/// Runs the one-argument task `name` on the encoded value `current`, in this
/// process, and returns the encoded result.
///
/// The task's argument tuple is `(V,)`, and the crate's codec encodes a
/// one-element tuple exactly as its element (serde tuples carry no header in
/// it; `one_tuple_encodes_as_its_element` pins this), so the stored bytes are
/// the encoded arguments as they are.
fn run_update(name: &str, current: &Blob) -> Result<Blob, Fault> {
    let entry = task::by_name(name).ok_or_else(|| Fault::UnknownTask(name.to_string()))?;
    match entry.invoke(&current.0).report {
        Report::Returned(bytes) => Ok(Blob(bytes)),
        Report::Failed(failure) => Err(Fault::Task { task: name.to_string(), failure }),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::codec;

    #[test]
    fn one_tuple_encodes_as_its_element() {
        assert_eq!(codec::encode(&(7u64,)).unwrap(), codec::encode(&7u64).unwrap());
        assert_eq!(codec::encode(&("ab".to_string(),)).unwrap(), codec::encode(&"ab").unwrap());
        assert_eq!(codec::encode(&(vec![1i32, -2],)).unwrap(), codec::encode(&vec![1i32, -2]).unwrap());
    }

    fn blob<T: serde::Serialize>(v: T) -> Blob {
        Blob(codec::encode(&v).unwrap())
    }

    #[test]
    fn a_dict_keeps_insertion_order_and_a_replaced_key_keeps_its_place() {
        let mut map = OrderedMap::default();
        map.insert(blob("b"), blob(1));
        map.insert(blob("a"), blob(2));
        map.insert(blob("c"), blob(3));
        assert_eq!(map.insert(blob("b"), blob(4)), Some(blob(1)));
        map.remove(&blob("a"));
        let keys: Vec<_> = map.keys().cloned().collect();
        assert_eq!(keys, vec![blob("b"), blob("c")]);
        let values: Vec<_> = map.pairs().map(|(_, v)| v.clone()).collect();
        assert_eq!(values, vec![blob(4), blob(3)]);
    }

    #[test]
    fn an_operation_on_the_wrong_kind_is_a_fault_that_names_both() {
        let store = Store::default();
        let Response::Id(id) = store.handle(Request::Create { kind: Kind::List, init: vec![] }) else { panic!() };
        match store.handle(Request::Call { id, op: Op::DictGet { key: blob(1) } }) {
            Response::Fault(Fault::WrongKind { expected: Kind::Dict, found: Kind::List }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_object_is_a_fault() {
        let store = Store::default();
        assert!(matches!(
            store.handle(Request::Call { id: 99, op: Op::Len }),
            Response::Fault(Fault::NoSuchObject(99))
        ));
    }
}
