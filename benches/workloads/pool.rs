//! Process pools: `Pool` and `Executor` against CPython's `multiprocessing.Pool`
//! and `ProcessPoolExecutor` (2 workers, fork unless named) and, where a thread
//! pool does the same job, rayon with 2 threads. Floor for the round trips: a
//! socketpair ping-pong between two processes, by hand with libc.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mproc::{Executor, Pool, StartMethod};
use rayon::prelude::*;

use crate::common::floor::SocketChild;
use crate::common::plot::{LogLogChart, Series, XTicks};
use crate::common::python::samples;
use crate::common::report::{Section, Table, Target};
use crate::common::stats::{Plan, Stats, fmt_int, fmt_ratio, fmt_time, measure, measure_interleaved};
use crate::common::{Bench, Mode};

const SCRIPT: &str = "cpython_pool.py";
const WORKERS: usize = 2;

/// The trivial function every overhead workload maps (Python: `x * 2`).
#[mproc::task]
fn double(x: u64) -> u64 {
    x * 2
}

/// The CPU-bound item: `iters` rounds of integer arithmetic, each depending on the last.
#[mproc::task]
fn spin(iters: u64) -> u64 {
    spin_work(iters)
}

fn spin_work(iters: u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..black_box(iters) {
        x = (x ^ i).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(17);
    }
    x
}

/// The loop count for which [`spin_work`] takes about 1 ms on this machine.
fn calibrate_spin() -> u64 {
    let probe = 200_000;
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            black_box(spin_work(probe));
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    ((probe as f64) * 1e-3 / times[3]).round().max(1.0) as u64
}

fn fork_pool() -> Pool {
    Pool::builder().processes(WORKERS).start_method(StartMethod::Fork).build().expect("mproc: pool failed to start")
}

/// `map(double, 0..n)` with the given chunk size (`None`: the default), checked.
fn mproc_map(pool: &Pool, n: u64, chunksize: Option<usize>) {
    let out = match chunksize {
        None => pool.map(double, 0..n),
        Some(c) => pool.map_chunked(double, 0..n, c),
    }
    .expect("mproc: map failed");
    assert_eq!(out.len() as u64, n);
    assert_eq!(out.last().copied(), n.checked_sub(1).map(|x| x * 2));
}

fn rayon_map(threads: &rayon::ThreadPool, n: u64) {
    let out: Vec<u64> = threads.install(|| (0..n).into_par_iter().map(|x| black_box(x) * 2).collect());
    assert_eq!(out.len() as u64, n);
}

/// What one table row shows: mproc's figure, CPython's and the rayon reference.
struct Row {
    what: String,
    check: &'static str,
    ours: Stats,
    cpython: Option<Stats>,
    rayon: Option<Stats>,
    target: f64,
    /// Per run to per shown unit (1 / items), and whether the row is a rate.
    per_item: Option<f64>,
    rate: bool,
    /// Timed runs: mproc's, CPython's.
    runs: (usize, usize),
}

impl Row {
    /// A row timed per run, without rayon; `plans`: mproc's and CPython's.
    fn new(
        what: impl Into<String>,
        check: &'static str,
        ours: Stats,
        cpython: Option<Stats>,
        target: f64,
        plans: (Plan, Plan),
    ) -> Row {
        let runs = (plans.0.iters, plans.1.iters);
        Row { what: what.into(), check, ours, cpython, rayon: None, target, per_item: None, rate: false, runs }
    }

    /// Shown per item, for runs of `n` items.
    fn per_item(self, n: u64) -> Row {
        Row { per_item: Some(1.0 / n as f64), ..self }
    }

    /// Shown as items per second.
    fn rate(self) -> Row {
        Row { rate: true, ..self }
    }

    fn rayon(self, rayon: Stats) -> Row {
        Row { rayon: Some(rayon), ..self }
    }

    fn cell(&self, s: &Stats) -> String {
        match (self.per_item, self.rate) {
            (Some(f), true) => rate_spread(s, 1.0 / f),
            (Some(f), false) => s.scaled(f).spread().replacen(" (", "/item (", 1),
            (None, _) => s.spread(),
        }
    }
}

