//! Queue, SimpleQueue and JoinableQueue: semantics in one process, queues
//! passed to children under every start method, many producers and consumers,
//! and processes killed at the worst moments.

mod common;

use std::time::{Duration, Instant};

use mproc::{Connection, Error, JoinableQueue, Pipe, Process, Queue, SimpleQueue, StartMethod};

// ---------------------------------------------------------------- tasks

/// Gets items until the queue is closed and drained; returns their sum and count.
#[mproc::task]
fn sums_until_closed(q: Queue<u64>) -> (u64, u64) {
    let (mut sum, mut count) = (0, 0);
    loop {
        match q.get() {
            Ok(v) => {
                sum += v;
                count += 1;
            }
            Err(Error::Closed) => return (sum, count),
            Err(e) => panic!("get: {e}"),
        }
    }
}

/// Puts `from..to` on the queue.
#[mproc::task]
fn puts_range(q: Queue<u64>, from: u64, to: u64) {
    for v in from..to {
        q.put(v).unwrap();
    }
}

/// Puts `n` items, a message larger than the ring, and exits at once, without
/// returning (no destructor runs).
#[mproc::task]
fn puts_then_exits(q: Queue<Vec<u8>>, n: u8, big: usize) {
    for i in 0..n {
        q.put(vec![i; 3]).unwrap();
    }
    q.put(vec![7; big]).unwrap();
    std::process::exit(0);
}

/// Takes every item until closed; returns which of `0..total` it saw as a
/// bitmap, and how many it saw twice.
#[mproc::task]
fn collects_until_closed(q: Queue<u64>, total: u64) -> (Vec<u64>, u64) {
    let mut seen = vec![0u64; total.div_ceil(64) as usize];
    let mut twice = 0;
    loop {
        match q.get() {
            Ok(v) => {
                let (word, bit) = ((v / 64) as usize, 1u64 << (v % 64));
                if seen[word] & bit != 0 {
                    twice += 1;
                }
                seen[word] |= bit;
            }
            Err(Error::Closed) => return (seen, twice),
            Err(e) => panic!("get: {e}"),
        }
    }
}

/// Takes the queue's lock, says so, and sleeps holding it.
#[mproc::task]
fn holds_the_lock(q: Queue<u64>, ready: Connection<()>) {
    q.__with_lock_held(|| {
        ready.send(&()).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    })
    .unwrap();
}

/// Copies an item into the ring under the lock, says so, and sleeps before
/// committing it.
#[mproc::task]
fn stalls_in_put(q: Queue<u64>, value: u64, ready: Connection<()>) {
    q.__stall_in_put(value, || {
        ready.send(&()).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    })
    .unwrap();
}

/// Copies the head item out under the lock, says so, and sleeps before taking it.
#[mproc::task]
fn stalls_in_get(q: Queue<u64>, ready: Connection<()>) {
    q.__stall_in_get(|| {
        ready.send(&()).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    })
    .unwrap();
}

/// Moves items round: takes one, puts it back, forever.
#[mproc::task]
fn churns(q: Queue<u64>) {
    loop {
        if let Ok(v) = q.get_timeout(Duration::from_secs(1)) {
            q.put(v).unwrap();
        }
    }
}

/// Gets `n` items and marks each done, slowly.
#[mproc::task]
fn works_through(q: JoinableQueue<u32>, n: u32) -> u32 {
    let mut sum = 0;
    for _ in 0..n {
        sum += q.get().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        q.task_done().unwrap();
    }
    sum
}

/// Echoes strings back doubled through a SimpleQueue pair.
#[mproc::task]
fn doubles(rx: SimpleQueue<String>, tx: SimpleQueue<String>) {
    while let Ok(s) = rx.get() {
        tx.put(format!("{s}{s}")).unwrap();
    }
}

/// Returns whether a get blocked until the queue closed.
#[mproc::task]
fn waits_for_close(q: Queue<u64>) -> bool {
    matches!(q.get(), Err(Error::Closed))
}

