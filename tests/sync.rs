//! Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and Barrier:
//! semantics in one process, primitives passed to children under every start
//! method, and processes killed while holding or waiting (after CPython's
//! `_test_multiprocessing.py`).

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use mproc::{Barrier, BoundedSemaphore, Condition, Error, Event, Lock, Process, RLock, Semaphore, StartMethod, Value};

// ---------------------------------------------------------------- tasks

/// Appends one line to the log at `path` (appends of a few bytes are atomic).
fn log(path: &str, line: &str) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// The largest number of holders at once, from a log of `+` and `-` lines.
fn max_concurrent(path: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let (mut now, mut max, mut entries) = (0i64, 0i64, 0);
    for line in text.lines() {
        match line {
            "+" => {
                now += 1;
                entries += 1;
            }
            "-" => now -= 1,
            other => panic!("bad log line {other:?}"),
        }
        max = max.max(now);
    }
    (max as usize, entries)
}

/// Takes the lock `rounds` times, logging entry and exit while holding it.
#[mproc::task]
fn holds_lock_in_turn(lock: Lock, path: String, rounds: u32) {
    for _ in 0..rounds {
        let _held = lock.lock().unwrap();
        log(&path, "+");
        std::thread::sleep(Duration::from_millis(2));
        log(&path, "-");
    }
}

/// Takes a slot `rounds` times, logging entry and exit while holding it.
#[mproc::task]
fn holds_slot_in_turn(sem: Semaphore, path: String, rounds: u32) {
    for _ in 0..rounds {
        let _slot = sem.slot().unwrap();
        log(&path, "+");
        std::thread::sleep(Duration::from_millis(3));
        log(&path, "-");
    }
}

/// Takes the lock, says so, and sleeps holding it.
#[mproc::task]
fn holds_lock(lock: Lock, ready: Event) {
    lock.acquire().unwrap();
    ready.set();
    std::thread::sleep(Duration::from_secs(60));
}

/// Takes the reentrant lock twice, says so, and sleeps holding it.
#[mproc::task]
fn holds_rlock_twice(lock: RLock, ready: Event) {
    lock.acquire().unwrap();
    lock.acquire().unwrap();
    ready.set();
    std::thread::sleep(Duration::from_secs(60));
}

/// Takes a slot, says so, and sleeps holding it.
#[mproc::task]
fn holds_slot(sem: Semaphore, ready: Event) {
    sem.acquire().unwrap();
    ready.set();
    std::thread::sleep(Duration::from_secs(60));
}

/// Tries to take the lock: whether it got it.
#[mproc::task]
fn tries_lock(lock: Lock) -> bool {
    lock.try_acquire().unwrap()
}

/// Tries to release a lock this process does not hold: whether that was a misuse.
#[mproc::task]
fn releases_foreign_lock(lock: Lock) -> bool {
    matches!(lock.release(), Err(Error::Misuse { .. }))
}

/// Tries to take the reentrant lock: whether it got it.
#[mproc::task]
fn tries_rlock(lock: RLock) -> bool {
    let got = lock.try_acquire().unwrap();
    if got {
        lock.release().unwrap();
    }
    got
}

/// Releases a slot.
#[mproc::task]
fn releases(sem: Semaphore) {
    sem.release().unwrap();
}

/// Releases a bounded slot: whether that was a misuse.
#[mproc::task]
fn releases_bounded(sem: BoundedSemaphore) -> bool {
    matches!(sem.release(), Err(Error::Misuse { .. }))
}

/// Sets the event.
#[mproc::task]
fn sets(ev: Event) {
    ev.set();
}

/// Waits for the event: whether it came within `ms`.
#[mproc::task]
fn waits_for_event(ev: Event, ms: u64) -> bool {
    ev.wait_timeout(Duration::from_millis(ms))
}

/// Under the condition's lock, sets the value and notifies everyone.
#[mproc::task]
fn sets_and_notifies(cv: Condition, value: Value<u32>, v: u32) {
    let _held = cv.lock().unwrap();
    value.set(v).unwrap();
    cv.notify_all();
}