/// "412 k items/s (380–430)" for runs of `items` items each.
fn rate_spread(s: &Stats, items: f64) -> String {
    let k = |secs: f64| items / secs / 1e3;
    format!("{:.1} k items/s ({:.1}–{:.1})", k(s.median), k(s.p90), k(s.p10))
}

/// One size of the scaling workload: time per item, and the timed runs (mproc / CPython).
struct ScalePoint {
    n: u64,
    mproc: Stats,
    cpython: Option<Stats>,
    rayon: Stats,
    runs: (usize, usize),
}

/// Item counts for the scaling plot: 10³ … 10⁷ (10⁴ at most in a smoke run).
fn scaling_sizes(bench: &Bench) -> Vec<u64> {
    let top = if bench.mode == Mode::Smoke { 4 } else { 7 };
    (3..=top).map(|e| 10u64.pow(e)).collect()
}

/// `n` items, or a tenth of them in a smoke run (which only checks that the workload runs).
fn sized(bench: &Bench, n: u64) -> u64 {
    if bench.mode == Mode::Smoke { n / 10 } else { n }
}

pub fn run(bench: &Bench) -> Section {
    eprintln!("process pools");
    // Memory first: a forked worker's PSS counts a share of its parent's pages, so it
    // is measured before the other workloads grow this process's heap.
    let memory = memory(bench);
    let threads = rayon::ThreadPoolBuilder::new().num_threads(WORKERS).build().expect("rayon: no thread pool");
    let mut rows = lifecycle(bench);
    let pool = fork_pool();
    rows.extend(maps(bench, &pool, &threads));
    let (trip_rows, trips) = round_trips(bench, &pool, &threads);
    rows.extend(trip_rows);
    rows.push(imap_unordered(bench, &pool));
    let cpu = cpu_bound(bench, &pool, &threads);
    let scaling = scaling(bench, &pool, &threads);
    pool.close();
    pool.join().expect("mproc: join failed");
    drop(threads);

    let cp = bench.cpython_name();
    let mut section = Section::new("Process pools");
    report_rows(&mut section, &rows, &cp);
    report_round_trips(&mut section, &trips);
    report_cpu_bound(&mut section, &cpu, &cp);
    report_memory(&mut section, &memory);
    report_scaling(&mut section, &scaling, &cp);
    section
}

/// Pool(2) create + map 2 items + close/join, fork and spawn.
fn lifecycle(bench: &Bench) -> Vec<Row> {
    let methods = [
        (StartMethod::Fork, "fork", (20, 300), (10, 100), 10.0, "Pool(2) lifecycle, fork vs CPython"),
        (StartMethod::Spawn, "spawn", (5, 60), (2, 15), 15.0, "Pool(2) lifecycle, spawn vs CPython"),
    ];
    let mut rows = Vec::new();
    for (method, name, ours, theirs, target, check) in methods {
        let (ours_plan, theirs_plan) = (bench.plan(ours.0, ours.1), bench.plan(theirs.0, theirs.1));
        let ours = measure(&format!("mproc Pool(2) lifecycle, {name}"), ours_plan, || {
            let pool = Pool::builder().processes(WORKERS).start_method(method).build().expect("mproc: pool failed");
            assert_eq!(pool.map(double, 0..2u64).expect("mproc: map failed"), vec![0, 2]);
            pool.close();
            pool.join().expect("mproc: join failed");
        });
        let cpython = bench.cpython(
            &format!("CPython Pool(2) lifecycle, {name}"),
            SCRIPT,
            &["--workload", "lifecycle", "--method", name],
            theirs_plan,
        );
        let what = format!("Pool(2) create + map 2 items + close/join, {name}");
        rows.push(Row::new(what, check, ours, cpython, target, (ours_plan, theirs_plan)));
    }
    rows
}

