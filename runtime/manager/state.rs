//! What a manager server's objects are, and what each operation does to one,
//! its lock held. Waiting (for an item, a lock, an event, an object another
//! connection holds) is the store's business: here every operation answers at once.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::protocol::{Blob, Fault, Kind, Op, Response, Wait};
use crate::task::{self, Report};

/// A dict in insertion order (Python's), keyed by the encoding of the key.
#[derive(Default)]
pub(crate) struct OrderedMap {
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

/// Where a party counted in at a barrier stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Waiting,
    Passed,
    Broken,
}

/// A barrier's parties, by connection: those waiting in the current round, and
/// those told the outcome of theirs but not answered yet.
pub(crate) struct Barrier {
    parties: u64,
    at: HashMap<u64, Outcome>,
    broken: bool,
}

impl Barrier {
    fn waiting(&self) -> u64 {
        self.at.values().filter(|o| **o == Outcome::Waiting).count() as u64
    }

    /// Ends the round: every waiting party gets `outcome`.
    fn end_round(&mut self, outcome: Outcome) {
        for o in self.at.values_mut() {
            if *o == Outcome::Waiting {
                *o = outcome;
            }
        }
    }

    fn arrive(&mut self, conn: u64) -> Result<Response, Fault> {
        if self.broken {
            return Err(Fault::BrokenBarrier);
        }
        if self.at.get(&conn) == Some(&Outcome::Waiting) {
            return Err(Fault::BadRequest("a second arrival at a barrier from one connection".into()));
        }
        let index = self.waiting();
        if index + 1 == self.parties {
            self.at.remove(&conn);
            self.end_round(Outcome::Passed);
            return Ok(Response::Arrived { index, last: true });
        }
        self.at.insert(conn, Outcome::Waiting);
        Ok(Response::Arrived { index, last: false })
    }

    /// Breaks the barrier: the waiting parties, and later arrivals, fail.
    fn break_it(&mut self) {
        self.broken = true;
        self.end_round(Outcome::Broken);
    }
}

/// Who holds a re-entrant lock: the owner (a thread of a client process),
/// how many times, and the connection of its first acquisition, whose end
/// releases it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner {
    id: u64,
    depth: u64,
    conn: u64,
}

fn owned_ready(owner: &Option<Owner>, id: u64) -> bool {
    owner.is_none_or(|o| o.id == id)
}

fn owned_acquire(owner: &mut Option<Owner>, id: u64, conn: u64) -> Response {
    match owner {
        Some(o) if o.id == id => o.depth += 1,
        _ => *owner = Some(Owner { id, depth: 1, conn }),
    }
    Response::Bool(true)
}

fn owned_release(owner: &mut Option<Owner>, id: u64, kind: Kind) -> Result<Response, Fault> {
    match owner {
        Some(o) if o.id == id => {
            o.depth -= 1;
            if o.depth == 0 {
                *owner = None;
            }
            Ok(Response::Done)
        }
        _ => Err(Fault::NotHeld(kind)),
    }
}

/// A condition: its re-entrant lock, and its waiters by ticket.
#[derive(Default)]
pub(crate) struct Condition {
    owner: Option<Owner>,
    /// Waiters not notified yet, in the order they came: (ticket, connection).
    waiting: VecDeque<(u64, u64)>,
    /// Waiters notified and not answered yet: ticket → connection.
    notified: HashMap<u64, u64>,
    next_ticket: u64,
}

impl Condition {
    /// Notifies the first `n` waiters.
    fn notify(&mut self, n: u64) {
        for _ in 0..n {
            let Some((ticket, conn)) = self.waiting.pop_front() else { break };
            self.notified.insert(ticket, conn);
        }
    }
}