/// Receives one big message and returns its length and checksum.
#[mproc::task]
fn measures(q: Queue<Vec<u8>>) -> (usize, u64) {
    let v = q.get().unwrap();
    (v.len(), v.iter().map(|&b| b as u64).sum())
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 4096) as u8).collect()
}

// ---------------------------------------------------------------- one process

#[mproc::test]
fn items_come_out_in_the_order_they_went_in() {
    let q = Queue::<String>::new().unwrap();
    for i in 0..1000 {
        q.put(format!("item {i}")).unwrap();
    }
    for i in 0..1000 {
        assert_eq!(q.get().unwrap(), format!("item {i}"));
    }
}

#[mproc::test]
fn try_get_on_an_empty_queue_is_empty() {
    let q = Queue::<u8>::new().unwrap();
    assert!(matches!(q.try_get(), Err(Error::Empty)));
    q.put(1).unwrap();
    assert_eq!(q.try_get().unwrap(), 1);
    assert!(matches!(q.try_get(), Err(Error::Empty)));
}

#[mproc::test]
fn try_put_on_a_full_bounded_queue_is_full() {
    let q = Queue::<u8>::bounded(2).unwrap();
    q.try_put(1).unwrap();
    q.try_put(2).unwrap();
    assert!(matches!(q.try_put(3), Err(Error::Full)));
    assert_eq!(q.get().unwrap(), 1);
    q.try_put(3).unwrap();
}

#[mproc::test]
fn get_timeout_returns_empty_when_the_time_is_up() {
    let q = Queue::<u8>::new().unwrap();
    let start = Instant::now();
    assert!(matches!(q.get_timeout(Duration::from_millis(100)), Err(Error::Empty)));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5), "{took:?}");
}

#[mproc::test]
fn put_timeout_returns_full_when_the_time_is_up() {
    let q = Queue::<u8>::bounded(1).unwrap();
    q.put(1).unwrap();
    let start = Instant::now();
    assert!(matches!(q.put_timeout(2, Duration::from_millis(100)), Err(Error::Full)));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5), "{took:?}");
    assert_eq!(q.len(), 1);
}

#[mproc::test]
fn a_ring_full_of_bytes_is_full_even_without_an_item_limit() {
    let q = Queue::<Vec<u8>>::builder().capacity_bytes(4096).build().unwrap();
    assert_eq!(q.maxsize(), None);
    q.put(vec![0; 3000]).unwrap();
    assert!(matches!(q.try_put(vec![0; 2000]), Err(Error::Full)));
    assert_eq!(q.get().unwrap().len(), 3000);
    q.try_put(vec![0; 2000]).unwrap();
}

#[mproc::test]
fn len_is_empty_and_is_full_follow_the_contents() {
    let q = Queue::<u32>::bounded(3).unwrap();
    assert_eq!((q.len(), q.is_empty(), q.is_full()), (0, true, false));
    q.put(1).unwrap();
    assert_eq!((q.len(), q.is_empty(), q.is_full()), (1, false, false));
    q.put(2).unwrap();
    q.put(3).unwrap();
    assert_eq!((q.len(), q.is_empty(), q.is_full()), (3, false, true));
    q.get().unwrap();
    assert_eq!((q.len(), q.is_empty(), q.is_full()), (2, false, false));
}

#[test]
fn queues_are_send_sync_and_clone() {
    fn check<Q: Send + Sync + Clone + 'static>() {}
    check::<Queue<String>>();
    check::<SimpleQueue<Vec<u8>>>();
    check::<JoinableQueue<u64>>();
}

#[mproc::test]
fn a_queue_bounded_to_zero_items_is_a_misuse() {
    assert!(matches!(Queue::<u8>::bounded(0), Err(Error::Misuse { .. })));
}

