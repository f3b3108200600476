//! Calling a task: typing on the parent side, decoding and running on the child side.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::TaskValue;
use super::panic::{CaptureGuard, take_captured};
use crate::codec;
use crate::error::Error;

/// A function that can run as a task with the argument tuple `Args`.
///
/// Implemented for every `Fn` of up to twelve arguments whose arguments and
/// result are [`TaskValue`]s; whether it is actually registered with
/// `#[mproc::task]` is checked when it is started (`Error::NotATask`).
pub trait TaskFn<Args>: Copy + Send + Sync + 'static {
    /// What the task returns.
    type Output: TaskValue;
}

macro_rules! impl_task_fn {
    ($($a:ident),*) => {
        impl<F, R, $($a,)*> TaskFn<($($a,)*)> for F
        where
            F: Fn($($a),*) -> R + Copy + Send + Sync + 'static,
            R: TaskValue,
            $($a: TaskValue,)*
        {
            type Output = R;
        }
    };
}

/// A task that `map`-style calls apply to each item of an iterator: a
/// one-argument task takes the item itself, a task of several arguments takes
/// each item as its argument tuple (`pool.map(add, vec![(1, 2), (3, 4)])`).
///
/// `Marker` is the argument tuple type; it is inferred and only keeps the
/// implementations for different arities apart.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be mapped over these items",
    label = "cannot take items of type `{Item}`",
    note = "a one-argument task takes the items themselves; a task of several arguments takes one argument tuple per \
            call, as in `par_map!(add, vec![(1, 2), (3, 4)])`",
    note = "the task's arguments and result must be task values (serde `Serialize + Deserialize`, `Send + 'static`), \
            and the items must have the argument types exactly (`u64`, not `&u64`: add `.copied()` to an iterator of \
            references)"
)]
pub trait MapFn<Item, Marker>: Copy + Send + Sync + 'static {
    /// The argument tuple one item becomes.
    type Args: TaskValue;
    /// What the task returns.
    type Output: TaskValue;
    /// Turns an item into the argument tuple.
    fn args(item: Item) -> Self::Args;
}

impl<F, R> MapFn<(), ()> for F
where
    F: Fn() -> R + Copy + Send + Sync + 'static,
    R: TaskValue,
{
    type Args = ();
    type Output = R;
    fn args(_item: ()) {}
}

impl<F, R, A0> MapFn<A0, (A0,)> for F
where
    F: Fn(A0) -> R + Copy + Send + Sync + 'static,
    R: TaskValue,
    A0: TaskValue,
{
    type Args = (A0,);
    type Output = R;
    fn args(item: A0) -> (A0,) {
        (item,)
    }
}

macro_rules! impl_map_fn {
    ($($a:ident),*) => {
        impl<F, R, $($a,)*> MapFn<($($a,)*), ($($a,)*)> for F
        where
            F: Fn($($a),*) -> R + Copy + Send + Sync + 'static,
            R: TaskValue,
            $($a: TaskValue,)*
        {
            type Args = ($($a,)*);
            type Output = R;
            fn args(item: ($($a,)*)) -> ($($a,)*) {
                item
            }
        }
    };
}

impl_map_fn!(A0, A1);
impl_map_fn!(A0, A1, A2);
impl_map_fn!(A0, A1, A2, A3);
impl_map_fn!(A0, A1, A2, A3, A4);
impl_map_fn!(A0, A1, A2, A3, A4, A5);
impl_map_fn!(A0, A1, A2, A3, A4, A5, A6);
impl_map_fn!(A0, A1, A2, A3, A4, A5, A6, A7);
impl_map_fn!(A0, A1, A2, A3, A4, A5, A6, A7, A8);
impl_map_fn!(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9);
impl_map_fn!(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
impl_map_fn!(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);

impl_task_fn!();
impl_task_fn!(A0);
impl_task_fn!(A0, A1);
impl_task_fn!(A0, A1, A2);
impl_task_fn!(A0, A1, A2, A3);
impl_task_fn!(A0, A1, A2, A3, A4);
impl_task_fn!(A0, A1, A2, A3, A4, A5);
impl_task_fn!(A0, A1, A2, A3, A4, A5, A6);
impl_task_fn!(A0, A1, A2, A3, A4, A5, A6, A7);
impl_task_fn!(A0, A1, A2, A3, A4, A5, A6, A7, A8);
impl_task_fn!(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9);
impl_task_fn!(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
impl_task_fn!(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);

/// Why a call produced no value.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Failure {
    /// The call panicked.
    Panicked { message: String, location: Option<String>, backtrace: Option<String> },
    /// Arguments or result could not be encoded or decoded.
    Codec(String),
    /// The child does not know the task (it was not built from the same binary).
    UnknownTask(String),
}

impl Failure {
    /// The error the caller sees, naming `task`.
    pub(crate) fn into_error(self, task: &str) -> Error {
        match self {
            Failure::Panicked { message, location, backtrace } => {
                Error::Panicked { task: task.to_string(), message, location, backtrace }
            }
            Failure::Codec(what) => Error::Codec(format!("task {task}: {what}")),
            Failure::UnknownTask(name) => Error::NotATask { name },
        }
    }
}

/// What a child sends back about the work it ran.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// The encoded return value (for a chunk: the encoded `Vec<Result<R, Failure>>`).
    Returned(#[serde(with = "crate::codec::bytes")] Vec<u8>),
    /// No value.
    Failed(Failure),
}

impl Report {
    /// The child's exit code after sending this report (Python's: 1 after an exception).
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Report::Returned(_) => 0,
            Report::Failed(_) => 1,
        }
    }
}