/// One object's contents.
pub(crate) enum State {
    Dict(OrderedMap),
    List(Vec<Blob>),
    Namespace(OrderedMap),
    Value(Blob),
    Queue(VecDeque<Blob>),
    /// The connection that acquired it, while it is held.
    Lock(Option<u64>),
    Event(bool),
    Semaphore {
        value: u64,
        /// A bounded semaphore's initial value, which a release may not pass.
        bound: Option<u64>,
    },
    Barrier(Barrier),
    RLock(Option<Owner>),
    Condition(Condition),
    Object {
        /// The Rust type name of the value, checked when a client looks it up.
        type_name: String,
        value: Blob,
        /// What an [`Op::ObjectCall`] returned, until its hold is released.
        pending: Option<Blob>,
    },
}

impl State {
    /// A new object of `kind`: a list may start with items, a value and a
    /// custom object with exactly one.
    pub(crate) fn new(kind: Kind, init: Vec<Blob>, type_name: Option<String>) -> Result<State, Fault> {
        let mut init = init.into_iter();
        let mut one =
            |what: &str| init.next().ok_or_else(|| Fault::BadRequest(format!("a {what} needs an initial value")));
        Ok(match kind {
            Kind::Dict => State::Dict(OrderedMap::default()),
            Kind::List => State::List(init.collect()),
            Kind::Namespace => State::Namespace(OrderedMap::default()),
            Kind::Value => State::Value(one("value")?),
            Kind::Queue => State::Queue(VecDeque::new()),
            Kind::Lock => State::Lock(None),
            Kind::Event => State::Event(false),
            Kind::Semaphore => {
                let value = decode_init(one("semaphore")?, "a semaphore's value")?;
                let bound = decode_init(one("semaphore")?, "a semaphore's bound")?;
                State::Semaphore { value, bound }
            }
            Kind::Barrier => {
                let parties: u64 = decode_init(one("barrier")?, "a barrier's parties")?;
                if parties == 0 {
                    return Err(Fault::BadRequest("a barrier needs at least one party".into()));
                }
                State::Barrier(Barrier { parties, at: HashMap::new(), broken: false })
            }
            Kind::RLock => State::RLock(None),
            Kind::Condition => State::Condition(Condition::default()),
            Kind::Object => {
                let value = one("custom object")?;
                let type_name =
                    type_name.ok_or_else(|| Fault::BadRequest("a custom object needs its type's name".into()))?;
                State::Object { type_name, value, pending: None }
            }
        })
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            State::Dict(_) => Kind::Dict,
            State::List(_) => Kind::List,
            State::Namespace(_) => Kind::Namespace,
            State::Value(_) => Kind::Value,
            State::Queue(_) => Kind::Queue,
            State::Lock(_) => Kind::Lock,
            State::Event(_) => Kind::Event,
            State::Semaphore { .. } => Kind::Semaphore,
            State::Barrier(_) => Kind::Barrier,
            State::RLock(_) => Kind::RLock,
            State::Condition(_) => Kind::Condition,
            State::Object { .. } => Kind::Object,
        }
    }

    /// The type name of a custom object.
    pub(crate) fn type_name(&self) -> Option<&str> {
        match self {
            State::Object { type_name, .. } => Some(type_name),
            _ => None,
        }
    }

    /// Whether `op`, which may wait, would succeed now for connection `conn`
    /// (an item to get, the lock free, the flag set, a slot free, the barrier's
    /// round over). Operations that never wait, and operations on the wrong kind
    /// (which fail at once), are always ready.
    pub(crate) fn ready_for(&self, op: &Op, conn: u64) -> bool {
        match (self, op) {
            (State::Queue(items), Op::QueueGet { .. }) => !items.is_empty(),
            (State::Lock(owner), Op::LockAcquire { .. }) => owner.is_none(),
            (State::Event(flag), Op::EventWait { .. }) => *flag,
            (State::Semaphore { value, .. }, Op::SemaphoreAcquire { .. }) => *value > 0,
            (State::Barrier(b), Op::BarrierWait { .. }) => b.at.get(&conn) != Some(&Outcome::Waiting),
            (State::RLock(owner), Op::OwnedAcquire { owner: id, .. }) => owned_ready(owner, *id),
            (State::Condition(c), Op::OwnedAcquire { owner: id, .. }) => owned_ready(&c.owner, *id),
            (State::Condition(c), Op::ConditionWaitEnd { ticket, .. }) => !c.waiting.iter().any(|(t, _)| t == ticket),
            (State::Condition(c), Op::ConditionReacquire { .. }) => c.owner.is_none(),
            _ => true,
        }
    }

    /// What an operation that may wait answers when its wait ran out (or there
    /// was none) and it is not [ready](Self::ready_for): a barrier's wait gives
    /// up, which breaks the barrier.
    pub(crate) fn give_up(&mut self, op: &Op, conn: u64) -> Response {
        match (&mut *self, op) {
            (State::Barrier(b), Op::BarrierWait { .. }) => {
                b.at.remove(&conn);
                b.break_it();
            }
            (State::Condition(c), Op::ConditionWaitEnd { ticket, .. }) => c.waiting.retain(|(t, _)| t != ticket),
            _ => {}
        }
        not_ready(op)
    }

    /// What connection `conn` leaves behind when it ends: the lock it acquired
    /// is released; a barrier it waits at breaks (a party is gone). Whether
    /// anything changed.
    pub(crate) fn forget_connection(&mut self, conn: u64) -> bool {
        match self {
            State::Lock(owner) if *owner == Some(conn) => {
                *owner = None;
                true
            }
            State::Barrier(b) => match b.at.remove(&conn) {
                Some(Outcome::Waiting) => {
                    b.break_it();
                    true
                }
                _ => false,
            },
            State::RLock(owner) if owner.is_some_and(|o| o.conn == conn) => {
                *owner = None;
                true
            }
            State::Condition(c) => {
                let mut changed = false;
                if c.owner.is_some_and(|o| o.conn == conn) {
                    c.owner = None;
                    changed = true;
                }
                let before = c.waiting.len();
                c.waiting.retain(|(_, waiter)| *waiter != conn);
                // A notification meant for a waiter that is gone goes to the next one.
                let lost = c.notified.len();
                c.notified.retain(|_, waiter| *waiter != conn);
                let lost = (lost - c.notified.len()) as u64;
                c.notify(lost);
                changed || before != c.waiting.len() || lost > 0
            }
            _ => false,
        }
    }

    /// Forgets what an [`Op::ObjectCall`] returned (its hold ended).
    pub(crate) fn drop_pending(&mut self) {
        if let State::Object { pending, .. } = self {
            *pending = None;
        }
    }
}

