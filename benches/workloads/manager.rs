//! Managers: `mproc::Manager` and its dict and list proxies against CPython's
//! `multiprocessing.Manager()` (fork unless named), with a transport floor: the
//! same kind of connection a proxy talks over (`connection::Client` to a
//! `connection::Listener` on a Unix socket, authenticated) to a child that
//! echoes, and CPython's `multiprocessing.connection` doing the same.
//!
//! Every manager, child and echo peer is started before the timing, except in
//! the start-up rows, which time the manager's start itself. Keys and values
//! are `u64` (Python: `int`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mproc::connection::{Client, Listener};
use mproc::manager::DictProxy;
use mproc::{Connection, Manager, Pipe, Process, ProcessBuilder, StartMethod, TaskValue};

use crate::common::floor::SocketChild;
use crate::common::python::samples;
use crate::common::report::cells::{faster, rate, ratio, runs, time};
use crate::common::report::{Section, Table, Target};
use crate::common::stats::{Plan, Stats, fmt_int, fmt_rate, fmt_ratio, fmt_time, measure};
use crate::common::{Bench, Mode};

const SCRIPT: &str = "cpython_manager.py";

/// The round-trip rows cycle through this many keys (`k = i % KEYS`), so the
/// dict stays small and most inserts replace a value.
const KEYS: u64 = 1024;

/// The floor's message, each way: about the size of a small request.
const PING: [u8; 16] = [0xAB; 16];

/// The echo peer's key (its socket lies in a directory only this user can enter).
const AUTHKEY: &[u8] = b"mproc-bench-manager-echo";

/// How long a child may take to answer a handshake, or to end once told to.
const CHILD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the floor waits for an echo; what a proxy waits for an answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The concurrent-clients rows: how many client processes.
const CLIENTS: [usize; 3] = [2, 8, 32];

/// Listens on `socket`, says so on `ready`, accepts one client (the parent) and
/// sends back every message it receives, until the parent closes the connection.
#[mproc::task]
fn echo_server(ready: Connection<u64>, socket: PathBuf, authkey: Vec<u8>) {
    let Ok(listener) = Listener::<()>::bind(socket.as_path(), &authkey) else { return };
    if ready.send(&0).is_err() {
        return;
    }
    let Ok(peer) = listener.accept() else { return };
    while let Ok(frame) = peer.recv_bytes() {
        if peer.send_bytes(&frame).is_err() {
            return;
        }
    }
}

/// Does `warmup + iters` rounds of `d.insert(k, i)`, `d.get(&k)` (checked),
/// `k = i % KEYS`, timing each operation itself; returns the timed rounds'
/// samples (seconds): inserts, gets.
#[mproc::task]
fn child_rounds(d: DictProxy<u64, u64>, warmup: u64, iters: u64) -> (Vec<f64>, Vec<f64>) {
    let mut inserts = Vec::with_capacity(iters as usize);
    let mut gets = Vec::with_capacity(iters as usize);
    for i in 0..warmup + iters {
        let (k, t0) = (i % KEYS, Instant::now());
        d.insert(k, i).expect("mproc: DictProxy::insert failed");
        let t1 = Instant::now();
        let v = d.get(&k).expect("mproc: DictProxy::get failed");
        let t2 = Instant::now();
        assert_eq!(v, Some(i), "the child read back a wrong value");
        if i >= warmup {
            inserts.push((t1 - t0).as_secs_f64());
            gets.push((t2 - t1).as_secs_f64());
        }
    }
    (inserts, gets)
}

/// For each run number it receives, does `count` rounds of `d.insert(k, run)`,
/// `d.get(&k)` (checked) over its own keys `first..first + count`, and answers
/// the run number, until the parent closes its end.
#[mproc::task]
fn client(conn: Connection<u64>, d: DictProxy<u64, u64>, first: u64, count: u64) {
    while let Ok(run) = conn.recv() {
        for k in first..first + count {
            d.insert(k, run).expect("mproc: DictProxy::insert failed");
            assert_eq!(d.get(&k).expect("mproc: DictProxy::get failed"), Some(run), "a client read back a wrong value");
        }
        if conn.send(&run).is_err() {
            return;
        }
    }
}

