//! The typed face of a custom object: a value of a user type, kept in the
//! server, changed by the user's own operations (CPython's
//! `BaseManager.register`, with the types checked when compiling).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::protocol::Op;
use super::proxy::{decode, encode, proxy_type, some, task_name, unexpected, update_with};
use crate::codec;
use crate::error::{Error, Result};
use crate::task::{TaskFn, TaskValue};

proxy_type!(
    /// A value of your own type `T` that lives in a manager server, changed by
    /// operations you write: CPython's `BaseManager.register(typeid, callable)`,
    /// with the types checked when compiling.
    ///
    /// Made by [`Manager::object`](super::Manager::object), or published by a
    /// [`Server::object`](super::Server::object) and found with
    /// [`Manager::get_object`](super::Manager::get_object), which checks the type.
    ///
    /// An **operation** is a `#[mproc::task] fn(T, A) -> (T, R)`: it takes the
    /// object and an argument, and returns the new object and a result.
    /// [`call`](Self::call) runs it **in the server**, with the object held, so
    /// concurrent calls from any number of processes never lose an update. As
    /// for [`DictProxy::apply`](super::DictProxy::apply), the task must be
    /// registered in the server's binary. Any closure will do with
    /// [`update`](Self::update), which runs it here (see
    /// [`DictProxy::update`](super::DictProxy::update)).
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Account { owner: String, balance: u64 }
    ///
    /// /// Deposits `amount`; returns the new balance.
    /// #[mproc::task]
    /// fn deposit(mut account: Account, amount: u64) -> (Account, u64) {
    ///     account.balance += amount;
    ///     let balance = account.balance;
    ///     (account, balance)
    /// }
    ///
    /// let mgr = mproc::Manager::start()?;
    /// let account = mgr.object(Account { owner: "ada".into(), balance: 10 })?;
    /// assert_eq!(account.call(deposit, 5)?, 15);
    /// account.update(|mut a| { a.owner = "grace".into(); a })?;
    /// assert_eq!(account.get()?.owner, "grace");
    /// # Ok::<(), mproc::Error>(())
    /// ```
    ObjectProxy<T>
);

impl<T: TaskValue> ObjectProxy<T> {
    /// A copy of the object.
    pub fn get(&self) -> Result<T> {
        some(self.proxy.item(Op::ObjectGet)?)
    }

    /// Replaces the object.
    pub fn set(&self, value: T) -> Result<()> {
        self.proxy.done(Op::ObjectSet { value: encode(&value)? })
    }

    /// Runs the operation `op` on the object and `arg`, in the server, with the
    /// object held; stores the object it returns and returns its result.
    ///
    /// `op` must be a `#[mproc::task] fn(T, A) -> (T, R)` ([`Error::NotATask`]
    /// without the attribute). A panic in it is [`Error::Panicked`] and leaves
    /// the object as it was.
    ///
    /// Two requests: the server runs `op` and answers what it returned, holding
    /// the object; this process tells it where the new object ends in that
    /// answer (the server stores values as bytes and cannot tell without the
    /// types), which stores it and releases the object. If this process dies
    /// between the two, the object is left as it was.
    pub fn call<F, A, R>(&self, op: F, arg: A) -> Result<R>
    where
        F: TaskFn<(T, A), Output = (T, R)>,
        A: TaskValue,
        R: TaskValue,
    {
        let read = Op::ObjectCall { task: task_name(&op)?, arg: encode(&arg)? };
        let (held, returned) = self.proxy.hold(read)?;
        let returned = returned.ok_or_else(|| unexpected(super::protocol::Response::Item(None)))?;
        // Dropping `held` on an error below releases the object unchanged.
        let (_, result): (T, R) = decode(&returned)?;
        let tail = codec::encode(&result)?.len();
        let split = returned.0.len().checked_sub(tail).ok_or_else(|| {
            Error::Codec(format!("the result of {} re-encodes longer than it came", std::any::type_name::<F>()))
        })?;
        held.release(Some(Op::ObjectCommit { split: split as u64 }))?;
        Ok(result)
    }

    /// Replaces the object with `f(object)`, atomically, the closure running
    /// here with the object held (see [`DictProxy::update`](super::DictProxy::update));
    /// returns a copy of the new object.
    pub fn update(&self, f: impl FnOnce(T) -> T) -> Result<T> {
        some(update_with(&self.proxy, Op::ObjectGet, None, f, |value| Op::ObjectSet { value })?)
    }
}

/// The name a custom object's type is checked by.
pub(crate) fn type_name<T: Serialize + DeserializeOwned>() -> String {
    std::any::type_name::<T>().to_string()
}
