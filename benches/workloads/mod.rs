//! Workload families. Each is one function that measures mproc, CPython and the
//! raw floor side by side and returns its section of the report. To add one:
//! write `family.rs` with `pub fn run(bench: &Bench) -> Section` (plus its
//! CPython script `benches/cpython_family.py`, which imports the timing loop, the
//! command line and the JSON output from `benches/cpython_common.py`), and list it
//! in `FAMILIES`.

use crate::common::Bench;
use crate::common::report::Section;

pub mod ipc;
pub mod manager;
pub mod pool;
pub mod shared;
pub mod startup;

/// A family: the name that selects it on the command line, and the function that runs it.
pub type Family = (&'static str, fn(&Bench) -> Section);

/// Every family, in report order.
pub const FAMILIES: &[Family] = &[
    ("startup", startup::run),
    ("pool", pool::run),
    ("ipc", ipc::run),
    ("shared", shared::run),
    ("manager", manager::run),
];