#[mproc::test]
fn after_close_puts_fail_and_gets_drain_then_say_closed() {
    let q = Queue::<u8>::new().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    let other = q.clone();
    other.close();
    assert!(q.is_closed());
    assert!(matches!(q.put(3), Err(Error::Closed)));
    assert!(matches!(q.try_put(3), Err(Error::Closed)));
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.try_get().unwrap(), 2);
    assert!(matches!(q.get(), Err(Error::Closed)));
    assert!(matches!(q.try_get(), Err(Error::Closed)));
    assert!(matches!(q.get_timeout(Duration::from_secs(10)), Err(Error::Closed)));
    q.close(); // twice is harmless
}

#[mproc::test]
fn close_wakes_a_get_blocked_in_another_process() {
    let q = Queue::<u64>::new().unwrap();
    let child = mproc::spawn!(waits_for_close(q.clone())).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    q.close();
    assert!(child.join().unwrap());
}

#[mproc::test]
fn close_wakes_a_blocked_put() {
    let q = Queue::<u8>::bounded(1).unwrap();
    q.put(1).unwrap();
    let other = q.clone();
    let blocked = std::thread::spawn(move || other.put(2));
    std::thread::sleep(Duration::from_millis(100));
    q.close();
    assert!(matches!(blocked.join().unwrap(), Err(Error::Closed)));
}

#[mproc::test]
fn a_blocked_put_resumes_when_a_consumer_in_another_process_makes_room() {
    let q = Queue::<u64>::bounded(4).unwrap();
    let consumer = mproc::spawn!(sums_until_closed(q.clone())).unwrap();
    for v in 0..2000u64 {
        q.put(v).unwrap();
    }
    q.close();
    assert_eq!(consumer.join().unwrap(), ((0..2000).sum(), 2000));
}

#[mproc::test]
fn a_message_larger_than_the_ring_arrives_intact() {
    let q = Queue::<Vec<u8>>::builder().capacity_bytes(64 << 10).build().unwrap();
    let big = pattern(10 << 20);
    q.put(b"small".to_vec()).unwrap();
    // Larger than the capacity: waits for the queue to be empty.
    let blocked = Instant::now();
    assert!(matches!(q.put_timeout(big.clone(), Duration::from_millis(50)), Err(Error::Full)));
    assert!(blocked.elapsed() >= Duration::from_millis(50));
    assert_eq!(q.get().unwrap(), b"small");
    q.put(big.clone()).unwrap();
    assert_eq!(q.len(), 1);
    assert!(q.get().unwrap() == big);
    // And across processes.
    q.put(big.clone()).unwrap();
    let child = mproc::spawn!(measures(q.clone())).unwrap();
    assert_eq!(child.join().unwrap(), (big.len(), big.iter().map(|&b| b as u64).sum()));
}

#[mproc::test]
fn a_value_that_cannot_be_encoded_is_an_error_and_nothing_is_queued() {
    struct Refuses;
    impl serde::Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no"))
        }
    }
    impl<'de> serde::Deserialize<'de> for Refuses {
        fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Refuses, D::Error> {
            Ok(Refuses)
        }
    }
    let q = Queue::<Refuses>::new().unwrap();
    assert!(matches!(q.put(Refuses), Err(Error::Codec(_))));
    assert!(q.is_empty());
}

#[mproc::test]
fn threads_share_a_queue_by_cloning_it() {
    let q = Queue::<u64>::new().unwrap();
    let producers: Vec<_> = (0..4u64)
        .map(|t| {
            let q = q.clone();
            std::thread::spawn(move || (0..1000).for_each(|i| q.put(t * 1000 + i).unwrap()))
        })
        .collect();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || (0..1000).map(|_| q.get().unwrap()).sum::<u64>())
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    let total: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(total, (0..4000).sum());
    assert!(q.is_empty());
}

// ---------------------------------------------------------------- across processes

