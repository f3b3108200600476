//! Two writers and a reader share one queue; the reader, which loops forever,
//! is terminated at the end: the Queue example of "Python multiprocessing:
//! Process, Queue and Pipe" (seed 000), in Rust.
//!
//! The Python original creates `q = Queue()` and three processes:
//! `proc_write(q, urls)` twice (urls `url_1`..`url_3` and `url_4`..`url_6`),
//! each printing `Process(pid) is writing...`, then for each url
//! `q.put(url)`, `Put url to queue...` and a random sleep of up to a second;
//! and `proc_read(q)`, which prints `Process(pid) is reading...`, then loops
//! forever on `q.get(True)` printing `Get url from queue.`. The parent joins
//! the two writers and terminates the reader, since it never ends.
//!
//! In Python the reader may be terminated before it has printed the last url.
//! Here the parent waits until the queue is empty first (a few milliseconds at
//! most), so every url is printed; then it terminates the reader, as the
//! original does. The sleeps are up to 0.2 s, so the example ends in about a
//! second.
//!
//! Shows: a `Queue` shared by three processes (passed as a task argument,
//! cloned), `put`, a blocking `get`, `terminate`.
//!
//! ```text
//! cargo run --example queue_write_read
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mproc::Queue;

/// A pseudo-random fraction in [0, 1), like Python's `random.random()`.
fn random() -> f64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let mixed = u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    mixed as f64 / (1u64 << 24) as f64
}

#[mproc::task]
fn proc_write(q: Queue<String>, urls: Vec<String>) {
    println!("Process({}) is writing...", std::process::id());
    for url in urls {
        q.put(url.clone()).expect("the queue is open");
        println!("Put {url} to queue...");
        std::thread::sleep(Duration::from_secs_f64(random() * 0.2));
    }
}

#[mproc::task]
fn proc_read(q: Queue<String>) {
    println!("Process({}) is reading...", std::process::id());
    loop {
        match q.get() {
            Ok(url) => println!("Get {url} from queue."),
            Err(e) => {
                println!("reader stops: {e}");
                return;
            }
        }
    }
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let q = Queue::<String>::new()?;
    let urls = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let writer1 = mproc::spawn!(proc_write(q.clone(), urls(&["url_1", "url_2", "url_3"])))?;
    let writer2 = mproc::spawn!(proc_write(q.clone(), urls(&["url_4", "url_5", "url_6"])))?;
    let reader = mproc::spawn!(proc_read(q.clone()))?;
    writer1.join()?;
    writer2.join()?;
    // Let the reader take what is left, then stop it: it never ends by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !q.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The last get may still be printing: give it a moment.
    std::thread::sleep(Duration::from_millis(50));
    reader.terminate()?;
    Ok(())
}
