//! Pipes: `mproc::Pipe` between the parent and one child process against CPython's
//! `multiprocessing.Pipe` (fork) and a raw floor: a bare AF_UNIX stream socketpair
//! between two processes, driven by hand with libc `write`/`writev`/`read`.
//!
//! Every child (mproc's, CPython's, the floor's) is started before the timing and
//! serves commands: the parent asks for a batch of messages and times from that
//! request to the batch's last message received, or times one round trip.

use std::time::Duration;

use mproc::{Connection, Pipe, Process, StartMethod};

use crate::common::floor::SocketChild;
use crate::common::plot::{LogLogChart, Series, XTicks};
use crate::common::python::samples;
use crate::common::report::{Section, Table, Target};
use crate::common::stats::{Plan, Stats, fmt_int, fmt_ratio, fmt_sig3, measure_interleaved};
use crate::common::{Bench, Mode};

const SCRIPT: &str = "cpython_ipc.py";
const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Sends `0..n` as typed messages for each `n` it receives, until the parent
/// closes its end.
#[mproc::task]
fn small_sender(conn: Connection<u64>) {
    while let Ok(n) = conn.recv() {
        for i in 0..n {
            if conn.send(&i).is_err() {
                return;
            }
        }
    }
}

/// Sends back every message it receives, until the parent closes its end.
#[mproc::task]
fn echo(conn: Connection<u64>) {
    while let Ok(v) = conn.recv() {
        if conn.send(&v).is_err() {
            return;
        }
    }
}

/// For each `size`, `count` it receives (two messages), sends `count` payloads of
/// `size` bytes with `send_bytes`, until the parent closes its end. The payload is
/// made once per size, before the first batch of that size is timed (warm-up).
#[mproc::task]
fn bytes_sender(conn: Connection<u64>) {
    let mut payload = Vec::new();
    loop {
        let (Ok(size), Ok(count)) = (conn.recv(), conn.recv()) else { return };
        if payload.len() != size as usize {
            payload = vec![0xAB; size as usize];
        }
        for _ in 0..count {
            if conn.send_bytes(&payload).is_err() {
                return;
            }
        }
    }
}

/// An mproc child (fork) running one of the tasks above on the other end of a
/// duplex pipe. Dropping it closes our end (the task then returns) and joins the
/// child, killing it if it has not ended within a few seconds: no child outlives
/// it, on error paths included.
struct Child {
    conn: Option<Connection<u64>>,
    process: Option<Process<()>>,
}

impl Child {
    fn start(spawn: impl FnOnce(mproc::ProcessBuilder, Connection<u64>) -> mproc::Result<Process<()>>) -> Child {
        let (here, there) = Pipe::<u64>::duplex().expect("mproc: Pipe::duplex failed");
        let process = spawn(Process::builder().start_method(StartMethod::Fork), there).expect("mproc: start failed");
        Child { conn: Some(here), process: Some(process) }
    }

    fn conn(&self) -> &Connection<u64> {
        self.conn.as_ref().expect("connection open until drop")
    }

    /// Ends the child and checks that its task returned normally.
    fn finish(mut self) {
        if let Err(e) = self.stop() {
            panic!("mproc: child failed: {e}");
        }
    }

