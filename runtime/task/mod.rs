//! The task registry: how a function annotated with `#[mproc::task]` is found by
//! name in another process, and how it is called there.
//!
//! `#[task]` leaves the function untouched and submits a [`TaskEntry`] through
//! `inventory`: a stable name (module path + function name) for the wire and for
//! messages, a key (the `type_name` of the function item) to recognise the
//! function when it is passed by value, and an invoker that decodes the argument
//! tuple, calls the function under `catch_unwind` and encodes the result. Parent
//! and child are the same binary and see the same table. Dispatch never depends
//! on function addresses: the compiler may merge identical functions.

mod call;
mod panic;

use std::collections::HashMap;
use std::sync::OnceLock;

pub(crate) use call::{Failure, Report, run_captured};
pub use call::{Invoked, invoke, invoke_chunk};
pub use call::{MapFn, TaskFn};
pub(crate) use panic::install_panic_capture;

use crate::error::{Error, Result};

/// A value that can be a task argument or result: it crosses a process boundary
/// through serde, so it must be serializable, owned and sendable.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross a process boundary",
    label = "not usable as a task argument or result",
    note = "task arguments and results are sent through serde: derive `serde::Serialize` and `serde::Deserialize` for `{Self}` (it must also be `Send + 'static`)"
)]
pub trait TaskValue: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}

// Not recommended in diagnostics: a missing bound then reports TaskValue's own
// message (which says how to fix it) instead of serde's.
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> TaskValue for T {}

/// Compile-time check used by `#[task]` on each argument and the result type.
#[doc(hidden)]
pub const fn assert_task_value<T: TaskValue>() {}

/// One registered task. Built by `#[mproc::task]`; not meant to be written by hand.
#[doc(hidden)]
pub struct TaskEntry {
    name: &'static str,
    key: fn() -> &'static str,
    invoke: fn(&[u8]) -> Invoked,
    invoke_chunk: fn(&[u8]) -> Invoked,
}

impl TaskEntry {
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        key: fn() -> &'static str,
        invoke: fn(&[u8]) -> Invoked,
        invoke_chunk: fn(&[u8]) -> Invoked,
    ) -> Self {
        TaskEntry { name, key, invoke, invoke_chunk }
    }

    /// The stable name: `module::path::function`.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the task on encoded arguments, in this process.
    pub(crate) fn invoke(&self, args: &[u8]) -> Invoked {
        (self.invoke)(args)
    }

    /// Runs the task on each of an encoded chunk of argument tuples, in this process.
    pub(crate) fn invoke_chunk(&self, chunk: &[u8]) -> Invoked {
        (self.invoke_chunk)(chunk)
    }
}

inventory::collect!(TaskEntry);

struct Registry {
    by_name: HashMap<&'static str, &'static TaskEntry>,
    by_key: HashMap<&'static str, &'static TaskEntry>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut by_name = HashMap::new();
        let mut by_key = HashMap::new();
        for entry in inventory::iter::<TaskEntry> {
            by_name.insert(entry.name, entry);
            by_key.insert((entry.key)(), entry);
        }
        Registry { by_name, by_key }
    })
}

/// Builds the registry now if it is not built yet. Called before every fork: a
/// child forked while another thread is in the middle of building it would find
/// the build marked as running forever, and block on its first lookup.
pub(crate) fn ensure_registry() {
    registry();
}

/// Finds a task by its stable name (the child side of dispatch).
pub(crate) fn by_name(name: &str) -> Option<&'static TaskEntry> {
    registry().by_name.get(name).copied()
}

/// Finds the task behind a function item passed by value (the parent side).
pub(crate) fn of<F>(_f: &F) -> Result<&'static TaskEntry> {
    let key = std::any::type_name::<F>();
    registry().by_key.get(key).copied().ok_or_else(|| Error::NotATask { name: key.to_string() })
}
