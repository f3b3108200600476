//! A tour of mproc: each section shows one thing you can do today, with the
//! Python `multiprocessing` construct it corresponds to in its heading.
//!
//! Shows: starting tasks and getting their results, process names, the three
//! start methods, how a panic, an `exit`, a crash and a timeout reach the
//! parent, forking a closure, what a process knows about its children, and a
//! pool of workers that survives a crash and a hung task, a pipe and a queue
//! handed to children as arguments, a shared counter and a barrier, and a
//! manager's dict updated from several processes. Every failure a child
//! meets arrives as a typed `mproc::Error`; the tour itself carries on to the
//! end.
//!
//! ```text
//! cargo run --release --example tour
//! ```

use std::time::{Duration, Instant};

use mproc::{Error, Process, StartMethod};

// ---------------------------------------------------------------------------
// Tasks: plain functions, made runnable in another process by `#[mproc::task]`.
// ---------------------------------------------------------------------------

#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Who am I, and who started me?
#[mproc::task]
fn whoami() -> String {
    let me = mproc::current_process();
    match mproc::parent_process() {
        Some(parent) => format!("{} (started by {})", me.name(), parent.name()),
        None => me.name().to_string(),
    }
}

/// A task that starts a child of its own and reports both names. A task may
/// return a `Result`; it arrives in the parent as a value.
#[mproc::task]
fn start_a_grandchild() -> Result<(String, String), String> {
    let grandchild = mproc::spawn!(whoami()).map_err(|e| e.to_string())?;
    let its_name = grandchild.join().map_err(|e| e.to_string())?;
    Ok((mproc::current_process().name().to_string(), its_name))
}

#[mproc::task]
fn parse_port(text: String) -> u16 {
    text.parse().expect("the port must be a number")
}

#[mproc::task]
fn give_up(code: i32) -> u64 {
    std::process::exit(code)
}

#[mproc::task]
fn crash() -> u64 {
    // SAFETY: none. This writes through a null pointer on purpose: the point is
    // to crash this child with SIGSEGV and watch the parent carry on.
    unsafe { std::ptr::null_mut::<i32>().write_volatile(1) };
    0
}

/// Answers each number with its square until the other end is closed.
#[mproc::task]
fn echo_squares(conn: mproc::Connection<u64>) -> u32 {
    let mut answered = 0;
    while let Ok(n) = conn.recv() {
        if conn.send(&(n * n)).is_err() {
            break;
        }
        answered += 1;
    }
    answered
}

/// Squares jobs from one queue into another until the first is closed and empty.
#[mproc::task]
fn square_jobs(jobs: mproc::Queue<u64>, results: mproc::Queue<u64>) -> u64 {
    let mut done = 0;
    while let Ok(n) = jobs.get() {
        if results.put(n * n).is_err() {
            break;
        }
        done += 1;
    }
    done
}

/// Adds 1000 to a shared counter under its lock, then dies holding the lock.
#[mproc::task]
fn count_then_die_holding(counter: mproc::Value<u64>) {
    for _ in 0..1000 {
        *counter.lock().expect("the lock works") += 1;
    }
    let _held = counter.lock().expect("the lock works");
    std::process::abort();
}

/// Waits at a barrier and returns its index there.
#[mproc::task]
fn meet(barrier: mproc::Barrier) -> usize {
    barrier.wait().unwrap_or(usize::MAX)
}

/// Counts words into a manager's dict, each count an atomic update.
#[mproc::task]
fn count_words(counts: mproc::manager::DictProxy<String, u64>, text: String) {
    for word in text.split_whitespace() {
        counts.update_or(&word.to_string(), 0, |n| n + 1).expect("the manager answers");
    }
}

#[mproc::task]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

// ---------------------------------------------------------------------------
// The tour.
// ---------------------------------------------------------------------------

#[mproc::main]
fn main() -> Result<(), Error> {
    spawn_and_join()?;
    names()?;
    start_methods()?;
    a_panic()?;
    an_exit()?;
    a_crash()?;
    timeouts()?;
    forking_a_closure()?;
    children_and_cpus()?;
    pools()?;
    pipes_and_queues()?;
    shared_state()?;
    a_manager()?;
    println!("\nEnd of the tour.");
    Ok(())
}

