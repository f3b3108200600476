//! The pool never hangs and never loses a result: Ctrl-C, out-of-memory deaths,
//! results that cannot be encoded, a panicking input, fail-fast maps, dropped pools.

mod common;

use std::time::{Duration, Instant};

use mproc::{Error, Pool, StartMethod};

#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::task]
fn sleeps(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[mproc::task]
fn fails_first(n: u64) -> u64 {
    if n == 0 {
        panic!("item 0 fails");
    }
    std::thread::sleep(Duration::from_millis(200));
    n
}

#[mproc::task]
fn exhausts_memory() -> u64 {
    let limit = libc::rlimit { rlim_cur: 256 << 20, rlim_max: 256 << 20 };
    // SAFETY: setrlimit reads one valid rlimit struct.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    let big = vec![1u8; 1 << 30];
    big.len() as u64
}

#[mproc::task]
fn init_exits(code: i32) {
    std::process::exit(code);
}

#[mproc::task]
fn panics(message: String) -> u64 {
    panic!("{message}")
}

/// A value whose encoding always fails.
#[derive(Debug, serde::Deserialize)]
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value refuses to be encoded"))
    }
}

#[mproc::task]
fn unencodable() -> Unencodable {
    Unencodable
}

/// Starts a pool, records its workers' pids in `path`, then waits on a long task.
#[mproc::task]
fn pool_owner(path: String) {
    let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build().unwrap();
    let pids: Vec<String> = pool.insights().workers.iter().map(|w| w.pid.to_string()).collect();
    std::fs::write(&path, pids.join(" ")).unwrap();
    let _ = pool.apply(sleeps, (60_000,));
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a pid and a signal number has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

#[mproc::test]
fn ctrl_c_in_the_parent_ends_it_and_no_worker_survives() {
    let path = common::temp_path("sigint-owner");
    let owner = mproc::spawn!(pool_owner(path.display().to_string()); start_method = StartMethod::ForkServer).unwrap();
    assert!(common::eventually(Duration::from_secs(10), || std::fs::read_to_string(&path)
        .is_ok_and(|s| s.split(' ').count() == 2)));
    let workers: Vec<i32> = std::fs::read_to_string(&path).unwrap().split(' ').map(|p| p.parse().unwrap()).collect();
    signal(owner.pid().as_raw(), libc::SIGINT);
    assert!(matches!(owner.join_timeout(Duration::from_secs(10)), Err(Error::Killed { signal: 2, .. })));
    for w in workers {
        assert!(common::eventually(Duration::from_secs(10), || !common::running(w)), "worker {w} survived");
    }
    let _ = std::fs::remove_file(path);
}

#[mproc::test]
fn workers_ignore_ctrl_c() {
    let pool = Pool::builder().processes(1).start_method(StartMethod::Fork).build().unwrap();
    assert_eq!(pool.apply(square, (2,)).unwrap(), 4);
    let worker = pool.insights().workers[0].pid;
    signal(worker, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(100));
    assert!(common::running(worker));
    assert_eq!(pool.apply(square, (3,)).unwrap(), 9);
    assert!(pool.insights().restarts.is_empty());
}

#[mproc::test]
fn a_worker_that_runs_out_of_memory_fails_its_task_and_is_replaced() {
    let pool = Pool::new(1).unwrap();
    match pool.apply(exhausts_memory, ()) {
        Err(Error::WorkerLost { reason, .. }) => assert!(reason.contains("signal 6"), "{reason}"),
        other => panic!("expected WorkerLost, got {other:?}"),
    }
    assert_eq!(pool.apply(square, (3,)).unwrap(), 9);
}

#[mproc::test]
fn a_result_that_cannot_be_encoded_fails_that_task_only() {
    let pool = Pool::new(1).unwrap();
    match pool.apply(unencodable, ()) {
        Err(Error::Codec(what)) => assert!(what.contains("refuses to be encoded"), "{what}"),
        other => panic!("expected Codec, got {other:?}"),
    }
    assert_eq!(pool.apply(square, (4,)).unwrap(), 16);
    assert!(pool.insights().restarts.is_empty());
}

/// Yields 0, 1, 2, … and panics at `at`.
struct PanicsAt {
    next: u64,
    at: u64,
}

impl Iterator for PanicsAt {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        assert!(self.next != self.at, "the input broke at {}", self.at);
        self.next += 1;
        Some(self.next - 1)
    }
}

#[mproc::test]
fn a_panic_while_iterating_the_input_reaches_the_caller() {
    let pool = Pool::new(2).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.imap(square, PanicsAt { next: 0, at: 5 }).map(Result::unwrap).collect::<Vec<u64>>()
    }));
    let message = *caught.unwrap_err().downcast::<String>().unwrap();
    assert_eq!(message, "the input broke at 5");
    assert_eq!(pool.apply(square, (6,)).unwrap(), 36);
}

