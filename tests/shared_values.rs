//! Value, Array, RawValue and RawArray: semantics in one process, handles passed
//! to children under every start method, exact counts under contention, and a
//! process killed holding a lock.

mod common;

use std::time::Duration;

use mproc::{Array, Error, Pod, Process, Queue, RawArray, RawValue, StartMethod, Value};

// ---------------------------------------------------------------- tasks

/// Adds one to the value `n` times, each under the lock.
#[mproc::task]
fn increments(v: Value<i64>, n: u32) {
    for _ in 0..n {
        *v.lock().unwrap() += 1;
    }
}

/// Adds one to the value `n` times with atomic fetch_add.
#[mproc::task]
fn fetch_adds(v: RawValue<i64>, n: u32) {
    for _ in 0..n {
        v.fetch_add(1);
    }
}

/// Fills the array with `i * 0.5`, under one lock.
#[mproc::task]
fn fills(a: Array<f64>) {
    let mut a = a.lock().unwrap();
    for (i, x) in a.iter_mut().enumerate() {
        *x = i as f64 * 0.5;
    }
}

/// Returns the value it found and leaves twice that.
#[mproc::task]
fn doubles(v: Value<i64>) -> i64 {
    let mut g = v.lock().unwrap();
    let seen = *g;
    *g = seen * 2;
    seen
}

/// Negates every element (Python's `a[i] = -a[i]`) and returns their sum.
#[mproc::task]
fn negates(a: Array<i32>) -> i64 {
    let mut a = a.lock().unwrap();
    for x in a.iter_mut() {
        *x = -*x;
    }
    a.iter().map(|&x| x as i64).sum()
}

/// Adds `k` to the raw value and to each element of the raw array.
#[mproc::task]
fn adds_raw(v: RawValue<u64>, a: RawArray<u32>, k: u32) -> Vec<u32> {
    v.fetch_add(k as u64);
    for i in 0..a.len() {
        a.fetch_add(i, k).unwrap();
    }
    a.to_vec()
}

/// Takes the value's lock, writes 41, says so (`ready` = 1), and sleeps
/// holding it.
#[mproc::task]
fn holds_the_value_lock(v: Value<i64>, ready: RawValue<u32>) {
    let mut g = v.lock().unwrap();
    *g = 41;
    ready.set(1);
    std::thread::sleep(Duration::from_secs(60));
}

/// Takes the array's lock, writes 7 into its first half, says so (`ready` =
/// 1), and sleeps holding it.
#[mproc::task]
fn holds_the_array_lock(a: Array<u8>, ready: RawValue<u32>) {
    let mut g = a.lock().unwrap();
    let half = g.len() / 2;
    g[..half].fill(7);
    ready.set(1);
    std::thread::sleep(Duration::from_secs(60));
}

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

// SAFETY: repr(C), two f64 fields, no padding; any 16 bytes are a valid Point.
unsafe impl Pod for Point {}

/// Moves the point by (1, -1).
#[mproc::task]
fn moves(p: Value<Point>) {
    let mut p = p.lock().unwrap();
    p.x += 1.0;
    p.y -= 1.0;
}

// ---------------------------------------------------------------- one process

#[test]
fn a_value_holds_what_was_set() {
    let v = Value::new(5i64).unwrap();
    assert_eq!(v.get().unwrap(), 5);
    v.set(-9).unwrap();
    assert_eq!(v.get().unwrap(), -9);
    *v.lock().unwrap() += 10;
    assert_eq!(v.get().unwrap(), 1);
}

#[test]
fn a_new_array_is_zeroed() {
    let a = Array::<f64>::new(1000).unwrap();
    assert_eq!(a.len(), 1000);
    assert!(a.lock().unwrap().iter().all(|&x| x == 0.0));
    assert!(RawArray::<u64>::new(10).unwrap().to_vec().iter().all(|&x| x == 0));
}

#[test]
fn from_slice_and_to_vec_round_trip() {
    let items: Vec<u32> = (0..10_000).map(|i| i * 7).collect();
    assert_eq!(Array::from_slice(&items).unwrap().to_vec().unwrap(), items);
    assert_eq!(RawArray::from_slice(&items).unwrap().to_vec(), items);
    let arrays: Vec<[u8; 3]> = vec![[1, 2, 3], [4, 5, 6]];
    assert_eq!(Array::from_slice(&arrays).unwrap().to_vec().unwrap(), arrays);
    assert_eq!(RawArray::from_slice(&arrays).unwrap().to_vec(), arrays);
}

#[test]
fn array_get_and_set_reach_single_elements() {
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0]).unwrap();
    a.set(1, 20.0).unwrap();
    assert_eq!(a.get(1).unwrap(), 20.0);
    a.lock().unwrap()[2] = 30.0;
    assert_eq!(a.to_vec().unwrap(), [1.0, 20.0, 30.0]);
    let r = RawArray::from_slice(&[1i16, 2, 3]).unwrap();
    r.set(0, -1).unwrap();
    assert_eq!(r.get(0).unwrap(), -1);
}

