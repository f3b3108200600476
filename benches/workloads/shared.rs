//! Shared state: `mproc::Lock`, `Value`, `Array` and `SharedMemory` against
//! CPython's `multiprocessing.Lock`, `Value`, `Array` and
//! `multiprocessing.shared_memory.SharedMemory` (fork), with raw floors: a bare
//! glibc robust process-shared pthread mutex, locked by hand with libc, and a
//! bare `memcpy` between two private buffers.
//!
//! Children (mproc's and CPython's) are started before the timing and serve
//! commands over a duplex pipe, except in the Array row that times the whole
//! cycle, process start included.

use std::hint::black_box;
use std::mem::MaybeUninit;

use mproc::{Array, Connection, Lock, Process, SharedMemory, StartMethod, Value};

use crate::common::child::Child;
use crate::common::python::samples;
use crate::common::report::cells::{faster, rate, ratio, runs, time};
use crate::common::report::{Section, Table, Target};
use crate::common::stats::{Plan, Stats, fmt_int, fmt_rate, fmt_ratio, measure_interleaved};
use crate::common::{Bench, Mode};

const SCRIPT: &str = "cpython_shared.py";
const MIB: usize = 1 << 20;
/// The byte the shared-memory writer's payload is made of; its first 8 bytes
/// carry the round number, so that a read sees whether this round's write
/// happened.
const PATTERN: u8 = 0xAB;

#[mproc::task]
fn noop() {}

/// For each `n` it receives, does `n` locked increments of `v` and answers `n`,
/// until the parent closes its end.
#[mproc::task]
fn incrementer(conn: Connection<u64>, v: Value<i64>) {
    while let Ok(n) = conn.recv() {
        for _ in 0..n {
            *v.lock().expect("mproc: Value::lock failed") += 1;
        }
        if conn.send(&n).is_err() {
            return;
        }
    }
}

/// Fills `a` once, then returns: the child of the Array cycle.
#[mproc::task]
fn fill(a: Array<f64>) {
    fill_array(&a);
}

/// Fills `a` for each command it receives and answers it, until the parent
/// closes its end.
#[mproc::task]
fn filler(conn: Connection<u64>, a: Array<f64>) {
    while let Ok(k) = conn.recv() {
        fill_array(&a);
        if conn.send(&k).is_err() {
            return;
        }
    }
}

/// `a[i] = i`, under one guard.
fn fill_array(a: &Array<f64>) {
    fill_slice(&mut a.lock().expect("mproc: Array::lock failed"));
}

fn fill_slice(xs: &mut [f64]) {
    for (i, x) in xs.iter_mut().enumerate() {
        *x = i as f64;
    }
}

/// Sums `xs` (filled by [`fill_slice`]) and checks the sum: exact, since every
/// partial sum is an integer below 2⁵³.
fn check_sum(xs: &[f64]) {
    let n = xs.len() as u64;
    let sum: f64 = xs.iter().sum();
    assert_eq!(sum, (n * n.saturating_sub(1) / 2) as f64, "wrong sum of the array");
}

/// Holds a private buffer of the segment's size (touched once, at start); for
/// each round number it receives, writes it into the buffer's first 8 bytes,
/// copies the whole buffer into the segment with `write_at` and answers the
/// round, until the parent closes its end.
#[mproc::task]
fn shm_writer(conn: Connection<u64>, shm: SharedMemory) {
    let mut data = vec![PATTERN; shm.size()];
    while let Ok(round) = conn.recv() {
        data[..8].copy_from_slice(&round.to_le_bytes());
        shm.write_at(0, &data).expect("mproc: SharedMemory::write_at failed");
        if conn.send(&round).is_err() {
            return;
        }
    }
}

/// Checks a copy of the segment written in `round`: its round number and its
/// last byte (a full scan would cost as much as the copy).
fn check_copy(buf: &[u8], round: u64) {
    assert_eq!(buf[..8], round.to_le_bytes(), "the read did not see this round's write");
    assert_eq!(buf[buf.len() - 1], PATTERN, "wrong bytes at the end of the segment");
}

// ---------------------------------------------------------------------------
// Lock, uncontended.

/// The lock floor: a robust, process-shared, error-checking glibc pthread mutex
/// (what `mproc::Lock` is made of), in a page of `MAP_SHARED | MAP_ANONYMOUS`
/// memory, locked and unlocked by hand.
struct RawMutex {
    page: *mut libc::c_void,
}