#[mproc::test]
fn map_stops_dispatching_after_the_first_failure() {
    let pool = Pool::new(1).unwrap();
    let t = Instant::now();
    match pool.map_chunked(fails_first, 0..20u64, 1) {
        Err(Error::Panicked { message, .. }) => assert_eq!(message, "item 0 fails"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    // Running the 19 other items would take 3.8 s.
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
    let ran: u64 = pool.insights().workers.iter().map(|w| w.tasks).sum();
    assert!(ran < 5, "{ran} items ran after the failure");
}

#[mproc::test]
fn dropping_a_pool_cancels_work_nobody_waits_for() {
    let pool = Pool::new(1).unwrap();
    let workers: Vec<i32> = pool.insights().workers.iter().map(|w| w.pid).collect();
    for _ in 0..50 {
        drop(pool.apply_async(sleeps, (100,)));
    }
    let t = Instant::now();
    drop(pool);
    assert!(t.elapsed() < Duration::from_secs(1), "drop blocked");
    for w in workers {
        // The one running task (100 ms) finishes; the 49 queued ones (4.9 s) do not run.
        assert!(common::eventually(Duration::from_secs(3), || !common::exists(w)), "worker {w} still busy");
    }
}

#[mproc::test]
fn a_context_starts_pools_and_executors_with_its_method() {
    let ctx = mproc::Context::new(StartMethod::Spawn);
    assert_eq!(ctx.pool(1).unwrap().map(square, [3u64]).unwrap(), vec![9]);
    assert_eq!(ctx.executor(1).unwrap().submit(square, (4,)).result().unwrap(), 16);
}

#[mproc::test]
fn an_initializer_that_crashes_breaks_the_pool_instead_of_respawning_forever() {
    let pool = Pool::builder().processes(2).initializer(init_exits, (4,)).build().unwrap();
    match pool.apply(square, (1,)) {
        Err(Error::BrokenPool { reason }) => assert!(reason.contains("exited with code 4"), "{reason}"),
        other => panic!("expected BrokenPool, got {other:?}"),
    }
    assert!(pool.broken_reason().is_some());
    assert!(pool.insights().restarts.len() <= 2, "workers were respawned: {:?}", pool.insights().restarts);
}

#[mproc::test]
fn error_callbacks_receive_the_error_and_successful_reports_the_failure() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply_async(panics, ("callback".to_string(),));
    let (tx, rx) = std::sync::mpsc::channel();
    r.on_error(move |e| tx.send(e.to_string()).unwrap());
    assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap().contains("callback"));
    assert_eq!(r.successful(), Some(false));
    let ok = pool.map_async(square, 0..4u64);
    ok.wait();
    assert_eq!(ok.successful(), Some(true));
    assert_eq!(ok.get().unwrap(), vec![0, 1, 4, 9]);
}

#[mproc::test]
fn insights_report_work_per_worker_and_why_workers_were_replaced() {
    let pool = Pool::builder().processes(2).task_timeout(Duration::from_millis(300)).build().unwrap();
    pool.map_chunked(square, 0..100u64, 10).unwrap();
    let before = pool.insights();
    assert_eq!(before.workers.len(), 2);
    assert_eq!(before.workers.iter().map(|w| w.tasks).sum::<u64>(), 100);
    assert_eq!(before.workers.iter().map(|w| w.chunks).sum::<u64>(), 10);
    assert!(before.workers.iter().any(|w| w.working > Duration::ZERO && w.codec > Duration::ZERO));
    assert!(matches!(pool.apply(sleeps, (60_000,)), Err(Error::Timeout)));
    let after = pool.insights();
    assert_eq!(after.workers.len(), 2);
    assert_eq!(after.restarts.len(), 1);
    let restart = &after.restarts[0];
    assert!(restart.cause.contains("task timeout"), "{restart:?}");
    // The replaced worker's figures live on in its restart record.
    let total = after.workers.iter().map(|w| w.tasks).sum::<u64>() + restart.figures.tasks;
    assert_eq!(total, 100);
}

#[mproc::task]
fn pid() -> u32 {
    std::process::id()
}

#[mproc::test]
fn sequential_applies_rotate_over_the_workers() {
    let pool = Pool::new(2).unwrap();
    let pids: std::collections::HashSet<u32> = (0..4).map(|_| pool.apply(pid, ()).unwrap()).collect();
    assert_eq!(pids.len(), 2);
}

#[mproc::test]
fn dropping_an_unfinished_imap_cancels_its_queued_chunks() {
    let pool = Pool::new(2).unwrap();
    // Two workers, four chunks in flight: the quick one and two slow ones run,
    // the fourth waits in the queue when the iterator is dropped.
    let mut results = pool.imap_chunked(sleeps, [10u64, 500, 500, 500, 500, 500], 1);
    assert_eq!(results.next().unwrap().unwrap(), 10);
    drop(results);
    let ran = || pool.insights().workers.iter().map(|w| w.tasks).sum::<u64>();
    // The two running chunks finish, however loaded the machine is...
    assert!(common::eventually(Duration::from_secs(20), || ran() >= 3), "a running chunk was lost");
    // ...and the cancelled one, had it been dispatched then, would be done within this.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(ran(), 3, "the queued chunk ran anyway");
}

#[mproc::task]
fn exits_after(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::exit(7)
}

/// A worker with short jobs holds several at once; when it dies, the job it was
/// running fails and the ones waiting behind it run on its replacement.
#[mproc::test]
fn jobs_waiting_behind_a_dying_job_are_requeued_not_failed() {
    let pool = Pool::builder().processes(1).start_method(StartMethod::Fork).build().unwrap();
    // Short jobs first, so that the worker is trusted with several at a time.
    assert_eq!(pool.map_chunked(square, 0..200u64, 1).unwrap().len(), 200);
    let dying = pool.apply_async(exits_after, (50,));
    let behind: Vec<_> = (0..20u64).map(|n| pool.apply_async(square, (n,))).collect();
    match dying.get() {
        Err(Error::WorkerLost { reason, .. }) => assert!(reason.contains("code 7"), "{reason}"),
        other => panic!("expected WorkerLost, got {other:?}"),
    }
    for (n, r) in behind.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), (n * n) as u64);
    }
    assert_eq!(pool.insights().restarts.len(), 1);
}
