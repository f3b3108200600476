//! The pool engine: one thread per pool owns the workers, feeds them jobs and
//! collects their results. `Pool`, `Executor` and `par_map!` are faces on it.
//!
//! The engine always knows which worker holds which job, so a worker that dies
//! fails exactly the job it held (`WorkerLost`, with the signal or exit code)
//! and is replaced; nothing waits for a result that can no longer come. Its
//! loop, in order: apply requests (cancel, close, terminate), hand queued jobs
//! to idle workers, wait on every worker's channel and exit sentinel (and the
//! nearest task deadline), then read results, bury dead workers and kill
//! workers whose task ran out of time.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::insights::{Insights, Restart, WorkerInsight};
use super::slot::{Chunk, Outcome, Slot};
use super::worker::{FromWorker, ToWorker, WorkerConfig};
use crate::codec;
use crate::error::{Error, Result};
use crate::process::child::ChildHandle;
use crate::process::registry::state;
use crate::start::{self, Launch, LaunchWork, StartMethod};
use crate::sys::fd::poll;
use crate::sys::frame::{DEFAULT_MAX_FRAME, FrameReader, Progress, write_frame};
use crate::sys::pid::Exit;
use crate::task::Report;

/// How long workers get to exit after being asked before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A pool's settings.
#[derive(Clone, Debug)]
pub(crate) struct PoolConfig {
    pub processes: usize,
    pub method: StartMethod,
    pub initializer: Option<(&'static str, Vec<u8>)>,
    pub max_tasks_per_child: Option<usize>,
    pub task_timeout: Option<Duration>,
}

/// One unit of work for a worker: a chunk of calls of one task.
pub(crate) struct Job {
    pub task: &'static str,
    pub chunk: Vec<u8>,
    pub items: usize,
    pub slot: Arc<Slot>,
    /// The `map` call it belongs to (0: none), and its place there: when a chunk
    /// fails, the later chunks of the same call are not dispatched.
    pub group: u64,
    pub index: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    Open,
    /// No new work; finish what is queued, then stop.
    Closed,
    /// The pool handle is gone: finish the work someone still waits for, then stop.
    Dropped,
    /// Stop now; fail what is left.
    Terminated,
    /// Cannot run tasks (an initializer failed, workers cannot start).
    Broken(String),
}

pub(crate) struct Engine {
    config: PoolConfig,
    shared: Mutex<Shared>,
    finished: Condvar,
    wake: OwnedFd,
}

struct Shared {
    status: Status,
    queue: VecDeque<(u64, Job)>,
    next_id: u64,
    next_group: u64,
    /// Running jobs to kill on request (cancel with `kill`), by id.
    kill_requests: Vec<u64>,
    insights: Insights,
    finished: bool,
}

impl Engine {
    /// Starts `config.processes` workers and the engine thread.
    pub(crate) fn start(config: PoolConfig) -> Result<Arc<Engine>> {
        if config.processes == 0 {
            return Err(Error::Misuse { what: "a pool needs at least one process".into() });
        }
        // SAFETY: eventfd takes an initial value and flags and returns a new descriptor or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: the kernel just returned this descriptor; we are its only owner.
        let wake = unsafe { OwnedFd::from_raw_fd(raw) };
        let engine = Arc::new(Engine {
            config,
            shared: Mutex::new(Shared {
                status: Status::Open,
                queue: VecDeque::new(),
                next_id: 1,
                next_group: 1,
                kill_requests: Vec::new(),
                insights: Insights::default(),
                finished: false,
            }),
            finished: Condvar::new(),
            wake,
        });
        let mut runner = Runner { engine: engine.clone(), workers: Vec::new(), next: 0 };
        for _ in 0..engine.config.processes {
            let worker = runner.start_worker()?;
            runner.workers.push(worker);
        }
        runner.publish_insights();
        std::thread::Builder::new().name("mproc-pool".into()).spawn(move || runner.run())?;
        Ok(engine)
    }