const PAGE: usize = 4096;

impl RawMutex {
    fn new() -> RawMutex {
        // SAFETY: a new anonymous mapping at an address of the kernel's choosing;
        // the result is checked before use.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(page, libc::MAP_FAILED, "floor: mmap failed: {}", std::io::Error::last_os_error());
        let raw = RawMutex { page };
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        let a = attr.as_mut_ptr();
        // SAFETY: `attr` is initialised by pthread_mutexattr_init before any other
        // use and destroyed after; the mutex lies at the start of a fresh,
        // page-aligned, writable mapping that no other thread can reach yet.
        let rc = unsafe {
            let mut rc = libc::pthread_mutexattr_init(a);
            assert_eq!(rc, 0, "floor: pthread_mutexattr_init failed");
            for set in [
                libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED),
                libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST),
                libc::pthread_mutexattr_settype(a, libc::PTHREAD_MUTEX_ERRORCHECK),
                libc::pthread_mutex_init(raw.mutex(), a),
            ] {
                rc = if rc == 0 { set } else { rc };
            }
            libc::pthread_mutexattr_destroy(a);
            rc
        };
        assert_eq!(rc, 0, "floor: cannot make the mutex: {}", std::io::Error::from_raw_os_error(rc));
        raw
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.page.cast()
    }

    /// Locks and unlocks the mutex, checking both results as mproc does.
    fn lock_unlock(&self) {
        // SAFETY: the mutex was initialised in `new` and stays mapped until drop;
        // this thread unlocks it only after locking it.
        let (locked, unlocked) =
            unsafe { (libc::pthread_mutex_lock(self.mutex()), libc::pthread_mutex_unlock(self.mutex())) };
        assert!(locked == 0 && unlocked == 0, "floor: lock {locked}, unlock {unlocked}");
    }
}

impl Drop for RawMutex {
    fn drop(&mut self) {
        // SAFETY: no one holds the mutex (every lock_unlock released it); the page
        // is ours and nothing refers to it after this.
        unsafe {
            libc::pthread_mutex_destroy(self.mutex());
            libc::munmap(self.page, PAGE);
        }
    }
}

/// What the lock rows measured, per acquire+release pair (seconds).
struct LockResults {
    /// Pairs per timed run.
    n: u64,
    /// mproc `acquire()` + `release()`, mproc `lock()` guard, the raw floor,
    /// `std::sync::Mutex`.
    pairs: Stats,
    guard: Stats,
    floor: Stats,
    std: Stats,
    /// CPython `acquire(); release()`, `with lock: pass`.
    cpython: Option<Stats>,
    cpython_with: Option<Stats>,
    plans: (Plan, Plan),
}

fn measure_lock(bench: &Bench) -> LockResults {
    let n: u64 = if bench.mode == Mode::Smoke { 1_000 } else { 100_000 };
    let plans = (bench.plan(10, 100), bench.plan(3, 30));
    let lock = Lock::new().expect("mproc: Lock::new failed");
    let raw = RawMutex::new();
    let std_mutex = std::sync::Mutex::new(());
    let labels = [format!("mproc Lock acquire+release × {n}"), "lock() guard".into(), "raw mutex".into(), "std".into()];
    let all = measure_interleaved(&[&labels[0], &labels[1], &labels[2], &labels[3]], plans.0, |i| match i {
        0 => {
            for _ in 0..n {
                lock.acquire().expect("mproc: acquire failed");
                lock.release().expect("mproc: release failed");
            }
        }
        1 => {
            for _ in 0..n {
                drop(lock.lock().expect("mproc: lock failed"));
            }
        }
        2 => {
            for _ in 0..n {
                raw.lock_unlock();
            }
        }
        _ => {
            for _ in 0..n {
                drop(black_box(&std_mutex).lock().expect("std Mutex poisoned"));
            }
        }
    });
    let per_pair = 1.0 / n as f64;
    let [pairs, guard, floor, std] = <[Stats; 4]>::try_from(all).expect("four variants").map(|s| s.scaled(per_pair));

    let n_arg = n.to_string();
    let value =
        bench.cpython_json(&format!("CPython Lock × {n}"), SCRIPT, &["--workload", "lock", "--items", &n_arg], plans.1);
    let [cpython, cpython_with] =
        ["samples", "with"].map(|k| value.as_ref().and_then(|v| samples(v, k)).map(|s| s.scaled(per_pair)));
    bench.end_cpython_json(cpython.is_some() && cpython_with.is_some(), plans.1);
    LockResults { n, pairs, guard, floor, std, cpython, cpython_with, plans }
}