/// Waits on the condition until the value is `v`: whether it was within 10 s.
#[mproc::task]
fn waits_for_value(cv: Condition, value: Value<u32>, v: u32) -> bool {
    let mut held = cv.lock().unwrap();
    cv.wait_for_timeout(&mut held, Duration::from_secs(10), || value.get().unwrap() == v).unwrap()
}

/// Waits at the barrier: its index, or the error in words.
#[mproc::task]
fn waits_at_barrier(b: Barrier) -> Result<usize, String> {
    b.wait_timeout(Duration::from_secs(10)).map_err(|e| match e {
        Error::BrokenBarrier => "broken".to_string(),
        other => other.to_string(),
    })
}

/// Waits a long time at the barrier (to be killed there).
#[mproc::task]
fn waits_long_at_barrier(b: Barrier) {
    let _ = b.wait_timeout(Duration::from_secs(60));
}

/// Waits until `n` parties wait at the barrier.
fn until_waiting(b: &Barrier, n: usize) {
    assert!(common::eventually(Duration::from_secs(10), || b.n_waiting() == n), "{} waiting", b.n_waiting());
}

fn log_path(tag: &str) -> String {
    common::temp_path(tag).to_string_lossy().into_owned()
}

// ---------------------------------------------------------------- Lock and RLock

#[test]
fn primitives_are_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Lock>();
    check::<RLock>();
    check::<Semaphore>();
    check::<BoundedSemaphore>();
    check::<Event>();
    check::<Condition>();
    check::<Barrier>();
}

#[mproc::test]
fn a_lock_lets_one_process_in_at_a_time() {
    let lock = Lock::new().unwrap();
    let path = log_path("lock-turns");
    let children: Vec<_> =
        (0..4).map(|_| mproc::spawn!(holds_lock_in_turn(lock.clone(), path.clone(), 10)).unwrap()).collect();
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(max_concurrent(Path::new(&path)), (1, 40));
    let _ = std::fs::remove_file(&path);
}

#[mproc::test]
fn a_held_lock_is_not_free_for_another_process() {
    let lock = Lock::new().unwrap();
    let held = lock.lock().unwrap();
    assert!(!mproc::spawn!(tries_lock(lock.clone())).unwrap().join().unwrap());
    drop(held);
    assert!(mproc::spawn!(tries_lock(lock.clone())).unwrap().join().unwrap());
}

#[mproc::test]
fn acquire_timeout_on_a_held_lock_is_false_on_time() {
    let lock = Lock::new().unwrap();
    let ready = Event::new().unwrap();
    let child = mproc::spawn!(holds_lock(lock.clone(), ready.clone())).unwrap();
    assert!(ready.wait_timeout(Duration::from_secs(10)));
    let start = Instant::now();
    assert!(!lock.acquire_timeout(Duration::from_millis(100)).unwrap());
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5), "{took:?}");
    assert!(lock.lock_timeout(Duration::from_millis(10)).unwrap().is_none());
    child.kill().unwrap();
    let _ = child.join();
}

#[mproc::test]
fn releasing_a_lock_no_one_holds_is_a_misuse() {
    let lock = Lock::new().unwrap();
    assert!(matches!(lock.release(), Err(Error::Misuse { .. })));
    lock.acquire().unwrap();
    lock.release().unwrap();
    assert!(matches!(lock.release(), Err(Error::Misuse { .. })));
}

#[mproc::test]
fn releasing_a_lock_held_by_another_process_is_a_misuse() {
    let lock = Lock::new().unwrap();
    let _held = lock.lock().unwrap();
    assert!(mproc::spawn!(releases_foreign_lock(lock.clone())).unwrap().join().unwrap());
    assert!(!lock.try_acquire().unwrap(), "still held by this thread");
}

#[mproc::test]
fn acquiring_a_lock_this_thread_holds_is_a_misuse_not_a_deadlock() {
    let lock = Lock::new().unwrap();
    let _held = lock.lock().unwrap();
    assert!(matches!(lock.acquire(), Err(Error::Misuse { .. })));
    assert!(!lock.try_acquire().unwrap());
}