macro_rules! for_each_start_method {
    ($($name:ident => $method:expr),*) => {$(
        mod $name {
            use super::*;
            const METHOD: StartMethod = $method;

            #[mproc::test]
            fn a_queue_passed_to_a_child_carries_items_to_it() {
                let q = Queue::<u64>::new().unwrap();
                for v in 1..=100 {
                    q.put(v).unwrap();
                }
                q.close();
                let child = Process::builder().start_method(METHOD).spawn(sums_until_closed, (q.clone(),)).unwrap();
                assert_eq!(child.join().unwrap(), (5050, 100));
            }

            #[mproc::test]
            fn a_queue_passed_to_a_child_carries_items_back() {
                let q = Queue::<u64>::new().unwrap();
                let child = Process::builder().start_method(METHOD).spawn(puts_range, (q.clone(), 0, 500)).unwrap();
                let got: Vec<u64> = (0..500).map(|_| q.get_timeout(Duration::from_secs(30)).unwrap()).collect();
                assert_eq!(got, (0..500).collect::<Vec<_>>());
                child.join().unwrap();
            }

            #[mproc::test]
            fn a_queue_passed_to_a_pool_task_reaches_the_worker() {
                let pool = mproc::Pool::builder().processes(2).start_method(METHOD).build().unwrap();
                let q = Queue::<u64>::new().unwrap();
                let calls: Vec<_> = (0..4u64).map(|k| pool.apply_async(puts_range, (q.clone(), k * 10, k * 10 + 10))).collect();
                for call in calls {
                    call.get().unwrap();
                }
                let mut got: Vec<u64> = (0..40).map(|_| q.try_get().unwrap()).collect();
                got.sort();
                assert_eq!(got, (0..40).collect::<Vec<_>>());
            }

            #[mproc::test]
            fn simple_queues_passed_to_a_child_talk_both_ways() {
                let (to, from) = (SimpleQueue::<String>::new().unwrap(), SimpleQueue::<String>::new().unwrap());
                let child = Process::builder().start_method(METHOD).spawn(doubles, (to.clone(), from.clone())).unwrap();
                to.put("ab".into()).unwrap();
                assert_eq!(from.get().unwrap(), "abab");
                to.put("c".into()).unwrap();
                assert_eq!(from.get().unwrap(), "cc");
                to.close();
                child.join().unwrap();
                assert!(from.is_empty());
            }
        }
    )*};
}

for_each_start_method!(fork => StartMethod::Fork, forkserver => StartMethod::ForkServer, spawn => StartMethod::Spawn);

#[mproc::test]
fn four_producers_and_four_consumers_move_400_000_items_exactly_once() {
    const PER: u64 = 100_000;
    const TOTAL: u64 = 4 * PER;
    let q = Queue::<u64>::new().unwrap();
    let consumers: Vec<_> = (0..4).map(|_| mproc::spawn!(collects_until_closed(q.clone(), TOTAL)).unwrap()).collect();
    let producers: Vec<_> =
        (0..4u64).map(|p| mproc::spawn!(puts_range(q.clone(), p * PER, (p + 1) * PER)).unwrap()).collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close();
    let mut all = vec![0u64; TOTAL.div_ceil(64) as usize];
    let mut per_consumer = Vec::new();
    for c in consumers {
        let (seen, twice) = c.join().unwrap();
        assert_eq!(twice, 0, "a consumer got an item twice");
        let mut count = 0;
        for (a, s) in all.iter_mut().zip(&seen) {
            assert_eq!(*a & s, 0, "two consumers got the same item");
            *a |= s;
            count += s.count_ones();
        }
        per_consumer.push(count);
    }
    let received: u64 = all.iter().map(|w| w.count_ones() as u64).sum();
    assert_eq!(received, TOTAL, "items lost (per consumer: {per_consumer:?})");
    assert!(q.is_empty());
}

// ---------------------------------------------------------------- crashes

