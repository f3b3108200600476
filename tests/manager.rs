//! Managers: the objects and their proxies, atomic updates by task and by
//! closure, queues, locks and events that wait in the server, custom objects,
//! proxies passed to children under every start method, remote servers over
//! TCP, and a server that keeps serving whatever its clients do.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mproc::connection::{Address, Client};
use mproc::manager::{
    BarrierProxy, ConditionProxy, DictProxy, EventProxy, ListProxy, LockProxy, ObjectProxy, QueueProxy, RLockProxy,
    SemaphoreProxy, Server, ServerHandle, ValueProxy,
};
use mproc::{Connection, Error, Manager, Pipe, Process, StartMethod};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- tasks

#[mproc::task]
fn increment(n: u64) -> u64 {
    n + 1
}

#[mproc::task]
fn shout(s: String) -> String {
    s.to_uppercase()
}

#[mproc::task]
fn refuses(_n: u64) -> u64 {
    panic!("no update today")
}

/// Not a task: `apply` must refuse it.
fn plain(n: u64) -> u64 {
    n + 1
}

/// Seed 003's `fun1`: writes into the shared dict and list.
#[mproc::task]
fn fun1(dic: DictProxy<String, String>, lis: ListProxy<u32>, index: u32) {
    dic.insert(index.to_string(), "a".into()).unwrap();
    dic.insert("2".into(), "b".into()).unwrap();
    lis.push(index).unwrap();
}

#[mproc::task]
fn applies(d: DictProxy<String, u64>, times: u32) {
    for _ in 0..times {
        d.apply_or(&"n".to_string(), 0, increment).unwrap();
    }
}

#[mproc::task]
fn updates(d: DictProxy<String, u64>, times: u32) {
    for _ in 0..times {
        d.update_or(&"n".to_string(), 0, |v| v + 1).unwrap();
    }
}

/// Updates `n` by a closure that says so on `inside`, then sleeps until killed.
#[mproc::task]
fn dies_inside_the_closure(d: DictProxy<String, u64>, inside: Connection<()>) {
    d.update_or(&"n".to_string(), 0, |v| {
        inside.send(&()).unwrap();
        std::thread::sleep(Duration::from_secs(30));
        v + 1
    })
    .unwrap();
}