/// Child processes (fork), each with a duplex pipe to this process. Dropping
/// them closes our ends (the tasks above then return) and joins each, killing
/// any that has not ended within [`CHILD_TIMEOUT`]: no child outlives them, on
/// error paths included.
struct Children<T: TaskValue> {
    conns: Vec<Connection<u64>>,
    procs: Vec<Process<T>>,
}

impl<T: TaskValue> Children<T> {
    /// Starts `n` children: `spawn(i, builder, pipe end)` starts the `i`-th.
    fn start(
        n: usize,
        mut spawn: impl FnMut(u64, ProcessBuilder, Connection<u64>) -> mproc::Result<Process<T>>,
    ) -> Self {
        let mut children = Children { conns: Vec::with_capacity(n), procs: Vec::with_capacity(n) };
        for i in 0..n {
            let (here, there) = Pipe::<u64>::duplex().expect("mproc: Pipe::duplex failed");
            let builder = Process::builder().start_method(StartMethod::Fork);
            children.procs.push(spawn(i as u64, builder, there).expect("mproc: start failed"));
            children.conns.push(here);
        }
        children
    }

    /// Sends `command` to every child, then waits for every answer, which must
    /// be the command itself.
    fn call_all(&self, command: u64) {
        for c in &self.conns {
            c.send(&command).expect("mproc: send failed");
        }
        for c in &self.conns {
            let answer = c.recv().expect("mproc: recv failed (a child failed?)");
            assert_eq!(answer, command, "wrong answer from a child");
        }
    }

    /// Ends the children and returns what their tasks returned; panics if one failed.
    fn join(mut self) -> Vec<T> {
        let (results, failures) = self.stop();
        assert!(failures.is_empty(), "mproc: child failed: {}", failures.join("; "));
        results
    }