    fn stop(&mut self) -> Result<(), String> {
        drop(self.conn.take());
        let Some(p) = self.process.take() else { return Ok(()) };
        match p.join_timeout(Duration::from_secs(10)) {
            Ok(Some(())) => Ok(()),
            Ok(None) => {
                let _ = p.kill();
                let _ = p.join();
                Err("did not end within 10 s of its pipe closing; killed".into())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("  warning: mproc child: {e}");
        }
    }
}

/// `n` typed `u64` messages, child → parent; checks their sum.
fn mproc_small(conn: &Connection<u64>, n: u64) {
    conn.send(&n).expect("mproc: send failed");
    let mut total = 0;
    for _ in 0..n {
        total += conn.recv().expect("mproc: recv failed");
    }
    assert_eq!(total, n * (n - 1) / 2);
}

fn mproc_ping(conn: &Connection<u64>) {
    conn.send(&7).expect("mproc: send failed");
    assert_eq!(conn.recv().expect("mproc: recv failed"), 7);
}

/// `count` payloads of `size` bytes, child → parent: with `recv_bytes` (a fresh
/// `Vec` per message), or with `recv_bytes_into` a reused buffer when given one.
fn mproc_bytes(conn: &Connection<u64>, size: usize, count: usize, into: Option<&mut [u8]>) {
    conn.send(&(size as u64)).expect("mproc: send failed");
    conn.send(&(count as u64)).expect("mproc: send failed");
    match into {
        None => {
            for _ in 0..count {
                assert_eq!(conn.recv_bytes().expect("mproc: recv_bytes failed").len(), size);
            }
        }
        Some(buf) => {
            for _ in 0..count {
                assert_eq!(conn.recv_bytes_into(buf).expect("mproc: recv_bytes_into failed"), size);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The raw floor: a child forked by hand on a bare socketpair.

/// Bytes of one floor ping-pong message: an 8-byte length and a `u64`, as a frame.
const PING: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Reads each [`PING`]-byte message and writes it back.
    Echo,
    /// Reads a command (`size`, `count`: two little-endian `u64`s), then writes
    /// `count` frames of an 8-byte length and `size` bytes, each with one system
    /// call (`write` of a 16-byte frame holding the message's number when `size`
    /// is 8; `writev` of the length and the payload otherwise).
    Stream,
}

/// The floor's peer: a child made with a bare `fork`, one end of an AF_UNIX
/// stream socketpair each. Dropping it closes our end, kills and reaps the child.
struct RawPeer {
    fd: libc::c_int,
    _child: SocketChild,
    reader: RawReader,
}

impl RawPeer {
    /// `max_size`: the largest payload a [`Role::Stream`] child will be asked for.
    fn start(role: Role, max_size: usize) -> RawPeer {
        // Made and touched before the fork: the child may not allocate. The parent
        // drops its copy after the fork; the child's copy stays its own.
        let payload = if role == Role::Stream { vec![0xABu8; max_size] } else { Vec::new() };
        // SAFETY: the child only makes system calls on memory prepared before the
        // fork (see raw_child).
        let child = unsafe { SocketChild::start(|fd| raw_child(fd, role, &payload)) };
        RawPeer { fd: child.fd, _child: child, reader: RawReader::new() }
    }

    fn ping(&self) {
        let mut msg = [0u8; PING];
        msg[..8].copy_from_slice(&8u64.to_le_bytes());
        msg[8..].copy_from_slice(&7u64.to_le_bytes());
        assert!(write_all(self.fd, &msg), "floor: write failed: {}", std::io::Error::last_os_error());
        let mut got = [0u8; PING];
        assert!(read_exact(self.fd, &mut got), "floor: read failed");
        assert_eq!(got, msg);
    }

    fn command(&self, size: usize, count: usize) {
        let mut cmd = [0u8; 16];
        cmd[..8].copy_from_slice(&(size as u64).to_le_bytes());
        cmd[8..].copy_from_slice(&(count as u64).to_le_bytes());
        assert!(write_all(self.fd, &cmd), "floor: write failed: {}", std::io::Error::last_os_error());
    }

    /// `n` 8-byte messages holding `0..n`; checks their sum.
    fn small(&mut self, n: u64) {
        self.command(8, n as usize);
        let mut value = [0u8; 8];
        let mut total = 0;
        for _ in 0..n {
            assert_eq!(self.reader.frame_into(self.fd, &mut value), 8);
            total += u64::from_le_bytes(value);
        }
        assert_eq!(total, n * (n - 1) / 2);
    }

    /// `count` payloads of `size` bytes, each read into `buf` (reused).
    fn bytes(&mut self, size: usize, count: usize, buf: &mut [u8]) {
        self.command(size, count);
        for _ in 0..count {
            assert_eq!(self.reader.frame_into(self.fd, buf), size);
        }
    }
}

/// The floor child's work (see [`SocketChild::start`]): serves its role on `fd`
/// until the parent closes its end. Only system calls (async-signal-safe) and
/// plain copies, on stack buffers and on `payload`, allocated before the fork.
fn raw_child(fd: libc::c_int, role: Role, payload: &[u8]) {
    match role {
        Role::Echo => {
            let mut buf = [0u8; PING];
            while read_exact(fd, &mut buf) && write_all(fd, &buf) {}
        }
        Role::Stream => {
            let mut cmd = [0u8; 16];
            while read_exact(fd, &mut cmd) {
                let mut word = [0u8; 8];
                word.copy_from_slice(&cmd[..8]);
                let size = u64::from_le_bytes(word) as usize;
                word.copy_from_slice(&cmd[8..]);
                let count = u64::from_le_bytes(word);
                if size > payload.len() {
                    // SAFETY: _exit has no preconditions and never returns.
                    unsafe { libc::_exit(2) };
                }
                let header = (size as u64).to_le_bytes();
                for i in 0..count {
                    let sent = if size == 8 {
                        let mut frame = [0u8; 16];
                        frame[..8].copy_from_slice(&header);
                        frame[8..].copy_from_slice(&i.to_le_bytes());
                        write_all(fd, &frame)
                    } else {
                        write_frame(fd, &header, &payload[..size])
                    };
                    if !sent {
                        return;
                    }
                }
            }
        }
    }
}

/// Writes all of `buf` (`send` with `MSG_NOSIGNAL`: a closed peer is an error, not
/// SIGPIPE). False on error.
fn write_all(fd: libc::c_int, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: buf is a valid buffer of the given length.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

/// One frame, `header` then `payload`, with one `writev` unless the socket takes
/// only part of it. False on error.
fn write_frame(fd: libc::c_int, header: &[u8; 8], payload: &[u8]) -> bool {
    let iov = [
        libc::iovec { iov_base: header.as_ptr() as *mut _, iov_len: header.len() },
        libc::iovec { iov_base: payload.as_ptr() as *mut _, iov_len: payload.len() },
    ];
    let n = loop {
        // SAFETY: both iovecs point at valid buffers of their lengths, only read.
        let n = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
        if n >= 0 {
            break n as usize;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    };
    if n < header.len() {
        write_all(fd, &header[n..]) && write_all(fd, payload)
    } else {
        write_all(fd, &payload[n - header.len()..])
    }
}

/// `read` until `buf` is full. False on error or end of stream.
fn read_exact(fd: libc::c_int, buf: &mut [u8]) -> bool {
    let mut have = 0;
    while have < buf.len() {
        match read_some(fd, &mut buf[have..]) {
            Some(n) if n > 0 => have += n,
            _ => return false,
        }
    }
    true
}

/// One `read` (retrying on EINTR); `None` on error.
fn read_some(fd: libc::c_int, buf: &mut [u8]) -> Option<usize> {
    loop {
        // SAFETY: buf is a valid, writable buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Some(n as usize);
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// The floor's receiver: reads up to 64 KiB at a time and splits frames out of
/// that buffer; the part of a payload that is at least a buffer long is read
/// straight into its destination. One copy out of the kernel, few system calls.
struct RawReader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl RawReader {
    fn new() -> RawReader {
        RawReader { buf: vec![0; 64 * KIB].into_boxed_slice(), start: 0, end: 0 }
    }

    /// Reads what the socket has into the buffer (at least one byte).
    fn fill(&mut self, fd: libc::c_int) {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        let n = read_some(fd, &mut self.buf[self.end..]).expect("floor: read failed");
        assert!(n > 0, "floor: the child closed the stream");
        self.end += n;
    }

    /// The next frame's payload into `dst`; returns its length.
    fn frame_into(&mut self, fd: libc::c_int, dst: &mut [u8]) -> usize {
        while self.end - self.start < 8 {
            self.fill(fd);
        }
        let mut header = [0u8; 8];
        header.copy_from_slice(&self.buf[self.start..self.start + 8]);
        self.start += 8;
        let len = u64::from_le_bytes(header) as usize;
        assert!(len <= dst.len(), "floor: frame of {len} bytes for a buffer of {}", dst.len());
        let mut got = 0;
        while got < len {
            if self.start == self.end {
                if len - got >= self.buf.len() {
                    let n = read_some(fd, &mut dst[got..len]).expect("floor: read failed");
                    assert!(n > 0, "floor: the child closed the stream");
                    got += n;
                    continue;
                }
                self.fill(fd);
            }
            let take = (len - got).min(self.end - self.start);
            dst[got..got + take].copy_from_slice(&self.buf[self.start..self.start + take]);
            self.start += take;
            got += take;
        }
        len
    }
}

// ---------------------------------------------------------------------------
// The workloads.

/// Sizes of the plain-throughput rows: (payload, messages per run).
fn bytes_rows(bench: &Bench) -> [(usize, usize); 2] {
    if bench.mode == Mode::Smoke { [(MIB, 2), (16 * MIB, 1)] } else { [(MIB, 32), (16 * MIB, 4)] }
}

/// Payload sizes of the scaling plot: 8 B to 64 MiB by factors of 8 (up to 2 MiB
/// in a smoke run).
fn scaling_sizes(bench: &Bench) -> Vec<usize> {
    let top = if bench.mode == Mode::Smoke { 2 * MIB } else { 64 * MIB };
    std::iter::successors(Some(8usize), |s| Some(s * 8))
        .take_while(|&s| s <= 2 * MIB)
        .chain([16 * MIB, 64 * MIB])
        .filter(|&s| s <= top)
        .collect()
}

/// Messages per run at `size`: 32 MiB of payload, at most 20 000 messages, at least one.
fn scaling_count(bench: &Bench, size: usize) -> usize {
    let (budget, most) = if bench.mode == Mode::Smoke { (MIB, 200) } else { (32 * MIB, 20_000) };
    (budget / size).clamp(1, most)
}

/// Typed small messages per run.
fn small_count(bench: &Bench) -> u64 {
    if bench.mode == Mode::Smoke { 2_000 } else { 50_000 }
}

/// What the family measured, per run (seconds); CPython's side is `None` when it
/// could not run.
struct Results {
    small_n: u64,
    small: [Stats; 2],
    small_cpython: Option<Stats>,
    small_plans: (Plan, Plan),
    ping: [Stats; 2],
    ping_cpython: Option<Stats>,
    ping_plans: (Plan, Plan),
    bytes: Vec<BytesPoint>,
    bytes_plans: (Plan, Plan),
    scaling: Vec<BytesPoint>,
    scaling_plans: (Plan, Plan),
}

/// One payload size: runs of `count` messages of `size` bytes.
struct BytesPoint {
    size: usize,
    count: usize,
    floor: Stats,
    recv_bytes: Stats,
    recv_into: Stats,
    cpython: Option<Stats>,
}

impl BytesPoint {
    fn bytes(&self) -> f64 {
        (self.size * self.count) as f64
    }
}

pub fn run(bench: &Bench) -> Section {
    eprintln!("pipes");
    let sizes = scaling_sizes(bench);
    let max_size = sizes.iter().copied().chain(bytes_rows(bench).map(|r| r.0)).max().unwrap_or(MIB);

    // Every child first, while this process is small; the floor's child gets its
    // payload buffer before the fork.
    let mut raw_stream = RawPeer::start(Role::Stream, max_size);
    let raw_echo = RawPeer::start(Role::Echo, 0);
    let small_child = Child::start(|b, c| b.spawn(small_sender, (c,)));
    let echo_child = Child::start(|b, c| b.spawn(echo, (c,)));
    let bytes_child = Child::start(|b, c| b.spawn(bytes_sender, (c,)));
    // Touched now, so that no run pays for its first page faults.
    let mut buf = vec![1u8; max_size];

    // 1. Small typed messages.
    let small_n = small_count(bench);
    let small_plans = (bench.plan(3, 30), bench.plan(2, 10));
    let labels = [format!("raw socketpair, {small_n} × 8 B"), format!("mproc Pipe, {small_n} × u64")];
    let small = measure_interleaved(&[&labels[0], &labels[1]], small_plans.0, |i| match i {
        0 => raw_stream.small(small_n),
        _ => mproc_small(small_child.conn(), small_n),
    });
    let n_arg = small_n.to_string();
    let small_cpython = bench.cpython(
        &format!("CPython Pipe, {small_n} small ints"),
        SCRIPT,
        &["--workload", "small", "--items", &n_arg],
        small_plans.1,
    );
    small_child.finish();

    // 2. Ping-pong.
    let ping_plans = (bench.plan(300, 3000), bench.plan(100, 1000));
    let ping = measure_interleaved(&["socketpair ping-pong", "mproc Pipe ping-pong"], ping_plans.0, |i| match i {
        0 => raw_echo.ping(),
        _ => mproc_ping(echo_child.conn()),
    });
    let ping_cpython = bench.cpython("CPython Pipe ping-pong", SCRIPT, &["--workload", "pingpong"], ping_plans.1);
    echo_child.finish();
    drop(raw_echo);

    // 3. send_bytes throughput, 1 MiB and 16 MiB.
    let bytes_plans = (bench.plan(2, 20), bench.plan(2, 20));
    let bytes = bytes_rows(bench)
        .into_iter()
        .map(|(size, count)| {
            bytes_point(bench, &mut raw_stream, bytes_child.conn(), &mut buf, size, count, bytes_plans, None)
        })
        .collect();

    // 4. Scaling with the payload size.
    let scaling_plans = (bench.capped_plan(2, 15), bench.capped_plan(1, 7));
    let counts: Vec<usize> = sizes.iter().map(|&s| scaling_count(bench, s)).collect();
    let cpython_points = scaling_cpython(bench, &sizes, &counts, scaling_plans.1);
    let scaling = sizes
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(i, (&size, &count))| {
            let theirs = cpython_points.as_ref().and_then(|p| p.get(i).cloned());
            bytes_point(bench, &mut raw_stream, bytes_child.conn(), &mut buf, size, count, scaling_plans, Some(theirs))
        })
        .collect();
    bytes_child.finish();
    drop(raw_stream);

    let results = Results {
        small_n,
        small: small.try_into().expect("two variants"),
        small_cpython,
        small_plans,
        ping: ping.try_into().expect("two variants"),
        ping_cpython,
        ping_plans,
        bytes,
        bytes_plans,
        scaling,
        scaling_plans,
    };
    report(bench, &results)
}

/// Floor, `recv_bytes` and `recv_bytes_into`, interleaved run by run, at one size;
/// then CPython's figure: measured here, or given (`cpython`, from the scaling run).
#[allow(clippy::too_many_arguments)]
fn bytes_point(
    bench: &Bench,
    raw: &mut RawPeer,
    conn: &Connection<u64>,
    buf: &mut [u8],
    size: usize,
    count: usize,
    plans: (Plan, Plan),
    cpython: Option<Option<Stats>>,
) -> BytesPoint {
    let what = format!("{count} × {}", fmt_size(size));
    let labels = [format!("raw {what}"), "mproc recv_bytes".to_string(), "recv_bytes_into".to_string()];
    let all = measure_interleaved(&[&labels[0], &labels[1], &labels[2]], plans.0, |i| match i {
        0 => raw.bytes(size, count, &mut buf[..size]),
        1 => mproc_bytes(conn, size, count, None),
        _ => mproc_bytes(conn, size, count, Some(&mut buf[..size])),
    });
    let [floor, recv_bytes, recv_into] = <[Stats; 3]>::try_from(all).expect("three variants");
    let cpython = cpython.unwrap_or_else(|| {
        let (s, c) = (size.to_string(), count.to_string());
        let args = ["--workload", "bytes", "--size", &s, "--count", &c];
        bench.cpython(&format!("CPython send_bytes {what}"), SCRIPT, &args, plans.1)
    });
    BytesPoint { size, count, floor, recv_bytes, recv_into, cpython }
}

/// CPython's scaling run: every size in one script run (one child throughout).
fn scaling_cpython(bench: &Bench, sizes: &[usize], counts: &[usize], plan: Plan) -> Option<Vec<Stats>> {
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let (sizes_arg, counts_arg) = (join(sizes), join(counts));
    let args = ["--workload", "scaling", "--sizes", &sizes_arg, "--counts", &counts_arg];
    let label = format!("CPython send_bytes, {} sizes", sizes.len());
    let value = bench.cpython_json(&label, SCRIPT, &args, plan)?;
    let points: Option<Vec<Stats>> =
        value.get("points").and_then(|p| p.as_array()).and_then(|p| p.iter().map(|p| samples(p, "samples")).collect());
    match points {
        Some(points) if points.len() == sizes.len() => {
            eprintln!(" done (n = {} per size)", plan.iters);
            Some(points)
        }
        _ => {
            eprintln!(" bad output: no samples for every size");
            None
        }
    }
}

// ---------------------------------------------------------------------------
// The report.

fn report(bench: &Bench, r: &Results) -> Section {
    let cp = bench.cpython_name();
    let mut section = Section::new("Pipes");
    let [floor_small, mproc_small] = &r.small;
    let [floor_ping, mproc_ping] = &r.ping;
    let runs = |p: &(Plan, Plan)| format!("{} / {}", p.0.iters, p.1.iters);

    section.text(format!(
        "`mproc::Pipe` against CPython's `multiprocessing.Pipe()` (`benches/{SCRIPT}`), both duplex, between \
         this process and one child started (fork) before the timing and serving requests: mproc's child is a \
         `#[mproc::task]` given its `Connection<u64>` as an argument, CPython's a `Process(target=…)`. Small \
         messages: the parent sends a count n, the child sends n typed messages (`conn.send(&i)` of a `u64`; \
         Python: `conn.send(i)` of an int), the parent receives them all; the time runs from the request to the \
         last message, so it includes one request's trip (about one round trip, well under 1 % here). \
         Ping-pong: the parent sends one `u64` (Python: a small int) and receives it back; each round trip is \
         one sample. `send_bytes`: the parent asks for `count` payloads of `size` bytes, the child sends them \
         with `send_bytes`, the parent receives them with `recv_bytes` (a new buffer per message; CPython: \
         `recv_bytes` too). The targets are checked on `recv_bytes`: `recv_bytes_into` a reused buffer was \
         measured too (in the floor and scaling tables) and is slower, since it receives the message into a \
         new buffer as `recv_bytes` does and then copies it into the caller's. \
         GB/s is 10⁹ payload bytes per second; rates are shown as median (p10–p90). × faster is mproc's rate \
         over CPython's (for the round trip, CPython's time over mproc's)."
    ));
    let header = ["workload", "mproc", &cp, "× faster", "target", "met", "runs (mproc / CPython)"];
    let mut table = Table::new(&header);
    let ratio = |theirs: &Option<Stats>, ours: &Stats| theirs.as_ref().map(|t| t.median / ours.median);
    let n = r.small_n as f64;
    let [x, target, met] =
        section.check("Pipe small messages vs CPython", ratio(&r.small_cpython, mproc_small), Target::AtLeast(10.0));
    table.row(vec![
        format!("small messages, child → parent ({} per run)", fmt_int(r.small_n)),
        rate(mproc_small, n, "msg/s"),
        r.small_cpython.as_ref().map(|s| rate(s, n, "msg/s")).unwrap_or_else(|| "not measured".into()),
        x,
        target,
        met,
        runs(&r.small_plans),
    ]);
    table.row(vec![
        "ping-pong round trip, small message".into(),
        mproc_ping.spread(),
        r.ping_cpython.as_ref().map(Stats::spread).unwrap_or_else(|| "not measured".into()),
        ratio(&r.ping_cpython, mproc_ping).map(fmt_ratio).unwrap_or_else(|| "—".into()),
        "vs the floor: below".into(),
        "—".into(),
        runs(&r.ping_plans),
    ]);
    for p in &r.bytes {
        let [x, target, met] = section.check(
            format!("Pipe send_bytes {} vs CPython", fmt_size(p.size)),
            ratio(&p.cpython, &p.recv_bytes),
            Target::AtLeast(5.0),
        );
        table.row(vec![
            format!("`send_bytes` {} payloads, child → parent ({} per run)", fmt_size(p.size), p.count),
            rate(&p.recv_bytes, p.bytes(), "B/s"),
            p.cpython.as_ref().map(|s| rate(s, p.bytes(), "B/s")).unwrap_or_else(|| "not measured".into()),
            x,
            target,
            met,
            runs(&r.bytes_plans),
        ]);
    }
    section.table(table);

    section.text(
        "Raw floor, interleaved run by run with the mproc rows it bounds: a child made with a bare `fork()` on an \
         AF_UNIX stream socketpair, driven by hand with libc. It writes each message as a frame like mproc's (an \
         8-byte length, then the payload) with one system call (`write` of 16 bytes for a small message, \
         `writev` of length and payload otherwise); the parent `read`s up to 64 KiB at a time and splits frames \
         out of that buffer, reading a payload's remainder straight into a reused buffer. Ping-pong: a 16-byte \
         message written and read back. mproc ÷ floor is mproc's time per run over the floor's (1.00× = as fast \
         as the floor).",
    );
    let mut floors = Table::new(&["workload", "mproc", "raw floor", "mproc ÷ floor", "target", "met"]);
    let [x, target, met] = section.check(
        "Pipe ping-pong vs raw socketpair ping-pong",
        Some(mproc_ping.median / floor_ping.median),
        Target::AtMost(1.5),
    );
    floors.row(vec!["ping-pong round trip".into(), mproc_ping.spread(), floor_ping.spread(), x, target, met]);
    floors.row(vec![
        format!("small messages ({} per run)", fmt_int(r.small_n)),
        rate(mproc_small, n, "msg/s"),
        rate(floor_small, n, "msg/s"),
        fmt_ratio(mproc_small.median / floor_small.median),
        "—".into(),
        "—".into(),
    ]);
    for p in &r.bytes {
        for (how, s) in [("recv_bytes", &p.recv_bytes), ("recv_bytes_into", &p.recv_into)] {
            floors.row(vec![
                format!("`send_bytes` {} × {}, {how}", p.count, fmt_size(p.size)),
                rate(s, p.bytes(), "B/s"),
                rate(&p.floor, p.bytes(), "B/s"),
                fmt_ratio(s.median / p.floor.median),
                "—".into(),
                "—".into(),
            ]);
        }
    }
    section.table(floors);

    section.text(format!(
        "Scaling: throughput against payload size, one child → parent stream of `send_bytes` payloads per run \
         (fewer messages for larger payloads: 32 MiB of payload per run, at most 20 000 messages), the same \
         children throughout: mproc with `recv_bytes` and with `recv_bytes_into` a reused buffer, CPython with \
         `recv_bytes`, and the raw floor. Runs per size (mproc / CPython): {}. Plot (log-log): \
         [ipc_scaling.svg](ipc_scaling.svg).",
        runs(&r.scaling_plans)
    ));
    let mut table = Table::new(&[
        "payload",
        "messages / run",
        "mproc recv_bytes",
        "mproc recv_bytes_into",
        &cp,
        "× faster",
        "raw floor",
        "mproc ÷ floor",
    ]);
    for p in &r.scaling {
        let b = p.bytes();
        table.row(vec![
            fmt_size(p.size),
            fmt_int(p.count as u64),
            rate(&p.recv_bytes, b, "B/s"),
            rate(&p.recv_into, b, "B/s"),
            p.cpython.as_ref().map(|s| rate(s, b, "B/s")).unwrap_or_else(|| "not measured".into()),
            p.cpython.as_ref().map(|t| fmt_ratio(t.median / p.recv_bytes.median)).unwrap_or_else(|| "—".into()),
            rate(&p.floor, b, "B/s"),
            fmt_ratio(p.recv_bytes.median / p.floor.median),
        ]);
    }
    section.table(table);
    section.text(
        "× faster and mproc ÷ floor are for `recv_bytes`. \
         ![Pipe throughput against payload size](ipc_scaling.svg)",
    );
    section.attach("ipc_scaling.svg", scaling_svg(&r.scaling, &cp));
    section
}

/// "1.23 GB/s (1.10–1.30)": `per_run` units per run at the median, p90 and p10
/// times (the slowest runs give the lowest rate).
fn rate(s: &Stats, per_run: f64, unit: &str) -> String {
    let r = |secs: f64| per_run / secs;
    let (scale, prefix) = match r(s.median) {
        x if x >= 1e9 => (1e9, "G"),
        x if x >= 1e6 => (1e6, "M"),
        x if x >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let sep = if unit == "B/s" || prefix.is_empty() { "" } else { " " };
    let num = |secs: f64| fmt_sig3(r(secs) / scale);
    format!("{} {prefix}{sep}{unit} ({}–{})", num(s.median), num(s.p90), num(s.p10))
}

/// "8 B", "4 KiB", "16 MiB".
fn fmt_size(bytes: usize) -> String {
    match bytes {
        b if b >= MIB && b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b >= KIB && b % KIB == 0 => format!("{} KiB", b / KIB),
        b => format!("{b} B"),
    }
}

/// A log-log plot of throughput (payload bytes per second) against payload size,
/// one line per runner, as SVG.
fn scaling_svg(points: &[BytesPoint], cpython: &str) -> String {
    let line = |name: &str, color, dashed, f: fn(&BytesPoint) -> Option<&Stats>| Series {
        name: name.into(),
        color,
        dashed,
        points: points.iter().filter_map(|p| Some((p.size as f64, p.bytes() / f(p)?.median))).collect(),
    };
    LogLogChart {
        title: "Pipe throughput, child → parent, against payload size".into(),
        x_label: "payload per message".into(),
        y_label: "payload bytes per second".into(),
        x_ticks: XTicks::AtPoints,
        x_tick_label: |size| fmt_size(size as usize),
        y_tick_label: rate_label,
        series: vec![
            line("mproc recv_bytes", "#1f77b4", false, |p| Some(&p.recv_bytes)),
            line("mproc recv_bytes_into", "#1f77b4", true, |p| Some(&p.recv_into)),
            line(cpython, "#ff7f0e", false, |p| p.cpython.as_ref()),
            line("raw socketpair", "#7f7f7f", false, |p| Some(&p.floor)),
        ],
    }
    .to_svg()
}

/// "1 MB/s", "10 MB/s", "100 MB/s", "1 GB/s" … for a power of ten of bytes per second.
fn rate_label(bytes_per_sec: f64) -> String {
    const UNITS: [&str; 5] = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
    let e = bytes_per_sec.log10().round() as i32;
    match UNITS.get(e.div_euclid(3) as usize) {
        Some(name) if e >= 0 => format!("{} {name}", 10u64.pow(e.rem_euclid(3) as u32)),
        _ => format!("1e{e} B/s"),
    }
}