#[test]
fn an_index_out_of_range_is_a_misuse_not_a_panic() {
    let a = Array::<i32>::new(3).unwrap();
    let err = a.set(3, 1).unwrap_err();
    assert!(matches!(&err, Error::Misuse { what } if what.contains("index 3") && what.contains("3 elements")), "{err}");
    assert!(matches!(a.get(usize::MAX), Err(Error::Misuse { .. })));
    let r = RawArray::<u64>::new(2).unwrap();
    assert!(matches!(r.set(2, 1), Err(Error::Misuse { .. })));
    assert!(matches!(r.get(2), Err(Error::Misuse { .. })));
    assert!(matches!(r.fetch_add(5, 1), Err(Error::Misuse { .. })));
    assert!(matches!(r.copy_from_slice(&[1, 2, 3]), Err(Error::Misuse { .. })));
}

#[test]
fn an_array_larger_than_memory_is_a_misuse() {
    let err = Array::<u64>::new(usize::MAX / 4).unwrap_err();
    assert!(matches!(&err, Error::Misuse { what } if what.contains("larger than memory")), "{err}");
    assert!(matches!(RawArray::<[u8; 1024]>::new(usize::MAX / 1000), Err(Error::Misuse { .. })));
}

#[test]
fn an_empty_array_works() {
    let a = Array::<u64>::new(0).unwrap();
    assert!(a.is_empty());
    assert!(a.lock().unwrap().is_empty());
    assert_eq!(a.to_vec().unwrap(), Vec::<u64>::new());
    let r = RawArray::<u64>::from_slice(&[]).unwrap();
    assert!(r.is_empty() && r.as_atomics().is_empty() && r.to_vec().is_empty());
}

#[test]
fn locking_twice_in_one_thread_is_a_misuse_not_a_deadlock() {
    let v = Value::new(0u8).unwrap();
    let g = v.lock().unwrap();
    let err = v.clone().lock().unwrap_err();
    assert!(matches!(&err, Error::Misuse { what } if what.contains("already holds")), "{err}");
    drop(g);
    let a = Array::<u8>::new(4).unwrap();
    let _g = a.lock().unwrap();
    assert!(matches!(a.set(0, 1), Err(Error::Misuse { .. })));
    assert!(matches!(a.lock(), Err(Error::Misuse { .. })));
}

#[test]
fn get_set_and_to_vec_while_this_thread_holds_the_lock_are_a_misuse_not_a_hang() {
    let v = Value::new(0u8).unwrap();
    let g = v.lock().unwrap();
    assert!(matches!(v.get(), Err(Error::Misuse { what }) if what.contains("already holds")));
    assert!(matches!(v.set(1), Err(Error::Misuse { .. })));
    drop(g);
    let a = Array::<u8>::new(2).unwrap();
    let _g = a.lock().unwrap();
    assert!(matches!(a.to_vec(), Err(Error::Misuse { .. })));
}

#[test]
fn a_lock_held_by_another_thread_is_waited_for() {
    let v = Value::new(0i64).unwrap();
    let g = v.lock().unwrap();
    let other = v.clone();
    let t = std::thread::spawn(move || other.set(2));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!t.is_finished());
    drop(g);
    t.join().unwrap().unwrap();
    assert_eq!(v.get().unwrap(), 2);
}

#[test]
fn handles_are_send_sync_and_clone() {
    fn check<H: Send + Sync + Clone + 'static>() {}
    check::<Value<i64>>();
    check::<Array<f64>>();
    check::<RawValue<u32>>();
    check::<RawArray<[u8; 4]>>();
}