/// What an operation that may wait answers when its wait ran out (or there was
/// none) and it is not [ready](State::ready_for).
fn not_ready(op: &Op) -> Response {
    match op {
        Op::QueueGet { wait: Wait::No } => Response::Fault(Fault::Empty),
        Op::QueueGet { .. } => Response::Fault(Fault::Timeout),
        _ => Response::Bool(false),
    }
}

/// Applies `op` to an object, its lock held, on behalf of connection `conn`.
pub(crate) fn apply(state: &mut State, op: Op, conn: u64) -> Result<Response, Fault> {
    let found = state.kind();
    if !state.ready_for(&op, conn) {
        return Ok(state.give_up(&op, conn));
    }
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
        (State::Dict(map), Op::DictApply { key, task, default }) => {
            let Some(current) = map.get(&key).or(default.as_ref()) else {
                return Ok(Response::Item(None));
            };
            let new = run_task(&task, &current.0)?;
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
        (State::List(items), Op::ListApply { index, task }) => {
            let Some(slot) = at_mut(items, index) else {
                return Ok(Response::Item(None));
            };
            let new = run_task(&task, &slot.0)?;
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
        (State::Value(value), Op::ValueApply { task }) => {
            let new = run_task(&task, &value.0)?;
            *value = new.clone();
            Response::Item(Some(new))
        }
        (State::Queue(items), Op::QueuePut { value }) => {
            items.push_back(value);
            Response::Done
        }
        (State::Queue(items), Op::QueueGet { .. }) => Response::Item(items.pop_front()),
        (State::Queue(items), Op::Len) => Response::Len(items.len() as u64),
        (State::Lock(owner), Op::LockAcquire { .. }) => {
            *owner = Some(conn);
            Response::Bool(true)
        }
        (State::Lock(owner), Op::LockRelease) => {
            // Any connection may release it, as any thread may release Python's Lock.
            owner.take().ok_or(Fault::NotHeld(Kind::Lock))?;
            Response::Done
        }
        (State::Event(flag), Op::EventSet) => {
            *flag = true;
            Response::Done
        }
        (State::Event(flag), Op::EventClear) => {
            *flag = false;
            Response::Done
        }
        (State::Event(flag), Op::EventIsSet | Op::EventWait { .. }) => Response::Bool(*flag),
        (State::Semaphore { value, .. }, Op::SemaphoreAcquire { .. }) => {
            *value -= 1;
            Response::Bool(true)
        }
        (State::Semaphore { value, bound }, Op::SemaphoreRelease) => {
            if let Some(bound) = *bound
                && *value >= bound
            {
                return Err(Fault::OverReleased { bound });
            }
            *value = value.saturating_add(1);
            Response::Done
        }
        (State::Semaphore { value, .. }, Op::SemaphoreValue) => Response::Len(*value),
        (State::Barrier(b), Op::BarrierArrive) => b.arrive(conn)?,
        (State::Barrier(b), Op::BarrierWait { .. }) => match b.at.remove(&conn) {
            Some(Outcome::Passed) => Response::Bool(true),
            Some(Outcome::Broken) => return Err(Fault::BrokenBarrier),
            _ => return Err(Fault::BadRequest("a wait at a barrier with no arrival before it".into())),
        },
        (State::Barrier(b), Op::BarrierAbort) => {
            b.break_it();
            Response::Done
        }
        (State::Barrier(b), Op::BarrierReset) => {
            b.end_round(Outcome::Broken);
            b.broken = false;
            Response::Done
        }
        (State::Barrier(b), Op::BarrierWaiting) => Response::Len(if b.broken { 0 } else { b.waiting() }),
        (State::Barrier(b), Op::BarrierParties) => Response::Len(b.parties),
        (State::Barrier(b), Op::BarrierBroken) => Response::Bool(b.broken),
        (State::RLock(owner), Op::OwnedAcquire { owner: id, .. }) => owned_acquire(owner, id, conn),
        (State::RLock(owner), Op::OwnedRelease { owner: id }) => owned_release(owner, id, Kind::RLock)?,
        (State::Condition(c), Op::OwnedAcquire { owner: id, .. }) => owned_acquire(&mut c.owner, id, conn),
        (State::Condition(c), Op::OwnedRelease { owner: id }) => owned_release(&mut c.owner, id, Kind::Condition)?,
        (State::Condition(c), Op::ConditionWaitStart { owner: id }) => {
            let depth = match c.owner {
                Some(o) if o.id == id => o.depth,
                _ => return Err(Fault::NotHeld(Kind::Condition)),
            };
            c.owner = None;
            let ticket = c.next_ticket;
            c.next_ticket += 1;
            c.waiting.push_back((ticket, conn));
            Response::Waiting { ticket, depth }
        }
        (State::Condition(c), Op::ConditionWaitEnd { ticket, .. }) => match c.notified.remove(&ticket) {
            Some(_) => Response::Bool(true),
            None => return Err(Fault::BadRequest(format!("no waiter {ticket} at this condition"))),
        },
        (State::Condition(c), Op::ConditionReacquire { owner: id, depth }) => {
            c.owner = Some(Owner { id, depth: depth.max(1), conn });
            Response::Done
        }
        (State::Condition(c), Op::ConditionNotify { owner: id, n }) => {
            if c.owner.is_none_or(|o| o.id != id) {
                return Err(Fault::NotHeld(Kind::Condition));
            }
            c.notify(n);
            Response::Done
        }
        (State::Object { value, .. }, Op::ObjectGet) => Response::Item(Some(value.clone())),
        (State::Object { value, .. }, Op::ObjectSet { value: new }) => {
            *value = new;
            Response::Done
        }
        (State::Object { value, pending, .. }, Op::ObjectCall { task, arg }) => {
            // The arguments (T, A) encode as T's encoding then A's: tuples carry
            // no header (`tuples_encode_as_their_elements_in_a_row`).
            let mut args = Vec::with_capacity(value.0.len() + arg.0.len());
            args.extend_from_slice(&value.0);
            args.extend_from_slice(&arg.0);
            let returned = run_task(&task, &args)?;
            *pending = Some(returned.clone());
            Response::Item(Some(returned))
        }
        (State::Object { value, pending, .. }, Op::ObjectCommit { split }) => {
            let Some(Blob(mut returned)) = pending.take() else {
                return Err(Fault::BadRequest("a commit with no call before it".into()));
            };
            let split = usize::try_from(split).ok().filter(|&s| s <= returned.len()).ok_or_else(|| {
                Fault::BadRequest(format!("a commit of {split} bytes of {} returned", returned.len()))
            })?;
            returned.truncate(split);
            *value = Blob(returned);
            Response::Done
        }
        (_, op) => return Err(Fault::WrongKind { expected: expected_kind(&op), found }),
    })
}