/// Acquires `lock`, says so on `held`, and sleeps until killed.
#[mproc::task]
fn dies_holding(lock: LockProxy, held: Connection<()>) {
    lock.acquire().unwrap();
    held.send(&()).unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

/// Says so on `waiting`, then waits for an item until killed.
#[mproc::task]
fn dies_waiting(q: QueueProxy<u32>, waiting: Connection<()>) {
    waiting.send(&()).unwrap();
    let _ = q.get();
}

#[mproc::task]
fn produces(q: QueueProxy<u32>, n: u32) {
    for i in 0..n {
        q.put(i).unwrap();
    }
}

#[mproc::task]
fn waits_for(ev: EventProxy) -> bool {
    ev.wait_timeout(Duration::from_secs(30)).unwrap()
}

#[mproc::task]
fn tries_the_lock(lock: LockProxy) -> bool {
    lock.try_acquire().unwrap()
}

/// Acquires `lock` twice, says so on `held`, and sleeps until killed.
#[mproc::task]
fn dies_holding_twice(lock: RLockProxy, held: Connection<()>) {
    lock.acquire().unwrap();
    lock.acquire().unwrap();
    held.send(&()).unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

/// Waits on `cond` until `ready` holds `true`, then returns what `data` holds.
#[mproc::task]
fn waits_until_ready(cond: ConditionProxy, ready: ValueProxy<bool>, data: ValueProxy<u32>) -> u32 {
    let _held = cond.lock().unwrap();
    assert!(cond.wait_for_timeout(|| ready.get().unwrap(), Duration::from_secs(30)).unwrap());
    data.get().unwrap()
}

/// Waits at the barrier and returns its index.
#[mproc::task]
fn waits_at(b: BarrierProxy) -> usize {
    b.wait_timeout(Duration::from_secs(30)).unwrap()
}

/// Counts itself in at the barrier (saying so on `waiting`), and waits until killed.
#[mproc::task]
fn dies_at_the_barrier(b: BarrierProxy, waiting: Connection<()>) {
    let party = std::thread::spawn(move || b.wait());
    std::thread::sleep(Duration::from_millis(200));
    waiting.send(&()).unwrap();
    let _ = party.join();
}

/// Takes a slot, says so on `taken`, and holds it until `go` says to give it back.
#[mproc::task]
fn holds_a_slot(sem: SemaphoreProxy, taken: Connection<()>, go: Connection<()>) {
    let _slot = sem.slot().unwrap();
    taken.send(&()).unwrap();
    go.recv().unwrap();
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Account {
    owner: String,
    balance: u64,
}

/// Adds `amount`; returns the new balance.
#[mproc::task]
fn deposit(mut account: Account, amount: u64) -> (Account, u64) {
    account.balance += amount;
    let balance = account.balance;
    (account, balance)
}

/// Takes `amount` out if the balance covers it; returns the new balance, or why not.
#[mproc::task]
fn withdraw(mut account: Account, amount: u64) -> (Account, Result<u64, String>) {
    match account.balance.checked_sub(amount) {
        Some(left) => {
            account.balance = left;
            (account, Ok(left))
        }
        None => {
            let why = format!("{} has {} only", account.owner, account.balance);
            (account, Err(why))
        }
    }
}

#[mproc::task]
fn freezes(_account: Account, _arg: ()) -> (Account, ()) {
    panic!("account frozen")
}

#[mproc::task]
fn deposits(account: ObjectProxy<Account>, times: u32) {
    for _ in 0..times {
        account.call(deposit, 1).unwrap();
    }
}

/// Starts a manager, sends its server's pid, and sleeps until killed.
#[mproc::task]
fn owns_a_manager(report: Connection<i32>) {
    let mgr = Manager::start().unwrap();
    report.send(&mgr.pid().unwrap().as_raw()).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

// ---------------------------------------------------------------- helpers

/// A TCP server on loopback, serving on a thread; stopped and joined on drop.
struct Serving {
    addr: Address,
    stop: ServerHandle,
    thread: Option<std::thread::JoinHandle<mproc::Result<()>>>,
}

impl Serving {
    fn new(key: &[u8], setup: impl FnOnce(&mut Server)) -> Serving {
        Serving::at("127.0.0.1:0", key, setup)
    }

    fn at(addr: impl mproc::connection::ToAddress, key: &[u8], setup: impl FnOnce(&mut Server)) -> Serving {
        let mut server = Server::bind(addr, key).unwrap();
        setup(&mut server);
        let addr = server.local_addr().unwrap();
        let stop = server.handle();
        let thread = Some(std::thread::spawn(move || server.serve()));
        Serving { addr, stop, thread }
    }

    fn tcp(&self) -> std::net::SocketAddr {
        match &self.addr {
            Address::Tcp(a) => *a,
            Address::Unix(_) => unreachable!(),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            t.join().unwrap().unwrap();
        }
    }
}

/// A child killed and reaped when dropped, so that a failing test leaves none behind.
struct Reaped<T: mproc::TaskValue>(Option<Process<T>>);

impl<T: mproc::TaskValue> Reaped<T> {
    fn new(process: mproc::Result<Process<T>>) -> Reaped<T> {
        Reaped(Some(process.unwrap()))
    }

    fn kill(&self) {
        self.0.as_ref().unwrap().kill().unwrap();
    }

    fn join(mut self) -> mproc::Result<T> {
        self.0.take().unwrap().join()
    }
}

impl<T: mproc::TaskValue> Drop for Reaped<T> {
    fn drop(&mut self) {
        if let Some(process) = self.0.take() {
            if process.is_alive() {
                let _ = process.kill();
            }
            let _ = process.join_timeout(Duration::from_secs(10));
        }
    }
}

/// Whether `f` finishes within `limit`, run on a thread (left to finish on its own otherwise).
fn finishes_within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

// ---------------------------------------------------------------- objects

#[mproc::test]
fn a_dict_keeps_insertion_order_and_answers_like_a_map() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<String, i64>().unwrap();
    assert!(d.is_empty().unwrap());
    assert_eq!(d.insert("b".into(), 1).unwrap(), None);
    d.insert("a".into(), 2).unwrap();
    assert_eq!(d.insert("b".into(), 3).unwrap(), Some(1));
    assert_eq!(d.keys().unwrap(), vec!["b".to_string(), "a".to_string()]);
    assert_eq!(d.values().unwrap(), vec![3, 2]);
    assert_eq!(d.items().unwrap(), vec![("b".into(), 3), ("a".into(), 2)]);
    assert!(d.contains_key(&"a".into()).unwrap());
    assert_eq!(d.remove(&"a".into()).unwrap(), Some(2));
    assert_eq!(d.get(&"a".into()).unwrap(), None);
    assert_eq!(d.len().unwrap(), 1);
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());
}

#[mproc::test]
fn a_list_pushes_pops_and_sets_by_index() {
    let mgr = Manager::start().unwrap();
    let l = mgr.list_from(0..5u32).unwrap();
    l.push(5).unwrap();
    l.extend([6, 7]).unwrap();
    l.set(0, 100).unwrap();
    assert_eq!(l.get(0).unwrap(), Some(100));
    assert_eq!(l.get(99).unwrap(), None);
    assert_eq!(l.pop().unwrap(), Some(7));
    assert_eq!(l.len().unwrap(), 7);
    assert_eq!(l.to_vec().unwrap(), vec![100, 1, 2, 3, 4, 5, 6]);
    assert!(matches!(l.set(7, 0), Err(Error::Misuse { .. })));
}

#[mproc::test]
fn a_namespace_holds_attributes_of_different_types() {
    let mgr = Manager::start().unwrap();
    let ns = mgr.namespace().unwrap();
    ns.set("x", 10u32).unwrap();
    ns.set("label", "ten".to_string()).unwrap();
    assert_eq!(ns.get::<u32>("x").unwrap(), Some(10));
    assert_eq!(ns.get::<String>("label").unwrap(), Some("ten".into()));
    assert_eq!(ns.get::<u32>("y").unwrap(), None);
    assert!(ns.remove("x").unwrap());
    assert!(!ns.remove("x").unwrap());
    assert_eq!(ns.len().unwrap(), 1);
}

#[mproc::test]
fn a_value_gets_sets_and_updates() {
    let mgr = Manager::start().unwrap();
    let v = mgr.value(40u64).unwrap();
    assert_eq!(v.apply(increment).unwrap(), 41);
    assert_eq!(v.update(|n| n + 1).unwrap(), 42);
    v.set(7).unwrap();
    assert_eq!(v.get().unwrap(), 7);
}

#[mproc::test]
fn a_value_read_as_another_type_is_a_codec_error() {
    let mgr = Manager::start().unwrap();
    let v = mgr.value("text".to_string()).unwrap();
    // The same object seen as another type, through the proxy's plain-data form.
    let wrong: ValueProxy<u64> = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
    assert!(matches!(wrong.get(), Err(Error::Codec(_))));
}

// ---------------------------------------------------------------- apply: tasks in the server

#[mproc::test]
fn apply_runs_the_task_on_the_stored_value_and_returns_the_new_one() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, String>().unwrap();
    d.insert(1, "hi".into()).unwrap();
    assert_eq!(d.apply(&1, shout).unwrap(), Some("HI".into()));
    assert_eq!(d.get(&1).unwrap(), Some("HI".into()));
}

#[mproc::test]
fn apply_of_a_missing_key_does_nothing_and_apply_or_starts_from_the_default() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, u64>().unwrap();
    assert_eq!(d.apply(&1, increment).unwrap(), None);
    assert!(!d.contains_key(&1).unwrap());
    assert_eq!(d.apply_or(&1, 10, increment).unwrap(), 11);
    assert_eq!(d.apply_or(&1, 10, increment).unwrap(), 12);
}

#[mproc::test]
fn a_list_item_applies_in_place() {
    let mgr = Manager::start().unwrap();
    let l = mgr.list_from([1u64, 2]).unwrap();
    assert_eq!(l.apply(1, increment).unwrap(), Some(3));
    assert_eq!(l.apply(2, increment).unwrap(), None);
    assert_eq!(l.to_vec().unwrap(), vec![1, 3]);
}

#[mproc::test]
fn a_panicking_apply_is_panicked_and_leaves_the_value() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, u64>().unwrap();
    d.insert(1, 5).unwrap();
    match d.apply(&1, refuses) {
        Err(Error::Panicked { task, message, .. }) => {
            assert!(task.ends_with("refuses"), "{task}");
            assert_eq!(message, "no update today");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d.get(&1).unwrap(), Some(5));
}

#[mproc::test]
fn apply_with_a_function_that_is_not_a_task_is_not_a_task() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, u64>().unwrap();
    d.insert(1, 5).unwrap();
    assert!(matches!(d.apply(&1, plain), Err(Error::NotATask { .. })));
}

// ---------------------------------------------------------------- update: closures, with the object held

#[mproc::test]
fn update_runs_the_closure_on_the_stored_value_and_returns_the_new_one() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, String>().unwrap();
    d.insert(1, "hi".into()).unwrap();
    let suffix = "!".to_string();
    assert_eq!(d.update(&1, |s| s + &suffix).unwrap(), Some("hi!".into()));
    assert_eq!(d.get(&1).unwrap(), Some("hi!".into()));
}