// ---------------------------------------------------------------------------
// Locked increments of a Value, two processes.

struct IncrementResults {
    /// Increments per child per run.
    n: u64,
    /// Two children, `n` each.
    two: Stats,
    /// This process alone, `2n` increments of another Value: no contention.
    one: Stats,
    cpython: Option<Stats>,
    plans: (Plan, Plan),
}

fn measure_increments(bench: &Bench) -> IncrementResults {
    let n: u64 = if bench.mode == Mode::Smoke { 1_000 } else { 100_000 };
    let plans = (bench.plan(3, 30), bench.capped_plan(1, 10));
    let v = Value::<i64>::new(0).expect("mproc: Value::new failed");
    let children = [(); 2].map(|_| Child::start(|b, c| b.spawn(incrementer, (c, v.clone()))));
    let solo = Value::<i64>::new(0).expect("mproc: Value::new failed");
    let labels = [format!("mproc 2 × {n} locked increments"), format!("1 process × {}", 2 * n)];
    let all = measure_interleaved(&[&labels[0], &labels[1]], plans.0, |i| {
        let (value, total) = match i {
            0 => {
                // The children are idle: no one else holds the lock.
                v.set(0).expect("mproc: Value::set failed");
                for c in &children {
                    c.send(n);
                }
                for c in &children {
                    c.answered(n);
                }
                (&v, 2 * n)
            }
            _ => {
                solo.set(0).expect("mproc: Value::set failed");
                for _ in 0..2 * n {
                    *solo.lock().expect("mproc: Value::lock failed") += 1;
                }
                (&solo, 2 * n)
            }
        };
        let got = value.get().expect("mproc: Value::get failed");
        assert_eq!(got, total as i64, "locked increments lost updates: the final value is {got}, not {total}");
    });
    for c in children {
        c.finish();
    }
    let [two, one] = <[Stats; 2]>::try_from(all).expect("two variants");
    let n_arg = n.to_string();
    let cpython = bench.cpython(
        &format!("CPython 2 × {n} locked increments"),
        SCRIPT,
        &["--workload", "increments", "--items", &n_arg],
        plans.1,
    );
    IncrementResults { n, two, one, cpython, plans }
}

// ---------------------------------------------------------------------------
// Array<f64>: a child fills it, the parent sums it.

struct ArrayResults {
    /// Elements.
    n: usize,
    /// The whole cycle: new array, start a child that fills it, join, sum.
    cold: Stats,
    /// Start + join of a child running a no-op task, interleaved with `cold`.
    noop: Stats,
    /// The cycle without the child: new array, fill and sum in this process,
    /// interleaved with `cold`.
    no_child: Stats,
    /// The child already running, the array already mapped: command, fill,
    /// answer, sum.
    warm: Stats,
    /// Fill and sum of a private `Vec<f64>` in this process, interleaved with `warm`.
    private: Stats,
    cold_cpython: Option<Stats>,
    warm_cpython: Option<Stats>,
    plans: (Plan, Plan),
}