/// `map` over 200 000 ints with default chunking (rayon beside it), and over
/// 20 000 with chunksize 1.
fn maps(bench: &Bench, pool: &Pool, threads: &rayon::ThreadPool) -> [Row; 2] {
    let n = sized(bench, 200_000);
    let (count, label) = (n.to_string(), fmt_int(n));
    let plans = (bench.plan(3, 30), bench.plan(3, 20));
    let labels = [format!("mproc map {label}"), format!("rayon map {label}")];
    let both = measure_interleaved(&[&labels[0], &labels[1]], plans.0, |i| match i {
        0 => mproc_map(pool, n, None),
        _ => rayon_map(threads, n),
    });
    let [ours, rayon] = <[Stats; 2]>::try_from(both).expect("two variants");
    let cpython =
        bench.cpython(&format!("CPython map {label}"), SCRIPT, &["--workload", "map", "--items", &count], plans.1);
    let what = format!("map trivial fn over {label} ints, default chunking");
    let default =
        Row::new(what, "map, default chunking, vs CPython", ours, cpython, 5.0, plans).per_item(n).rayon(rayon);

    let n = sized(bench, 20_000);
    let (count, label) = (n.to_string(), fmt_int(n));
    let plans = (bench.plan(1, 10), bench.plan(1, 5));
    let ours = measure(&format!("mproc map {label}, chunksize 1"), plans.0, || mproc_map(pool, n, Some(1)));
    let cpython = bench.cpython(
        &format!("CPython map {label}, chunksize 1"),
        SCRIPT,
        &["--workload", "map", "--items", &count, "--chunksize", "1"],
        plans.1,
    );
    let what = format!("map trivial fn, chunksize 1, {label} items");
    let chunksize_1 = Row::new(what, "map chunksize 1 vs CPython", ours, cpython, 10.0, plans).per_item(n);
    [default, chunksize_1]
}

/// The round trips, and the floor they are held to.
struct Trips {
    floor: Stats,
    /// The same ping-pong driven through a relay thread, as a pool's engine thread does.
    relayed: Stats,
    apply: Stats,
    submit: Stats,
}

/// `apply_async` → `get` and `Executor.submit` → `result`, one call at a time,
/// interleaved with the raw ping-pong and a rayon `install` round trip.
fn round_trips(bench: &Bench, pool: &Pool, threads: &rayon::ThreadPool) -> ([Row; 2], Trips) {
    let executor = Executor::builder()
        .max_workers(WORKERS)
        .start_method(StartMethod::Fork)
        .build()
        .expect("mproc: executor failed to start");
    let ping = PingPong::new();
    let mut relay = Relay::new();
    let plans = (bench.plan(300, 3000), bench.plan(100, 1000));
    let labels = ["socketpair ping-pong", "ping-pong via relay thread", "mproc apply_async", "mproc submit"];
    let trips = measure_interleaved(&labels, plans.0, |i| match i {
        0 => ping.round_trip(),
        1 => relay.round_trip(),
        2 => assert_eq!(pool.apply_async(double, (1,)).get().expect("mproc: apply failed"), 2),
        _ => assert_eq!(executor.submit(double, (1,)).result().expect("mproc: submit failed"), 2),
    });
    drop((ping, relay));
    executor.shutdown(true, false);
    // Apart: rayon's idle threads spin for a while after each job, which would
    // take a core from the process round trips interleaved with it.
    let rayon = measure("rayon install", plans.0, || assert_eq!(threads.install(|| black_box(1u64) * 2), 2));
    let [floor, relayed, apply, submit] = <[Stats; 4]>::try_from(trips).expect("four variants");
    let cpython_apply = bench.cpython("CPython apply_async → get", SCRIPT, &["--workload", "apply"], plans.1);
    let cpython_submit = bench.cpython("CPython submit → result", SCRIPT, &["--workload", "submit"], plans.1);
    let rows = [
        Row::new(
            "`apply_async` → `get` round trip",
            "apply_async round trip vs CPython",
            apply.clone(),
            cpython_apply,
            10.0,
            plans,
        )
        .rayon(rayon.clone()),
        Row::new(
            "`Executor.submit` → `result` round trip",
            "Executor.submit round trip vs CPython",
            submit.clone(),
            cpython_submit,
            10.0,
            plans,
        )
        .rayon(rayon),
    ];
    (rows, Trips { floor, relayed, apply, submit })
}