#[mproc::test]
fn update_of_a_missing_key_does_nothing_and_update_or_starts_from_the_default() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, u64>().unwrap();
    assert_eq!(d.update(&1, |v| v + 1).unwrap(), None);
    assert!(!d.contains_key(&1).unwrap());
    assert_eq!(d.update_or(&1, 10, |v| v + 1).unwrap(), 11);
    assert_eq!(d.update_or(&1, 10, |v| v + 1).unwrap(), 12);
}

#[mproc::test]
fn a_list_item_updates_in_place_by_closure() {
    let mgr = Manager::start().unwrap();
    let l = mgr.list_from([1u64, 2]).unwrap();
    assert_eq!(l.update(1, |v| v * 10).unwrap(), Some(20));
    assert_eq!(l.update(2, |v| v * 10).unwrap(), None);
    assert_eq!(l.to_vec().unwrap(), vec![1, 20]);
}

#[mproc::test]
fn a_panicking_closure_releases_the_object_unchanged() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, u64>().unwrap();
    d.insert(1, 5).unwrap();
    let panicked = std::panic::catch_unwind(|| d.update(&1, |_| panic!("no update today")));
    assert!(panicked.is_err());
    // Another connection (a proxy of its own, as a child would have) gets through at once.
    let other: DictProxy<u32, u64> = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    let got = finishes_within(Duration::from_secs(10), move || other.update(&1, |v| v + 1).unwrap());
    assert_eq!(got, Some(Some(6)));
}

#[mproc::test]
fn a_closure_may_use_the_object_it_updates() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<String, u64>().unwrap();
    d.insert("step".into(), 5).unwrap();
    let total = d.update_or(&"total".into(), 0, |v| v + d.get(&"step".into()).unwrap().unwrap()).unwrap();
    assert_eq!(total, 5);
}

#[mproc::test]
fn threads_of_one_process_updating_by_closure_lose_nothing() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<String, u64>().unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..250 {
                    d.update_or(&"n".into(), 0, |v| v + 1).unwrap();
                }
            });
        }
    });
    assert_eq!(d.get(&"n".into()).unwrap(), Some(1000));
}

#[mproc::test]
fn a_process_killed_inside_the_closure_releases_the_object() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<String, u64>().unwrap();
    let (inside, tx) = Pipe::<()>::simplex().unwrap();
    let child = Reaped::new(mproc::spawn!(dies_inside_the_closure(d.clone(), tx)));
    inside.recv_timeout(Duration::from_secs(30)).unwrap();
    // The child holds the dict: another update waits...
    let other = d.clone();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(other.update_or(&"n".into(), 0, |v| v + 10));
    });
    assert!(done.recv_timeout(Duration::from_millis(300)).is_err(), "an update went past another process's hold");
    // ...until the child dies, without its update.
    child.kill();
    assert_eq!(done.recv_timeout(Duration::from_secs(10)).unwrap().unwrap(), 10);
}

// ---------------------------------------------------------------- queues, locks and events

#[mproc::test]
fn a_queue_is_first_in_first_out() {
    let mgr = Manager::start().unwrap();
    let q = mgr.queue::<u32>().unwrap();
    assert!(q.is_empty().unwrap());
    for i in 0..3 {
        q.put(i).unwrap();
    }
    assert_eq!(q.len().unwrap(), 3);
    assert_eq!((q.get().unwrap(), q.try_get().unwrap(), q.get().unwrap()), (0, 1, 2));
    assert!(matches!(q.try_get(), Err(Error::Empty)));
}

#[mproc::test]
fn get_waits_for_a_put() {
    let mgr = Manager::start().unwrap();
    let q = mgr.queue::<String>().unwrap();
    let producer = q.clone();
    let put = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        producer.put("late".into()).unwrap();
    });
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), "late");
    put.join().unwrap();
}

#[mproc::test]
fn get_timeout_on_an_empty_queue_is_empty_once_the_timeout_ran_out() {
    let mgr = Manager::start().unwrap();
    let q = mgr.queue::<u32>().unwrap();
    let started = Instant::now();
    assert!(matches!(q.get_timeout(Duration::from_millis(300)), Err(Error::Empty)));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(10), "took {took:?}");
}

#[mproc::test]
fn a_queue_carries_items_between_processes() {
    let mgr = Manager::start().unwrap();
    let q = mgr.queue::<u32>().unwrap();
    let producer = Reaped::new(mproc::spawn!(produces(q.clone(), 100)));
    let got: Vec<u32> = (0..100).map(|_| q.get_timeout(Duration::from_secs(30)).unwrap()).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    producer.join().unwrap();
}

#[mproc::test]
fn a_waiting_get_does_not_hold_up_the_other_threads_of_its_process() {
    let mgr = Manager::start().unwrap();
    let q = mgr.queue::<u32>().unwrap();
    let d = mgr.dict::<u32, u32>().unwrap();
    let waiter = q.clone();
    let waiting = std::thread::spawn(move || waiter.get_timeout(Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    d.insert(1, 1).unwrap();
    q.put(7).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(waiting.join().unwrap().unwrap(), 7);
}

#[mproc::test]
fn a_waiter_whose_process_dies_is_dropped() {
    let mgr = Manager::start().unwrap();
    let q = mgr.queue::<u32>().unwrap();
    let (waiting, tx) = Pipe::<()>::simplex().unwrap();
    let child = Reaped::new(mproc::spawn!(dies_waiting(q.clone(), tx)));
    waiting.recv_timeout(Duration::from_secs(30)).unwrap();
    std::thread::sleep(Duration::from_millis(200)); // in its get by now
    child.kill();
    let _ = child.join();
    std::thread::sleep(Duration::from_millis(300)); // the server notices within its poll
    q.put(1).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 1);
}

#[mproc::test]
fn a_blocking_get_fails_at_once_when_the_server_dies() {
    let mgr = Manager::start().unwrap();
    let q = mgr.queue::<u32>().unwrap();
    let waiter = q.clone();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(waiter.get().is_err());
    });
    std::thread::sleep(Duration::from_millis(200));
    let pid = mgr.pid().unwrap().as_raw();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    assert_eq!(done.recv_timeout(Duration::from_secs(10)), Ok(true));
}

#[mproc::test]
fn a_lock_excludes_other_processes_until_released() {
    let mgr = Manager::start().unwrap();
    let lock = mgr.lock().unwrap();
    {
        let _guard = lock.lock().unwrap();
        assert!(!mproc::spawn!(tries_the_lock(lock.clone())).unwrap().join().unwrap());
        assert!(!lock.acquire_timeout(Duration::from_millis(100)).unwrap());
    }
    assert!(mproc::spawn!(tries_the_lock(lock.clone())).unwrap().join().unwrap());
}

