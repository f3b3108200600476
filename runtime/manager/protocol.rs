//! What a proxy and a manager server say to each other: one request frame, one
//! response frame, over an authenticated [`Connection`](crate::Connection).
//!
//! Keys and values travel (and are stored) as the crate's encoding of the typed
//! value: the server never knows the types. Requests name an object by its id,
//! which the server gave when the object was made ([`Request::Create`]) or
//! looked up by name ([`Request::Lookup`]).

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
}

impl Kind {
    /// The name users know it by, for messages.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Kind::Dict => "dict",
            Kind::List => "list",
            Kind::Namespace => "namespace",
            Kind::Value => "value",
        }
    }
}

/// One request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Makes a new object (a list may start with items, a value must start with one).
    /// Answered with [`Response::Id`].
    Create { kind: Kind, init: Vec<Blob> },
    /// Finds the object published under `name`. Answered with [`Response::Id`].
    Lookup { name: String, kind: Kind },
    /// Applies `op` to the object `id`.
    Call { id: u64, op: Op },
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
    DictUpdate {
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
    ListUpdate {
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
    ValueUpdate {
        task: String,
    },
    /// Dicts, lists and namespaces.
    Len,
    /// Dicts, lists and namespaces.
    Clear,
    /// Lists (its items), dicts (its values).
    ToVec,
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
    Fault(Fault),
}

/// Why a request was refused. Each becomes an [`Error`](crate::Error) on the
/// proxy's side.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Fault {
    /// No object has this id (it belongs to another server?).
    NoSuchObject(u64),
    /// Nothing is published under this name.
    NoSuchName(String),
    /// The object (or the name) is another kind than the request needs.
    WrongKind { expected: Kind, found: Kind },
    /// A list index past the end.
    IndexOutOfRange { index: u64, len: u64 },
    /// The update task is not registered in the server's binary.
    UnknownTask(String),
    /// The update task panicked or its value did not decode in it.
    Task { task: String, failure: Failure },
    /// The request frame did not decode.
    BadRequest(String),
}