#[mproc::test]
fn an_rlock_is_reentered_by_its_owner_and_freed_by_as_many_releases() {
    let lock = RLock::new().unwrap();
    lock.acquire().unwrap();
    lock.acquire().unwrap();
    assert!(!mproc::spawn!(tries_rlock(lock.clone())).unwrap().join().unwrap());
    lock.release().unwrap();
    assert!(!mproc::spawn!(tries_rlock(lock.clone())).unwrap().join().unwrap());
    lock.release().unwrap();
    assert!(mproc::spawn!(tries_rlock(lock.clone())).unwrap().join().unwrap());
    assert!(matches!(lock.release(), Err(Error::Misuse { .. })));
}

#[mproc::test]
fn a_child_killed_holding_a_lock_passes_it_on_with_previous_owner_died() {
    let lock = Lock::new().unwrap();
    let ready = Event::new().unwrap();
    let child = mproc::spawn!(holds_lock(lock.clone(), ready.clone())).unwrap();
    assert!(ready.wait_timeout(Duration::from_secs(10)));
    let other = lock.clone();
    let blocked = std::thread::spawn(move || other.lock().map(|g| g.previous_owner_died()).unwrap());
    std::thread::sleep(Duration::from_millis(50));
    assert!(!blocked.is_finished());
    child.kill().unwrap();
    assert!(matches!(child.join(), Err(Error::Killed { signal: 9, .. })));
    assert!(blocked.join().unwrap(), "the next acquirer is told the owner died");
    assert_eq!(lock.recoveries(), 1);
    // The flag is for the one acquisition after the death.
    assert!(!lock.lock().unwrap().previous_owner_died());
}

#[mproc::test]
fn a_child_killed_holding_an_rlock_passes_it_on_with_previous_owner_died() {
    let lock = RLock::new().unwrap();
    let ready = Event::new().unwrap();
    let child = mproc::spawn!(holds_rlock_twice(lock.clone(), ready.clone())).unwrap();
    assert!(ready.wait_timeout(Duration::from_secs(10)));
    assert!(!lock.try_acquire().unwrap());
    child.kill().unwrap();
    let _ = child.join();
    let held = lock.lock_timeout(Duration::from_secs(10)).unwrap().expect("the lock passes on");
    assert!(held.previous_owner_died());
    drop(held);
    // Held once by the new owner, whatever the dead one's depth: free now.
    assert!(mproc::spawn!(tries_rlock(lock.clone())).unwrap().join().unwrap());
}

// ---------------------------------------------------------------- Semaphore

#[mproc::test]
fn a_semaphore_of_2_never_lets_a_third_holder_in() {
    let sem = Semaphore::new(2).unwrap();
    let path = log_path("semaphore-turns");
    let children: Vec<_> =
        (0..5).map(|_| mproc::spawn!(holds_slot_in_turn(sem.clone(), path.clone(), 8)).unwrap()).collect();
    for c in children {
        c.join().unwrap();
    }
    let (max, entries) = max_concurrent(Path::new(&path));
    assert_eq!(entries, 40);
    assert_eq!(max, 2, "at most two holders at once, and two did hold at once");
    assert_eq!(sem.value().unwrap(), 2);
    let _ = std::fs::remove_file(&path);
}

#[mproc::test]
fn semaphore_acquire_timeout_is_false_on_time() {
    let sem = Semaphore::new(0).unwrap();
    let start = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(100)).unwrap());
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5), "{took:?}");
    assert!(!sem.try_acquire().unwrap());
}

#[mproc::test]
fn a_release_in_another_process_wakes_a_waiting_acquirer() {
    let sem = Semaphore::new(0).unwrap();
    let child = mproc::spawn!(releases(sem.clone())).unwrap();
    assert!(sem.acquire_timeout(Duration::from_secs(10)).unwrap());
    child.join().unwrap();
    assert_eq!(sem.value().unwrap(), 0);
}