#[mproc::test]
fn a_lock_held_by_a_killed_process_is_released() {
    let mgr = Manager::start().unwrap();
    let lock = mgr.lock().unwrap();
    let (held, tx) = Pipe::<()>::simplex().unwrap();
    let child = Reaped::new(mproc::spawn!(dies_holding(lock.clone(), tx)));
    held.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(!lock.try_acquire().unwrap());
    child.kill();
    assert!(lock.acquire_timeout(Duration::from_secs(10)).unwrap());
}

#[mproc::test]
fn a_semaphore_admits_its_value_then_waits_for_a_release_from_another_process() {
    let mgr = Manager::start().unwrap();
    let sem = mgr.semaphore(1).unwrap();
    let (taken_rx, taken_tx) = Pipe::<()>::simplex().unwrap();
    let (go_rx, go_tx) = Pipe::<()>::simplex().unwrap();
    let child = Reaped::new(mproc::spawn!(holds_a_slot(sem.clone(), taken_tx, go_rx)));
    taken_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(sem.value().unwrap(), 0);
    assert!(!sem.try_acquire().unwrap());
    assert!(!sem.acquire_timeout(Duration::from_millis(100)).unwrap());
    go_tx.send(&()).unwrap();
    assert!(sem.acquire_timeout(Duration::from_secs(10)).unwrap());
    child.join().unwrap();
}

#[mproc::test]
fn a_semaphore_takes_releases_past_its_value_and_a_bounded_one_refuses_them() {
    let mgr = Manager::start().unwrap();
    let sem = mgr.semaphore(0).unwrap();
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.value().unwrap(), 2);
    let bounded = mgr.bounded_semaphore(1).unwrap();
    bounded.acquire().unwrap();
    bounded.release().unwrap();
    let err = bounded.release().unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }) && err.to_string().contains("initial value 1"), "{err}");
    assert_eq!(bounded.value().unwrap(), 1);
}

#[mproc::test]
fn a_barrier_wait_that_runs_out_breaks_it_until_reset() {
    let mgr = Manager::start().unwrap();
    let b = mgr.barrier(2).unwrap();
    assert_eq!(b.parties().unwrap(), 2);
    assert!(matches!(b.wait_timeout(Duration::from_millis(100)), Err(Error::Timeout)));
    assert!(b.is_broken().unwrap());
    assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
    b.reset().unwrap();
    assert!(!b.is_broken().unwrap());
    let other = b.clone();
    let party = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(10)));
    let mine = b.wait_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(mine + party.join().unwrap().unwrap(), 1);
}

#[mproc::test]
fn a_barrier_of_no_parties_is_misuse_that_says_so() {
    let mgr = Manager::start().unwrap();
    let err = mgr.barrier(0).unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }) && err.to_string().contains("at least 1 party"), "{err}");
    let server = Server::bind("127.0.0.1:0", b"key").unwrap();
    assert!(matches!(server.barrier("b", 0), Err(Error::Misuse { .. })));
}

#[mproc::test]
fn abort_ends_the_waits_at_a_barrier_with_broken_barrier() {
    let mgr = Manager::start().unwrap();
    let b = mgr.barrier(3).unwrap();
    let other = b.clone();
    let party = std::thread::spawn(move || other.wait());
    assert!(common::eventually(Duration::from_secs(10), || b.n_waiting().unwrap() == 1));
    b.abort().unwrap();
    let waited = finishes_within(Duration::from_secs(10), move || party.join().unwrap());
    assert!(matches!(waited, Some(Err(Error::BrokenBarrier))), "{waited:?}");
    assert_eq!(b.n_waiting().unwrap(), 0);
}

#[mproc::test]
fn a_party_killed_at_a_barrier_breaks_it_for_the_others() {
    let mgr = Manager::start().unwrap();
    let b = mgr.barrier(3).unwrap();
    let (waiting, tx) = Pipe::<()>::simplex().unwrap();
    let child = Reaped::new(mproc::spawn!(dies_at_the_barrier(b.clone(), tx)));
    waiting.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(common::eventually(Duration::from_secs(10), || b.n_waiting().unwrap() == 1));
    let other = b.clone();
    let party = std::thread::spawn(move || other.wait());
    child.kill();
    let waited = finishes_within(Duration::from_secs(10), move || party.join().unwrap());
    assert!(matches!(waited, Some(Err(Error::BrokenBarrier))), "{waited:?}");
}

#[mproc::test]
fn an_rlock_is_taken_again_by_its_thread_and_kept_from_others_until_the_last_release() {
    let mgr = Manager::start().unwrap();
    let lock = mgr.rlock().unwrap();
    lock.acquire().unwrap();
    assert!(lock.try_acquire().unwrap());
    let other = lock.clone();
    let tries = move || {
        let other = other.clone();
        std::thread::spawn(move || (other.try_acquire().unwrap(), other.release().is_err())).join().unwrap()
    };
    assert_eq!(tries(), (false, true));
    lock.release().unwrap();
    assert_eq!(tries(), (false, true));
    lock.release().unwrap();
    assert!(matches!(lock.release(), Err(Error::Misuse { .. })));
    // Free now: another thread takes it (and its release then works).
    assert_eq!(tries(), (true, false));
}

#[mproc::test]
fn an_rlock_held_by_a_killed_process_is_released() {
    let mgr = Manager::start().unwrap();
    let lock = mgr.rlock().unwrap();
    let (held, tx) = Pipe::<()>::simplex().unwrap();
    let child = Reaped::new(mproc::spawn!(dies_holding_twice(lock.clone(), tx)));
    held.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(!lock.try_acquire().unwrap());
    child.kill();
    assert!(lock.acquire_timeout(Duration::from_secs(10)).unwrap());
}

#[mproc::test]
fn wait_and_notify_without_the_condition_lock_are_misuse() {
    let mgr = Manager::start().unwrap();
    let cond = mgr.condition().unwrap();
    for err in [cond.wait().unwrap_err(), cond.notify(1).unwrap_err(), cond.release().unwrap_err()] {
        assert!(matches!(err, Error::Misuse { .. }), "{err}");
    }
}

#[mproc::test]
fn a_condition_wait_that_runs_out_is_false_and_holds_the_lock_again() {
    let mgr = Manager::start().unwrap();
    let cond = mgr.condition().unwrap();
    let _held = cond.lock().unwrap();
    let _again = cond.lock().unwrap();
    let started = Instant::now();
    assert!(!cond.wait_timeout(Duration::from_millis(150)).unwrap());
    assert!(started.elapsed() >= Duration::from_millis(100));
    // Held again, twice: notify is allowed, and another thread cannot take it.
    cond.notify_all().unwrap();
    let other = cond.clone();
    assert!(!std::thread::spawn(move || other.try_acquire().unwrap()).join().unwrap());
}

