//! What a proxy and a manager server say to each other: one request frame, one
//! response frame, over an authenticated [`Connection`](crate::Connection).
//!
//! Keys and values travel (and are stored) as the crate's encoding of the typed
//! value: the server never knows the types. Requests name an object by its id,
//! which the server gave when the object was made ([`Request::Create`]) or
//! looked up by name ([`Request::Lookup`]).
//!
//! A client sends nothing on a connection while it waits for an answer: the
//! server, waiting on the client's behalf (a queue's `get`, a lock, an event, an
//! object held by another connection), takes anything arriving meanwhile, the
//! end of the stream included, as the client having gone.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::task::Failure;

/// An encoded value, written as one byte string (not one number per byte).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Blob(#[serde(with = "crate::codec::bytes")] pub(crate) Vec<u8>);

/// The kinds of objects a server holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    Dict,
    List,
    Namespace,
    Value,
    Queue,
    Lock,
    Event,
    /// A counter of free slots, bounded or not.
    Semaphore,
    Barrier,
    /// A lock its owner (a thread of a client process) may take again.
    RLock,
    /// A re-entrant lock with waiters that it wakes.
    Condition,
    /// A value of a user type, named by [`Request::Create`]'s `type_name`.
    Object,
}

impl Kind {
    /// The name users know it by, for messages.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Kind::Dict => "dict",
            Kind::List => "list",
            Kind::Namespace => "namespace",
            Kind::Value => "value",
            Kind::Queue => "queue",
            Kind::Lock => "lock",
            Kind::Event => "event",
            Kind::Semaphore => "semaphore",
            Kind::Barrier => "barrier",
            Kind::RLock => "re-entrant lock",
            Kind::Condition => "condition",
            Kind::Object => "custom object",
        }
    }
}

/// What [`Request::Create`] carries for a semaphore of `value` free slots
/// (bounded by `bound`, for a bounded one).
pub(crate) fn semaphore_init(value: usize, bound: Option<u64>) -> crate::Result<Vec<Blob>> {
    Ok(vec![Blob(crate::codec::encode(&(value as u64))?), Blob(crate::codec::encode(&bound)?)])
}

/// What [`Request::Create`] carries for a barrier of `parties` (at least 1).
pub(crate) fn barrier_init(parties: usize) -> crate::Result<Vec<Blob>> {
    if parties == 0 {
        return Err(crate::Error::Misuse {
            what: "a manager barrier needs at least 1 party, not 0: give the number of parties that wait".into(),
        });
    }
    Ok(vec![Blob(crate::codec::encode(&(parties as u64))?)])
}

/// How long an operation that can block waits in the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Wait {
    /// Not at all: answered [`Fault::Empty`] (a queue) or `false` at once.
    No,
    /// At most this long: then answered [`Fault::Timeout`] (a queue) or `false`.
    For(Duration),
    /// As long as it takes (or until the client goes, or the server stops).
    Forever,
}

/// One request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Makes a new object (a list may start with items, a value or custom
    /// object must start with one; a custom object names its type).
    /// Answered with [`Response::Id`].
    Create { kind: Kind, init: Vec<Blob>, type_name: Option<String> },
    /// Finds the object published under `name` (a custom object must be of
    /// `type_name`). Answered with [`Response::Id`].
    Lookup { name: String, kind: Kind, type_name: Option<String> },
    /// Applies `op` to the object `id`.
    Call { id: u64, op: Op },
    /// Applies `op` (a read) to the object `id` and, if it succeeds, leaves the
    /// object held by this connection until a [`Request::Release`]: other
    /// connections' requests on it wait. Holds nest (a connection may hold an
    /// object it holds), and end when the connection closes.
    Hold { id: u64, op: Op },
    /// Applies `op` (a write), if any, to an object this connection holds, and
    /// ends one hold of it, whether `op` succeeded or not.
    Release { id: u64, op: Option<Op> },
    /// Frees the object `id`, and its name if it is published, once no other
    /// connection holds it. Requests waiting on it are answered
    /// [`Fault::Destroyed`], as are later ones. Answered with [`Response::Done`].
    Destroy { id: u64 },
}