fn measure_array(bench: &Bench) -> ArrayResults {
    let n: usize = if bench.mode == Mode::Smoke { 10_000 } else { 1_000_000 };
    let plans = (bench.plan(5, 50), bench.capped_plan(1, 10));

    let labels = [format!("mproc Array cycle, {n} × f64"), "start+join no-op".into(), "no child".into()];
    let all = measure_interleaved(&[&labels[0], &labels[1], &labels[2]], plans.0, |i| {
        let p = Process::builder().start_method(StartMethod::Fork);
        match i {
            0 => {
                let a = Array::<f64>::new(n).expect("mproc: Array::new failed");
                p.spawn(fill, (a.clone(),)).expect("mproc: start failed").join().expect("mproc: join failed");
                check_sum(&a.lock().expect("mproc: Array::lock failed"));
            }
            1 => p.spawn(noop, ()).expect("mproc: start failed").join().expect("mproc: join failed"),
            _ => {
                let a = Array::<f64>::new(n).expect("mproc: Array::new failed");
                fill_array(&a);
                check_sum(&a.lock().expect("mproc: Array::lock failed"));
            }
        }
    });
    let [cold, noop, no_child] = <[Stats; 3]>::try_from(all).expect("three variants");

    let a = Array::<f64>::new(n).expect("mproc: Array::new failed");
    let child = Child::start(|b, c| b.spawn(filler, (c, a.clone())));
    // Touched now, so that no run pays for its first page faults.
    let mut private = vec![1.0f64; n];
    let all = measure_interleaved(&["mproc Array, child running", "private Vec"], plans.0, |i| match i {
        0 => {
            child.call(0);
            check_sum(&a.lock().expect("mproc: Array::lock failed"));
        }
        _ => {
            fill_slice(black_box(&mut private));
            check_sum(black_box(&private));
        }
    });
    child.finish();
    let [warm, private] = <[Stats; 2]>::try_from(all).expect("two variants");

    let n_arg = n.to_string();
    let [cold_cpython, warm_cpython] = [("array_cold", "cycle"), ("array_warm", "child running")].map(|(w, what)| {
        bench.cpython(&format!("CPython Array {what}"), SCRIPT, &["--workload", w, "--items", &n_arg], plans.1)
    });
    ArrayResults { n, cold, noop, no_child, warm, private, cold_cpython, warm_cpython, plans }
}

// ---------------------------------------------------------------------------
// SharedMemory: a child writes it, the parent reads it.

struct ShmResults {
    size: usize,
    /// `memcpy` between two private buffers of `size` bytes, in this process.
    floor: Stats,
    /// The child's `write_at`, from the command to its answer.
    write: Stats,
    /// The parent's `read_at` into a reused buffer.
    read_at: Stats,
    /// The parent's `to_vec` (a new buffer, freed at once).
    to_vec: Stats,
    cpython_write: Option<Stats>,
    cpython_read_into: Option<Stats>,
    cpython_read_bytes: Option<Stats>,
    plans: (Plan, Plan),
}

fn measure_shm(bench: &Bench) -> ShmResults {
    let size = if bench.mode == Mode::Smoke { MIB } else { 256 * MIB };
    let plans = (bench.plan(2, 20), bench.capped_plan(1, 10));
    // This process created the segment: dropping `shm` unlinks the name, also
    // when a panic unwinds through here (and the next create sweeps it if this
    // process is killed).
    let shm = SharedMemory::create(&format!("mproc-bench-shared-{}", std::process::id()), size)
        .expect("mproc: SharedMemory::create failed");
    let child = Child::start(|b, c| b.spawn(shm_writer, (c, shm.clone())));
    // Touched now, so that no run pays for their first page faults.
    let src = vec![PATTERN; size];
    let mut dst = vec![1u8; size];
    let mut into = vec![1u8; size];
    let mut round = 0u64;
    let mib = size / MIB;
    let labels = [format!("memcpy {mib} MiB"), "child write_at".into(), "read_at".into(), "to_vec".into()];
    let all = measure_interleaved(&[&labels[0], &labels[1], &labels[2], &labels[3]], plans.0, |i| match i {
        0 => {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        }
        1 => {
            round += 1;
            child.call(round);
        }
        2 => {
            shm.read_at(0, &mut into).expect("mproc: SharedMemory::read_at failed");
            check_copy(&into, round);
        }
        _ => check_copy(&shm.to_vec(), round),
    });
    child.finish();
    drop(shm);
    let [floor, write, read_at, to_vec] = <[Stats; 4]>::try_from(all).expect("four variants");

    let size_arg = size.to_string();
    let value = bench.cpython_json(
        &format!("CPython SharedMemory {mib} MiB"),
        SCRIPT,
        &["--workload", "shm", "--size", &size_arg],
        plans.1,
    );
    let [cpython_write, cpython_read_into, cpython_read_bytes] =
        ["write", "read_into", "read_bytes"].map(|k| value.as_ref().and_then(|v| samples(v, k)));
    bench.end_cpython_json(
        cpython_write.is_some() && cpython_read_into.is_some() && cpython_read_bytes.is_some(),
        plans.1,
    );
    ShmResults { size, floor, write, read_at, to_vec, cpython_write, cpython_read_into, cpython_read_bytes, plans }
}