#[test]
fn threads_share_a_raw_value_by_cloning_it() {
    let v = RawValue::new(0u32).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let v = v.clone();
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    v.fetch_add(1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(v.get(), 40_000);
}

#[test]
fn raw_values_swap_and_compare_exchange_atomically() {
    let v = RawValue::new(5u8).unwrap();
    assert_eq!(v.swap(6), 5);
    assert_eq!(v.compare_exchange(5, 9), Err(6));
    assert_eq!(v.compare_exchange(6, 9), Ok(6));
    assert_eq!(v.fetch_sub(10), 9);
    assert_eq!(v.get(), 255, "fetch_sub wraps");
    let f = RawValue::new(1.5f64).unwrap();
    f.set(-2.25);
    assert_eq!(f.get(), -2.25);
}

#[test]
fn a_value_inside_a_message_is_an_error_that_says_so() {
    let q = Queue::<Value<i64>>::new().unwrap();
    let err = q.put(Value::new(1).unwrap()).unwrap_err();
    assert!(matches!(&err, Error::Codec(m) if m.contains("Value") && m.contains("only as a task argument")), "{err}");
}

// ---------------------------------------------------------------- across processes

#[mproc::test]
fn four_processes_of_ten_thousand_locked_increments_count_exactly_forty_thousand() {
    let v = Value::new(0i64).unwrap();
    let children: Vec<_> = (0..4).map(|_| mproc::spawn!(increments(v.clone(), 10_000)).unwrap()).collect();
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(v.get().unwrap(), 40_000);
}

#[mproc::test]
fn four_processes_of_ten_thousand_fetch_adds_count_exactly_forty_thousand() {
    let v = RawValue::new(0i64).unwrap();
    let children: Vec<_> = (0..4).map(|_| mproc::spawn!(fetch_adds(v.clone(), 10_000)).unwrap()).collect();
    for c in children {
        c.join().unwrap();
    }
    assert_eq!(v.get(), 40_000);
}

#[mproc::test]
fn an_array_written_by_a_child_is_read_by_the_parent() {
    let a = Array::<f64>::new(100_000).unwrap();
    mproc::spawn!(fills(a.clone())).unwrap().join().unwrap();
    let g = a.lock().unwrap();
    assert!(g.iter().enumerate().all(|(i, &x)| x == i as f64 * 0.5));
}

#[mproc::test]
fn a_pod_struct_of_ones_own_is_shared() {
    let p = Value::new(Point { x: 1.0, y: 2.0 }).unwrap();
    mproc::spawn!(moves(p.clone())).unwrap().join().unwrap();
    assert_eq!(p.get().unwrap(), Point { x: 2.0, y: 1.0 });
}

#[mproc::test]
fn a_child_killed_holding_a_values_lock_passes_it_on_with_previous_owner_died() {
    let v = Value::new(0i64).unwrap();
    let ready = RawValue::new(0u32).unwrap();
    let child = mproc::spawn!(holds_the_value_lock(v.clone(), ready.clone())).unwrap();
    assert!(common::eventually(Duration::from_secs(30), || ready.get() == 1));
    child.kill().unwrap();
    assert!(matches!(child.join(), Err(Error::Killed { signal: 9, .. })));
    {
        let g = v.lock().unwrap();
        assert!(g.previous_owner_died());
        assert_eq!(*g, 41);
    }
    let g = v.lock().unwrap();
    assert!(!g.previous_owner_died(), "only the first locker after the death is told");
}

#[mproc::test]
fn a_child_killed_holding_an_arrays_lock_passes_it_on_with_previous_owner_died() {
    let a = Array::<u8>::new(10).unwrap();
    let ready = RawValue::new(0u32).unwrap();
    let child = mproc::spawn!(holds_the_array_lock(a.clone(), ready.clone())).unwrap();
    assert!(common::eventually(Duration::from_secs(30), || ready.get() == 1));
    // A thread here blocks on the lock the child holds, and gets it at its death.
    let other = a.clone();
    let waiter = std::thread::spawn(move || other.lock().map(|g| (g.previous_owner_died(), g.to_vec())).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    assert!(!waiter.is_finished());
    child.kill().unwrap();
    let _ = child.join();
    let (died, seen) = waiter.join().unwrap();
    assert!(died);
    assert_eq!(seen, [7, 7, 7, 7, 7, 0, 0, 0, 0, 0]);
}

#[mproc::test]
fn a_child_forked_while_the_parent_holds_the_lock_waits_for_it() {
    let v = Value::new(0i64).unwrap();
    let g = v.lock().unwrap();
    // The forked child inherits this thread's record of the lock it holds: it
    // must wait for the parent, not take the lock for its own.
    let child = Process::builder().start_method(StartMethod::Fork).spawn(increments, (v.clone(), 1)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(child.is_alive());
    drop(g);
    child.join().unwrap();
    assert_eq!(v.get().unwrap(), 1);
}

macro_rules! for_each_start_method {
    ($($name:ident => $method:expr),*) => {$(
        mod $name {
            use super::*;
            const METHOD: StartMethod = $method;

            #[mproc::test]
            fn a_value_passed_to_a_child_is_the_same_value() {
                let v = Value::new(21i64).unwrap();
                let child = Process::builder().start_method(METHOD).spawn(doubles, (v.clone(),)).unwrap();
                assert_eq!(child.join().unwrap(), 21);
                assert_eq!(v.get().unwrap(), 42);
            }

            #[mproc::test]
            fn an_array_passed_to_a_child_is_the_same_array() {
                let a = Array::from_slice(&[1i32, -2, 3, 4]).unwrap();
                let child = Process::builder().start_method(METHOD).spawn(negates, (a.clone(),)).unwrap();
                assert_eq!(child.join().unwrap(), -6);
                assert_eq!(a.to_vec().unwrap(), [-1, 2, -3, -4]);
            }

            #[mproc::test]
            fn raw_values_and_arrays_passed_to_a_child_are_the_same_memory() {
                let v = RawValue::new(1u64).unwrap();
                let a = RawArray::from_slice(&[10u32, 20, 30]).unwrap();
                let child =
                    Process::builder().start_method(METHOD).spawn(adds_raw, (v.clone(), a.clone(), 5)).unwrap();
                assert_eq!(child.join().unwrap(), [15, 25, 35]);
                assert_eq!(v.get(), 6);
                assert_eq!(a.to_vec(), [15, 25, 35]);
            }
        }
    )*};
}

for_each_start_method!(fork => StartMethod::Fork, forkserver => StartMethod::ForkServer, spawn => StartMethod::Spawn);