    fn stop(&mut self) -> (Vec<T>, Vec<String>) {
        self.conns.clear();
        let (mut results, mut failures) = (Vec::new(), Vec::new());
        for p in self.procs.drain(..) {
            match p.join_timeout(CHILD_TIMEOUT) {
                Ok(Some(v)) => results.push(v),
                Ok(None) => {
                    failures
                        .push(format!("{} did not end within {CHILD_TIMEOUT:?} of its pipe closing; killed", p.pid()));
                    let _ = p.kill();
                    let _ = p.join();
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        (results, failures)
    }
}

impl<T: TaskValue> Drop for Children<T> {
    fn drop(&mut self) {
        for failure in self.stop().1 {
            eprintln!("  warning: mproc child: {failure}");
        }
    }
}

/// A new directory only this user can enter, removed with what it holds when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("mproc-bench-manager-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap_or_else(|e| panic!("cannot make {}: {e}", path.display()));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The transport floor: a child (fork) running [`echo_server`] on a Unix socket,
/// and this process's authenticated connection to it. The fields drop in order:
/// the connection (the child's loop then ends), the child, the directory.
struct EchoPeer {
    conn: Connection<()>,
    _child: Children<()>,
    _dir: TempDir,
}

impl EchoPeer {
    fn start() -> EchoPeer {
        let dir = TempDir::new();
        let socket = dir.0.join("echo.sock");
        let child = Children::start(1, |_, b, ready| b.spawn(echo_server, (ready, socket.clone(), AUTHKEY.to_vec())));
        child.conns[0].recv_timeout(CHILD_TIMEOUT).expect("the echo child did not listen");
        let conn = Client::<()>::connect_timeout(socket.as_path(), AUTHKEY, CHILD_TIMEOUT)
            .expect("mproc: cannot connect to the echo child");
        EchoPeer { conn, _child: child, _dir: dir }
    }

    /// One round trip, made of the calls a proxy makes: `send_bytes`, then
    /// `recv_bytes_timeout`.
    fn ping(&self) {
        self.conn.send_bytes(&PING).expect("mproc: send_bytes failed");
        let back = self.conn.recv_bytes_timeout(CALL_TIMEOUT).expect("mproc: recv_bytes failed");
        assert_eq!(back, PING, "wrong echo");
    }
}

/// The raw floor: a child made with a bare `fork` on an AF_UNIX stream
/// socketpair, echoing each [`PING`]-sized message with libc `read` / `write`.
struct RawEcho(SocketChild);

impl RawEcho {
    fn start() -> RawEcho {
        // SAFETY: the child only calls `read` and `write` on its descriptor and a
        // buffer on its own stack (see `raw_echo`).
        RawEcho(unsafe { SocketChild::start(raw_echo) })
    }

    fn ping(&self) {
        let mut buf = PING;
        assert!(write_all(self.0.fd, &buf), "floor: write failed");
        buf.fill(0);
        assert!(read_exact(self.0.fd, &mut buf), "floor: read failed");
        assert_eq!(buf, PING, "floor: wrong echo");
    }
}

/// The raw floor's child: reads each message and writes it back, until the
/// stream ends. Async-signal-safe: no allocation, no locks, no panics.
fn raw_echo(fd: libc::c_int) {
    let mut buf = [0u8; PING.len()];
    while read_exact(fd, &mut buf) && write_all(fd, &buf) {}
}

/// Whether the last system call failed with EINTR (to be retried).
fn interrupted() -> bool {
    // SAFETY: errno is this thread's; reading it has no other effect.
    unsafe { *libc::__errno_location() == libc::EINTR }
}

fn read_exact(fd: libc::c_int, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the pointer and length describe the unfilled rest of `buf`.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        match n {
            n if n > 0 => got += n as usize,
            n if n < 0 && interrupted() => {}
            _ => return false,
        }
    }
    true
}

fn write_all(fd: libc::c_int, buf: &[u8]) -> bool {
    let mut sent = 0;
    while sent < buf.len() {
        // SAFETY: the pointer and length describe the unsent rest of `buf`.
        let n = unsafe { libc::write(fd, buf[sent..].as_ptr().cast(), buf.len() - sent) };
        match n {
            n if n > 0 => sent += n as usize,
            n if n < 0 && interrupted() => {}
            _ => return false,
        }
    }
    true
}

/// A manager server of our own, started with fork (as CPython's, on Linux).
fn fork_manager() -> Manager {
    Manager::start_with(StartMethod::Fork).expect("mproc: Manager::start failed")
}

/// Summarises lists of samples taken by hand, with the progress line
/// `measure_interleaved` prints.
fn summarise(label: &str, lists: &[&[f64]]) -> Vec<Stats> {
    let stats: Vec<Stats> = lists.iter().map(|s| Stats::from_samples(s)).collect();
    let medians: Vec<String> = stats.iter().map(|s| fmt_time(s.median)).collect();
    eprintln!("  {label:<44} median {} (n = {})", medians.join(" | "), stats[0].n);
    stats
}

/// Times variants of one operation side by side, as `measure_interleaved`
/// does (each round runs every variant in turn), except that each timed call
/// of `f(i)` comes right after an untimed one: the timed operation then follows
/// one of its own kind, as in a loop of it, and never pays for the previous
/// variant's peer still winding down on a shared core (on two cores, whichever
/// variant came first in a round was measured slower).
fn measure_settled(labels: &[&str], plan: Plan, mut f: impl FnMut(usize)) -> Vec<Stats> {
    let mut samples = vec![Vec::with_capacity(plan.iters); labels.len()];
    for round in 0..plan.warmup + plan.iters {
        for (i, s) in samples.iter_mut().enumerate() {
            f(i);
            let t = Instant::now();
            f(i);
            let elapsed = t.elapsed().as_secs_f64();
            if round >= plan.warmup {
                s.push(elapsed);
            }
        }
    }
    let lists: Vec<&[f64]> = samples.iter().map(Vec::as_slice).collect();
    summarise(&labels.join(" | "), &lists)
}

// ---------------------------------------------------------------------------
// Start-up and shutdown.

struct Startup {
    /// "fork", or the default start method's name.
    method: String,
    /// `Manager::start_with(Fork)`, or `Manager::start()` (the default method).
    call: &'static str,
    start: Stats,
    shutdown: Stats,
    cpython_start: Option<Stats>,
    cpython_shutdown: Option<Stats>,
    plans: (Plan, Plan),
}

/// Start → `dict()` → first `get` answered, then `shutdown()`, timed separately;
/// with `fork` true under fork, else under the default start method.
fn measure_startup(bench: &Bench, fork: bool) -> Startup {
    let plans = (bench.capped_plan(2, 20), bench.capped_plan(2, 20));
    let method = if fork { StartMethod::Fork } else { mproc::start_method() };
    let (mut start, mut shutdown) = (Vec::new(), Vec::new());
    for i in 0..plans.0.warmup + plans.0.iters {
        let t0 = Instant::now();
        let mgr = if fork { fork_manager() } else { Manager::start().expect("mproc: Manager::start failed") };
        let d = mgr.dict::<u64, u64>().expect("mproc: Manager::dict failed");
        assert_eq!(d.get(&0).expect("mproc: DictProxy::get failed"), None, "a new dict has a key 0");
        let t1 = Instant::now();
        mgr.shutdown().expect("mproc: Manager::shutdown failed");
        let t2 = Instant::now();
        if i >= plans.0.warmup {
            start.push((t1 - t0).as_secs_f64());
            shutdown.push((t2 - t1).as_secs_f64());
        }
    }
    let label = format!("mproc Manager start ({method}) | shutdown");
    let [start, shutdown] = <[Stats; 2]>::try_from(summarise(&label, &[&start, &shutdown])).expect("two lists");

    let name = method.to_string();
    let value = bench.cpython_json(
        &format!("CPython Manager start ({name}) + shutdown"),
        SCRIPT,
        &["--workload", "startup", "--method", &name],
        plans.1,
    );
    let [cpython_start, cpython_shutdown] = ["samples", "shutdown"].map(|k| value.as_ref().and_then(|v| samples(v, k)));
    bench.end_cpython_json(cpython_start.is_some() && cpython_shutdown.is_some(), plans.1);
    let call = if fork { "Manager::start_with(StartMethod::Fork)" } else { "Manager::start()" };
    Startup { method: name, call, start, shutdown, cpython_start, cpython_shutdown, plans }
}

// ---------------------------------------------------------------------------
// Round trips, from this process and from a child, beside the transport floor.

struct RoundTrips {
    /// From this process: insert, get, and the floors' ping-pongs (mproc's
    /// connection over a Unix socket, a bare socketpair), per operation.
    insert: Stats,
    get: Stats,
    ping: Stats,
    raw: Stats,
    /// From a child, timed there.
    child_insert: Stats,
    child_get: Stats,
    cpython_insert: Option<Stats>,
    cpython_get: Option<Stats>,
    cpython_ping: Option<Stats>,
    cpython_child_insert: Option<Stats>,
    cpython_child_get: Option<Stats>,
    plans: (Plan, Plan),
}

fn measure_round_trips(bench: &Bench) -> RoundTrips {
    let plans = (bench.plan(500, 10_000), bench.plan(200, 3_000));
    let raw_echo = RawEcho::start();
    let echo = EchoPeer::start();
    let mgr = fork_manager();
    let d = mgr.dict::<u64, u64>().expect("mproc: Manager::dict failed");
    let mut round = 0;
    let labels = ["socketpair", "mproc Client ping-pong", "dict insert", "get"];
    let all = measure_settled(&labels, plans.0, |i| match i {
        0 => raw_echo.ping(),
        1 => echo.ping(),
        2 => {
            round += 1;
            d.insert(round % KEYS, round).expect("mproc: DictProxy::insert failed");
        }
        _ => assert_eq!(d.get(&(round % KEYS)).expect("mproc: DictProxy::get failed"), Some(round), "wrong value"),
    });
    let [raw, ping, insert, get] = <[Stats; 4]>::try_from(all).expect("four variants");
    drop((echo, raw_echo));

    let (warmup, iters) = (plans.0.warmup as u64, plans.0.iters as u64);
    let child = Children::start(1, |_, b, _| b.spawn(child_rounds, (d.clone(), warmup, iters)));
    let (inserts, gets) = child.join().pop().expect("one child");
    let [child_insert, child_get] =
        <[Stats; 2]>::try_from(summarise("mproc dict insert | get, from a child", &[&inserts, &gets]))
            .expect("two lists");
    mgr.shutdown().expect("mproc: Manager::shutdown failed");

    let value =
        bench.cpython_json("CPython ping-pong | dict insert | get", SCRIPT, &["--workload", "roundtrip"], plans.1);
    let [cpython_ping, cpython_insert, cpython_get] =
        ["ping", "insert", "get"].map(|k| value.as_ref().and_then(|v| samples(v, k)));
    bench.end_cpython_json(cpython_ping.is_some() && cpython_insert.is_some() && cpython_get.is_some(), plans.1);
    let value =
        bench.cpython_json("CPython dict insert | get, from a child", SCRIPT, &["--workload", "child"], plans.1);
    let [cpython_child_insert, cpython_child_get] =
        ["insert", "get"].map(|k| value.as_ref().and_then(|v| samples(v, k)));
    bench.end_cpython_json(cpython_child_insert.is_some() && cpython_child_get.is_some(), plans.1);
    RoundTrips {
        insert,
        get,
        ping,
        raw,
        child_insert,
        child_get,
        cpython_insert,
        cpython_get,
        cpython_ping,
        cpython_child_insert,
        cpython_child_get,
        plans,
    }
}

// ---------------------------------------------------------------------------
// List append, one process.

struct Append {
    /// Pushes per run.
    n: u64,
    mproc: Stats,
    cpython: Option<Stats>,
    plans: (Plan, Plan),
}

fn measure_append(bench: &Bench) -> Append {
    let n: u64 = if bench.mode == Mode::Smoke { 20 } else { 2_000 };
    let plans = (bench.plan(3, 30), bench.capped_plan(1, 10));
    let mgr = fork_manager();
    let l = mgr.list::<u64>().expect("mproc: Manager::list failed");
    let stats = measure(&format!("mproc list push × {n}"), plans.0, || {
        for i in 0..n {
            l.push(i).expect("mproc: ListProxy::push failed");
        }
    });
    let expected = (plans.0.warmup + plans.0.iters) as u64 * n;
    assert_eq!(l.len().expect("mproc: ListProxy::len failed") as u64, expected, "pushes were lost");
    mgr.shutdown().expect("mproc: Manager::shutdown failed");
    let n_arg = n.to_string();
    let cpython = bench.cpython(
        &format!("CPython list append × {n}"),
        SCRIPT,
        &["--workload", "append", "--items", &n_arg],
        plans.1,
    );
    Append { n, mproc: stats, cpython, plans }
}

// ---------------------------------------------------------------------------
// Concurrent clients.

struct ClientsPoint {
    clients: usize,
    /// Insert / get pairs per client per run.
    count: u64,
    mproc: Stats,
    cpython: Option<Stats>,
    plans: (Plan, Plan),
}

impl ClientsPoint {
    /// Operations (an insert or a get) per run, all clients together.
    fn ops(&self) -> f64 {
        (2 * self.clients as u64 * self.count) as f64
    }
}

/// Insert / get pairs per run, all clients together: the same work at every size.
fn clients_pairs(bench: &Bench) -> u64 {
    if bench.mode == Mode::Smoke { 64 } else { 2_048 }
}

fn measure_clients(bench: &Bench, clients: usize) -> ClientsPoint {
    let count = clients_pairs(bench) / clients as u64;
    let plans = (bench.capped_plan(1, 10), bench.capped_plan(1, 6));
    let mgr = fork_manager();
    let d = mgr.dict::<u64, u64>().expect("mproc: Manager::dict failed");
    let children = Children::start(clients, |i, b, conn| b.spawn(client, (conn, d.clone(), i * count, count)));
    let mut runs = Vec::new();
    for run in 0..(plans.0.warmup + plans.0.iters) as u64 {
        d.clear().expect("mproc: DictProxy::clear failed");
        let t = Instant::now();
        children.call_all(run);
        let elapsed = t.elapsed().as_secs_f64();
        let len = d.len().expect("mproc: DictProxy::len failed") as u64;
        assert_eq!(
            len,
            clients as u64 * count,
            "the dict has {len} keys, not exactly {}: lost updates",
            clients as u64 * count
        );
        if run >= plans.0.warmup as u64 {
            runs.push(elapsed);
        }
    }
    children.join();
    mgr.shutdown().expect("mproc: Manager::shutdown failed");
    let mproc = summarise(&format!("mproc {clients} clients × {count} insert+get"), &[&runs]).remove(0);
    let [clients_arg, count_arg] = [clients.to_string(), count.to_string()];
    let cpython = bench.cpython(
        &format!("CPython {clients} clients × {count} insert+get"),
        SCRIPT,
        &["--workload", "clients", "--clients", &clients_arg, "--items", &count_arg],
        plans.1,
    );
    ClientsPoint { clients, count, mproc, cpython, plans }
}

// ---------------------------------------------------------------------------
// The family and its report.

pub fn run(bench: &Bench) -> Section {
    eprintln!("manager start-up and shutdown");
    let startups = [measure_startup(bench, true), measure_startup(bench, false)];
    eprintln!("manager dict round trips, transport floor");
    let trips = measure_round_trips(bench);
    eprintln!("manager list append");
    let append = measure_append(bench);
    eprintln!("manager dict, concurrent client processes");
    let clients: Vec<ClientsPoint> = CLIENTS.iter().map(|&n| measure_clients(bench, n)).collect();
    report(bench, &startups, &trips, &append, &clients)
}

fn report(bench: &Bench, startups: &[Startup], r: &RoundTrips, a: &Append, clients: &[ClientsPoint]) -> Section {
    let cp = bench.cpython_name();
    let mut section = Section::new("Managers");

    section.text(format!(
        "`mproc::Manager` and its `DictProxy` and `ListProxy` against CPython's `multiprocessing.Manager()` \
         and its `dict` and `list` proxies (`benches/{SCRIPT}`); managers and children are started with fork \
         on both sides unless a row names another method. What each row times is described under the table. \
         × faster is CPython's time over mproc's (for a rate, mproc's over CPython's). Times and rates are \
         median (p10–p90)."
    ));
    let mut table = Table::new(&["workload", "mproc", &cp, "× faster", "target", "met", "runs (mproc / CPython)"]);
    for s in startups {
        table.row(vec![
            format!("start-up ({}): `{}` → `dict()` → first `get` answered", s.method, s.call),
            s.start.spread(),
            time(&s.cpython_start),
            faster(&s.cpython_start, &s.start),
            "—".into(),
            "—".into(),
            runs(&s.plans),
        ]);
        table.row(vec![
            format!("shutdown ({}): `shutdown()` after that", s.method),
            s.shutdown.spread(),
            time(&s.cpython_shutdown),
            faster(&s.cpython_shutdown, &s.shutdown),
            "—".into(),
            "—".into(),
            runs(&s.plans),
        ]);
    }
    for (what, ours, theirs) in [
        ("dict `insert` round trip, from the parent (Python `d[k] = v`)", &r.insert, &r.cpython_insert),
        ("dict `get` round trip, from the parent (Python `d[k]`)", &r.get, &r.cpython_get),
        ("dict `insert` round trip, from a child", &r.child_insert, &r.cpython_child_insert),
        ("dict `get` round trip, from a child", &r.child_get, &r.cpython_child_get),
    ] {
        let [x, target, met] =
            section.check(format!("Manager {what} vs CPython"), ratio(theirs, ours), Target::AtLeast(3.0));
        table.row(vec![what.into(), ours.spread(), time(theirs), x, target, met, runs(&r.plans)]);
    }
    let n = a.n as f64;
    table.row(vec![
        format!("list `push` × {} (Python `l.append(i)`), one process", fmt_int(a.n)),
        fmt_rate(&a.mproc, n, "items/s"),
        rate(&a.cpython, n, "items/s"),
        faster(&a.cpython, &a.mproc),
        "—".into(),
        "—".into(),
        runs(&a.plans),
    ]);
    for c in clients {
        table.row(vec![
            format!(
                "{} client processes × {} dict `insert` + `get` pairs, own keys, final size exact",
                c.clients,
                fmt_int(c.count)
            ),
            fmt_rate(&c.mproc, c.ops(), "ops/s"),
            rate(&c.cpython, c.ops(), "ops/s"),
            faster(&c.cpython, &c.mproc),
            "—".into(),
            "—".into(),
            runs(&c.plans),
        ]);
    }
    section.table(table);

    let s = &startups[0];
    section.text(format!(
        "**Start-up.** A run starts a manager server process (`{call}`: fork; the second pair of rows: \
         `Manager::start()`, whose default start method is {default} in this harness, which has the entry hook), \
         makes an empty `DictProxy<u64, u64>` with `mgr.dict()` (one request) and asks it for key 0 with \
         `d.get(&0)` (one more, answered `None`); the start-up row times from before the start to that answer, \
         so it includes making the private socket directory, the random authkey, the process start, the \
         server's bind and its `Ready` on the lifeline, and the proxy's connection and handshake. Then \
         `mgr.shutdown()` alone is the shutdown row: it tells the server to stop, waits for the process to exit \
         and removes the socket directory. CPython, the same: `ctx.Manager()` (its `start()`: a process, a \
         listener, a handshake), `m.dict()`, `d.get(0)`, then `m.shutdown()`; with `{default}` as the context \
         for the second pair.",
        call = s.call,
        default = startups[1].method,
    ));
    section.text(format!(
        "**Round trips.** One manager and one dict, made before the timing. From the parent, each round does, \
         in turn: the floors' ping-pongs (below), `d.insert(k, i)`, and `d.get(&k)` checked to be `Some(i)`, \
         with `k = i % {KEYS}` (so the dict holds at most {KEYS} keys and most inserts replace a value); each \
         operation twice in a row, the second time timed alone, so that it follows an operation of its own kind \
         as in a loop of them (on two cores, an operation that came right after another kind paid for that one's \
         peer still winding down: whichever came first in a round was measured slower). Each figure is per \
         operation. From a child: a child (fork) is given a clone of the proxy, \
         does the same insert / get rounds, timing each operation itself with `Instant::now()`, and returns its \
         samples when its task ends; its first {warmup} rounds (which open its own connection to the server) \
         are not counted. CPython, the same with `d[k] = i` and `d[k]`, `time.perf_counter()` around each, and \
         its child sending its samples back over a `Pipe` (the child alternates insert and get, one each, on \
         both sides).",
        warmup = r.plans.0.warmup,
    ));
    section.text(format!(
        "**List append.** One run: {n} × `l.push(i)` on a `ListProxy<u64>` made before the timing, each a \
         request answered before the next is sent; items/s is {n} over the run's time. The list keeps growing \
         from run to run; at the end its length must be exactly the number of pushes. CPython: {n} × \
         `l.append(i)`, checked the same way.",
        n = fmt_int(a.n),
    ));
    section.text(format!(
        "**Concurrent clients.** {pairs} insert / get pairs per run, split evenly among 2, 8 or 32 client \
         processes (fork) started before the timing, each with a clone of the dict proxy, its own keys \
         `first..first + count` and a pipe for commands (processes on both sides: CPython's threads would take \
         turns on its GIL). A run: this process clears the dict (untimed), then, timed, sends the run number to \
         every client and waits for every answer; each client does `count` rounds of `d.insert(k, run)`, \
         `d.get(&k)` checked to be `Some(run)`, and answers. After the run (untimed) the dict must hold exactly \
         {pairs} keys. Ops/s is the run's {ops} operations (inserts and gets) over its time. The first run, \
         untimed, opens every client's connection. The server serves each connection on a thread of its own \
         (mproc: a Rust thread per connection, which watches its connection for up to 20 µs, yielding the \
         processor, before it sleeps; CPython: a Python thread per connection, under the GIL), on a machine of \
         {cores} cores shared with the clients.",
        pairs = fmt_int(clients_pairs(bench)),
        ops = fmt_int(2 * clients_pairs(bench)),
        cores = std::thread::available_parallelism().map_or(1, |n| n.get()),
    ));

    section.text(format!(
        "**Transport floors.** What a round trip from the parent costs with no manager in it, interleaved \
         round by round with the parent's insert and get above (each timed after an untimed one, as they are). mproc's transport: a child (fork) binds a \
         `connection::Listener<()>` on a Unix socket in a private directory, this process connects with \
         `connection::Client::<()>::connect_timeout` (authenticated, as a proxy connects to its server; after \
         the handshake such a connection moves into shared memory, as a proxy's does), and a round is `send_bytes` of {b} bytes and `recv_bytes_timeout` of the echo (the calls a proxy makes; the \
         child answers with `recv_bytes` and `send_bytes`). A manager request adds to that the encoding of the \
         request, the server's decoding, its store (a lock and a map), and the encoding and decoding of the \
         answer. The raw floor: a child made with a bare `fork()` on an AF_UNIX stream socketpair, the same {b} \
         bytes written and read back with libc `write` and blocking `read`, no framing or polling. CPython's \
         transport: `multiprocessing.connection.Listener` and `Client` (`AF_UNIX`, an authkey), `send_bytes` / \
         `recv_bytes` of {b} bytes, interleaved the same way with its insert and get. ÷ raw is a round trip \
         over the raw floor's (measured in mproc's run; CPython's rows are from its own run); ÷ transport is \
         over the same side's transport ping-pong.",
        b = PING.len(),
    ));
    let mut floors = Table::new(&["round trip, from the parent", "time", "÷ raw socketpair", "÷ own transport"]);
    let raw_ratio = |st: &Stats| fmt_ratio(st.median / r.raw.median);
    let rows: [(&str, Option<&Stats>, Option<&Stats>); 7] = [
        ("raw socketpair ping-pong (libc `write` + `read`)", Some(&r.raw), None),
        ("mproc `Client` ↔ `Listener` ping-pong, Unix socket", Some(&r.ping), None),
        ("mproc dict `insert`", Some(&r.insert), Some(&r.ping)),
        ("mproc dict `get`", Some(&r.get), Some(&r.ping)),
        ("CPython `connection.Client` ↔ `Listener` ping-pong, Unix socket", r.cpython_ping.as_ref(), None),
        ("CPython dict `d[k] = v`", r.cpython_insert.as_ref(), r.cpython_ping.as_ref()),
        ("CPython dict `d[k]`", r.cpython_get.as_ref(), r.cpython_ping.as_ref()),
    ];
    for (what, st, transport) in rows {
        let Some(st) = st else {
            floors.row(vec![what.into(), "not measured".into(), "—".into(), "—".into()]);
            continue;
        };
        let own = transport.map(|t| fmt_ratio(st.median / t.median)).unwrap_or_else(|| "—".into());
        floors.row(vec![what.into(), st.spread(), raw_ratio(st), own]);
    }
    section.table(floors);
    section
}