#[mproc::test]
fn a_semaphore_may_be_released_by_a_process_that_holds_no_slot() {
    let sem = Semaphore::new(1).unwrap();
    mproc::spawn!(releases(sem.clone())).unwrap().join().unwrap();
    assert_eq!(sem.value().unwrap(), 2);
}

#[mproc::test]
fn a_bounded_semaphore_released_above_its_value_is_a_misuse() {
    let sem = BoundedSemaphore::new(2).unwrap();
    assert!(matches!(sem.release(), Err(Error::Misuse { .. })));
    sem.acquire().unwrap();
    sem.release().unwrap();
    assert!(mproc::spawn!(releases_bounded(sem.clone())).unwrap().join().unwrap());
    assert_eq!(sem.value().unwrap(), 2);
}

#[mproc::test]
fn a_child_killed_holding_a_semaphore_slot_gives_it_back() {
    let sem = Semaphore::new(1).unwrap();
    let ready = Event::new().unwrap();
    let child = mproc::spawn!(holds_slot(sem.clone(), ready.clone())).unwrap();
    assert!(ready.wait_timeout(Duration::from_secs(10)));
    assert!(!sem.try_acquire().unwrap());
    child.kill().unwrap();
    let _ = child.join();
    let start = Instant::now();
    let slot = sem.slot_timeout(Duration::from_secs(10)).unwrap().expect("the dead holder's slot comes back");
    assert!(slot.previous_holder_died());
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    assert_eq!(sem.recoveries(), 1);
    drop(slot);
    assert_eq!(sem.value().unwrap(), 1);
}

#[mproc::test]
fn a_waiter_gets_the_slot_of_a_holder_killed_while_it_waits() {
    let sem = Semaphore::new(1).unwrap();
    let ready = Event::new().unwrap();
    let child = mproc::spawn!(holds_slot(sem.clone(), ready.clone())).unwrap();
    assert!(ready.wait_timeout(Duration::from_secs(10)));
    let other = sem.clone();
    let waiter = std::thread::spawn(move || other.acquire_timeout(Duration::from_secs(10)).unwrap());
    std::thread::sleep(Duration::from_millis(50));
    assert!(!waiter.is_finished());
    child.kill().unwrap();
    assert!(waiter.join().unwrap());
    assert_eq!(sem.value().unwrap(), 0);
}

// ---------------------------------------------------------------- Event

#[mproc::test]
fn event_wait_timeout_returns_false_on_time() {
    let ev = Event::new().unwrap();
    let start = Instant::now();
    assert!(!ev.wait_timeout(Duration::from_millis(100)));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5), "{took:?}");
}

#[mproc::test]
fn set_clear_and_is_set_follow_each_other() {
    let ev = Event::new().unwrap();
    assert!(!ev.is_set());
    ev.set();
    ev.set();
    assert!(ev.is_set());
    assert!(ev.wait_timeout(Duration::ZERO));
    ev.clear();
    assert!(!ev.is_set());
}