#[mproc::test]
fn a_process_killed_holding_the_lock_does_not_lock_the_others_out() {
    let q = Queue::<u64>::new().unwrap();
    for v in 0..10 {
        q.put(v).unwrap();
    }
    let (ready_rx, ready_tx) = Pipe::<()>::simplex().unwrap();
    let child = mproc::spawn!(holds_the_lock(q.clone(), ready_tx)).unwrap();
    ready_rx.recv().unwrap();
    // A thread here now blocks on the lock the child holds.
    let other = q.clone();
    let blocked = std::thread::spawn(move || other.put(10));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!blocked.is_finished());
    child.kill().unwrap();
    assert!(matches!(child.join(), Err(Error::Killed { signal: 9, .. })));
    blocked.join().unwrap().unwrap();
    assert_eq!(q.__recoveries(), 1);
    let got: Vec<u64> = (0..11).map(|_| q.try_get().unwrap()).collect();
    assert_eq!(got, (0..11).collect::<Vec<_>>());
    assert!(matches!(q.try_get(), Err(Error::Empty)));
}

#[mproc::test]
fn a_producer_killed_in_the_middle_of_a_put_leaves_no_half_message() {
    let q = Queue::<u64>::new().unwrap();
    q.put(1).unwrap();
    let (ready_rx, ready_tx) = Pipe::<()>::simplex().unwrap();
    let child = mproc::spawn!(stalls_in_put(q.clone(), 666, ready_tx)).unwrap();
    ready_rx.recv().unwrap();
    child.kill().unwrap();
    let _ = child.join();
    q.put(2).unwrap();
    assert_eq!(q.__recoveries(), 1);
    assert_eq!(q.len(), 2);
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert!(matches!(q.try_get(), Err(Error::Empty)));
}

/// Copies a message larger than the ring into the spill area under the lock,
/// says so, and sleeps before committing it.
#[mproc::task]
fn stalls_in_a_large_put(q: Queue<Vec<u8>>, len: usize, ready: Connection<()>) {
    q.__stall_in_put(vec![9; len], || {
        ready.send(&()).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    })
    .unwrap();
}

#[mproc::test]
fn a_producer_killed_in_the_middle_of_a_large_put_leaves_nothing_behind() {
    let q = Queue::<Vec<u8>>::builder().capacity_bytes(64 << 10).build().unwrap();
    let empty_size = q.__memory_file_len();
    let (ready_rx, ready_tx) = Pipe::<()>::simplex().unwrap();
    let child = mproc::spawn!(stalls_in_a_large_put(q.clone(), 4 << 20, ready_tx)).unwrap();
    ready_rx.recv().unwrap();
    assert!(q.__memory_file_len() > empty_size + (4 << 20));
    child.kill().unwrap();
    let _ = child.join();
    // The next locker repairs: the half-put message is not there, its bytes are freed.
    assert!(matches!(q.try_get(), Err(Error::Empty)));
    assert_eq!(q.__recoveries(), 1);
    assert_eq!(q.__memory_file_len(), empty_size);
    q.put(vec![1; 1 << 20]).unwrap();
    assert_eq!(q.get().unwrap(), vec![1; 1 << 20]);
    assert_eq!(q.__memory_file_len(), empty_size);
}