/// `imap_unordered` of the trivial function with chunksize 1, consumed to the end.
fn imap_unordered(bench: &Bench, pool: &Pool) -> Row {
    let n = sized(bench, 10_000);
    let (count, label) = (n.to_string(), fmt_int(n));
    let plans = (bench.plan(1, 10), bench.plan(1, 5));
    let ours = measure(&format!("mproc imap_unordered {label}, chunksize 1"), plans.0, || {
        let mut total = 0u64;
        for r in pool.imap_unordered_chunked(double, 0..n, 1) {
            total += r.expect("mproc: imap_unordered failed");
        }
        assert_eq!(total, n * (n - 1));
    });
    let cpython = bench.cpython(
        &format!("CPython imap_unordered {label}, chunksize 1"),
        SCRIPT,
        &["--workload", "imap_unordered", "--items", &count],
        plans.1,
    );
    let what = format!("`imap_unordered` trivial fn, chunksize 1 ({label} items)");
    Row::new(what, "imap_unordered chunksize 1 vs CPython", ours, cpython, 10.0, plans).per_item(n).rate()
}

/// The CPU-bound map: wall times serially, with mproc, with rayon, and CPython's own pair.
struct Cpu {
    items: usize,
    loop_n: u64,
    serial: Stats,
    mproc: Stats,
    rayon: Stats,
    /// CPython's serial and `Pool(2).map` walls, and its calibrated loop count.
    cpython: Option<(Stats, Stats, u64)>,
    runs: (usize, usize),
}

/// 400 items of a ~1 ms integer loop: serially, with `Pool(2).map` and with rayon,
/// interleaved run by run; CPython does the same with its own ~1 ms loop.
fn cpu_bound(bench: &Bench, pool: &Pool, threads: &rayon::ThreadPool) -> Cpu {
    let loop_n = calibrate_spin();
    let items = vec![loop_n; if bench.mode == Mode::Smoke { 40 } else { 400 }];
    let plans = (bench.plan(1, 6), bench.plan(1, 5));
    let expected: Vec<u64> = items.iter().map(|&k| spin_work(k)).collect();
    let walls = measure_interleaved(&["serial (Rust)", "mproc map", "rayon par_iter"], plans.0, |i| match i {
        0 => assert_eq!(items.iter().map(|&k| spin_work(k)).collect::<Vec<_>>(), expected),
        1 => assert_eq!(pool.map(spin, items.iter().copied()).expect("mproc: map failed"), expected),
        _ => assert_eq!(threads.install(|| items.par_iter().map(|&k| spin_work(k)).collect::<Vec<_>>()), expected),
    });
    let [serial, mproc, rayon] = <[Stats; 3]>::try_from(walls).expect("three variants");
    let count = items.len().to_string();
    let cpython = bench
        .cpython_json("CPython serial | Pool(2).map", SCRIPT, &["--workload", "cpu", "--items", &count], plans.1)
        .and_then(|v| {
            let (Some(serial), Some(pool)) = (samples(&v, "serial"), samples(&v, "samples")) else {
                eprintln!(" no serial or pool samples");
                return None;
            };
            eprintln!(" median {} | {} (n = {})", fmt_time(serial.median), fmt_time(pool.median), pool.n);
            Some((serial, pool, v.get("loop_n").and_then(|n| n.as_u64()).unwrap_or(0)))
        });
    Cpu { items: items.len(), loop_n, serial, mproc, rayon, cpython, runs: (plans.0.iters, plans.1.iters) }
}

/// Idle worker PSS: mproc fork and forkserver, CPython fork and spawn.
struct Memory {
    /// Name, PSS per worker in MiB, whether it is held to the target.
    rows: Vec<(String, Option<Stats>, bool)>,
    /// This process's RSS when its fork pools were measured.
    parent_rss: Option<f64>,
    pools: (usize, usize),
}

fn memory(bench: &Bench) -> Memory {
    let cp = bench.cpython_name();
    let parent_rss = rss_mib("self");
    let pools = if bench.mode == Mode::Full { (5, 3) } else { (2, 1) };
    let mib = |s: &Option<Stats>| s.as_ref().map(|s| format!("{:.2} MiB", s.median)).unwrap_or_else(|| "n/a".into());
    let mut rows = Vec::new();
    for (method, name) in [(StartMethod::Fork, "fork"), (StartMethod::ForkServer, "forkserver")] {
        eprint!("  {:<44}", format!("mproc idle worker PSS, {name}"));
        let pss: Vec<f64> = (0..pools.0).flat_map(|_| idle_worker_pss(method)).collect();
        let stats = (!pss.is_empty()).then(|| Stats::from_samples(&pss));
        eprintln!(" median {}", mib(&stats));
        rows.push((format!("mproc, {name}"), stats, true));
    }
    for name in ["fork", "spawn"] {
        let args = ["--workload", "memory", "--method", name];
        let plan = Plan { warmup: 0, iters: pools.1 };
        let stats =
            bench.cpython_json(&format!("CPython idle worker PSS, {name}"), SCRIPT, &args, plan).and_then(|v| {
                let stats = samples(&v, "pss_kib").map(|s| s.scaled(1.0 / 1024.0));
                eprintln!(" median {}", mib(&stats));
                stats
            });
        rows.push((format!("{cp}, {name}"), stats, false));
    }
    Memory { rows, parent_rss, pools }
}