#[mproc::test]
fn set_wakes_every_waiting_process() {
    let ev = Event::new().unwrap();
    let waiters: Vec<_> = (0..3).map(|_| mproc::spawn!(waits_for_event(ev.clone(), 10_000)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    ev.set();
    for w in waiters {
        assert!(w.join().unwrap());
    }
}

// ---------------------------------------------------------------- Condition

#[mproc::test]
fn wait_for_returns_once_a_child_makes_the_predicate_true() {
    let cv = Condition::new().unwrap();
    let value = Value::<u32>::new(0).unwrap();
    let mut held = cv.lock().unwrap();
    let child = mproc::spawn!(sets_and_notifies(cv.clone(), value.clone(), 7)).unwrap();
    cv.wait_for(&mut held, || value.get().unwrap() == 7).unwrap();
    assert!(!held.previous_owner_died());
    drop(held);
    child.join().unwrap();
}

#[mproc::test]
fn wait_for_timeout_is_the_predicates_last_value() {
    let cv = Condition::new().unwrap();
    let mut held = cv.lock().unwrap();
    let start = Instant::now();
    assert!(!cv.wait_for_timeout(&mut held, Duration::from_millis(100), || false).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(cv.wait_for_timeout(&mut held, Duration::ZERO, || true).unwrap());
}

#[mproc::test]
fn notify_all_wakes_every_waiting_process() {
    let cv = Condition::new().unwrap();
    let value = Value::<u32>::new(0).unwrap();
    let waiters: Vec<_> =
        (0..3).map(|_| mproc::spawn!(waits_for_value(cv.clone(), value.clone(), 1)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    {
        let _held = cv.lock().unwrap();
        value.set(1).unwrap();
        cv.notify_all();
    }
    for w in waiters {
        assert!(w.join().unwrap());
    }
}

#[mproc::test]
fn a_condition_with_a_given_lock_uses_that_lock() {
    let lock = Lock::new().unwrap();
    let cv = Condition::with_lock(lock.clone()).unwrap();
    let _held = cv.lock().unwrap();
    assert!(!mproc::spawn!(tries_lock(lock.clone())).unwrap().join().unwrap());
}

// ---------------------------------------------------------------- Barrier

#[mproc::test]
fn a_barrier_of_5_releases_4_children_and_the_caller_with_distinct_indices() {
    let b = Barrier::new(5).unwrap();
    assert_eq!(b.parties(), 5);
    let children: Vec<_> = (0..4).map(|_| mproc::spawn!(waits_at_barrier(b.clone())).unwrap()).collect();
    until_waiting(&b, 4);
    let mut indices = vec![b.wait().unwrap()];
    for c in children {
        indices.push(c.join().unwrap().unwrap());
    }
    indices.sort();
    assert_eq!(indices, [0, 1, 2, 3, 4]);
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.is_broken());
}

#[mproc::test]
fn a_barrier_can_be_passed_again() {
    let b = Barrier::new(2).unwrap();
    for _ in 0..3 {
        let child = mproc::spawn!(waits_at_barrier(b.clone())).unwrap();
        b.wait_timeout(Duration::from_secs(10)).unwrap();
        child.join().unwrap().unwrap();
    }
}

#[mproc::test]
fn abort_breaks_the_barrier_for_waiting_children() {
    let b = Barrier::new(3).unwrap();
    let children: Vec<_> = (0..2).map(|_| mproc::spawn!(waits_at_barrier(b.clone())).unwrap()).collect();
    until_waiting(&b, 2);
    b.abort();
    assert!(b.is_broken());
    for c in children {
        assert_eq!(c.join().unwrap(), Err("broken".to_string()));
    }
    assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
    b.reset();
    assert!(!b.is_broken());
}

#[mproc::test]
fn reset_breaks_the_current_round_and_the_next_one_works() {
    let b = Barrier::new(2).unwrap();
    let child = mproc::spawn!(waits_at_barrier(b.clone())).unwrap();
    until_waiting(&b, 1);
    b.reset();
    assert_eq!(child.join().unwrap(), Err("broken".to_string()));
    let child = mproc::spawn!(waits_at_barrier(b.clone())).unwrap();
    b.wait_timeout(Duration::from_secs(10)).unwrap();
    child.join().unwrap().unwrap();
}

#[mproc::test]
fn a_timed_out_wait_breaks_the_barrier_for_the_others() {
    let b = Barrier::new(3).unwrap();
    let child = mproc::spawn!(waits_at_barrier(b.clone())).unwrap();
    until_waiting(&b, 1);
    assert!(matches!(b.wait_timeout(Duration::from_millis(50)), Err(Error::Timeout)));
    assert_eq!(child.join().unwrap(), Err("broken".to_string()));
}

#[mproc::test]
fn a_child_killed_waiting_in_a_barrier_breaks_it_for_the_others() {
    let b = Barrier::new(3).unwrap();
    let doomed = mproc::spawn!(waits_long_at_barrier(b.clone())).unwrap();
    let other = mproc::spawn!(waits_at_barrier(b.clone())).unwrap();
    until_waiting(&b, 2);
    doomed.kill().unwrap();
    let _ = doomed.join();
    let start = Instant::now();
    assert_eq!(other.join().unwrap(), Err("broken".to_string()));
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
}

#[mproc::test]
fn the_last_arrival_does_not_count_a_killed_party() {
    let b = Barrier::new(2).unwrap();
    let doomed = mproc::spawn!(waits_long_at_barrier(b.clone())).unwrap();
    until_waiting(&b, 1);
    doomed.kill().unwrap();
    let _ = doomed.join();
    // At once, before any waiter had a chance to notice the death.
    assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
}

#[mproc::test]
fn a_barrier_of_0_parties_is_a_misuse() {
    assert!(matches!(Barrier::new(0), Err(Error::Misuse { .. })));
}

// ---------------------------------------------------------------- every start method

macro_rules! for_each_start_method {
    ($($name:ident => $method:expr),*) => {$(
        mod $name {
            use super::*;
            const METHOD: StartMethod = $method;

            #[mproc::test]
            fn a_lock_reaches_a_child() {
                let lock = Lock::new().unwrap();
                let held = lock.lock().unwrap();
                let child = Process::builder().start_method(METHOD).spawn(tries_lock, (lock.clone(),)).unwrap();
                assert!(!child.join().unwrap());
                drop(held);
                let child = Process::builder().start_method(METHOD).spawn(tries_lock, (lock.clone(),)).unwrap();
                assert!(child.join().unwrap());
            }

            #[mproc::test]
            fn an_rlock_reaches_a_child() {
                let lock = RLock::new().unwrap();
                let held = lock.lock().unwrap();
                let child = Process::builder().start_method(METHOD).spawn(tries_rlock, (lock.clone(),)).unwrap();
                assert!(!child.join().unwrap());
                drop(held);
            }

            #[mproc::test]
            fn a_semaphore_reaches_a_child() {
                let sem = Semaphore::new(0).unwrap();
                let child = Process::builder().start_method(METHOD).spawn(releases, (sem.clone(),)).unwrap();
                assert!(sem.acquire_timeout(Duration::from_secs(10)).unwrap());
                child.join().unwrap();
            }

            #[mproc::test]
            fn a_bounded_semaphore_reaches_a_child() {
                let sem = BoundedSemaphore::new(1).unwrap();
                let child = Process::builder().start_method(METHOD).spawn(releases_bounded, (sem.clone(),)).unwrap();
                assert!(child.join().unwrap());
            }

            #[mproc::test]
            fn an_event_reaches_a_child() {
                let ev = Event::new().unwrap();
                let child = Process::builder().start_method(METHOD).spawn(sets, (ev.clone(),)).unwrap();
                assert!(ev.wait_timeout(Duration::from_secs(10)));
                child.join().unwrap();
            }

            #[mproc::test]
            fn a_condition_reaches_a_child() {
                let cv = Condition::new().unwrap();
                let value = Value::<u32>::new(0).unwrap();
                let mut held = cv.lock().unwrap();
                let child = Process::builder()
                    .start_method(METHOD)
                    .spawn(sets_and_notifies, (cv.clone(), value.clone(), 3))
                    .unwrap();
                assert!(cv.wait_for_timeout(&mut held, Duration::from_secs(10), || value.get().unwrap() == 3).unwrap());
                drop(held);
                child.join().unwrap();
            }

            #[mproc::test]
            fn a_barrier_reaches_a_child() {
                let b = Barrier::new(2).unwrap();
                let child = Process::builder().start_method(METHOD).spawn(waits_at_barrier, (b.clone(),)).unwrap();
                let mine = b.wait_timeout(Duration::from_secs(10)).unwrap();
                let theirs = child.join().unwrap().unwrap();
                assert_eq!(mine + theirs, 1);
            }
        }
    )*};
}

for_each_start_method!(fork => StartMethod::Fork, forkserver => StartMethod::ForkServer, spawn => StartMethod::Spawn);