/// An operation on one object. Which kind of object each applies to is in its name.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    /// Answered with the previous value, if any.
    DictInsert {
        key: Blob,
        value: Blob,
    },
    DictGet {
        key: Blob,
    },
    DictRemove {
        key: Blob,
    },
    DictContains {
        key: Blob,
    },
    DictKeys,
    DictValues,
    DictItems,
    /// Runs `task` on the value under `key` (or on `default` when the key is
    /// missing and a default is given) and stores what it returns.
    DictApply {
        key: Blob,
        task: String,
        default: Option<Blob>,
    },
    ListPush {
        value: Blob,
    },
    ListExtend {
        values: Vec<Blob>,
    },
    ListGet {
        index: u64,
    },
    ListSet {
        index: u64,
        value: Blob,
    },
    ListPop,
    ListApply {
        index: u64,
        task: String,
    },
    NamespaceSet {
        name: String,
        value: Blob,
    },
    NamespaceGet {
        name: String,
    },
    NamespaceRemove {
        name: String,
    },
    ValueGet,
    ValueSet {
        value: Blob,
    },
    ValueApply {
        task: String,
    },
    QueuePut {
        value: Blob,
    },
    /// Answered with the first item, or [`Fault::Empty`] / [`Fault::Timeout`].
    QueueGet {
        wait: Wait,
    },
    /// Answered `true` once this connection holds the lock, `false` if `wait` ran out.
    LockAcquire {
        wait: Wait,
    },
    /// [`Fault::NotHeld`] when the lock is free.
    LockRelease,
    EventSet,
    EventClear,
    EventIsSet,
    /// Answered `true` once the flag is set, `false` if `wait` ran out.
    EventWait {
        wait: Wait,
    },
    /// Answered `true` once a slot was taken, `false` if `wait` ran out.
    SemaphoreAcquire {
        wait: Wait,
    },
    /// Gives a slot back; [`Fault::OverReleased`] past a bounded semaphore's bound.
    SemaphoreRelease,
    /// Answered with the free slots ([`Response::Len`]).
    SemaphoreValue,
    /// Counts this connection in as a party: answered [`Response::Arrived`];
    /// unless it was the last party, the connection then sends
    /// [`Op::BarrierWait`]. [`Fault::BrokenBarrier`] on a broken barrier.
    BarrierArrive,
    /// Answered `true` once the barrier passed, [`Fault::BrokenBarrier`] if it
    /// broke meanwhile, `false` if `wait` ran out (which breaks it).
    BarrierWait {
        wait: Wait,
    },
    /// Breaks the barrier.
    BarrierAbort,
    /// Back to its first state; the parties waiting get [`Fault::BrokenBarrier`].
    BarrierReset,
    /// Answered with the parties waiting now ([`Response::Len`]).
    BarrierWaiting,
    /// Answered with the number of parties ([`Response::Len`]).
    BarrierParties,
    /// Answered with whether it is broken.
    BarrierBroken,
    /// A re-entrant lock's or a condition's: answered `true` once `owner` holds
    /// it (once more, if it held it already), `false` if `wait` ran out. An
    /// owner is a thread of a client process, named by a random number.
    OwnedAcquire {
        wait: Wait,
        owner: u64,
    },
    /// Ends one acquisition by `owner`; [`Fault::NotHeld`] if it holds none.
    OwnedRelease {
        owner: u64,
    },
    /// A condition's wait, first step: `owner`, which must hold the lock, lets
    /// it go entirely and is queued as a waiter. Answered
    /// [`Response::Waiting`], with what the next steps need.
    ConditionWaitStart {
        owner: u64,
    },
    /// Second step: answered `true` once the waiter `ticket` was notified,
    /// `false` if `wait` ran out (the waiter leaves the queue).
    ConditionWaitEnd {
        wait: Wait,
        ticket: u64,
    },
    /// Third step, whatever the second answered: waits for the lock, as long
    /// as it takes, and gives it back to `owner` `depth` times over.
    ConditionReacquire {
        owner: u64,
        depth: u64,
    },
    /// Wakes the first `n` waiters; `owner` must hold the lock.
    ConditionNotify {
        owner: u64,
        n: u64,
    },
    ObjectGet,
    ObjectSet {
        value: Blob,
    },
    /// Only inside [`Request::Hold`]: runs the two-argument `task` on the stored
    /// object and `arg`, keeps what it returns (the encoded pair `(T, R)`) aside
    /// and answers it. The server cannot tell where `T` ends in it without the
    /// types; the client can, and commits with [`Op::ObjectCommit`].
    ObjectCall {
        task: String,
        arg: Blob,
    },
    /// Only inside [`Request::Release`]: stores the first `split` bytes of what
    /// the held [`Op::ObjectCall`] returned as the object's new value.
    ObjectCommit {
        split: u64,
    },
    /// Dicts, lists, namespaces and queues.
    Len,
    /// Dicts, lists and namespaces.
    Clear,
    /// Lists (its items), dicts (its values).
    ToVec,
}

