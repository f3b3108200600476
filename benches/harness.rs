//! mproc's benchmark harness: `cargo bench --bench harness` measures every
//! workload against CPython's `multiprocessing` and the raw floor, side by side
//! in one run, and writes `docs/benchmarks.md` (and the plots it links to).
//!
//! `cargo bench --bench harness -- [--quick] [FAMILY...]`: `--quick` runs a tenth
//! of the iterations; naming families (e.g. `startup`, `pool`) runs only those.
//! Either prints the report instead of writing `docs/benchmarks.md` and its
//! plots. Run without `--bench` (as `cargo test --all-targets` does), it only
//! checks that every workload runs, with three iterations each.

mod common;
mod workloads;

use std::path::PathBuf;

use common::machine::Machine;
use common::python::Python;
use common::report::Report;
use common::{Bench, Mode};

#[mproc::main]
fn main() {
    workloads::startup::exit_if_floor_child();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let mode = match (flag("--bench"), flag("--quick")) {
        (false, _) => Mode::Smoke,
        (true, true) => Mode::Quick,
        (true, false) => Mode::Full,
    };
    // Other flags are ignored.
    let names: Vec<&str> = args.iter().filter(|a| !a.starts_with('-')).map(String::as_str).collect();
    if let Some(unknown) = names.iter().find(|n| !workloads::FAMILIES.iter().any(|(f, _)| f == *n)) {
        let known: Vec<&str> = workloads::FAMILIES.iter().map(|(f, _)| *f).collect();
        eprintln!("unknown workload family `{unknown}`; known: {}", known.join(", "));
        std::process::exit(2);
    }

    let python = Python::find();
    if python.is_none() {
        eprintln!("warning: python3 not found: the CPython column will be empty");
    }
    let machine = Machine::probe(python.as_ref().map(|p| p.version.as_str()));
    eprintln!("{}", machine.line());
    let bench = Bench { mode, python };

    let started = std::time::Instant::now();
    let sections = workloads::FAMILIES
        .iter()
        .filter(|(name, _)| names.is_empty() || names.contains(name))
        .map(|(_, run)| run(&bench))
        .collect();
    let report = Report { machine, sections };
    let markdown = report.to_markdown();
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());

    match mode {
        Mode::Smoke => {
            eprintln!("smoke run only: `cargo bench --bench harness` measures and writes docs/benchmarks.md")
        }
        Mode::Full if names.is_empty() => {
            // The report, then the plots it links to.
            let plots = report.sections.iter().flat_map(|s| &s.files).map(|(n, c)| (n.as_str(), c.as_str()));
            for (name, contents) in std::iter::once(("benchmarks.md", markdown.as_str())).chain(plots) {
                let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "docs", name].iter().collect();
                std::fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
                eprintln!("wrote {}", path.display());
            }
        }
        _ => println!("{markdown}"),
    }
}
