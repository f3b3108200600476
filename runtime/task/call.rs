//! Calling a task: typing on the parent side, decoding and running on the child side.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

use super::TaskValue;
use super::panic::{CaptureGuard, take_captured};
use crate::codec;

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

/// What a child sends back about the work it ran.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// The encoded return value.
    Returned(Vec<u8>),
    /// The work panicked.
    Panicked { message: String, location: Option<String>, backtrace: Option<String> },
    /// Arguments or result could not be encoded or decoded.
    Codec(String),
    /// The child does not know the task (it was not built from the same binary).
    UnknownTask(String),
}

impl Report {
    /// The child's exit code after sending this report (Python's: 1 after an exception).
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Report::Returned(_) => 0,
            _ => 1,
        }
    }
}

/// The outcome of invoking a task in this process, ready to be sent to the parent.
#[doc(hidden)]
#[derive(Debug)]
pub struct Invoked(pub(crate) Report);

/// Decodes `input` as the argument tuple, calls `f` under `catch_unwind` and
/// encodes what it returns. Used by the code `#[mproc::task]` generates.
#[doc(hidden)]
pub fn invoke<A: TaskValue, R: TaskValue>(input: &[u8], f: impl FnOnce(A) -> R) -> Invoked {
    let args: A = match codec::decode(input) {
        Ok(a) => a,
        Err(e) => return Invoked(Report::Codec(format!("decoding the arguments: {e}"))),
    };
    Invoked(run_captured(move || f(args)))
}

/// Runs `f`, catching a panic with its message, location and (when asked for by
/// `RUST_BACKTRACE`) backtrace, and encodes the result.
pub(crate) fn run_captured<R: Serialize>(f: impl FnOnce() -> R) -> Report {
    let guard = CaptureGuard::enter();
    let outcome = catch_unwind(AssertUnwindSafe(f));
    drop(guard);
    match outcome {
        Ok(value) => match codec::encode(&value) {
            Ok(bytes) => Report::Returned(bytes),
            Err(e) => Report::Codec(format!("encoding the result: {e}")),
        },
        Err(payload) => {
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
            Report::Panicked { message, location, backtrace }
        }
    }
}