/// `map` overhead per item from 10³ to 10⁷ items, with rayon beside mproc.
fn scaling(bench: &Bench, pool: &Pool, threads: &rayon::ThreadPool) -> Vec<ScalePoint> {
    let mut points = Vec::new();
    for n in scaling_sizes(bench) {
        let (ours, theirs) = match n.ilog10() {
            ..=3 => ((20, 300), (5, 50)),
            4 => ((10, 100), (3, 30)),
            5 => ((3, 30), (2, 10)),
            6 => ((1, 10), (1, 5)),
            _ => ((1, 3), (1, 2)),
        };
        let (plan_ours, plan_theirs) = (bench.capped_plan(ours.0, ours.1), bench.capped_plan(theirs.0, theirs.1));
        let label = fmt_count(n);
        let labels = [format!("mproc map {label}"), format!("rayon map {label}")];
        let both = measure_interleaved(&[&labels[0], &labels[1]], plan_ours, |i| match i {
            0 => mproc_map(pool, n, None),
            _ => rayon_map(threads, n),
        });
        let [ours, rayon] = <[Stats; 2]>::try_from(both).expect("two variants");
        let count = n.to_string();
        let args = ["--workload", "map", "--items", &count];
        let theirs = bench.cpython(&format!("CPython map {label}"), SCRIPT, &args, plan_theirs);
        let per = 1.0 / n as f64;
        points.push(ScalePoint {
            n,
            mproc: ours.scaled(per),
            cpython: theirs.map(|t| t.scaled(per)),
            rayon: rayon.scaled(per),
            runs: (plan_ours.iters, plan_theirs.iters),
        });
    }
    points
}

fn report_rows(section: &mut Section, rows: &[Row], cp: &str) {
    section.text(format!(
        "`mproc::Pool` / `mproc::Executor` with 2 workers against CPython's `multiprocessing.Pool(2)` / \
         `concurrent.futures.ProcessPoolExecutor(2)` on the same workload (`benches/{SCRIPT}`), fork unless \
         named, pools started before the timing unless the row times the start; the trivial function is \
         `x * 2` on integers. rayon (a thread pool of 2 threads, no process boundary) is shown where a thread \
         pool does the same job, as a reference without target (its `install` round trip is timed on its own, \
         after the process round trips: its idle threads spin for a while after each job and would take a \
         core from them). × faster is CPython's median over mproc's (for a rate, mproc's over CPython's). Where one run takes long, rows get fewer runs than the \
         startup section (the last column: mproc / CPython)."
    ));
    let header = ["workload", "mproc", cp, "× faster", "target", "met", "rayon (2 threads)", "runs"];
    let mut table = Table::new(&header);
    for row in rows {
        let ratio = row.cpython.as_ref().map(|t| t.median / row.ours.median);
        let [r, target, met] = section.check(row.check, ratio, Target::AtLeast(row.target));
        let theirs = row.cpython.as_ref().map(|s| row.cell(s)).unwrap_or_else(|| "not measured".into());
        let rayon = row.rayon.as_ref().map(|s| row.cell(s)).unwrap_or_else(|| "—".into());
        let runs = format!("{} / {}", row.runs.0, row.runs.1);
        table.row(vec![row.what.clone(), row.cell(&row.ours), theirs, r, target, met, rayon, runs]);
    }
    section.table(table);
}