impl Op {
    /// How long this operation may wait in the server.
    pub(crate) fn wait(&self) -> Wait {
        match self {
            Op::QueueGet { wait }
            | Op::LockAcquire { wait }
            | Op::EventWait { wait }
            | Op::SemaphoreAcquire { wait }
            | Op::BarrierWait { wait }
            | Op::OwnedAcquire { wait, .. }
            | Op::ConditionWaitEnd { wait, .. } => *wait,
            Op::ConditionReacquire { .. } => Wait::Forever,
            _ => Wait::No,
        }
    }
}

/// One response.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    Done,
    Id(u64),
    Bool(bool),
    Len(u64),
    Item(Option<Blob>),
    Items(Vec<Blob>),
    Pairs(Vec<(Blob, Blob)>),
    /// A party counted in at a barrier: its index (0 for the first to arrive),
    /// and whether it was the last, which let the barrier pass.
    Arrived {
        index: u64,
        last: bool,
    },
    /// A condition's waiter queued: its ticket, and how many times its owner
    /// had acquired the lock (given back when it reacquires).
    Waiting {
        ticket: u64,
        depth: u64,
    },
    Fault(Fault),
}

/// Why a request was refused. Each becomes an [`Error`](crate::Error) on the
/// proxy's side.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Fault {
    /// No object has this id, nor ever had (it belongs to another server?).
    NoSuchObject(u64),
    /// The object was destroyed ([`Request::Destroy`]).
    Destroyed(u64),
    /// Nothing is published under this name.
    NoSuchName(String),
    /// The object (or the name) is another kind than the request needs.
    WrongKind { expected: Kind, found: Kind },
    /// The custom object is of another type than the proxy's.
    WrongType { expected: String, found: String },
    /// A list index past the end.
    IndexOutOfRange { index: u64, len: u64 },
    /// The task is not registered in the server's binary.
    UnknownTask(String),
    /// The task panicked or its value did not decode in it.
    Task { task: String, failure: Failure },
    /// A release of a lock that is free, or of an object this connection does not hold.
    NotHeld(Kind),
    /// A bounded semaphore released more times than it was acquired.
    OverReleased { bound: u64 },
    /// The barrier is broken (aborted, reset while waiting, a wait that ran
    /// out, a party gone while inside).
    BrokenBarrier,
    /// A queue was empty (when not waiting).
    Empty,
    /// The wait ran out.
    Timeout,
    /// The request frame did not decode, or is not valid where it was sent.
    BadRequest(String),
}
