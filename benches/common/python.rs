//! Running the CPython side of a comparison: a script in `benches/` that prints
//! one JSON object with its samples.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::stats::{Plan, Stats, fmt_time};

/// What every script prints: `{"python": "3.11.7", "samples": [seconds, ...]}`
/// (more keys are allowed and ignored).
#[derive(serde::Deserialize)]
struct ScriptOutput {
    samples: Vec<f64>,
}

/// The interpreter the comparisons run against: `python3`, or `$MPROC_BENCH_PYTHON`.
pub struct Python {
    exe: String,
    pub version: String,
}

impl Python {
    pub fn find() -> Option<Python> {
        let exe = std::env::var("MPROC_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(&exe)
            .args(["-c", "import platform; print(platform.python_version())"])
            .stderr(Stdio::inherit())
            .output()
            .ok()?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !version.is_empty()).then_some(Python { exe, version })
    }

    /// Runs `benches/<script> <args> --warmup W --iterations N` and summarises the
    /// `"samples"` (seconds) it prints.
    ///
    /// Every script prints one JSON object on standard output:
    /// `{"python": "3.11.7", "samples": [seconds, ...]}` (more keys are allowed).
    pub fn measure(&self, label: &str, script: &str, args: &[&str], plan: Plan) -> Result<Stats, String> {
        let output = self.run(label, script, args, plan)?;
        let output: ScriptOutput = serde_json::from_value(output).map_err(|e| {
            eprintln!(" failed");
            format!("{script}: bad JSON ({e})")
        })?;
        let samples = output.samples;
        if samples.is_empty() {
            eprintln!(" no samples");
            return Err(format!("{script}: no samples in its output"));
        }
        let stats = Stats::from_samples(&samples);
        eprintln!(" median {} (n = {})", fmt_time(stats.median), stats.n);
        Ok(stats)
    }

    /// Runs `benches/<script> <args> --warmup W --iterations N` and returns the
    /// JSON object it prints, for scripts that report more than one list of
    /// samples. Prints the label, and not the end of its line: the caller does.
    pub fn run(&self, label: &str, script: &str, args: &[&str], plan: Plan) -> Result<serde_json::Value, String> {
        eprint!("  {label:<44}");
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "benches", script].iter().collect();
        let out = Command::new(&self.exe)
            .arg(&path)
            .args(args)
            .args(["--warmup", &plan.warmup.to_string(), "--iterations", &plan.iters.to_string()])
            // The scripts import `cpython_common` from their own folder, which this
            // would take off `sys.path`.
            .env_remove("PYTHONSAFEPATH")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.exe))?;
        if !out.status.success() {
            eprintln!(" failed");
            return Err(format!("{} {} exited with {}", self.exe, path.display(), out.status));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            eprintln!(" failed");
            format!("{script}: bad JSON ({e})")
        })
    }
}

/// The samples (seconds, or any figure) under `key` in a script's JSON object,
/// summarised; `None` if there are none.
pub fn samples(value: &serde_json::Value, key: &str) -> Option<Stats> {
    let s: Vec<f64> = value.get(key)?.as_array()?.iter().filter_map(|x| x.as_f64()).collect();
    (!s.is_empty()).then(|| Stats::from_samples(&s))
}