fn section(title: &str) {
    println!("\n== {title}");
}

/// `Process(target=square, args=(7,)).start()`, then `join()`; here `join`
/// also returns what the task returned.
fn spawn_and_join() -> Result<(), Error> {
    section("Spawn and join  [Process(target=f, args=(x,)).start(); p.join()]");
    println!("square(3) called in this process: {}", square(3));

    let p = mproc::spawn!(square(7))?;
    println!("started {} with pid {}", p.name(), p.pid());
    println!("square(7) in a child: {}", p.join()?);

    // The same without the macro: the task and its argument tuple.
    let p = Process::builder().spawn(add, (1, 2))?;
    println!("add(1, 2) in a child: {}", p.join()?);
    Ok(())
}

/// `Process(name=..)`, `current_process().name`, `parent_process()`.
fn names() -> Result<(), Error> {
    section("Names  [current_process().name, parent_process()]");
    println!("this process: {}", mproc::current_process().name());

    let p = mproc::spawn!(whoami())?;
    println!("default name: {}", p.join()?);

    let p = mproc::spawn!(whoami(); name = "reporter")?;
    println!("given name:   {}", p.join()?);

    // A child's own children are numbered under it: Process-N:1, Process-N:2, ...
    let p = mproc::spawn!(start_a_grandchild())?;
    match p.join()? {
        Ok((child, grandchild)) => println!("nested:       {child} started {grandchild}"),
        Err(message) => println!("nested:       the child could not start one: {message}"),
    }
    Ok(())
}

/// `set_start_method`, `get_context(method).Process(..)`.
fn start_methods() -> Result<(), Error> {
    section("Start methods  [set_start_method, get_context]");
    println!("default here: {:?} (the entry hook ran)", mproc::start_method());

    // A rough timing of start + run + join of a trivial task: the median of
    // five. (The fork server itself was started by the first spawn! above.)
    for method in [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer] {
        let mut times = Vec::new();
        for n in 0..5 {
            let started = Instant::now();
            mproc::spawn!(square(n); start_method = method)?.join()?;
            times.push(started.elapsed());
        }
        times.sort();
        let name = format!("{method:?}");
        println!("{name:<10}  start + join: {:.2?}", times[2]);
    }

    // A context picks a method for the processes made through it, without
    // touching the process-wide default.
    let ctx = mproc::Context::new(StartMethod::Spawn);
    let p = ctx.process().spawn(square, (12,))?;
    println!("through a Spawn context: {}", p.join()?);

    // The default can be chosen once per process; a second call is an error.
    mproc::set_start_method(StartMethod::ForkServer)?;
    if let Err(e) = mproc::set_start_method(StartMethod::Fork) {
        println!("second set_start_method: {e}");
    }
    Ok(())
}

/// An exception in a Python child is printed there and lost; here a panic
/// comes back to the parent from `join`.
fn a_panic() -> Result<(), Error> {
    section("A panic  [an exception in the child; exitcode 1]");
    let p = mproc::spawn!(parse_port("eighty".to_string()))?;
    // `join_timeout` leaves the handle in our hands, so `exitcode` can be read after.
    match p.join_timeout(Duration::from_secs(10)) {
        Err(Error::Panicked { task, message, location, .. }) => {
            println!("task:     {task}");
            println!("message:  {message}");
            println!("location: {}", location.as_deref().unwrap_or("unknown"));
        }
        other => println!("unexpected: {other:?}"),
    }
    println!("exitcode: {:?}", p.exitcode());
    Ok(())
}