// ---------------------------------------------------------------------------
// The family and its report.

pub fn run(bench: &Bench) -> Section {
    eprintln!("lock, uncontended");
    let lock = measure_lock(bench);
    eprintln!("locked increments of a Value");
    let increments = measure_increments(bench);
    eprintln!("Array: child fills, parent sums");
    let array = measure_array(bench);
    eprintln!("SharedMemory: child writes, parent reads");
    let shm = measure_shm(bench);
    report(bench, &lock, &increments, &array, &shm)
}

fn report(bench: &Bench, l: &LockResults, inc: &IncrementResults, a: &ArrayResults, s: &ShmResults) -> Section {
    let cp = bench.cpython_name();
    let mut section = Section::new("Locks and shared memory");
    let mib = s.size / MIB;
    let bytes = s.size as f64;
    let ops = (2 * inc.n) as f64;

    section.text(format!(
        "`mproc::Lock`, `Value`, `Array` and `SharedMemory` against CPython's `multiprocessing.Lock`, \
         `Value`, `Array` and `multiprocessing.shared_memory.SharedMemory` (`benches/{SCRIPT}`, fork); what \
         each row times is described under the table. × faster is CPython's time over mproc's (for a rate, \
         mproc's over CPython's). GB/s is 10⁹ bytes per second; rates are median (p10–p90)."
    ));
    let mut table = Table::new(&["workload", "mproc", &cp, "× faster", "target", "met", "runs (mproc / CPython)"]);
    let [_, target, met] = section.check(
        "Lock acquire+release, uncontended",
        Some(l.pairs.median * 1e9),
        Target::Limit { max: 20.0, unit: "ns" },
    );
    table.row(vec![
        "Lock `acquire()` + `release()`, uncontended, per pair".into(),
        l.pairs.spread(),
        time(&l.cpython),
        faster(&l.cpython, &l.pairs),
        target,
        met,
        runs(&l.plans),
    ]);
    table.row(vec![
        "Lock `lock()` guard (Python: `with lock: pass`), per pair".into(),
        l.guard.spread(),
        time(&l.cpython_with),
        faster(&l.cpython_with, &l.guard),
        "—".into(),
        "—".into(),
        runs(&l.plans),
    ]);
    let [x, target, met] = section.check(
        "2 processes × locked Value increments vs CPython",
        ratio(&inc.cpython, &inc.two),
        Target::AtLeast(5.0),
    );
    table.row(vec![
        format!("2 processes × {} locked increments of a Value, final value exact", fmt_int(inc.n)),
        fmt_rate(&inc.two, ops, "ops/s"),
        rate(&inc.cpython, ops, "ops/s"),
        x,
        target,
        met,
        runs(&inc.plans),
    ]);
    let [x, target, met] = section.check(
        "Array child fills, parent sums vs CPython",
        ratio(&a.cold_cpython, &a.cold),
        Target::AtLeast(50.0),
    );
    table.row(vec![
        format!("Array f64 × {}: new array, start a child that fills it, join, parent sums", fmt_int(a.n as u64)),
        a.cold.spread(),
        time(&a.cold_cpython),
        x,
        target,
        met,
        runs(&a.plans),
    ]);
    table.row(vec![
        format!("Array f64 × {}, child already running: command, fill, answer, parent sums", fmt_int(a.n as u64)),
        a.warm.spread(),
        time(&a.warm_cpython),
        faster(&a.warm_cpython, &a.warm),
        "—".into(),
        "—".into(),
        runs(&a.plans),
    ]);
    for (what, ours, theirs) in [
        ("child writes (`write_at`; Python `shm.buf[:] = data`)", &s.write, &s.cpython_write),
        (
            "parent reads into a reused buffer (`read_at`; Python `memoryview(into)[:] = shm.buf`)",
            &s.read_at,
            &s.cpython_read_into,
        ),
        ("parent reads into a new buffer (`to_vec`; Python `bytes(shm.buf)`)", &s.to_vec, &s.cpython_read_bytes),
    ] {
        table.row(vec![
            format!("SharedMemory {mib} MiB: {what}"),
            fmt_rate(ours, bytes, "B/s"),
            rate(theirs, bytes, "B/s"),
            faster(theirs, ours),
            "vs the floor: below".into(),
            "—".into(),
            runs(&s.plans),
        ]);
    }
    section.table(table);

    section.text(format!(
        "**Lock.** One process, one lock, no other user: a run is {n} `lock.acquire()?; lock.release()?` pairs \
         in a loop (the guard row: {n} `drop(lock.lock()?)`), timed as a whole and divided by {n}; the target \
         is on that figure itself. CPython: {n} × `lock.acquire(); lock.release()` (and {n} × `with lock: \
         pass`) in a `for` loop, so its figure includes the interpreter's loop and two method calls; its \
         `Lock` is a POSIX semaphore (`sem_wait`/`sem_post`), mproc's a robust, process-shared, \
         error-checking pthread mutex in a memfd.",
        n = fmt_int(l.n),
    ));
    section.text(format!(
        "**Locked increments.** Two children (fork) are started before the timing, each with the `Value<i64>` \
         as a task argument and a duplex pipe for commands. A run: this process sets the value to 0 (no one \
         else holds the lock then), sends n = {n} to each child in turn and waits for both to answer; each \
         child does n × `*v.lock()? += 1` and answers. The time runs from the first command to the second \
         answer; then the value is read and must be exactly {total} (the run panics otherwise). CPython: the \
         same with `Value('q', 0)` and n × `with v.get_lock(): v.value += 1` (its `Value` lock is an `RLock`, \
         taken again by `v.value`'s getter and setter), and the script fails on a wrong final value. Ops/s is \
         {total} increments over the run's time. With two cores or more the two children run at once and contend \
         for the lock throughout: an increment may find the lock held by the other process and wait for it \
         (glibc's mutex then sleeps in `futex`), and the lock's cache line moves between the cores; the \
         reference below, one process alone, has none of that.",
        n = fmt_int(inc.n),
        total = fmt_int(2 * inc.n),
    ));
    section.text(format!(
        "**Array.** The cycle row times, per run: `Array::<f64>::new({n})`, starting a child (fork) running a \
         task given a clone of the array, which takes the guard once and sets `a[i] = i as f64` for every \
         element, joining it, and summing the array in this process under one guard (checked against \
         n(n−1)/2; the sum is exact), then dropping the array. The memory is new each run, so the child's \
         writes page-fault its {mb} MB in (the sum maps the same pages, already filled). CPython, the same: \
         `Array('d', n)`, `Process(target=fill, args=(a,))`, `start()`, `join()`, then `with a.get_lock(): \
         sum(a.get_obj())`; its child fills with `with a.get_lock(): obj = a.get_obj(); for i in range(n): \
         obj[i] = i`. The child-running row separates the process start and the first page faults from the \
         memory work: the array is made once and a child holding it is started before the timing; a run \
         sends a command over a pipe, the child fills the array under one guard and answers, this process \
         sums it (CPython: the same with a `Pipe`).",
        n = fmt_int(a.n as u64),
        mb = a.n * 8 / 1_000_000,
    ));
    section.text(format!(
        "**SharedMemory.** One segment of {mib} MiB, created before the timing (`create` reserves and so \
         touches every page) under a name holding this process's id, and one child (fork) given the handle \
         as a task argument, started before the timing, holding a private buffer of {mib} MiB of `0xAB` \
         touched at its start. A round: this process sends the round number over a pipe; the child writes it \
         into its buffer's first 8 bytes, copies the buffer into the segment with `write_at(0, &buf)` and \
         answers (the write row: from the command to the answer, so one pipe round trip, tens of µs at most, is \
         included); then this process copies the segment out with `read_at(0, &mut into)` into a private \
         buffer reused from round to round and touched before the first, and checks the round number and the \
         last byte (read row); then with `to_vec()`, a new buffer each time, freed at once (new-buffer row: \
         its allocation, page faults and `munmap` are part of the cost, as a new `bytes` object's are in \
         Python). The first rounds, untimed, fault the segment's pages into both processes' mappings. \
         CPython, the same: `SharedMemory(create=True)` with a name holding its process id, a forked child \
         holding a `bytearray` written with `shm.buf[:] = data`, the parent reading with \
         `memoryview(into)[:] = shm.buf` into a reused `bytearray` (one copy: `into[:] = shm.buf` would copy \
         the segment into a temporary first) and with `bytes(shm.buf)`. Both sides unlink the segment when \
         done, on errors too."
    ));

    section.text(
        "Floors and references, measured in this process, interleaved run by run with the mproc rows they \
         bound. Lock: a robust, process-shared, error-checking glibc pthread mutex (the kind `mproc::Lock` \
         is) initialised by hand in a page of `MAP_SHARED | MAP_ANONYMOUS` memory, `pthread_mutex_lock` + \
         `pthread_mutex_unlock` with both results checked; and `std::sync::Mutex<()>` (a process-private \
         futex lock, no robust list) for reference. Increments: the same 2n locked increments of another \
         `Value` by this process alone, no contention. Array cycle: start + join of a child (fork) running a no-op task, and the \
         cycle with no child at all (a new `Array`, filled and summed under one guard each by this process, \
         dropped), which keeps the page faults of the new memory. Array, child running: the same fill and \
         sum of a private `Vec<f64>` (touched before the first run) in this process, no process boundary. \
         SharedMemory: a bare `memcpy` (`copy_from_slice`) of the same size between two private buffers, \
         both touched before the first run. mproc ÷ floor is mproc's time per run over the floor's (1.00× = \
         as fast as the floor).",
    );
    let mut floors =
        Table::new(&["workload", "mproc", "floor / reference", "its figure", "mproc ÷ floor", "target", "met"]);
    let plain = |ours: &Stats, theirs: &Stats| fmt_ratio(ours.median / theirs.median);
    for (what, ours) in [("Lock `acquire()` + `release()`", &l.pairs), ("Lock `lock()` guard", &l.guard)] {
        for (floor, theirs) in
            [("robust pshared pthread mutex lock + unlock", &l.floor), ("`std::sync::Mutex` lock + unlock", &l.std)]
        {
            floors.row(vec![
                what.into(),
                ours.spread(),
                floor.into(),
                theirs.spread(),
                plain(ours, theirs),
                "—".into(),
                "—".into(),
            ]);
        }
    }
    floors.row(vec![
        format!("2 processes × {} locked increments", fmt_int(inc.n)),
        fmt_rate(&inc.two, ops, "ops/s"),
        format!("1 process × {} locked increments", fmt_int(2 * inc.n)),
        fmt_rate(&inc.one, ops, "ops/s"),
        plain(&inc.two, &inc.one),
        "—".into(),
        "—".into(),
    ]);
    floors.row(vec![
        "Array cycle (new array, child fills, join, sum)".into(),
        a.cold.spread(),
        "start + join of a no-op child (fork), a part of the cycle".into(),
        a.noop.spread(),
        plain(&a.cold, &a.noop),
        "—".into(),
        "—".into(),
    ]);
    floors.row(vec![
        "Array cycle (new array, child fills, join, sum)".into(),
        a.cold.spread(),
        "the cycle without a child: new array, this process fills and sums it".into(),
        a.no_child.spread(),
        plain(&a.cold, &a.no_child),
        "—".into(),
        "—".into(),
    ]);
    floors.row(vec![
        "Array, child running (command, fill, answer, sum)".into(),
        a.warm.spread(),
        "fill + sum of a private `Vec<f64>`".into(),
        a.private.spread(),
        plain(&a.warm, &a.private),
        "—".into(),
        "—".into(),
    ]);
    let memcpy = format!("`memcpy` {mib} MiB, private → private");
    for (what, ours, target) in [
        ("SharedMemory child `write_at`", &s.write, Some(1.5)),
        ("SharedMemory parent `read_at`, reused buffer", &s.read_at, Some(1.5)),
        ("SharedMemory parent `to_vec`, new buffer", &s.to_vec, None),
    ] {
        let [x, target, met] = match target {
            Some(t) => {
                section.check(format!("{what} vs bare memcpy"), Some(ours.median / s.floor.median), Target::AtMost(t))
            }
            None => [plain(ours, &s.floor), "—".into(), "—".into()],
        };
        floors.row(vec![
            what.into(),
            fmt_rate(ours, bytes, "B/s"),
            memcpy.clone(),
            fmt_rate(&s.floor, bytes, "B/s"),
            x,
            target,
            met,
        ]);
    }
    section.table(floors);
    section
}