#[mproc::test]
fn notify_of_one_wakes_one_waiter_at_a_time() {
    let mgr = Manager::start().unwrap();
    let cond = mgr.condition().unwrap();
    let (queued, woken) = (mgr.value(0u32).unwrap(), mgr.value(0u32).unwrap());
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let (cond, queued, woken) = (cond.clone(), queued.clone(), woken.clone());
            std::thread::spawn(move || {
                let _held = cond.lock().unwrap();
                queued.update(|n| n + 1).unwrap();
                let notified = cond.wait_timeout(Duration::from_secs(20)).unwrap();
                woken.update(|n| n + 1).unwrap();
                notified
            })
        })
        .collect();
    // Each waiter holds the lock from its count until its wait lets it go: once
    // both counted and the lock is free, both are waiting.
    assert!(common::eventually(Duration::from_secs(10), || queued.get().unwrap() == 2));
    {
        let _held = cond.lock().unwrap();
        cond.notify(1).unwrap();
    }
    assert!(common::eventually(Duration::from_secs(10), || woken.get().unwrap() == 1));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(woken.get().unwrap(), 1, "notify(1) woke more than one waiter");
    {
        let _held = cond.lock().unwrap();
        cond.notify(1).unwrap();
    }
    for w in waiters {
        assert!(w.join().unwrap());
    }
    assert_eq!(woken.get().unwrap(), 2);
}

#[mproc::test]
fn release_of_a_free_lock_is_misuse() {
    let mgr = Manager::start().unwrap();
    let lock = mgr.lock().unwrap();
    assert!(matches!(lock.release(), Err(Error::Misuse { .. })));
}

#[mproc::test]
fn an_event_wakes_its_waiters_in_other_processes() {
    let mgr = Manager::start().unwrap();
    let ev = mgr.event().unwrap();
    let waiters: Vec<_> = (0..3).map(|_| Reaped::new(mproc::spawn!(waits_for(ev.clone())))).collect();
    std::thread::sleep(Duration::from_millis(200));
    ev.set().unwrap();
    for waiter in waiters {
        assert!(waiter.join().unwrap());
    }
}

#[mproc::test]
fn event_wait_timeout_is_false_once_the_timeout_ran_out() {
    let mgr = Manager::start().unwrap();
    let ev = mgr.event().unwrap();
    let started = Instant::now();
    assert!(!ev.wait_timeout(Duration::from_millis(300)).unwrap());
    assert!(started.elapsed() >= Duration::from_millis(300));
    ev.set().unwrap();
    ev.clear().unwrap();
    assert!(!ev.is_set().unwrap());
}

// ---------------------------------------------------------------- custom objects

#[mproc::test]
fn a_custom_object_runs_its_operations_in_the_server() {
    let mgr = Manager::start().unwrap();
    let account = mgr.object(Account { owner: "ada".into(), balance: 10 }).unwrap();
    assert_eq!(account.call(deposit, 5).unwrap(), 15);
    assert_eq!(account.call(withdraw, 20).unwrap(), Err("ada has 15 only".to_string()));
    assert_eq!(account.call(withdraw, 5).unwrap(), Ok(10));
    assert_eq!(account.get().unwrap(), Account { owner: "ada".into(), balance: 10 });
}

#[mproc::test]
fn a_custom_object_gets_sets_and_updates_by_closure() {
    let mgr = Manager::start().unwrap();
    let account = mgr.object(Account { owner: "ada".into(), balance: 1 }).unwrap();
    account.set(Account { owner: "grace".into(), balance: 2 }).unwrap();
    let updated = account.update(|mut a| {
        a.balance *= 10;
        a
    });
    assert_eq!(updated.unwrap().balance, 20);
    assert_eq!(account.get().unwrap().owner, "grace");
}

#[mproc::test]
fn a_panicking_operation_is_panicked_and_leaves_the_object() {
    let mgr = Manager::start().unwrap();
    let account = mgr.object(Account { owner: "ada".into(), balance: 3 }).unwrap();
    match account.call(freezes, ()) {
        Err(Error::Panicked { message, .. }) => assert_eq!(message, "account frozen"),
        other => panic!("{other:?}"),
    }
    assert_eq!(account.call(deposit, 1).unwrap(), 4);
}

#[mproc::test]
fn four_processes_calling_an_operation_lose_nothing() {
    let mgr = Manager::start().unwrap();
    let account = mgr.object(Account { owner: "ada".into(), balance: 0 }).unwrap();
    let children: Vec<_> = (0..4).map(|_| Reaped::new(mproc::spawn!(deposits(account.clone(), 250)))).collect();
    for child in children {
        child.join().unwrap();
    }
    assert_eq!(account.get().unwrap().balance, 1000);
}

// ---------------------------------------------------------------- the server process

#[mproc::test]
fn the_socket_directory_is_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let mgr = Manager::start().unwrap();
    let Address::Unix(socket) = mgr.address().clone() else { panic!("not a Unix socket") };
    let mode = std::fs::metadata(socket.parent().unwrap()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[mproc::test]
fn shutdown_stops_the_server_and_removes_its_directory() {
    let mgr = Manager::start().unwrap();
    let pid = mgr.pid().unwrap().as_raw();
    let Address::Unix(socket) = mgr.address().clone() else { panic!("not a Unix socket") };
    mgr.shutdown().unwrap();
    assert!(!common::running(pid));
    assert!(!socket.parent().unwrap().exists());
    mgr.shutdown().unwrap();
}

#[mproc::test]
fn a_destroyed_object_is_misuse_through_every_proxy_to_it() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, u32>().unwrap();
    d.insert(1, 1).unwrap();
    let other = d.clone();
    let kept = mgr.dict::<u32, u32>().unwrap();
    kept.insert(2, 2).unwrap();
    d.destroy().unwrap();
    let err = other.get(&1).unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }) && err.to_string().contains("was destroyed"), "{err}");
    let err = other.clone().destroy().unwrap_err();
    assert!(err.to_string().contains("was destroyed"), "{err}");
    assert_eq!(kept.get(&2).unwrap(), Some(2));
}

#[mproc::test]
fn destroying_a_queue_ends_a_get_waiting_on_it() {
    let mgr = Manager::start().unwrap();
    let q = mgr.queue::<u32>().unwrap();
    let waiter = q.clone();
    let waiting = std::thread::spawn(move || waiter.get());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!waiting.is_finished(), "get returned from an empty queue");
    q.destroy().unwrap();
    let err = finishes_within(Duration::from_secs(10), move || waiting.join().unwrap())
        .expect("the get still waits on a destroyed queue")
        .unwrap_err();
    assert!(err.to_string().contains("was destroyed"), "{err}");
}