/// `sys.exit(3)` in the child.
fn an_exit() -> Result<(), Error> {
    section("An exit  [sys.exit(3) in the child; exitcode 3]");
    let p = mproc::spawn!(give_up(3))?;
    match p.join() {
        Err(Error::Exited { process, code }) => println!("{process} exited with code {code}"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}

/// A crash takes down the child only.
fn a_crash() -> Result<(), Error> {
    section("A crash  [a segfault in the child; exitcode -11]");
    let p = mproc::spawn!(crash())?;
    match p.join() {
        Err(e @ Error::Killed { signal: 11, .. }) => println!("as expected: {e}"),
        other => println!("unexpected: {other:?}"),
    }
    // The parent is unharmed and goes on starting processes.
    println!("and the parent carries on: square(9) = {}", mproc::spawn!(square(9))?.join()?);
    Ok(())
}

/// `p.join(timeout)`, `p.is_alive()`, `p.terminate()`, `p.kill()`.
fn timeouts() -> Result<(), Error> {
    section("Timeouts  [p.join(timeout); p.terminate(); p.kill()]");
    let p = mproc::spawn!(nap(60_000))?;
    let waited = p.join_timeout(Duration::from_millis(300))?;
    println!("after 0.3 s: result {waited:?}, alive {}, exitcode {:?}", p.is_alive(), p.exitcode());
    p.terminate()?;
    println!("after terminate: {}", describe(&p.join_timeout(Duration::from_secs(10))));
    println!("alive {}, exitcode {:?}", p.is_alive(), p.exitcode());

    let p = mproc::spawn!(nap(60_000))?;
    p.kill()?;
    let result = p.join_timeout(Duration::from_secs(10));
    println!("after kill: exitcode {:?} ({})", p.exitcode(), describe(&result));

    // A task that ends in time gives its result.
    let p = mproc::spawn!(nap(100))?;
    println!("a 0.1 s nap within 10 s: {:?}", p.join_timeout(Duration::from_secs(10))?);
    Ok(())
}

/// Under fork, Python runs any callable with its captured state; `mproc::fork`
/// runs any closure.
fn forking_a_closure() -> Result<(), Error> {
    section("Forking a closure  [Process(target=lambda: ...) under fork]");
    let words: Vec<String> = "the quick brown fox jumps over the lazy dog".split(' ').map(String::from).collect();
    let parent = mproc::current_process().pid();
    let p = mproc::fork(move || {
        // The child owns its copy of `words`, moved in by the closure.
        let longest = words.iter().max_by_key(|w| w.len()).cloned();
        (mproc::current_process().pid().as_raw(), words.len(), longest)
    })?;
    let (child, count, longest) = p.join()?;
    println!("parent {parent}, child {child}: {count} words, longest {longest:?}");
    Ok(())
}

/// `active_children()`, `cpu_count()`, `p.daemon`.
fn children_and_cpus() -> Result<(), Error> {
    section("Children and CPUs  [active_children(), cpu_count(), daemon]");
    println!("cpu_count: {}", mproc::cpu_count());

    let worker = mproc::spawn!(nap(300); name = "worker")?;
    let helper = mproc::spawn!(nap(60_000); name = "helper", daemon = true)?;
    for child in mproc::active_children() {
        println!("running: {} (pid {}, daemon {})", child.name(), child.pid(), child.is_daemon());
    }
    // `join` consumes the handle: take what you need from it first.
    let name = worker.name().to_string();
    println!("{name} slept {} ms", worker.join()?);
    println!("{} is a daemon: when main returns it is terminated, not waited for", helper.name());
    drop(helper);
    println!("still running: {}", mproc::active_children().len());
    Ok(())
}

/// `Pool(4).map(f, xs)`; and what CPython's pool cannot do: survive a worker
/// that dies mid-task, and give up on a task that hangs.
fn pools() -> Result<(), Error> {
    section("Pools  [Pool(4).map(f, xs); a worker that dies; a task that hangs]");
    let pool = mproc::Pool::new(4)?;
    println!("map(square, 0..10): {:?}", pool.map(square, 0..10)?);

    // The worker that crashes fails exactly its own task and is replaced.
    // (CPython's pool would wait forever for that task's result.)
    match pool.apply(crash, ()) {
        Err(e @ Error::WorkerLost { .. }) => println!("a crashing task: {e}"),
        other => println!("unexpected: {other:?}"),
    }
    println!("the pool carries on: map(add, [(1, 2), (3, 4)]) = {:?}", pool.map(add, [(1, 2), (3, 4)])?);
    for restart in pool.insights().restarts {
        println!("replaced worker {}: {}", restart.pid, restart.cause);
    }
    pool.close();
    pool.join()?;

    // A task timeout kills the worker whose task runs too long, and replaces it.
    let pool = mproc::Pool::builder().processes(2).task_timeout(Duration::from_millis(300)).build()?;
    let started = Instant::now();
    match pool.apply(nap, (60_000,)) {
        Err(Error::Timeout) => {
            println!("a 60 s nap with a 0.3 s task timeout: Timeout after {:.2?}", started.elapsed())
        }
        other => println!("unexpected: {other:?}"),
    }
    println!("and a 0.1 s nap on the same pool: {:?}", pool.apply(nap, (100,))?);
    pool.terminate()
}

/// `Pipe()` and `Queue()`: handles passed to tasks as arguments.
fn pipes_and_queues() -> Result<(), Error> {
    section("Pipes and queues  [Pipe(), Queue(), conn.recv() raising EOFError]");
    let (here, there) = mproc::Pipe::<u64>::duplex()?;
    let child = mproc::spawn!(echo_squares(there))?;
    here.send(&12)?;
    println!("sent 12 through a pipe, got back {}", here.recv()?);
    drop(here);
    println!("the child answered {} message(s) and saw the end of the stream", child.join()?);

    let jobs = mproc::Queue::<u64>::new()?;
    let results = mproc::Queue::<u64>::new()?;
    let workers: Vec<_> =
        (0..2).map(|_| mproc::spawn!(square_jobs(jobs.clone(), results.clone()))).collect::<Result<_, _>>()?;
    for n in 1..=6 {
        jobs.put(n)?;
    }
    jobs.close();
    let done: u64 = workers.into_iter().map(|w| w.join()).sum::<Result<u64, Error>>()?;
    let mut squares: Vec<u64> = (0..done).map(|_| results.get()).collect::<Result<_, _>>()?;
    squares.sort();
    println!("two workers took {done} jobs from one queue until it was closed: {squares:?}");
    Ok(())
}

/// `Value`, `Lock` and `Barrier`: shared between processes, and not wedged by a
/// process that dies holding them.
fn shared_state() -> Result<(), Error> {
    section("Shared state  [Value('q', 0) with get_lock(); Barrier(3)]");
    let counter = mproc::Value::new(0u64)?;
    let children: Vec<_> =
        (0..2).map(|_| mproc::spawn!(count_then_die_holding(counter.clone()))).collect::<Result<_, _>>()?;
    for child in children {
        println!("a counting child ended: {}", describe(&child.join()));
    }
    // Both children were killed holding the lock; the next locker gets it.
    let guard = counter.lock()?;
    println!("counter = {} (exact), and the lock's last holder died: {}", *guard, guard.previous_owner_died());
    drop(guard);

    let barrier = mproc::Barrier::new(3)?;
    let parties: Vec<_> = (0..2).map(|_| mproc::spawn!(meet(barrier.clone()))).collect::<Result<_, _>>()?;
    let mut indices = vec![barrier.wait()?];
    for party in parties {
        indices.push(party.join()?);
    }
    indices.sort();
    println!("three processes passed a barrier together, with indices {indices:?}");
    Ok(())
}

/// `Manager().dict()`, updated from several processes without losing a count.
fn a_manager() -> Result<(), Error> {
    section("A manager  [Manager().dict(); d[k] += 1 under a lock]");
    let manager = mproc::Manager::start()?;
    let counts = manager.dict::<String, u64>()?;
    let texts = ["the cat and the dog", "the bird and the cat", "a dog"];
    let children: Vec<_> =
        texts.iter().map(|t| mproc::spawn!(count_words(counts.clone(), t.to_string()))).collect::<Result<_, _>>()?;
    for child in children {
        child.join()?;
    }
    let mut items = counts.items()?;
    items.sort();
    println!("word counts from three processes: {items:?}");
    manager.shutdown()
}

fn describe<T: std::fmt::Debug>(result: &Result<T, Error>) -> String {
    match result {
        Ok(v) => format!("{v:?}"),
        Err(e) => e.to_string(),
    }
}