/// An initial value the client encoded for the server to read.
fn decode_init<T: serde::de::DeserializeOwned>(blob: Blob, what: &str) -> Result<T, Fault> {
    crate::codec::decode(&blob.0).map_err(|e| Fault::BadRequest(format!("{what} does not decode: {e}")))
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
        | Op::DictApply { .. } => Kind::Dict,
        Op::ListPush { .. }
        | Op::ListExtend { .. }
        | Op::ListGet { .. }
        | Op::ListSet { .. }
        | Op::ListPop
        | Op::ListApply { .. }
        | Op::Len
        | Op::Clear
        | Op::ToVec => Kind::List,
        Op::NamespaceSet { .. } | Op::NamespaceGet { .. } | Op::NamespaceRemove { .. } => Kind::Namespace,
        Op::ValueGet | Op::ValueSet { .. } | Op::ValueApply { .. } => Kind::Value,
        Op::QueuePut { .. } | Op::QueueGet { .. } => Kind::Queue,
        Op::LockAcquire { .. } | Op::LockRelease => Kind::Lock,
        Op::EventSet | Op::EventClear | Op::EventIsSet | Op::EventWait { .. } => Kind::Event,
        Op::SemaphoreAcquire { .. } | Op::SemaphoreRelease | Op::SemaphoreValue => Kind::Semaphore,
        Op::BarrierArrive
        | Op::BarrierWait { .. }
        | Op::BarrierAbort
        | Op::BarrierReset
        | Op::BarrierWaiting
        | Op::BarrierParties
        | Op::BarrierBroken => Kind::Barrier,
        Op::OwnedAcquire { .. } | Op::OwnedRelease { .. } => Kind::RLock,
        Op::ConditionWaitStart { .. }
        | Op::ConditionWaitEnd { .. }
        | Op::ConditionReacquire { .. }
        | Op::ConditionNotify { .. } => Kind::Condition,
        Op::ObjectGet | Op::ObjectSet { .. } | Op::ObjectCall { .. } | Op::ObjectCommit { .. } => Kind::Object,
    }
}

