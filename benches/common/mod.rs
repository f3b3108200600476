//! What every workload family shares: timing and statistics, the CPython runner,
//! the report and its plots, the raw floors' child process, an mproc child
//! serving commands, the machine line.

pub mod child;
pub mod floor;
pub mod machine;
pub mod plot;
pub mod python;
pub mod report;
pub mod stats;

use python::Python;
use stats::{Plan, Stats};

/// How many iterations to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `cargo bench --bench harness`: every iteration.
    Full,
    /// `-- --quick`: a tenth of them, for a first look.
    Quick,
    /// Run without `--bench` (as `cargo test --all-targets` does): three of each,
    /// just to check that every workload still runs.
    Smoke,
}

/// The run's settings and the interpreter to compare against, handed to each
/// workload family.
pub struct Bench {
    pub mode: Mode,
    pub python: Option<Python>,
}

impl Bench {
    /// `iters` timed runs after `warmup` untimed ones (fewer outside `Mode::Full`).
    pub fn plan(&self, warmup: usize, iters: usize) -> Plan {
        match self.mode {
            Mode::Full => Plan { warmup, iters },
            Mode::Quick => Plan { warmup: warmup.min(3), iters: (iters / 10).max(5) },
            Mode::Smoke => Plan { warmup: 1, iters: 3 },
        }
    }

    /// [`Bench::plan`], but never more runs than a full run makes (a quick run's
    /// minimum of 5 would be more than the slowest workloads get).
    pub fn capped_plan(&self, warmup: usize, iters: usize) -> Plan {
        let plan = self.plan(warmup, iters);
        Plan { warmup: plan.warmup.min(warmup), iters: plan.iters.min(iters) }
    }

    /// The CPython column for a workload: runs `benches/<script> <args>` (see
    /// [`Python::measure`]). `None`, with a note on stderr, if it cannot.
    pub fn cpython(&self, label: &str, script: &str, args: &[&str], plan: Plan) -> Option<Stats> {
        warn(self.python.as_ref()?.measure(label, script, args, plan))
    }

    /// The whole JSON object a CPython script prints, for scripts that report
    /// more than one list of samples (see [`Python::run`]). `None`, with a note on
    /// stderr, if it cannot run. The caller ends the progress line.
    pub fn cpython_json(&self, label: &str, script: &str, args: &[&str], plan: Plan) -> Option<serde_json::Value> {
        warn(self.python.as_ref()?.run(label, script, args, plan))
    }

    /// Ends the progress line a [`cpython_json`](Self::cpython_json) call left
    /// open: `ok` when every list of samples the caller needed was there.
    pub fn end_cpython_json(&self, ok: bool, plan: Plan) {
        match ok {
            true => eprintln!(" done (n = {})", plan.iters),
            false => eprintln!(" bad output: some samples missing"),
        }
    }

    /// "CPython 3.11.7", for column headers.
    pub fn cpython_name(&self) -> String {
        self.python.as_ref().map(|p| format!("CPython {}", p.version)).unwrap_or_else(|| "CPython".into())
    }
}

/// The value, or `None` with the error as a warning on stderr.
fn warn<T>(result: Result<T, String>) -> Option<T> {
    result.map_err(|e| eprintln!("  warning: {e}")).ok()
}