#[mproc::test]
fn a_consumer_killed_in_the_middle_of_a_get_loses_nothing() {
    let q = Queue::<u64>::new().unwrap();
    for v in 0..3 {
        q.put(v).unwrap();
    }
    let (ready_rx, ready_tx) = Pipe::<()>::simplex().unwrap();
    let child = mproc::spawn!(stalls_in_get(q.clone(), ready_tx)).unwrap();
    ready_rx.recv().unwrap();
    child.kill().unwrap();
    let _ = child.join();
    assert_eq!(q.len(), 3);
    let got: Vec<u64> = (0..3).map(|_| q.try_get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(q.__recoveries(), 1);
}

#[mproc::test]
fn a_producer_that_exits_right_after_put_loses_nothing() {
    let q = Queue::<Vec<u8>>::builder().capacity_bytes(1 << 20).build().unwrap();
    let child = mproc::spawn!(puts_then_exits(q.clone(), 5, 700 << 10)).unwrap();
    assert!(matches!(child.join(), Err(Error::Exited { code: 0, .. })));
    for i in 0..5u8 {
        assert_eq!(q.try_get().unwrap(), vec![i; 3]);
    }
    assert_eq!(q.try_get().unwrap(), vec![7; 700 << 10]);
    // A message larger than the ring, alone in the queue, outlives its producer too.
    let child = mproc::spawn!(puts_then_exits(q.clone(), 0, 3 << 20)).unwrap();
    assert!(matches!(child.join(), Err(Error::Exited { code: 0, .. })));
    assert_eq!(q.try_get().unwrap(), vec![7; 3 << 20]);
    assert!(matches!(q.try_get(), Err(Error::Empty)));
}

#[mproc::test]
fn processes_killed_at_random_moments_leave_the_queue_whole() {
    let q = Queue::<u64>::builder().capacity_bytes(4096).build().unwrap();
    for v in 0..100 {
        q.put(v).unwrap();
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..12 {
        let churners: Vec<_> = (0..2).map(|_| mproc::spawn!(churns(q.clone())).unwrap()).collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(2_000 + seed % 20_000));
        for c in &churners {
            c.kill().unwrap();
        }
        for c in churners {
            let _ = c.join();
        }
    }
    // A killed churner may have taken an item it never put back; nothing may
    // be duplicated or corrupt, and the count must match the contents.
    let len = q.len();
    let mut got: Vec<u64> = (0..len).map(|_| q.try_get().unwrap()).collect();
    assert!(matches!(q.try_get(), Err(Error::Empty)));
    got.sort();
    got.dedup();
    assert_eq!(got.len(), len, "an item came out twice");
    assert!(len >= 100 - 24 && got.iter().all(|&v| v < 100), "{len} items: {got:?}");
    // And the queue still works.
    q.put(1000).unwrap();
    assert_eq!(q.get().unwrap(), 1000);
}

// ---------------------------------------------------------------- JoinableQueue

#[mproc::test]
fn join_returns_once_a_worker_in_another_process_marked_every_item_done() {
    let q = JoinableQueue::<u32>::new().unwrap();
    for v in 1..=10 {
        q.put(v).unwrap();
    }
    assert_eq!(q.unfinished_tasks(), 10);
    let worker = mproc::spawn!(works_through(q.clone(), 10)).unwrap();
    assert!(!q.join_timeout(Duration::from_millis(1)).unwrap());
    q.join().unwrap();
    assert_eq!(q.unfinished_tasks(), 0);
    assert!(q.is_empty());
    assert_eq!(worker.join().unwrap(), 55);
}

#[mproc::test]
fn join_timeout_is_false_while_items_are_unfinished() {
    let q = JoinableQueue::<u32>::new().unwrap();
    q.put(1).unwrap();
    q.get().unwrap();
    let start = Instant::now();
    assert!(!q.join_timeout(Duration::from_millis(50)).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(50));
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::ZERO).unwrap());
}

#[mproc::test]
fn task_done_more_times_than_items_were_put_is_a_misuse() {
    let q = JoinableQueue::<u32>::new().unwrap();
    q.put(1).unwrap();
    q.task_done().unwrap();
    let err = q.task_done().unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }), "{err}");
    assert!(err.to_string().contains("more times than items were put"), "{err}");
    assert_eq!(q.unfinished_tasks(), 0);
}

// ---------------------------------------------------------------- handles

#[mproc::test]
fn a_queue_inside_a_message_is_an_error_that_says_so() {
    let (a, _b) = Pipe::<Queue<u8>>::duplex().unwrap();
    let q = Queue::<u8>::new().unwrap();
    let err = a.send(&q).unwrap_err();
    assert!(matches!(err, Error::Codec(_)), "{err}");
    assert!(err.to_string().contains("only as a task argument"), "{err}");
    // Inside another queue's message, the same.
    let outer = Queue::<Queue<u8>>::new().unwrap();
    let err = outer.put(q).unwrap_err();
    assert!(err.to_string().contains("only as a task argument"), "{err}");
}