fn report_round_trips(section: &mut Section, trips: &Trips) {
    section.text(
        "Round-trip floor, interleaved round by round with the mproc calls it bounds: two processes \
         ping-pong a 32-byte message over a Unix socketpair (`write` then blocking `read`, by hand with \
         libc). An mproc call also hands off to the pool's engine thread and back, so beside it, as a \
         reference without target: the same ping-pong driven by a relay thread (the caller writes an \
         eventfd, the relay thread does the ping-pong and wakes the caller through a mutex and condition \
         variable) — four wake-ups per round trip instead of two.",
    );
    let header = [
        "mproc call",
        "mproc",
        "socketpair ping-pong",
        "mproc ÷ floor",
        "target",
        "met",
        "via relay thread",
        "mproc ÷ relay",
    ];
    let mut table = Table::new(&header);
    for (what, check, s) in [
        ("`apply_async` → `get`", "apply_async round trip vs raw ping-pong", &trips.apply),
        ("`Executor.submit` → `result`", "Executor.submit round trip vs raw ping-pong", &trips.submit),
    ] {
        let [r, target, met] = section.check(check, Some(s.median / trips.floor.median), Target::AtMost(3.0));
        let relayed = fmt_ratio(s.median / trips.relayed.median);
        table.row(vec![what.into(), s.spread(), trips.floor.spread(), r, target, met, trips.relayed.spread(), relayed]);
    }
    section.table(table);
}

fn report_cpu_bound(section: &mut Section, cpu: &Cpu, cp: &str) {
    section.text(format!(
        "CPU-bound map: {} items, each a fixed-iteration integer loop calibrated at the start of the run to \
         about 1 ms ({} rounds in Rust{}), mapped with default chunking over 2 workers; serial is the \
         same loop in the calling process, in the same language, interleaved run by run with the map. Wall \
         times per map; runs: mproc and rayon {}, CPython {}.",
        cpu.items,
        cpu.loop_n,
        match &cpu.cpython {
            Some((_, _, n)) if *n > 0 => format!("; CPython calibrates its own loop: {n} rounds"),
            _ => String::new(),
        },
        cpu.runs.0,
        cpu.runs.1,
    ));
    let mut table = Table::new(&["runner", "serial", "2 workers", "speedup", "target", "met"]);
    let speedup = cpu.serial.median / cpu.mproc.median;
    let [r, target, met] = section.check("CPU-bound map speedup over serial", Some(speedup), Target::AtLeast(1.9));
    table.row(vec!["mproc `Pool(2).map`".into(), cpu.serial.spread(), cpu.mproc.spread(), r, target, met]);
    let reference = |name: String, serial: &Stats, parallel: &Stats| {
        let speedup = fmt_ratio(serial.median / parallel.median);
        vec![name, serial.spread(), parallel.spread(), speedup, "—".into(), "—".into()]
    };
    table.row(reference("rayon `par_iter` (2 threads)".into(), &cpu.serial, &cpu.rayon));
    match &cpu.cpython {
        Some((serial, parallel, _)) => table.row(reference(format!("{cp} `Pool(2).map`"), serial, parallel)),
        None => table.row(vec![
            format!("{cp} `Pool(2).map`"),
            "not measured".into(),
            "—".into(),
            "—".into(),
            "—".into(),
            "—".into(),
        ]),
    }
    section.table(table);
    let mut vs_rayon = Table::new(&["", "mproc wall", "rayon wall", "mproc ÷ rayon", "target", "met"]);
    let ratio = cpu.mproc.median / cpu.rayon.median;
    let [r, target, met] = section.check("CPU-bound map wall vs rayon", Some(ratio), Target::AtMost(1.1));
    vs_rayon.row(vec!["CPU-bound map, 2 workers".into(), cpu.mproc.spread(), cpu.rayon.spread(), r, target, met]);
    section.table(vs_rayon);
}