#[mproc::test]
fn destroy_waits_for_a_closure_update_in_progress() {
    let mgr = Manager::start().unwrap();
    let v = mgr.value(1u64).unwrap();
    let (inside_tx, inside_rx) = std::sync::mpsc::channel();
    let updater = v.clone();
    let updating = std::thread::spawn(move || {
        updater.update(|n| {
            inside_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            n + 1
        })
    });
    inside_rx.recv().unwrap();
    let started = Instant::now();
    v.clone().destroy().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200), "destroyed in the middle of an update");
    assert_eq!(updating.join().unwrap().unwrap(), 2);
    assert!(v.get().unwrap_err().to_string().contains("was destroyed"));
}

#[mproc::test]
fn a_proxy_of_a_shut_down_manager_fails_at_once() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, u32>().unwrap();
    d.insert(1, 1).unwrap();
    drop(mgr);
    let started = Instant::now();
    assert!(d.get(&1).is_err());
    assert!(d.get(&1).is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[mproc::test]
fn a_killed_server_fails_calls_at_once() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, u32>().unwrap();
    d.insert(1, 1).unwrap();
    let pid = mgr.pid().unwrap().as_raw();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(common::eventually(Duration::from_secs(10), || !common::running(pid)));
    let started = Instant::now();
    assert!(d.get(&1).is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[mproc::test]
fn the_server_dies_with_its_owner() {
    let (rx, tx) = Pipe::<i32>::simplex().unwrap();
    let owner = mproc::spawn!(owns_a_manager(tx)).unwrap();
    let server = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(common::running(server));
    owner.kill().unwrap();
    assert!(owner.join().is_err());
    assert!(
        common::eventually(Duration::from_secs(10), || !common::running(server)),
        "server {server} outlived its owner"
    );
}

#[mproc::test]
fn the_directory_of_a_dead_owner_is_removed_at_the_next_start() {
    let dead = mproc::fork(|| ()).unwrap();
    let pid = dead.pid().as_raw();
    dead.join().unwrap();
    let stale = std::env::temp_dir().join(format!("mproc-manager-{pid}-0123456789abcdef"));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("manager.sock"), b"").unwrap();
    let _mgr = Manager::start().unwrap();
    assert!(!stale.exists());
}

// ---------------------------------------------------------------- proxies as data

#[mproc::test]
fn a_proxy_travels_inside_a_message() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<u32, u32>().unwrap();
    let (a, b) = Pipe::<DictProxy<u32, u32>>::duplex().unwrap();
    a.send(&d).unwrap();
    let received = b.recv().unwrap();
    assert_eq!(received, d);
    received.insert(1, 2).unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(2));
}

#[mproc::test]
fn a_forked_child_opens_its_own_connection_and_the_parent_keeps_its() {
    let mgr = Manager::start().unwrap();
    let d = mgr.dict::<String, u64>().unwrap();
    d.insert("n".into(), 0).unwrap(); // the parent's connection is open now
    let child_d = d.clone();
    let child = mproc::fork(move || {
        for _ in 0..500 {
            child_d.apply(&"n".to_string(), increment).unwrap();
        }
    })
    .unwrap();
    for _ in 0..500 {
        d.apply(&"n".to_string(), increment).unwrap();
    }
    child.join().unwrap();
    assert_eq!(d.get(&"n".into()).unwrap(), Some(1000));
}

// ---------------------------------------------------------------- under every start method

macro_rules! for_each_start_method {
    ($($name:ident => $method:expr),*) => {$(
        mod $name {
            use super::*;
            const METHOD: StartMethod = $method;

            #[mproc::test]
            fn parties_in_four_processes_pass_a_barrier_together_with_distinct_indices() {
                let mgr = Manager::start_with(METHOD).unwrap();
                let b = mgr.barrier(4).unwrap();
                let children: Vec<_> = (0..3)
                    .map(|_| Process::builder().start_method(METHOD).spawn(waits_at, (b.clone(),)).unwrap())
                    .collect();
                let mut indices = vec![b.wait_timeout(Duration::from_secs(30)).unwrap()];
                for child in children {
                    indices.push(child.join().unwrap());
                }
                indices.sort();
                assert_eq!(indices, [0, 1, 2, 3]);
                // The barrier is ready for another round.
                assert_eq!(b.n_waiting().unwrap(), 0);
                assert!(!b.is_broken().unwrap());
            }

            #[mproc::test]
            fn a_condition_wakes_waiters_in_other_processes() {
                let mgr = Manager::start_with(METHOD).unwrap();
                let (cond, ready, data) = (mgr.condition().unwrap(), mgr.value(false).unwrap(), mgr.value(0u32).unwrap());
                let children: Vec<_> = (0..2)
                    .map(|_| {
                        let args = (cond.clone(), ready.clone(), data.clone());
                        Process::builder().start_method(METHOD).spawn(waits_until_ready, args).unwrap()
                    })
                    .collect();
                std::thread::sleep(Duration::from_millis(200));
                {
                    let _held = cond.lock().unwrap();
                    data.set(42).unwrap();
                    ready.set(true).unwrap();
                    cond.notify_all().unwrap();
                }
                for child in children {
                    assert_eq!(child.join().unwrap(), 42);
                }
            }

            #[mproc::test]
            fn ten_processes_write_into_one_dict_and_one_list() {
                let mgr = Manager::start_with(METHOD).unwrap();
                let dic = mgr.dict::<String, String>().unwrap();
                let lis = mgr.list_from(0..5u32).unwrap();
                let children: Vec<_> = (0..10)
                    .map(|i| Process::builder().start_method(METHOD).spawn(fun1, (dic.clone(), lis.clone(), i)).unwrap())
                    .collect();
                for child in children {
                    child.join().unwrap();
                }
                // Keys "0" to "9" ("2" written by every child too).
                assert_eq!(dic.len().unwrap(), 10);
                let mut items = lis.to_vec().unwrap();
                assert_eq!(&items[..5], &[0, 1, 2, 3, 4]);
                items[5..].sort();
                assert_eq!(&items[5..], &(0..10).collect::<Vec<_>>()[..]);
            }

            #[mproc::test]
            fn eight_processes_of_a_thousand_applies_count_to_eight_thousand() {
                let mgr = Manager::start_with(METHOD).unwrap();
                let d = mgr.dict::<String, u64>().unwrap();
                let children: Vec<_> = (0..8)
                    .map(|_| Process::builder().start_method(METHOD).spawn(applies, (d.clone(), 1000)).unwrap())
                    .collect();
                for child in children {
                    child.join().unwrap();
                }
                assert_eq!(d.get(&"n".into()).unwrap(), Some(8000));
            }

            #[mproc::test]
            fn eight_processes_of_a_thousand_closure_updates_count_to_eight_thousand() {
                let mgr = Manager::start_with(METHOD).unwrap();
                let d = mgr.dict::<String, u64>().unwrap();
                let children: Vec<_> = (0..8)
                    .map(|_| Process::builder().start_method(METHOD).spawn(updates, (d.clone(), 1000)).unwrap())
                    .collect();
                for child in children {
                    child.join().unwrap();
                }
                assert_eq!(d.get(&"n".into()).unwrap(), Some(8000));
            }
        }
    )*};
}

