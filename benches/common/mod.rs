//! What every workload family shares: timing and statistics, the CPython runner,
//! the report, the machine line.

pub mod machine;
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

    /// The CPython column for a workload: runs `benches/<script> <args>` (see
    /// [`Python::measure`]). `None`, with a note on stderr, if it cannot.
    pub fn cpython(&self, label: &str, script: &str, args: &[&str], plan: Plan) -> Option<Stats> {
        let python = self.python.as_ref()?;
        match python.measure(label, script, args, plan) {
            Ok(stats) => Some(stats),
            Err(e) => {
                eprintln!("  warning: {e}");
                None
            }
        }
    }

    /// The whole JSON object a CPython script prints, for scripts that report
    /// more than one list of samples (see [`Python::run`]). `None`, with a note on
    /// stderr, if it cannot run. The caller ends the progress line.
    pub fn cpython_json(&self, label: &str, script: &str, args: &[&str], plan: Plan) -> Option<serde_json::Value> {
        let python = self.python.as_ref()?;
        match python.run(label, script, args, plan) {
            Ok(value) => Some(value),
            Err(e) => {
                eprintln!("  warning: {e}");
                None
            }
        }
    }

    /// "CPython 3.11.7", for column headers.
    pub fn cpython_name(&self) -> String {
        self.python.as_ref().map(|p| format!("CPython {}", p.version)).unwrap_or_else(|| "CPython".into())
    }
}