fn report_memory(section: &mut Section, memory: &Memory) {
    section.text(format!(
        "Memory per idle pool worker: PSS (`Pss:` of `/proc/<pid>/smaps_rollup`) of each worker of a `Pool(2)` \
         that has run 100 calls with chunksize 1 and then sat idle for 100 ms; worker pids from \
         `pool.insights().workers[i].pid` and, in Python, `multiprocessing.active_children()`. Median over \
         every worker of {} pools (mproc) / {} pools (CPython), p10–p90 in brackets. A forked worker shares \
         its pages with its parent, so its PSS counts a share of them and grows with the parent: this section \
         measures it first, while this process is small (RSS {}).",
        memory.pools.0,
        memory.pools.1,
        memory.parent_rss.map(|m| format!("{m:.1} MiB")).unwrap_or_else(|| "unknown".into()),
    ));
    let mut table = Table::new(&["pool", "PSS per worker", "target", "met"]);
    for (name, stats, checked) in &memory.rows {
        let shown = stats
            .as_ref()
            .map(|s| format!("{:.2} MiB ({:.2}–{:.2})", s.median, s.p10, s.p90))
            .unwrap_or_else(|| "not measured".into());
        if *checked {
            let [_, target, met] = section.check(
                format!("idle worker PSS, {name}"),
                stats.as_ref().map(|s| s.median),
                Target::Limit { max: 2.0, unit: "MiB" },
            );
            table.row(vec![name.clone(), shown, target, met]);
        } else {
            table.row(vec![name.clone(), shown, "—".into(), "—".into()]);
        }
    }
    section.table(table);
}

fn report_scaling(section: &mut Section, scaling: &[ScalePoint], cp: &str) {
    section.text(
        "Scaling: `map` of the trivial function over n items with default chunking (n / 8 per chunk), time \
         per item: mproc and CPython at every size, rayon's `par_iter().map().collect()` as the no-IPC \
         reference; the same pool throughout. Plot: [pool_scaling.svg](pool_scaling.svg).",
    );
    let cp_item = format!("{cp} / item");
    let mut table =
        Table::new(&["items", "mproc / item", &cp_item, "× faster", "rayon / item", "runs (mproc / CPython)"]);
    for ScalePoint { n, mproc: ours, cpython: theirs, rayon, runs } in scaling {
        table.row(vec![
            fmt_count(*n),
            ours.spread(),
            theirs.as_ref().map(Stats::spread).unwrap_or_else(|| "not measured".into()),
            theirs.as_ref().map(|t| fmt_ratio(t.median / ours.median)).unwrap_or_else(|| "—".into()),
            rayon.spread(),
            format!("{} / {}", runs.0, runs.1),
        ]);
    }
    section.table(table);
    section.text("![map overhead per item against n](pool_scaling.svg)");
    section.attach("pool_scaling.svg", scaling_svg(scaling, cp));
}

/// "10³", "10⁵" … for powers of ten, else the number.
fn fmt_count(n: u64) -> String {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let e = (n as f64).log10().round() as u32;
    if 10u64.checked_pow(e) == Some(n) && e < 10 { format!("10{}", SUP[e as usize]) } else { n.to_string() }
}

/// PSS (MiB) of each worker of a fresh `Pool(2)` that ran 100 calls and then sat idle.
fn idle_worker_pss(method: StartMethod) -> Vec<f64> {
    let pool = Pool::builder().processes(WORKERS).start_method(method).build().expect("mproc: pool failed");
    pool.map_chunked(double, 0..100u64, 1).expect("mproc: map failed");
    std::thread::sleep(Duration::from_millis(100));
    let pss: Vec<f64> = pool.insights().workers.iter().filter_map(|w| pss_kib(w.pid)).map(|k| k / 1024.0).collect();
    pool.close();
    pool.join().expect("mproc: join failed");
    pss
}

fn pss_kib(pid: i32) -> Option<f64> {
    rollup_kib(&pid.to_string(), "Pss:")
}

/// Resident set size of `/proc/<pid>` in MiB (`"self"`: this process).
fn rss_mib(pid: &str) -> Option<f64> {
    rollup_kib(pid, "Rss:").map(|k| k / 1024.0)
}

/// A `kB` figure from `/proc/<pid>/smaps_rollup`.
fn rollup_kib(pid: &str, key: &str) -> Option<f64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The round-trip floor: a child process that echoes every message back over a
/// Unix stream socketpair; the parent writes one and reads the answer.
struct PingPong {
    child: SocketChild,
}

const PING: usize = 32;

impl PingPong {
    fn new() -> PingPong {
        // SAFETY: the child only makes system calls (read, write) on a stack buffer.
        let child = unsafe {
            SocketChild::start(|fd| {
                let mut buf = [0u8; PING];
                loop {
                    let n = libc::read(fd, buf.as_mut_ptr().cast(), PING);
                    if n <= 0 || libc::write(fd, buf.as_ptr().cast(), n as usize) != n {
                        return;
                    }
                }
            })
        };
        PingPong { child }
    }