for_each_start_method!(fork => StartMethod::Fork, forkserver => StartMethod::ForkServer, spawn => StartMethod::Spawn);

// ---------------------------------------------------------------- remote

#[mproc::test]
fn a_client_gets_published_objects_by_name_over_tcp() {
    let serving = Serving::new(b"key", |s| {
        s.dict("scores");
        s.list("log");
        s.namespace("config");
        s.value("total", &5u64).unwrap();
    });
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    let scores = mgr.get_dict::<String, u64>("scores").unwrap();
    scores.apply_or(&"ada".to_string(), 0, increment).unwrap();
    assert_eq!(scores.get(&"ada".into()).unwrap(), Some(1));
    mgr.get_list::<String>("log").unwrap().push("x".into()).unwrap();
    mgr.get_namespace("config").unwrap().set("depth", 3u8).unwrap();
    assert_eq!(mgr.get_value::<u64>("total").unwrap().apply(increment).unwrap(), 6);
    // A second client sees the same objects.
    let other = Manager::connect(&serving.addr, b"key").unwrap();
    assert_eq!(other.get_list::<String>("log").unwrap().to_vec().unwrap(), vec!["x".to_string()]);
    assert_eq!(other.get_namespace("config").unwrap().get::<u8>("depth").unwrap(), Some(3));
}

#[mproc::test]
fn a_client_gets_published_queues_locks_events_and_objects_by_name() {
    let serving = Serving::new(b"key", |s| {
        s.queue("jobs");
        s.lock("mutex");
        s.event("go");
        s.object("account", &Account { owner: "ada".into(), balance: 1 }).unwrap();
    });
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    mgr.get_queue::<u32>("jobs").unwrap().put(3).unwrap();
    assert!(mgr.get_lock("mutex").unwrap().try_acquire().unwrap());
    mgr.get_event("go").unwrap().set().unwrap();
    assert_eq!(mgr.get_object::<Account>("account").unwrap().call(deposit, 1).unwrap(), 2);
    let other = Manager::connect(&serving.addr, b"key").unwrap();
    assert_eq!(other.get_queue::<u32>("jobs").unwrap().try_get().unwrap(), 3);
    assert!(!other.get_lock("mutex").unwrap().try_acquire().unwrap());
    assert!(other.get_event("go").unwrap().is_set().unwrap());
}