    pub(crate) fn processes(&self) -> usize {
        self.config.processes
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// A fresh id for a group of jobs (one `map` call).
    pub(crate) fn new_group(&self) -> u64 {
        let mut sh = self.lock();
        sh.next_group += 1;
        sh.next_group
    }

    /// Queues jobs; each gets an id (returned in order). Fails if the pool does not
    /// take work any more.
    pub(crate) fn submit(&self, jobs: impl IntoIterator<Item = Job>) -> Result<Vec<u64>> {
        let mut sh = self.lock();
        match &sh.status {
            Status::Open => {}
            Status::Broken(reason) => return Err(Error::BrokenPool { reason: reason.clone() }),
            _ => return Err(Error::Closed),
        }
        let mut ids = Vec::new();
        for job in jobs {
            let id = sh.next_id;
            sh.next_id += 1;
            sh.queue.push_back((id, job));
            ids.push(id);
        }
        drop(sh);
        self.notify();
        Ok(ids)
    }

    /// Cancels a job: a queued one is removed (its result becomes `Cancelled`); a
    /// running one is killed with its worker when `kill` is set. True if cancelled.
    pub(crate) fn cancel(&self, id: u64, kill: bool) -> bool {
        let mut sh = self.lock();
        if let Some(pos) = sh.queue.iter().position(|(i, _)| *i == id) {
            let (_, job) = sh.queue.remove(pos).expect("position is in range");
            drop(sh);
            job.slot.complete(Err(Error::Cancelled));
            return true;
        }
        if kill && !sh.finished {
            sh.kill_requests.push(id);
            drop(sh);
            self.notify();
            return true;
        }
        false
    }

    /// Cancels every queued job (their results become `Cancelled`).
    pub(crate) fn cancel_queued(&self) {
        let jobs: Vec<(u64, Job)> = self.lock().queue.drain(..).collect();
        for (_, job) in jobs {
            job.slot.complete(Err(Error::Cancelled));
        }
    }

    /// Whether job `id` is still queued (not yet handed to a worker).
    pub(crate) fn is_queued(&self, id: u64) -> bool {
        self.lock().queue.iter().any(|(i, _)| *i == id)
    }

    /// Python's `close`: no new work; what is queued still runs.
    pub(crate) fn close(&self) {
        let mut sh = self.lock();
        if sh.status == Status::Open {
            sh.status = Status::Closed;
        }
        drop(sh);
        self.notify();
    }

    /// Python's `terminate`: stop the workers now; queued and running jobs fail with `Closed`.
    pub(crate) fn terminate(&self) {
        let mut sh = self.lock();
        if !matches!(sh.status, Status::Broken(_)) {
            sh.status = Status::Terminated;
        }
        drop(sh);
        self.notify();
    }

    /// The pool handle was dropped: jobs nobody waits for are cancelled, the rest
    /// run to completion, then the workers stop.
    pub(crate) fn drop_handle(&self) {
        let mut sh = self.lock();
        if matches!(sh.status, Status::Open | Status::Closed) {
            sh.status = Status::Dropped;
        }
        drop(sh);
        self.notify();
    }

    /// True if `close` or `terminate` was called (or the pool broke).
    pub(crate) fn is_stopping(&self) -> bool {
        self.lock().status != Status::Open
    }

    /// Waits until the engine has stopped its workers; false on timeout.
    pub(crate) fn wait_finished(&self, deadline: Option<Instant>) -> bool {
        let mut sh = self.lock();
        while !sh.finished {
            sh = match deadline {
                None => self.finished.wait(sh).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.finished.wait_timeout(sh, d - now).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
        true
    }

    /// Why the pool cannot run tasks, if it is broken.
    pub(crate) fn broken_reason(&self) -> Option<String> {
        match &self.lock().status {
            Status::Broken(r) => Some(r.clone()),
            _ => None,
        }
    }

    pub(crate) fn insights(&self) -> Insights {
        self.lock().insights.clone()
    }
}

/// Why the engine killed a worker, which decides how its job fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillReason {
    Timeout,
    Cancelled,
    Stopping,
}

struct Running {
    id: u64,
    task: &'static str,
    items: usize,
    slot: Arc<Slot>,
    group: u64,
    index: usize,
    deadline: Option<Instant>,
    sent: Instant,
}

struct Worker {
    child: Arc<ChildHandle>,
    reader: FrameReader,
    ready: bool,
    /// Asked to stop (max_tasks_per_child reached, or the pool is finishing).
    stopping: bool,
    job: Option<Running>,
    chunks_done: usize,
    killed: Option<KillReason>,
    stats: WorkerInsight,
    idle_since: Instant,
}

struct Runner {
    engine: Arc<Engine>,
    workers: Vec<Worker>,
    /// Where the next search for an idle worker starts, so that work rotates
    /// over the workers (as in CPython) instead of piling on the first.
    next: usize,
}

impl Runner {
    fn start_worker(&self) -> Result<Worker> {
        let config = WorkerConfig {
            initializer: self.engine.config.initializer.as_ref().map(|(t, a)| (t.to_string(), a.clone())),
        };
        let child = start::launch(Launch {
            method: self.engine.config.method,
            name: None,
            // Python's pool workers are daemons: terminated, not waited for, at exit.
            daemon: true,
            work: LaunchWork::Worker(config),
        })?;
        let stats = WorkerInsight { pid: child.pid(), ..WorkerInsight::default() };
        Ok(Worker {
            child,
            reader: FrameReader::new(DEFAULT_MAX_FRAME),
            ready: false,
            stopping: false,
            job: None,
            chunks_done: 0,
            killed: None,
            stats,
            idle_since: Instant::now(),
        })
    }

    fn status(&self) -> Status {
        self.engine.lock().status.clone()
    }

    fn run(mut self) {
        loop {
            self.apply_kill_requests();
            match self.status() {
                Status::Terminated => return self.finish(Error::Closed, true),
                Status::Broken(reason) => return self.finish(Error::BrokenPool { reason }, true),
                Status::Dropped => self.cancel_unwanted(),
                _ => {}
            }
            self.dispatch();
            let status = self.status();
            let idle = self.workers.iter().all(|w| w.job.is_none());
            if matches!(status, Status::Closed | Status::Dropped) && idle && self.engine.lock().queue.is_empty() {
                return self.finish(Error::Closed, false);
            }
            if self.wait_and_handle().is_err() {
                // poll itself failed (out of memory for descriptors?): nothing sane is left.
                return self.finish(Error::BrokenPool { reason: "the pool's event loop failed".into() }, true);
            }
        }
    }

    /// Polls every worker's channel and exit sentinel, then handles what is ready.
    fn wait_and_handle(&mut self) -> Result<()> {
        let deadline = self.workers.iter().filter_map(|w| w.job.as_ref().and_then(|j| j.deadline)).min();
        let ready = {
            let mut fds: Vec<BorrowedFd<'_>> = vec![self.engine.wake.as_fd()];
            for w in &self.workers {
                fds.push(w.child.channel());
                fds.push(w.child.sentinel());
            }
            poll(&fds, deadline)?
        };
        if ready[0].readable {
            let mut buf = 0u64;
            // SAFETY: reads 8 bytes into a valid u64 from our eventfd.
            unsafe { libc::read(self.engine.wake.as_raw_fd(), (&mut buf as *mut u64).cast(), 8) };
        }
        // Results first: a worker that answered and then died still delivered.
        for i in 0..self.workers.len() {
            if ready[1 + 2 * i].readable {
                self.read_worker(i);
            }
        }
        let mut dead: Vec<usize> = Vec::new();
        for i in 0..self.workers.len() {
            if ready[2 + 2 * i].readable && self.workers[i].child.poll_exit().is_some() {
                dead.push(i);
            }
        }
        for i in dead.into_iter().rev() {
            self.bury(i);
        }
        let now = Instant::now();
        for w in &mut self.workers {
            if w.killed.is_none() && w.job.as_ref().and_then(|j| j.deadline).is_some_and(|d| d <= now) {
                w.killed = Some(KillReason::Timeout);
                w.child.signal(libc::SIGKILL);
            }
        }
        Ok(())
    }

    fn read_worker(&mut self, i: usize) {
        loop {
            let progress = {
                let w = &mut self.workers[i];
                w.reader.read_some(w.child.channel())
            };
            match progress {
                Ok(Progress::Frame(bytes)) => match codec::decode::<FromWorker>(&bytes) {
                    Ok(message) => self.handle(i, message),
                    Err(_) => {
                        // A worker that speaks garbage cannot be trusted with more work.
                        self.workers[i].child.signal(libc::SIGKILL);
                        return;
                    }
                },
                // End of stream: the worker is exiting; its sentinel will say how.
                Ok(Progress::Pending) | Ok(Progress::Eof) | Err(_) => return,
            }
        }
    }

    fn handle(&mut self, i: usize, message: FromWorker) {
        match message {
            FromWorker::Ready => {
                self.workers[i].ready = true;
                self.workers[i].idle_since = Instant::now();
            }
            FromWorker::InitFailed(failure) => {
                let err = failure.into_error("the pool's initializer");
                self.break_pool(format!("the initializer failed: {err}"));
            }
            FromWorker::Done { job, report, any_failed, busy_ns, codec_ns } => {
                let w = &mut self.workers[i];
                let Some(running) = w.job.take().filter(|r| r.id == job) else { return };
                w.chunks_done += 1;
                w.idle_since = Instant::now();
                w.stats.tasks += running.items as u64;
                w.stats.chunks += 1;
                w.stats.working += Duration::from_nanos(busy_ns);
                w.stats.codec += Duration::from_nanos(codec_ns);
                w.stats.round_trip += running.sent.elapsed();
                let outcome: Outcome = match report {
                    Report::Returned(bytes) => Ok(Chunk { bytes, any_failed }),
                    Report::Failed(failure) => Err(failure.into_error(running.task)),
                };
                let failed = any_failed || outcome.is_err();
                if let Some(max) = self.engine.config.max_tasks_per_child
                    && w.chunks_done >= max
                    && !w.stopping
                {
                    w.stopping = true;
                    let _ = send(w, &ToWorker::Stop);
                }
                if failed && running.group != 0 {
                    self.cancel_rest_of_group(running.group, running.index);
                }
                // Figures first: whoever the result wakes may look at them at once.
                self.publish_insights();
                running.slot.complete(outcome);
            }
        }
    }

    /// A worker ended: fail the job it held, record why, and replace it.
    fn bury(&mut self, i: usize) {
        let w = self.workers.swap_remove(i);
        let exit = w.child.poll_exit().unwrap_or(Exit::Signal(libc::SIGKILL));
        state().remove_child(&w.child);
        let cause = match (w.killed, exit) {
            (Some(KillReason::Timeout), _) => "killed: its task ran past the task timeout".to_string(),
            (Some(KillReason::Cancelled), _) => "killed: its task was cancelled".to_string(),
            (Some(KillReason::Stopping), _) => "stopped with the pool".to_string(),
            (None, _) if w.stopping && w.job.is_none() => "retired after max_tasks_per_child".to_string(),
            (None, e) => describe(e),
        };
        // The pool is whole again (the restart on record, a replacement started)
        // before the owner of the job this worker held wakes up to its failure.
        self.engine.lock().insights.restarts.push(Restart {
            pid: w.child.pid(),
            cause: cause.clone(),
            figures: w.stats.clone(),
        });
        if !w.ready && w.killed.is_none() && !w.stopping {
            // It never got past its initializer: another would fail the same way
            // (CPython would respawn it forever).
            self.break_pool(format!("a worker died while starting ({cause})"));
        } else if matches!(self.status(), Status::Open | Status::Closed | Status::Dropped) {
            match self.start_worker() {
                Ok(new) => self.workers.push(new),
                Err(e) => self.break_pool(format!("cannot start a replacement worker: {e}")),
            }
        }
        self.publish_insights();
        if let Some(running) = w.job {
            let err = match w.killed {
                Some(KillReason::Timeout) => Error::Timeout,
                Some(KillReason::Cancelled) => Error::Cancelled,
                _ => Error::WorkerLost { task: running.task.to_string(), reason: describe(exit) },
            };
            if running.group != 0 {
                self.cancel_rest_of_group(running.group, running.index);
            }
            running.slot.complete(Err(err));
        }
    }

    fn break_pool(&mut self, reason: String) {
        let mut sh = self.engine.lock();
        if !matches!(sh.status, Status::Broken(_) | Status::Terminated) {
            sh.status = Status::Broken(reason);
        }
    }

    /// Hands queued jobs to idle, ready workers.
    fn dispatch(&mut self) {
        let timeout = self.engine.config.task_timeout;
        let n = self.workers.len();
        let start = self.next;
        for k in 0..n {
            let i = (start + k) % n;
            let w = &self.workers[i];
            if !w.ready || w.stopping || w.job.is_some() || w.killed.is_some() {
                continue;
            }
            let Some((id, job)) = self.engine.lock().queue.pop_front() else { return };
            self.next = i + 1;
            let message = ToWorker::Run { job: id, task: job.task.to_string(), chunk: job.chunk };
            let w = &mut self.workers[i];
            w.stats.waiting += w.idle_since.elapsed();
            let now = Instant::now();
            w.job = Some(Running {
                id,
                task: job.task,
                items: job.items,
                slot: job.slot,
                group: job.group,
                index: job.index,
                deadline: timeout.map(|t| now + t),
                sent: now,
            });
            if send(w, &message).is_err() {
                // The worker is gone; its sentinel will fire and fail the job.
                w.child.signal(libc::SIGKILL);
            }
        }
    }

    /// After a chunk of a `map` failed, its later chunks are not worth running.
    fn cancel_rest_of_group(&self, group: u64, index: usize) {
        let mut cancelled = Vec::new();
        {
            let mut sh = self.engine.lock();
            sh.queue.retain_mut(|(_, job)| {
                let later = job.group == group && job.index > index;
                if later {
                    cancelled.push(job.slot.clone());
                }
                !later
            });
        }
        for slot in cancelled {
            slot.complete(Err(Error::Cancelled));
        }
    }

    /// After the pool handle is dropped: jobs nobody holds a result for are dropped.
    fn cancel_unwanted(&self) {
        self.engine.lock().queue.retain(|(_, job)| Arc::strong_count(&job.slot) > 1);
    }

    fn apply_kill_requests(&mut self) {
        let requests = std::mem::take(&mut self.engine.lock().kill_requests);
        for id in requests {
            for w in &mut self.workers {
                if w.job.as_ref().is_some_and(|j| j.id == id) && w.killed.is_none() {
                    w.killed = Some(KillReason::Cancelled);
                    w.child.signal(libc::SIGKILL);
                }
            }
        }
    }

    /// Stops every worker (asking politely unless `now`), fails whatever is left
    /// with `err`, reaps the workers and reports the engine finished.
    fn finish(mut self, err: Error, now: bool) {
        for w in &mut self.workers {
            if now {
                w.killed.get_or_insert(KillReason::Stopping);
                w.child.signal(libc::SIGTERM);
            } else if !w.stopping {
                w.stopping = true;
                if send(w, &ToWorker::Stop).is_err() {
                    w.child.signal(libc::SIGKILL);
                }
            }
        }
        let leftover: Vec<(u64, Job)> = self.engine.lock().queue.drain(..).collect();
        for (_, job) in leftover {
            job.slot.complete(Err(err.duplicate()));
        }
        let grace = Instant::now() + STOP_GRACE;
        for w in &mut self.workers {
            if let Some(running) = w.job.take() {
                running.slot.complete(Err(err.duplicate()));
            }
            if !matches!(w.child.wait(Some(grace)), Ok(true)) {
                w.child.kill_and_reap();
            }
            state().remove_child(&w.child);
        }
        self.workers.clear();
        self.publish_insights();
        let mut sh = self.engine.lock();
        sh.finished = true;
        drop(sh);
        self.engine.finished.notify_all();
    }

    fn publish_insights(&self) {
        let workers: Vec<WorkerInsight> = self.workers.iter().map(|w| w.stats.clone()).collect();
        self.engine.lock().insights.workers = workers;
    }
}

fn send(w: &Worker, message: &ToWorker) -> Result<()> {
    let bytes = codec::encode(message)?;
    write_frame(w.child.channel(), &bytes, None)?;
    Ok(())
}

/// How a worker ended, in words.
fn describe(exit: Exit) -> String {
    match exit {
        Exit::Signal(s) => match nix::sys::signal::Signal::try_from(s) {
            Ok(sig) => format!("killed by signal {s} ({})", sig.as_str()),
            Err(_) => format!("killed by signal {s}"),
        },
        Exit::Code(c) => format!("exited with code {c}"),
    }
}