/// Runs the task `name` on the encoded argument tuple `args`, in this process,
/// and returns the encoded result.
///
/// The crate's codec encodes a tuple as its elements in a row, with no header
/// (`one_tuple_encodes_as_its_element`), so a stored value is the argument
/// tuple of a one-argument task as it is.
fn run_task(name: &str, args: &[u8]) -> Result<Blob, Fault> {
    let entry = task::by_name(name).ok_or_else(|| Fault::UnknownTask(name.to_string()))?;
    match entry.invoke(args).report {
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

    #[test]
    fn tuples_encode_as_their_elements_in_a_row() {
        let pair = codec::encode(&("ab".to_string(), 300u64)).unwrap();
        let mut row = codec::encode(&"ab").unwrap();
        row.extend(codec::encode(&300u64).unwrap());
        assert_eq!(pair, row);
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
    fn a_commit_keeps_the_first_bytes_of_what_the_call_returned() {
        let mut state = State::new(Kind::Object, vec![blob(1u8)], Some("u8".into())).unwrap();
        if let State::Object { pending, .. } = &mut state {
            *pending = Some(Blob(vec![5, 6, 7]));
        }
        assert!(matches!(apply(&mut state, Op::ObjectCommit { split: 1 }, 0), Ok(Response::Done)));
        assert!(matches!(apply(&mut state, Op::ObjectGet, 0), Ok(Response::Item(Some(Blob(v)))) if v == [5]));
        // The call's result is used once.
        assert!(matches!(apply(&mut state, Op::ObjectCommit { split: 0 }, 0), Err(Fault::BadRequest(_))));
    }

    #[test]
    fn a_notification_meant_for_a_waiter_that_is_gone_goes_to_the_next() {
        let mut cond = State::new(Kind::Condition, vec![], None).unwrap();
        let mut wait_on = |conn: u64, owner: u64| {
            assert!(matches!(
                apply(&mut cond, Op::OwnedAcquire { wait: Wait::No, owner }, conn),
                Ok(Response::Bool(true))
            ));
            match apply(&mut cond, Op::ConditionWaitStart { owner }, conn) {
                Ok(Response::Waiting { ticket, depth: 1 }) => ticket,
                other => panic!("{other:?}"),
            }
        };
        let (first, second) = (wait_on(1, 10), wait_on(2, 20));
        assert!(matches!(
            apply(&mut cond, Op::OwnedAcquire { wait: Wait::No, owner: 30 }, 3),
            Ok(Response::Bool(true))
        ));
        assert!(matches!(apply(&mut cond, Op::ConditionNotify { owner: 30, n: 1 }, 3), Ok(Response::Done)));
        let end = |ticket| Op::ConditionWaitEnd { wait: Wait::No, ticket };
        assert!(cond.ready_for(&end(first), 1));
        assert!(!cond.ready_for(&end(second), 2));
        assert!(cond.forget_connection(1));
        assert!(cond.ready_for(&end(second), 2));
        assert!(matches!(apply(&mut cond, end(second), 2), Ok(Response::Bool(true))));
    }

    #[test]
    fn an_rlock_is_taken_again_by_its_owner_and_freed_by_the_last_release() {
        let mut lock = State::new(Kind::RLock, vec![], None).unwrap();
        let acquire = |owner| Op::OwnedAcquire { wait: Wait::No, owner };
        assert!(matches!(apply(&mut lock, acquire(7), 1), Ok(Response::Bool(true))));
        assert!(matches!(apply(&mut lock, acquire(7), 2), Ok(Response::Bool(true))));
        assert!(matches!(apply(&mut lock, acquire(8), 3), Ok(Response::Bool(false))));
        assert!(matches!(apply(&mut lock, Op::OwnedRelease { owner: 8 }, 3), Err(Fault::NotHeld(Kind::RLock))));
        assert!(matches!(apply(&mut lock, Op::OwnedRelease { owner: 7 }, 1), Ok(Response::Done)));
        assert!(matches!(apply(&mut lock, acquire(8), 3), Ok(Response::Bool(false))));
        assert!(matches!(apply(&mut lock, Op::OwnedRelease { owner: 7 }, 1), Ok(Response::Done)));
        assert!(matches!(apply(&mut lock, acquire(8), 3), Ok(Response::Bool(true))));
    }

    #[test]
    fn a_lock_is_released_for_the_connection_that_acquired_it_only() {
        let mut lock = State::new(Kind::Lock, vec![], None).unwrap();
        assert!(matches!(apply(&mut lock, Op::LockAcquire { wait: Wait::No }, 1), Ok(Response::Bool(true))));
        assert!(matches!(apply(&mut lock, Op::LockAcquire { wait: Wait::No }, 2), Ok(Response::Bool(false))));
        assert!(!lock.forget_connection(2));
        assert!(lock.forget_connection(1));
        assert!(matches!(apply(&mut lock, Op::LockRelease, 1), Err(Fault::NotHeld(Kind::Lock))));
    }
}