#[mproc::test]
fn a_custom_object_asked_for_as_another_type_is_misuse_naming_both() {
    let serving = Serving::new(b"key", |s| s.object("account", &Account { owner: "ada".into(), balance: 1 }).unwrap());
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    match mgr.get_object::<String>("account") {
        Err(Error::Misuse { what }) => {
            assert!(what.contains("Account") && what.contains("String"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

#[mproc::test]
fn a_lock_is_released_when_its_client_disconnects() {
    let serving = Serving::new(b"key", |s| s.lock("mutex"));
    let holder = Manager::connect(&serving.addr, b"key").unwrap();
    assert!(holder.get_lock("mutex").unwrap().try_acquire().unwrap());
    let other = Manager::connect(&serving.addr, b"key").unwrap();
    let lock = other.get_lock("mutex").unwrap();
    assert!(!lock.try_acquire().unwrap());
    holder.shutdown().unwrap(); // closes its connections
    assert!(lock.acquire_timeout(Duration::from_secs(10)).unwrap());
}

#[mproc::test]
fn destroying_a_published_object_takes_its_name_away() {
    let serving = Serving::new(b"key", |s| s.dict("scores"));
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    mgr.get_dict::<String, u64>("scores").unwrap().destroy().unwrap();
    let err = mgr.get_dict::<String, u64>("scores").unwrap_err();
    assert!(err.to_string().contains("publishes nothing under the name"), "{err}");
}

#[mproc::test]
fn a_client_gets_published_semaphores_barriers_rlocks_and_conditions_by_name() {
    let serving = Serving::new(b"key", |s| {
        s.bounded_semaphore("slots", 1).unwrap();
        s.barrier("phase", 2).unwrap();
        s.rlock("section");
        s.condition("changed");
    });
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    let slots = mgr.get_semaphore("slots").unwrap();
    assert!(slots.try_acquire().unwrap());
    assert!(!mgr.get_semaphore("slots").unwrap().try_acquire().unwrap());
    slots.release().unwrap();
    assert!(slots.release().is_err());
    let other = Manager::connect(&serving.addr, b"key").unwrap();
    let party = std::thread::spawn(move || other.get_barrier("phase").unwrap().wait_timeout(Duration::from_secs(10)));
    let mine = mgr.get_barrier("phase").unwrap().wait_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(mine + party.join().unwrap().unwrap(), 1);
    assert!(matches!(mgr.get_barrier("slots"), Err(Error::Misuse { .. })));
    let section = mgr.get_rlock("section").unwrap();
    let _outer = section.lock().unwrap();
    let _inner = section.lock().unwrap();
    let changed = mgr.get_condition("changed").unwrap();
    let _held = changed.lock().unwrap();
    assert!(!changed.wait_timeout(Duration::from_millis(50)).unwrap());
}

#[mproc::test]
fn a_wrong_authkey_is_authentication_failed() {
    let serving = Serving::new(b"right", |s| s.dict("d"));
    assert!(matches!(Manager::connect(&serving.addr, b"wrong"), Err(Error::AuthenticationFailed)));
    // Nothing was served to it, and the server goes on.
    let mgr = Manager::connect(&serving.addr, b"right").unwrap();
    assert!(mgr.get_dict::<u8, u8>("d").unwrap().is_empty().unwrap());
}

#[mproc::test]
fn an_unknown_name_or_a_name_of_another_kind_is_misuse() {
    let serving = Serving::new(b"key", |s| s.list("items"));
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    assert!(matches!(mgr.get_dict::<u8, u8>("nothing"), Err(Error::Misuse { .. })));
    match mgr.get_dict::<u8, u8>("items") {
        Err(Error::Misuse { what }) => assert!(what.contains("is a list, not a dict"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[mproc::test]
fn a_connected_client_makes_anonymous_objects_too() {
    let serving = Serving::new(b"key", |_| {});
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    let d = mgr.dict::<u8, u8>().unwrap();
    d.insert(1, 2).unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(2));
    drop(mgr); // a connected manager leaves the server running
    assert_eq!(d.get(&1).unwrap(), Some(2));
}

#[mproc::test]
fn the_server_survives_garbage_before_and_after_authentication() {
    let serving = Serving::new(b"key", |s| s.dict("d"));
    // Before: bytes that are no handshake.
    let mut raw = TcpStream::connect(serving.tcp()).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff").unwrap();
    drop(raw);
    // After: a frame that is no request is answered with an error, the connection goes on.
    let conn = Client::<()>::connect(&serving.addr, b"key").unwrap();
    conn.send_bytes(b"\xfe\xfd garbage").unwrap();
    assert!(!conn.recv_bytes_timeout(Duration::from_secs(10)).unwrap().is_empty());
    // A frame announced longer than the limit closes that connection only.
    conn.__write_raw(&(u64::MAX / 2).to_le_bytes()).unwrap();
    assert!(conn.recv_bytes_timeout(Duration::from_secs(10)).is_err());
    // A frame cut short by a client that goes away.
    let cut = Client::<()>::connect(&serving.addr, b"key").unwrap();
    cut.__write_raw(&100u64.to_le_bytes()).unwrap();
    cut.__write_raw(b"only part").unwrap();
    drop(cut);
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    let d = mgr.get_dict::<u8, u8>("d").unwrap();
    d.insert(1, 1).unwrap();
    assert_eq!(d.len().unwrap(), 1);
}

#[mproc::test]
fn the_server_survives_bad_frames_from_clients_in_shared_memory() {
    let path = common::temp_path("manager-bad-frames.sock");
    let serving = Serving::at(path.as_path(), b"key", |s| {
        s.set_max_message(1 << 20);
        s.dict("d");
    });
    // A frame that is no request is answered with an error, the connection goes on.
    let conn = Client::<()>::connect(&serving.addr, b"key").unwrap();
    conn.send_bytes(b"\xfe\xfd garbage").unwrap();
    assert!(!conn.recv_bytes_timeout(Duration::from_secs(10)).unwrap().is_empty());
    // A frame over the server's limit (and larger than the ring) closes that connection only.
    let err = conn.send_bytes(&vec![7u8; 3 << 20]).and_then(|()| conn.recv_bytes_timeout(Duration::from_secs(10)));
    assert!(err.is_err(), "an oversized request was answered");
    // A frame cut short by a client that goes away.
    let cut = Client::<()>::connect(&serving.addr, b"key").unwrap();
    cut.__write_raw(&100u64.to_le_bytes()).unwrap();
    cut.__write_raw(b"only part").unwrap();
    drop(cut);
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    let d = mgr.get_dict::<u8, u8>("d").unwrap();
    d.insert(1, 1).unwrap();
    assert_eq!(d.len().unwrap(), 1);
}

#[mproc::test]
fn silent_half_open_clients_do_not_keep_others_out() {
    let serving = Serving::new(b"key", |s| {
        s.set_handshake_timeout(Duration::from_millis(500));
        s.dict("d");
    });
    // More silent connections than the server has acceptors.
    let silent: Vec<_> = (0..8).map(|_| TcpStream::connect(serving.tcp()).unwrap()).collect();
    let started = Instant::now();
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    mgr.get_dict::<u8, u8>("d").unwrap().insert(1, 1).unwrap();
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    drop(silent);
}

#[mproc::test]
fn connections_past_the_bound_wait_for_a_free_one() {
    let serving = Serving::new(b"key", |s| {
        s.set_max_connections(1);
        s.dict("d");
    });
    let first = Manager::connect(&serving.addr, b"key").unwrap();
    let addr = serving.addr.clone();
    let second = std::thread::spawn(move || Manager::connect(&addr, b"key").map(drop));
    std::thread::sleep(Duration::from_millis(400));
    assert!(!second.is_finished(), "a second connection was served past the bound of 1");
    drop(first);
    second.join().unwrap().unwrap();
}

#[mproc::test]
fn proxies_received_in_one_process_share_its_connections() {
    let serving = Serving::new(b"key", |s| {
        s.set_max_connections(1);
        s.dict("d");
        s.list("l");
    });
    let (tx, rx) = Pipe::<(DictProxy<u8, u8>, ListProxy<u8>)>::duplex().unwrap();
    {
        let mgr = Manager::connect(&serving.addr, b"key").unwrap();
        tx.send(&(mgr.get_dict("d").unwrap(), mgr.get_list("l").unwrap())).unwrap();
    } // The one connection the server allows closes here.
    let (d, l) = rx.recv().unwrap();
    // With a connection each, the second proxy would wait for a free one in vain.
    let used = finishes_within(Duration::from_secs(20), move || {
        for i in 0..3 {
            d.insert(i, i).unwrap();
            l.push(i).unwrap();
        }
        (d.len().unwrap(), l.len().unwrap())
    });
    assert_eq!(used, Some((3, 3)));
}

/// 32 clients (threads, each with a connection of its own) of 10 000 operations
/// each on the server at `addr`, which publishes `counts` and `log`: nothing lost.
fn thirty_two_clients_lose_nothing(addr: &Address) {
    let threads: Vec<_> = (0..32u64)
        .map(|t| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mgr = Manager::connect(&addr, b"key").unwrap();
                let counts = mgr.get_dict::<u64, u64>("counts").unwrap();
                let log = mgr.get_list::<u64>("log").unwrap();
                for i in 0..5000 {
                    counts.apply_or(&(i % 7), 0, increment).unwrap();
                    log.push(t * 10_000 + i).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mgr = Manager::connect(addr, b"key").unwrap();
    let total: u64 = mgr.get_dict::<u64, u64>("counts").unwrap().values().unwrap().iter().sum();
    assert_eq!(total, 32 * 5000);
    let mut log = mgr.get_list::<u64>("log").unwrap().to_vec().unwrap();
    log.sort();
    log.dedup();
    assert_eq!(log.len(), 32 * 5000);
}

#[mproc::test]
fn thirty_two_tcp_clients_of_ten_thousand_operations_lose_nothing() {
    let serving = Serving::new(b"key", |s| {
        s.dict("counts");
        s.list("log");
    });
    thirty_two_clients_lose_nothing(&serving.addr);
}

#[mproc::test]
fn thirty_two_unix_socket_clients_of_ten_thousand_operations_lose_nothing() {
    let path = common::temp_path("manager-32.sock");
    let serving = Serving::at(path.as_path(), b"key", |s| {
        s.dict("counts");
        s.list("log");
    });
    thirty_two_clients_lose_nothing(&serving.addr);
}

#[mproc::test]
fn stop_makes_serve_return_and_clients_fail() {
    let serving = Serving::new(b"key", |s| s.dict("d"));
    let mgr = Manager::connect(&serving.addr, b"key").unwrap();
    let d = mgr.get_dict::<u8, u8>("d").unwrap();
    d.insert(1, 1).unwrap();
    drop(serving); // stops and joins serve()
    assert!(d.get(&1).is_err());
}
