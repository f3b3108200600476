//! Pipes and queues. `mproc::Pipe` between the parent and one child process
//! against CPython's `multiprocessing.Pipe` (fork) and a raw floor: a bare AF_UNIX
//! stream socketpair between two processes, driven by hand with libc
//! `write`/`writev`/`read`. `mproc::Queue` from one child to the parent against
//! CPython's `multiprocessing.Queue` (fork).
//!
//! Every child (mproc's, CPython's, the floor's) is started before the timing and
//! serves commands (over a pipe, for the queues too): the parent asks for a batch
//! of messages and times from that request to the batch's last message received,
//! or times one round trip.

use std::sync::Arc;

use mproc::{Connection, Queue};
use serde::{Deserialize, Serialize};

use crate::common::child::Child;
use crate::common::floor::SocketChild;
use crate::common::plot::{LogLogChart, Series, XTicks};
use crate::common::python::samples;
use crate::common::report::cells::{ratio, runs};
use crate::common::report::{Section, Table, Target};
use crate::common::stats::{Plan, Stats, fmt_int, fmt_rate, fmt_ratio, measure, measure_interleaved};
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
// Queues: `mproc::Queue` between a child (the producer) and this process.

/// A byte payload the codec writes as one byte string: its length, then the bytes
/// in one copy (`serialize_bytes`, what `serde_bytes` does). A plain `Vec<u8>` is a
/// sequence to serde: one serializer call per byte when it is put, one visitor
/// call per byte when it is got. The bytes are shared (`Arc`), so that the
/// producer puts the same payload again without copying it first, as CPython's
/// producer puts the same `bytes` object again.
#[derive(Clone)]
struct Payload(Arc<Vec<u8>>);

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Payload, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Payload, E> {
                Ok(Payload(Arc::new(v.to_vec())))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
                Ok(Payload(Arc::new(v)))
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

/// Puts `0..n` on `q` for each `n` it receives, until the parent closes its end
/// (or the queue is closed).
#[mproc::task]
fn queue_small_sender(conn: Connection<u64>, q: Queue<u64>) {
    while let Ok(n) = conn.recv() {
        for i in 0..n {
            if q.put(i).is_err() {
                return;
            }
        }
    }
}

/// What a [`queue_bytes_sender`] command asks for: [`Payload`]s on the first
/// queue, or plain `Vec<u8>`s (each a fresh copy of the payload) on the second.
const AS_PAYLOAD: u64 = 0;
const AS_VEC: u64 = 1;

/// For each `size`, `count`, `how` it receives (three messages), puts `count`
/// payloads of `size` bytes, until the parent closes its end (or the queues are
/// closed). The payload is made once per size.
#[mproc::task]
fn queue_bytes_sender(conn: Connection<u64>, payloads: Queue<Payload>, vecs: Queue<Vec<u8>>) {
    let mut payload = Payload(Arc::new(Vec::new()));
    loop {
        let (Ok(size), Ok(count), Ok(how)) = (conn.recv(), conn.recv(), conn.recv()) else { return };
        if payload.0.len() != size as usize {
            payload = Payload(Arc::new(vec![0xAB; size as usize]));
        }
        for _ in 0..count {
            let put = if how == AS_VEC { vecs.put(payload.0.to_vec()) } else { payloads.put(payload.clone()) };
            if put.is_err() {
                return;
            }
        }
    }
}

/// `n` small ints, child → parent through `q`: the command goes over the pipe,
/// the items come back through the queue; checks their sum.
fn queue_small(child: &Child, q: &Queue<u64>, n: u64) {
    child.conn().send(&n).expect("mproc: send failed");
    let mut total = 0;
    for _ in 0..n {
        total += q.get().expect("mproc: Queue::get failed");
    }
    assert_eq!(total, n * (n - 1) / 2);
}

/// A child putting byte payloads on two queues of `capacity` bytes each (see
/// [`queue_bytes_sender`]).
struct BytesQueues {
    child: Child,
    payloads: Queue<Payload>,
    vecs: Queue<Vec<u8>>,
    capacity: usize,
}

impl BytesQueues {
    fn start(capacity: usize) -> BytesQueues {
        let payloads = Queue::<Payload>::builder().capacity_bytes(capacity).build().expect("mproc: Queue failed");
        let vecs = Queue::<Vec<u8>>::builder().capacity_bytes(capacity).build().expect("mproc: Queue failed");
        let child = Child::start(|b, c| b.spawn(queue_bytes_sender, (c, payloads.clone(), vecs.clone())));
        let (p, v) = (payloads.clone(), vecs.clone());
        let child = child.closing(move || {
            p.close();
            v.close();
        });
        BytesQueues { child, payloads, vecs, capacity }
    }

    /// `count` payloads of `size` bytes, child → parent, as [`Payload`]s or as
    /// plain `Vec<u8>`s (`how`), each got as a new value.
    fn batch(&self, size: usize, count: usize, how: u64) {
        for word in [size as u64, count as u64, how] {
            self.child.conn().send(&word).expect("mproc: send failed");
        }
        for _ in 0..count {
            let got = if how == AS_VEC {
                self.vecs.get().expect("mproc: Queue::get failed").len()
            } else {
                self.payloads.get().expect("mproc: Queue::get failed").0.len()
            };
            assert_eq!(got, size);
        }
    }

    /// Sends `size`-byte payloads around the whole ring once, untimed, so that no
    /// timed run pays for the ring's first page faults (in either process).
    fn prime(&self, size: usize, how: u64) {
        self.batch(size, self.capacity / size + 2, how);
    }

    fn finish(self) {
        self.child.finish();
    }
}

/// The ring of a queue for `size`-byte payloads: room for four of them (each
/// takes its length plus up to 24 bytes), in whole MiB, at least the default 4 MiB.
fn queue_capacity(size: usize) -> usize {
    (4 * (size + 24)).next_multiple_of(MIB).max(4 * MIB)
}

/// Small ints per queue run.
fn queue_small_count(bench: &Bench) -> u64 {
    if bench.mode == Mode::Smoke { 2_000 } else { 200_000 }
}

/// The queue rows of the 1 MiB payload: (payload, messages per run).
fn queue_bytes_row(bench: &Bench) -> (usize, usize) {
    if bench.mode == Mode::Smoke { (MIB, 2) } else { (MIB, 32) }
}

/// What the queue workloads measured, per run (seconds).
struct QueueResults {
    small_n: u64,
    small: Stats,
    small_cpython: Option<Stats>,
    small_plans: (Plan, Plan),
    /// The 1 MiB row; `vec` is the same payload as a plain `Vec<u8>`.
    bytes: QueuePoint,
    bytes_plans: (Plan, Plan),
    scaling: Vec<QueuePoint>,
    scaling_plans: (Plan, Plan),
}

/// One payload size: runs of `count` messages of `size` bytes through a queue of
/// `capacity` bytes.
struct QueuePoint {
    size: usize,
    count: usize,
    capacity: usize,
    mproc: Stats,
    vec: Option<Stats>,
    cpython: Option<Stats>,
}

impl QueuePoint {
    fn bytes(&self) -> f64 {
        (self.size * self.count) as f64
    }
}

/// The queue workloads and CPython's figures; `sizes` and `counts`: the scaling
/// runs (the same as the pipe's).
fn measure_queues(bench: &Bench, sizes: &[usize], counts: &[usize]) -> QueueResults {
    // 1. Small ints.
    let small_n = queue_small_count(bench);
    let small_plans = (bench.plan(3, 30), bench.capped_plan(1, 5));
    let q = Queue::<u64>::new().expect("mproc: Queue failed");
    let child = Child::start(|b, c| b.spawn(queue_small_sender, (c, q.clone())));
    let closer = q.clone();
    let child = child.closing(move || closer.close());
    let small = measure(&format!("mproc Queue, {small_n} × u64"), small_plans.0, || queue_small(&child, &q, small_n));
    child.finish();
    let n_arg = small_n.to_string();
    let small_cpython = bench.cpython(
        &format!("CPython Queue, {small_n} small ints"),
        SCRIPT,
        &["--workload", "queue_small", "--items", &n_arg],
        small_plans.1,
    );

    // 2. 1 MiB payloads: as `Payload`s (the row the target is checked on) and as
    // plain `Vec<u8>`s, interleaved run by run.
    let (size, count) = queue_bytes_row(bench);
    let bytes_plans = (bench.plan(2, 20), bench.plan(2, 20));
    let queues = BytesQueues::start(queue_capacity(size));
    queues.prime(size, AS_PAYLOAD);
    queues.prime(size, AS_VEC);
    let what = format!("{count} × {}", fmt_size(size));
    let labels = [format!("mproc Queue {what}"), "as Vec<u8>".to_string()];
    let all = measure_interleaved(&[&labels[0], &labels[1]], bytes_plans.0, |i| {
        queues.batch(size, count, if i == 0 { AS_PAYLOAD } else { AS_VEC })
    });
    let [mproc, vec] = <[Stats; 2]>::try_from(all).expect("two variants");
    let capacity = queues.capacity;
    queues.finish();
    let (s, c) = (size.to_string(), count.to_string());
    let cpython = bench.cpython(
        &format!("CPython Queue {what}"),
        SCRIPT,
        &["--workload", "queue_bytes", "--size", &s, "--count", &c],
        bytes_plans.1,
    );
    let bytes = QueuePoint { size, count, capacity, mproc, vec: Some(vec), cpython };

    // 3. Scaling with the payload size: one child and queue per capacity (see
    // `queue_capacity`), started when its first size comes.
    let scaling_plans = (bench.capped_plan(2, 15), bench.capped_plan(1, 7));
    let cpython_points = scaling_cpython(bench, "queue_scaling", "CPython Queue", sizes, counts, scaling_plans.1);
    let mut queues: Option<BytesQueues> = None;
    let mut scaling = Vec::new();
    for (i, (&size, &count)) in sizes.iter().zip(counts).enumerate() {
        let capacity = queue_capacity(size);
        if queues.as_ref().is_none_or(|q| q.capacity != capacity) {
            if let Some(q) = queues.take() {
                q.finish();
            }
            let q = BytesQueues::start(capacity);
            // Primed with the largest size of this capacity.
            let largest = sizes.iter().copied().filter(|&s| queue_capacity(s) == capacity).max().unwrap_or(size);
            q.prime(largest, AS_PAYLOAD);
            queues = Some(q);
        }
        let q = queues.as_ref().expect("started above");
        let mproc = measure(&format!("mproc Queue {count} × {}", fmt_size(size)), scaling_plans.0, || {
            q.batch(size, count, AS_PAYLOAD)
        });
        let cpython = cpython_points.as_ref().and_then(|p| p.get(i).cloned());
        scaling.push(QueuePoint { size, count, capacity, mproc, vec: None, cpython });
    }
    if let Some(q) = queues {
        q.finish();
    }

    QueueResults { small_n, small, small_cpython, small_plans, bytes, bytes_plans, scaling, scaling_plans }
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
    let sizes = scaling_sizes(bench);
    let counts: Vec<usize> = sizes.iter().map(|&s| scaling_count(bench, s)).collect();
    eprintln!("pipes");
    let pipes = measure_pipes(bench, &sizes, &counts);
    eprintln!("queues");
    let queues = measure_queues(bench, &sizes, &counts);
    report(bench, &pipes, &queues)
}

/// The pipe workloads, with their floors and CPython's figures; `sizes` and
/// `counts`: the scaling runs.
fn measure_pipes(bench: &Bench, sizes: &[usize], counts: &[usize]) -> Results {
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
    let cpython_points = scaling_cpython(bench, "scaling", "CPython send_bytes", sizes, counts, scaling_plans.1);
    let scaling = sizes
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(i, (&size, &count))| {
            let theirs = cpython_points.as_ref().and_then(|p| p.get(i).cloned());
            bytes_point(bench, &mut raw_stream, bytes_child.conn(), &mut buf, size, count, scaling_plans, Some(theirs))
        })
        .collect();
    bytes_child.finish();
    drop(raw_stream);

    Results {
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
    }
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

/// CPython's scaling run (`workload`: `scaling` for the pipe, `queue_scaling`):
/// every size in one script run (one child throughout).
fn scaling_cpython(
    bench: &Bench,
    workload: &str,
    what: &str,
    sizes: &[usize],
    counts: &[usize],
    plan: Plan,
) -> Option<Vec<Stats>> {
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let (sizes_arg, counts_arg) = (join(sizes), join(counts));
    let args = ["--workload", workload, "--sizes", &sizes_arg, "--counts", &counts_arg];
    let label = format!("{what}, {} sizes", sizes.len());
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

fn report(bench: &Bench, r: &Results, q: &QueueResults) -> Section {
    let cp = bench.cpython_name();
    let mut section = Section::new("Pipes and queues");
    section.text("### Pipes");
    let [floor_small, mproc_small] = &r.small;
    let [floor_ping, mproc_ping] = &r.ping;

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
    let n = r.small_n as f64;
    let [x, target, met] =
        section.check("Pipe small messages vs CPython", ratio(&r.small_cpython, mproc_small), Target::AtLeast(10.0));
    table.row(vec![
        format!("small messages, child → parent ({} per run)", fmt_int(r.small_n)),
        fmt_rate(mproc_small, n, "msg/s"),
        r.small_cpython.as_ref().map(|s| fmt_rate(s, n, "msg/s")).unwrap_or_else(|| "not measured".into()),
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
            fmt_rate(&p.recv_bytes, p.bytes(), "B/s"),
            p.cpython.as_ref().map(|s| fmt_rate(s, p.bytes(), "B/s")).unwrap_or_else(|| "not measured".into()),
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
        fmt_rate(mproc_small, n, "msg/s"),
        fmt_rate(floor_small, n, "msg/s"),
        fmt_ratio(mproc_small.median / floor_small.median),
        "—".into(),
        "—".into(),
    ]);
    for p in &r.bytes {
        for (how, s) in [("recv_bytes", &p.recv_bytes), ("recv_bytes_into", &p.recv_into)] {
            floors.row(vec![
                format!("`send_bytes` {} × {}, {how}", p.count, fmt_size(p.size)),
                fmt_rate(s, p.bytes(), "B/s"),
                fmt_rate(&p.floor, p.bytes(), "B/s"),
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
            fmt_rate(&p.recv_bytes, b, "B/s"),
            fmt_rate(&p.recv_into, b, "B/s"),
            p.cpython.as_ref().map(|s| fmt_rate(s, b, "B/s")).unwrap_or_else(|| "not measured".into()),
            p.cpython.as_ref().map(|t| fmt_ratio(t.median / p.recv_bytes.median)).unwrap_or_else(|| "—".into()),
            fmt_rate(&p.floor, b, "B/s"),
            fmt_ratio(p.recv_bytes.median / p.floor.median),
        ]);
    }
    section.table(table);
    section.text(
        "× faster and mproc ÷ floor are for `recv_bytes`. The plot, with the queues' figures, follows the \
         Queues tables.",
    );

    report_queues(&mut section, &cp, r, q);
    section.text("![Pipe and Queue throughput against payload size](ipc_scaling.svg)");
    section.attach("ipc_scaling.svg", scaling_svg(&r.scaling, &q.scaling, &cp));
    section
}

/// The Queues part of the section; `p`: the pipe figures it refers to.
fn report_queues(section: &mut Section, cp: &str, p: &Results, q: &QueueResults) {
    let b = &q.bytes;
    section.text("### Queues");
    section.text(format!(
        "`mproc::Queue` against CPython's `multiprocessing.Queue()` (`benches/{SCRIPT}`, fork), child → parent; \
         what is measured is described under the table."
    ));
    let header = ["workload", "mproc", cp, "× faster", "target", "met", "runs (mproc / CPython)"];
    let mut table = Table::new(&header);
    let n = q.small_n as f64;
    let [x, target, met] =
        section.check("Queue small ints vs CPython", ratio(&q.small_cpython, &q.small), Target::AtLeast(10.0));
    table.row(vec![
        format!("Queue, small ints, child → parent ({} per run)", fmt_int(q.small_n)),
        fmt_rate(&q.small, n, "msg/s"),
        q.small_cpython.as_ref().map(|s| fmt_rate(s, n, "msg/s")).unwrap_or_else(|| "not measured".into()),
        x,
        target,
        met,
        runs(&q.small_plans),
    ]);
    let [x, target, met] = section.check(
        format!("Queue {} bytes payloads vs CPython", fmt_size(b.size)),
        ratio(&b.cpython, &b.mproc),
        Target::AtLeast(5.0),
    );
    table.row(vec![
        format!("Queue, {} bytes payloads, child → parent ({} per run)", fmt_size(b.size), b.count),
        fmt_rate(&b.mproc, b.bytes(), "B/s"),
        b.cpython.as_ref().map(|s| fmt_rate(s, b.bytes(), "B/s")).unwrap_or_else(|| "not measured".into()),
        x,
        target,
        met,
        runs(&q.bytes_plans),
    ]);
    section.table(table);
    section.text(format!(
        "Each side has one child, started before the timing: the producer. It gets the queue as an argument \
         (mproc: a `#[mproc::task]` given a clone of the `Queue`; CPython: `Process(args=…)`) and a duplex pipe \
         for commands; the queue carries only the items. A run: this process (the consumer) sends a command \
         over the pipe (n; or size and count), the child puts the items, this process takes them one by one \
         with `get()` (no timeout); the time runs from the command to the last item taken, so it includes the \
         command's trip (at most a pipe round trip, well under 1 % here). Small ints: the child puts 0..n \
         (`q.put(i)` of a `u64`; Python: of an int), the parent checks their sum; a default queue (4 MiB ring). \
         Bytes: the child puts `count` payloads of `size` bytes, the same payload each time: for mproc a \
         `Payload` newtype defined in the bench, an `Arc<Vec<u8>>` whose `Serialize` is `serialize_bytes` (a \
         length and one copy, as `serde_bytes` does; putting it again clones the `Arc`, not the bytes), for \
         CPython the same `bytes` object; each `get()` returns a new value (mproc: a new `Vec<u8>` in the \
         payload). The bytes queue has `capacity_bytes({cap})`, room for four {size} payloads, and its ring was \
         sent round once before the timing so that no run pays for its first page faults. mproc's `put` \
         encodes the item into a new buffer and copies that into the queue's shared memory under the queue's \
         lock before it returns; `get` copies the item out under the lock into a new buffer and decodes it \
         (for a payload, a copy into a third buffer). CPython's `put` hands the object to a feeder thread that \
         pickles it and writes it to a pipe; `get` reads one message under a lock and unpickles it. \
         Allocator state matters for the bytes rows: those buffers are allocated and freed per message, and \
         both mproc processes (the child is a fork of this one) have glibc malloc's thresholds as the pipe \
         rows above left them: after their 16 MiB buffers were freed, a freed 1 MiB buffer stays in the heap for \
         the next message. In a process that has not freed a buffer that large, glibc gives the heap's top \
         back to the kernel after each `get` (two buffers of the payload's size are freed) and every message \
         page-faults its buffers in again: several times slower at 1 MiB. × faster is mproc's rate over \
         CPython's.",
        cap = fmt_size(b.capacity),
        size = fmt_size(b.size),
    ));

    section.text(
        "For reference, the queue rows beside other figures of this run (no targets). The raw socketpair floor \
         and the pipe rows are from the Pipes tables above, measured earlier in the run, not interleaved with \
         the queue's; the plain `Vec<u8>` row was interleaved run by run with the queue's `Payload` row, through \
         a second queue of the same capacity in the same child. A `Vec<u8>` is a sequence to serde: the codec \
         writes it one `u8` at a time on `put` and reads it back one element at a time on `get`, and the \
         producer copies its payload into a new `Vec` for each `put` (put takes the value). The queue is shared \
         memory, not a socket, so it may beat the socketpair. Queue ÷ other is the queue's time per message over \
         the other's (below 1.00× = the queue is faster).",
    );
    let mut refs = Table::new(&["workload", "mproc Queue", "compared with", "its rate", "Queue ÷ other"]);
    let [floor_small, pipe_small] = &p.small;
    let per_msg = |s: &Stats, count: f64| s.median / count;
    let pn = p.small_n as f64;
    for (what, s) in [
        (format!("raw socketpair floor, 8-byte messages ({} per run)", fmt_int(p.small_n)), floor_small),
        (format!("mproc Pipe, small messages ({} per run)", fmt_int(p.small_n)), pipe_small),
    ] {
        refs.row(vec![
            "small ints".into(),
            fmt_rate(&q.small, n, "msg/s"),
            what,
            fmt_rate(s, pn, "msg/s"),
            fmt_ratio(per_msg(&q.small, n) / per_msg(s, pn)),
        ]);
    }
    if let Some(vec) = &b.vec {
        refs.row(vec![
            format!("{} payloads", fmt_size(b.size)),
            fmt_rate(&b.mproc, b.bytes(), "B/s"),
            "mproc Queue, the payload as a plain `Vec<u8>`".into(),
            fmt_rate(vec, b.bytes(), "B/s"),
            fmt_ratio(b.mproc.median / vec.median),
        ]);
    }
    if let Some(pb) = p.bytes.iter().find(|pb| pb.size == b.size) {
        for (what, s) in
            [("mproc Pipe `send_bytes` / `recv_bytes`", &pb.recv_bytes), ("raw socketpair floor", &pb.floor)]
        {
            let theirs = pb.bytes();
            refs.row(vec![
                format!("{} payloads", fmt_size(b.size)),
                fmt_rate(&b.mproc, b.bytes(), "B/s"),
                format!("{what}, {} × {}", pb.count, fmt_size(pb.size)),
                fmt_rate(s, theirs, "B/s"),
                fmt_ratio(per_msg(&b.mproc, b.count as f64) / per_msg(s, pb.count as f64)),
            ]);
        }
    }
    section.table(refs);

    section.text(format!(
        "Scaling: the bytes workload at every payload size of the pipe's scaling table, with the same messages \
         per run; one child and queue per ring size (room for four payloads, at least the default 4 MiB), its \
         ring sent round once before the first timed run. The mproc Pipe column repeats the pipe's `recv_bytes` \
         figure from the table above. Runs per size (mproc / CPython): {}.",
        runs(&q.scaling_plans)
    ));
    let mut table = Table::new(&[
        "payload",
        "messages / run",
        "queue ring",
        "mproc Queue",
        &format!("{cp} Queue"),
        "× faster",
        "mproc Pipe `recv_bytes`",
    ]);
    for qp in &q.scaling {
        let bytes = qp.bytes();
        let pipe = p.scaling.iter().find(|pp| pp.size == qp.size && pp.count == qp.count);
        table.row(vec![
            fmt_size(qp.size),
            fmt_int(qp.count as u64),
            fmt_size(qp.capacity),
            fmt_rate(&qp.mproc, bytes, "B/s"),
            qp.cpython.as_ref().map(|s| fmt_rate(s, bytes, "B/s")).unwrap_or_else(|| "not measured".into()),
            qp.cpython.as_ref().map(|t| fmt_ratio(t.median / qp.mproc.median)).unwrap_or_else(|| "—".into()),
            pipe.map(|pp| fmt_rate(&pp.recv_bytes, bytes, "B/s")).unwrap_or_else(|| "—".into()),
        ]);
    }
    section.table(table);
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
/// one line per runner (pipes, then queues), as SVG.
fn scaling_svg(points: &[BytesPoint], queues: &[QueuePoint], cpython: &str) -> String {
    let line = |name: &str, color, dashed, f: fn(&BytesPoint) -> Option<&Stats>| Series {
        name: name.into(),
        color,
        dashed,
        points: points.iter().filter_map(|p| Some((p.size as f64, p.bytes() / f(p)?.median))).collect(),
    };
    let queue_line = |name: String, color, f: fn(&QueuePoint) -> Option<&Stats>| Series {
        name,
        color,
        dashed: false,
        points: queues.iter().filter_map(|p| Some((p.size as f64, p.bytes() / f(p)?.median))).collect(),
    };
    LogLogChart {
        title: "Pipe and Queue throughput, child → parent, against payload size".into(),
        x_label: "payload per message".into(),
        y_label: "payload bytes per second".into(),
        x_ticks: XTicks::AtPoints,
        x_tick_label: |size| fmt_size(size as usize),
        y_tick_label: rate_label,
        series: vec![
            line("mproc recv_bytes", "#1f77b4", false, |p| Some(&p.recv_bytes)),
            line("mproc recv_bytes_into", "#1f77b4", true, |p| Some(&p.recv_into)),
            line(&format!("{cpython} Pipe"), "#ff7f0e", false, |p| p.cpython.as_ref()),
            line("raw socketpair", "#7f7f7f", false, |p| Some(&p.floor)),
            queue_line("mproc Queue".into(), "#2ca02c", |p| Some(&p.mproc)),
            queue_line(format!("{cpython} Queue"), "#d62728", |p| p.cpython.as_ref()),
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