    fn round_trip(&self) {
        let (fd, msg) = (self.child.fd, [7u8; PING]);
        let mut got = [0u8; PING];
        // SAFETY: valid buffers of PING bytes on our own socket.
        unsafe {
            assert_eq!(libc::write(fd, msg.as_ptr().cast(), PING), PING as isize);
            let mut read = 0;
            while read < PING {
                let n = libc::read(fd, got[read..].as_mut_ptr().cast(), PING - read);
                assert!(n > 0, "ping-pong read failed");
                read += n as usize;
            }
        }
        assert_eq!(got, msg);
    }
}

/// The ping-pong driven through a relay thread, the way a pool's engine thread
/// stands between the caller and a worker: the caller bumps an eventfd, the relay
/// thread does one [`PingPong`] round trip and wakes the caller with a condvar.
struct Relay {
    efd: libc::c_int,
    sent: u64,
    done: Arc<(Mutex<u64>, Condvar)>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn new() -> Relay {
        // SAFETY: eventfd takes an initial value and flags, and returns a new descriptor or -1.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(efd >= 0, "eventfd failed: {}", std::io::Error::last_os_error());
        let done = Arc::new((Mutex::new(0u64), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (done.clone(), stop.clone());
        let ping = PingPong::new();
        let thread = std::thread::spawn(move || {
            loop {
                let mut count = 0u64;
                // SAFETY: reads 8 bytes into a valid u64 from our eventfd (blocking).
                let n = unsafe { libc::read(efd, (&mut count as *mut u64).cast(), 8) };
                assert_eq!(n, 8, "eventfd read failed");
                if s.load(Ordering::Acquire) {
                    return;
                }
                ping.round_trip();
                *d.0.lock().unwrap() += 1;
                d.1.notify_all();
            }
        });
        Relay { efd, sent: 0, done, stop, thread: Some(thread) }
    }

    fn poke(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        assert_eq!(unsafe { libc::write(self.efd, (&one as *const u64).cast(), 8) }, 8, "eventfd write failed");
    }

    fn round_trip(&mut self) {
        self.sent += 1;
        self.poke();
        let mut done = self.done.0.lock().unwrap();
        while *done < self.sent {
            done = self.done.1.wait(done).unwrap();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.poke();
        if let Some(t) = self.thread.take() {
            t.join().expect("relay thread panicked");
        }
        // SAFETY: our descriptor, closed once; the thread that read it has exited.
        unsafe { libc::close(self.efd) };
    }
}

/// A log-log plot of time per item against n, one line per runner, as SVG.
fn scaling_svg(points: &[ScalePoint], cpython: &str) -> String {
    let line = |name: &str, color, f: fn(&ScalePoint) -> Option<&Stats>| Series {
        name: name.into(),
        color,
        dashed: false,
        points: points.iter().filter_map(|p| Some((p.n as f64, f(p)?.median))).collect(),
    };
    LogLogChart {
        title: "map overhead per item, trivial function, 2 workers, default chunking".into(),
        x_label: "items per map (n)".into(),
        y_label: "time per item".into(),
        x_ticks: XTicks::Decades,
        x_tick_label: |n| fmt_count(n.round() as u64),
        y_tick_label: decade_label,
        series: vec![
            line("mproc", "#1f77b4", |p| Some(&p.mproc)),
            line(cpython, "#ff7f0e", |p| p.cpython.as_ref()),
            line("rayon (threads)", "#2ca02c", |p| Some(&p.rayon)),
        ],
    }
    .to_svg()
}

/// "1 ns", "10 ns", "100 ns", "1 µs" … for a power of ten of seconds.
fn decade_label(secs: f64) -> String {
    const UNITS: [&str; 4] = ["ns", "µs", "ms", "s"];
    let e = secs.log10().round() as i32;
    let unit = (e + 9).div_euclid(3);
    match UNITS.get(unit as usize) {
        Some(name) => format!("{} {name}", 10u64.pow((e + 9).rem_euclid(3) as u32)),
        None => format!("1e{e} s"),
    }
}
