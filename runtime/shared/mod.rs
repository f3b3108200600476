//! Shared values and arrays: Python's `multiprocessing.Value`, `Array`,
//! `RawValue` and `RawArray`.
//!
//! Each is a memory file (memfd) mapped by every process that has the handle,
//! holding a small header and the elements (`segment.rs`). The element type is
//! plain old data ([`Pod`], checked at compile time), so any bytes are a valid
//! value: a process killed halfway through a write, or a reader racing a writer
//! without a lock, can leave a value half-updated but never an invalid one.
//!
//! - [`Value`] and [`Array`] have a robust, process-shared lock in the header.
//!   Every access to their elements holds it; the guard of
//!   [`Value::lock`]/[`Array::lock`] is a `&mut T`/`&mut [T]` on the shared
//!   memory itself, so bulk work is a plain loop.
//! - [`RawValue`] and [`RawArray`] have no lock. Every access to their elements
//!   is atomic, one machine word at a time (`words.rs`); integers
//!   ([`AtomicPod`]) also have `fetch_add` and friends. See `raw.rs` for why
//!   that, and not volatile or plain accesses, keeps them sound.
//!
//! All four travel to other processes as task arguments, like every handle
//! (`handle.rs`).

mod array;
mod pod;
mod raw;
mod segment;
mod value;
mod words;

pub use array::{Array, ArrayGuard};
pub use pod::{AtomicPod, Pod};
pub use raw::{RawArray, RawValue};
pub use value::{Value, ValueGuard};