/// The outcome of invoking a task in this process, ready to be sent to the parent.
#[doc(hidden)]
#[derive(Debug)]
pub struct Invoked {
    pub(crate) report: Report,
    /// Time spent decoding arguments and encoding results, in nanoseconds.
    pub(crate) codec_ns: u64,
    /// For a chunk: whether any item failed (so the pool can fail fast without decoding).
    pub(crate) any_failed: bool,
}

impl Invoked {
    fn new(report: Report, codec_ns: u64) -> Invoked {
        Invoked { report, codec_ns, any_failed: false }
    }
}

/// Decodes `input` as the argument tuple, calls `f` under `catch_unwind` and
/// encodes what it returns. Used by the code `#[mproc::task]` generates.
#[doc(hidden)]
pub fn invoke<A: TaskValue, R: TaskValue>(input: &[u8], f: impl FnOnce(A) -> R) -> Invoked {
    let args: A = match codec::decode(input) {
        Ok(a) => a,
        Err(e) => return Invoked::new(Report::Failed(Failure::Codec(format!("decoding the arguments: {e}"))), 0),
    };
    Invoked::new(run_captured(move || f(args)), 0)
}

/// Decodes `input` as a chunk (`Vec`) of argument tuples, calls `f` on each under
/// `catch_unwind`, and encodes the outcomes in order: as a `Vec<R>` when all
/// succeeded, else as a `Vec<Result<R, Failure>>` (a panicking item fails alone). Used by the code
/// `#[mproc::task]` generates, for pool workers.
#[doc(hidden)]
pub fn invoke_chunk<A: TaskValue, R: TaskValue>(input: &[u8], f: impl Fn(A) -> R) -> Invoked {
    let started = Instant::now();
    let items: Vec<A> = match codec::decode(input) {
        Ok(a) => a,
        Err(e) => return Invoked::new(Report::Failed(Failure::Codec(format!("decoding the arguments: {e}"))), 0),
    };
    let decoded = Instant::now();
    let guard = CaptureGuard::enter();
    let outcomes: Vec<Result<R, Failure>> = items.into_iter().map(|a| catch(|| f(a))).collect();
    drop(guard);
    let ran = Instant::now();
    let any_failed = outcomes.iter().any(Result::is_err);
    // The common case, every call succeeded, travels as a plain `Vec<R>`: smaller,
    // and cheaper to decode than one `Result` per item.
    let encoded = if any_failed {
        codec::encode(&outcomes)
    } else {
        let values: Vec<R> = outcomes.into_iter().flatten().collect();
        codec::encode(&values)
    };
    let report = match encoded {
        Ok(bytes) => Report::Returned(bytes),
        Err(e) => Report::Failed(Failure::Codec(format!("encoding the results: {e}"))),
    };
    let codec = (decoded - started) + ran.elapsed();
    Invoked { report, codec_ns: codec.as_nanos() as u64, any_failed }
}

/// Runs `f`, catching a panic with its message, location and (when asked for by
/// `RUST_BACKTRACE`) backtrace, and encodes the result.
pub(crate) fn run_captured<R: Serialize>(f: impl FnOnce() -> R) -> Report {
    let guard = CaptureGuard::enter();
    let outcome = catch(f);
    drop(guard);
    match outcome {
        Ok(value) => match codec::encode(&value) {
            Ok(bytes) => Report::Returned(bytes),
            Err(e) => Report::Failed(Failure::Codec(format!("encoding the result: {e}"))),
        },
        Err(failure) => Report::Failed(failure),
    }
}

/// Calls `f`, turning a panic into a [`Failure`]. The caller holds a
/// [`CaptureGuard`] so that the panic hook records where the panic happened.
fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Failure> {
    let payload = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => return Ok(value),
        Err(payload) => payload,
    };
    let captured = take_captured();
    let message = match payload.downcast_ref::<&str>() {
        Some(s) => (*s).to_string(),
        None => match payload.downcast_ref::<String>() {
            Some(s) => s.clone(),
            None => "Box<dyn Any>".to_string(),
        },
    };
    // Dropping a panic payload can itself panic; keep that from unwinding further.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    let (location, backtrace) = captured.unwrap_or_default();
    Err(Failure::Panicked { message, location, backtrace })
}
