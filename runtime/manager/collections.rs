//! The typed faces of the plain containers: dict, list, namespace, value.
//!
//! ## Two ways to update in place
//!
//! - **`apply(task)`**: one request; a `#[mproc::task] fn(V) -> V` runs *in the
//!   server*, on the stored value, with the object locked. The fastest atomic
//!   update, but the function must be registered in the server's binary, and
//!   captures nothing.
//! - **`update(closure)`**: a read-modify-write *in this process*, made atomic by
//!   a hold on the object in the server: one request reads the value and holds
//!   the object for this connection, the closure runs here, a second request
//!   writes the result and releases it. Any closure will do, but it costs two
//!   round trips, and other clients' requests on the object wait meanwhile. A
//!   panic in the closure releases the object unchanged; so does the death of
//!   this process (the server releases what a closed connection held).

use super::protocol::{Op, Response};
use super::proxy::{decode, encode, proxy_type, some, task_name, unexpected, update_with};
use crate::error::Result;
use crate::task::{TaskFn, TaskValue};

proxy_type!(
    /// A dict that lives in a manager server: Python's `manager.dict()`.
    ///
    /// Made by [`Manager::dict`](super::Manager::dict) or found by name with
    /// [`Manager::get_dict`](super::Manager::get_dict). Every method is one
    /// request to the server and returns a `Result` (the server may be gone),
    /// except the closure [`update`](Self::update) (two).
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
    /// assert_eq!(d.update(&"a".into(), |v| v + 1)?, Some(2));     // atomic, the closure runs here
    /// assert_eq!(d.apply(&"a".into(), increment)?, Some(3));      // atomic, the task runs in the server
    /// assert_eq!(d.update_or(&"b".into(), 0, |v| v + 10)?, 10);  // a missing key starts at 0
    /// assert_eq!(d.items()?, vec![("a".into(), 3), ("b".into(), 10)]);
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

    /// Replaces the value under `key` with `f(value)`, atomically: the dict is
    /// held for this process from the read to the write, so concurrent updates
    /// from any number of processes are never lost. Returns the new value, or
    /// `None` (and does nothing) when the key is missing; see
    /// [`update_or`](Self::update_or).
    ///
    /// The closure runs **here**, between two requests (see the module notes
    /// for [`apply`](Self::apply), the one-request form). Meanwhile other
    /// clients' requests on this dict wait: keep it short, and do not wait in
    /// it for another process that uses the dict. Requests it makes itself on
    /// this manager go through the held connection, so it may read the dict.
    /// A panic in `f` releases the dict unchanged (and goes on unwinding); so
    /// does this process dying.
    pub fn update(&self, key: &K, f: impl FnOnce(V) -> V) -> Result<Option<V>> {
        let key = encode(key)?;
        update_with(&self.proxy, Op::DictGet { key: key.clone() }, None, f, |value| Op::DictInsert { key, value })
    }

    /// [`update`](Self::update), starting from `default` when the key is
    /// missing (Python's `d[k] = f(d.get(k, default))`, atomically). Returns
    /// the new value.
    pub fn update_or(&self, key: &K, default: V, f: impl FnOnce(V) -> V) -> Result<V> {
        let key = encode(key)?;
        let read = Op::DictGet { key: key.clone() };
        some(update_with(&self.proxy, read, Some(default), f, |value| Op::DictInsert { key, value })?)
    }

    /// Replaces the value under `key` with `task(value)`, atomically, in one
    /// request: the task runs **in the server**, with the dict locked. Returns
    /// the new value, or `None` (and does nothing) when the key is missing; see
    /// [`apply_or`](Self::apply_or).
    ///
    /// `task` must be a `#[mproc::task] fn(V) -> V` (checked when compiling, and
    /// [`Error::NotATask`](crate::Error::NotATask) if it lacks the attribute).
    /// The server finds it by name, so it must be registered in the server's
    /// binary: always true for [`Manager::start`](super::Manager::start); for a
    /// [`Server`](super::Server) of another program, that program must define
    /// the same task (same module path and name). A panicking task is
    /// [`Error::Panicked`](crate::Error::Panicked) and leaves the value as it
    /// was. Keep it short: it holds the dict's lock.
    ///
    /// Half the round trips of [`update`](Self::update), and no hold: prefer it
    /// on hot paths.
    pub fn apply<F>(&self, key: &K, task: F) -> Result<Option<V>>
    where
        F: TaskFn<(V,), Output = V>,
    {
        let op = Op::DictApply { key: encode(key)?, task: task_name(&task)?, default: None };
        self.proxy.item(op)
    }

    /// [`apply`](Self::apply), starting from `default` when the key is
    /// missing (Python's `d[k] = task(d.get(k, default))`, atomically). Returns
    /// the new value.
    pub fn apply_or<F>(&self, key: &K, default: V, task: F) -> Result<V>
    where
        F: TaskFn<(V,), Output = V>,
    {
        let op = Op::DictApply { key: encode(key)?, task: task_name(&task)?, default: Some(encode(&default)?) };
        some(self.proxy.item(op)?)
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
    /// assert_eq!(l.update(1, |v| v - 1)?, Some(0));
    /// assert_eq!(l.to_vec()?, vec![10, 0, 2]);
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

    /// Replaces the item at `index`; an [`Error::Misuse`](crate::Error::Misuse)
    /// past the end (Python's `IndexError`).
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

    /// Replaces the item at `index` with `f(item)`, atomically, the closure
    /// running here with the list held (see [`DictProxy::update`]). Returns the
    /// new item, or `None` past the end.
    pub fn update(&self, index: usize, f: impl FnOnce(T) -> T) -> Result<Option<T>> {
        let index = index as u64;
        update_with(&self.proxy, Op::ListGet { index }, None, f, |value| Op::ListSet { index, value })
    }

    /// Replaces the item at `index` with `task(item)`, atomically, in the
    /// server, in one request (see [`DictProxy::apply`]). Returns the new item,
    /// or `None` past the end.
    pub fn apply<F>(&self, index: usize, task: F) -> Result<Option<T>>
    where
        F: TaskFn<(T,), Output = T>,
    {
        self.proxy.item(Op::ListApply { index: index as u64, task: task_name(&task)? })
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
    /// assert_eq!(v.apply(double)?, 42);
    /// assert_eq!(v.update(|n| n + 1)?, 43);
    /// v.set(7)?;
    /// assert_eq!(v.get()?, 7);
    /// # Ok::<(), mproc::Error>(())
    /// ```
    ValueProxy<T>
);

impl<T: TaskValue> ValueProxy<T> {
    /// The value.
    pub fn get(&self) -> Result<T> {
        some(self.proxy.item(Op::ValueGet)?)
    }

    /// Replaces the value.
    pub fn set(&self, value: T) -> Result<()> {
        self.proxy.done(Op::ValueSet { value: encode(&value)? })
    }

    /// Replaces the value with `f(value)`, atomically, the closure running here
    /// with the value held (see [`DictProxy::update`]); returns the new value.
    pub fn update(&self, f: impl FnOnce(T) -> T) -> Result<T> {
        some(update_with(&self.proxy, Op::ValueGet, None, f, |value| Op::ValueSet { value })?)
    }

    /// Replaces the value with `task(value)`, atomically, in the server, in one
    /// request (see [`DictProxy::apply`]); returns the new value.
    pub fn apply<F>(&self, task: F) -> Result<T>
    where
        F: TaskFn<(T,), Output = T>,
    {
        some(self.proxy.item(Op::ValueApply { task: task_name(&task)? })?)
    }
}
