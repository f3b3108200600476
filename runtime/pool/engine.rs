//! The pool engine: the state every pool-shaped API shares (`Pool`, `Executor`,
//! `par_map!`), and one thread per pool that watches the workers.
//!
//! The engine always knows which worker holds which job, so a worker that dies
//! fails exactly the job it was running (`WorkerLost`, with the signal or exit
//! code) and is replaced; nothing waits for a result that can no longer come.
//!
//! Whoever submits work hands it to an idle worker at once, on its own thread
//! (one write, no hand-off). The engine thread waits on every worker's channel
//! and exit sentinel (and the nearest task deadline); it reads results,
//! completes their slots, refills the workers from the queue, buries dead
//! workers and kills workers whose task ran out of time. All of it happens under
//! one mutex (`Core`); slots are completed after it is released, because their
//! callbacks may submit more work.
//!
//! A worker whose jobs are short gets up to [`MAX_DEPTH`] at a time (about a
//! millisecond of work, judged by its recent jobs): one running, the others
//! waiting in its channel, so that it goes from one to the next without a round
//! trip through the parent. A job waiting in a channel has
//! not started: if the worker dies it goes back to the front of the queue.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::insights::{Insights, Restart, WorkerInsight};
use super::slot::{Chunk, Outcome, Slot};
use super::worker::{FromWorker, WorkerConfig, parse_from_worker, run_head, stop_frame};
use crate::error::{Error, Result};
use crate::process::child::ChildHandle;
use crate::process::registry::state;
use crate::start::{self, Launch, LaunchWork, StartMethod};
use crate::sys::fd::poll;
use crate::sys::frame::{DEFAULT_MAX_FRAME, FrameReader, Progress};
use crate::sys::pid::Exit;
use crate::sys::sock;

/// How long workers get to exit after being asked before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Most jobs one worker holds (when its jobs are very short).
const MAX_DEPTH: usize = 32;

/// How much work (judged by its recent jobs) a worker may have waiting in its
/// channel behind the running job. Enough to batch reads and writes when jobs
/// take microseconds; little enough that a job stuck behind a slower one than
/// expected waits about a millisecond, not a long time, while another worker idles.
const LOOKAHEAD: Duration = Duration::from_millis(1);

/// The epoll token of the engine's wake-up eventfd; a worker's channel is
/// `2 × serial`, its exit sentinel `2 × serial + 1`.
const WAKE_TOKEN: u64 = u64::MAX;

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
    /// Descriptors of the handles among the chunk's arguments (see `crate::handle`).
    pub fds: Vec<OwnedFd>,
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
    core: Mutex<Core>,
    finished: Condvar,
    /// An eventfd that wakes the engine thread.
    wake: OwnedFd,
    /// What the engine thread waits on: the wake-up eventfd and every worker's
    /// channel and sentinel. Callers change a channel's interest in place
    /// (epoll_ctl works on a set another thread is waiting on).
    epoll: Arc<Epoll>,
}

/// A job's encoded chunk and the descriptors that travel with it.
struct Payload {
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// A job waiting for a worker.
struct Queued {
    id: u64,
    task: &'static str,
    chunk: Arc<Payload>,
    items: usize,
    slot: Arc<Slot>,
    group: u64,
    index: usize,
}

/// A job handed to a worker.
struct Running {
    id: u64,
    task: &'static str,
    items: usize,
    slot: Arc<Slot>,
    group: u64,
    index: usize,
    /// Kept while the job waits in the worker's channel, to requeue it if the worker dies.
    chunk: Option<Arc<Payload>>,
    /// Set once it is running (first in its worker's line).
    deadline: Option<Instant>,
    sent: Instant,
    /// Cancelled while waiting in the channel: its result will be ignored.
    cancelled: bool,
}

/// A frame not yet (wholly) written to a worker: `head`, then `body` (whose
/// descriptors go with the frame's first byte).
struct Outgoing {
    head: Vec<u8>,
    body: Option<Arc<Payload>>,
    written: usize,
}

impl Outgoing {
    fn body(&self) -> &[u8] {
        self.body.as_deref().map_or(&[], |p| p.bytes.as_slice())
    }

    /// Descriptors still to send: the frame's, until its first byte is out.
    fn fds(&self) -> &[OwnedFd] {
        match &self.body {
            Some(p) if self.written == 0 => &p.fds,
            _ => &[],
        }
    }
}

/// Why the engine killed a worker, which decides how its job fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillReason {
    Timeout,
    Cancelled,
    Stopping,
    /// It sent something that is not a message of the protocol.
    Garbled,
}

struct Worker {
    child: Arc<ChildHandle>,
    /// Names it in epoll tokens.
    serial: u64,
    /// A caller waiting for the job it runs reads its channel (the engine thread leaves it alone).
    driven: bool,
    /// What the engine thread watches its channel for now.
    interest: EpollFlags,
    reader: FrameReader,
    ready: bool,
    /// Asked to stop (max_tasks_per_child reached, or the pool is finishing).
    stopping: bool,
    killed: Option<KillReason>,
    /// Jobs sent, in order: the first is running, the others wait in the channel.
    jobs: VecDeque<Running>,
    /// What could not be written yet because the channel was full.
    outbox: VecDeque<Outgoing>,
    /// Jobs sent in all (for max_tasks_per_child).
    sent: usize,
    /// Average duration of its recent jobs, as the worker measured them.
    recent: Option<Duration>,
    stats: WorkerInsight,
    idle_since: Instant,
}

/// The state the engine thread and the callers share.
struct Core {
    status: Status,
    queue: VecDeque<Queued>,
    next_id: u64,
    next_group: u64,
    workers: Vec<Worker>,
    /// Where the next search for a worker starts, so that work rotates over the
    /// workers (as in CPython) instead of piling on the first.
    next: usize,
    restarts: Vec<Restart>,
    finished: bool,
    epoll: Arc<Epoll>,
    next_serial: u64,
}

/// Slots to complete once the lock is released.
type Completions = Vec<(Arc<Slot>, Outcome)>;

fn complete_all(done: &mut Completions) {
    for (slot, outcome) in done.drain(..) {
        slot.complete(outcome);
    }
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
        let epoll = Arc::new(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?);
        epoll.add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE_TOKEN))?;
        let mut core = Core {
            status: Status::Open,
            queue: VecDeque::new(),
            next_id: 1,
            next_group: 1,
            workers: Vec::with_capacity(config.processes),
            next: 0,
            restarts: Vec::new(),
            finished: false,
            epoll: epoll.clone(),
            next_serial: 0,
        };
        for _ in 0..config.processes {
            let worker = start_worker(&config)?;
            core.add_worker(worker)?;
        }
        let engine = Arc::new(Engine { config, core: Mutex::new(core), finished: Condvar::new(), wake, epoll });
        let runner = engine.clone();
        std::thread::Builder::new().name("mproc-pool".into()).spawn(move || run(runner))?;
        Ok(engine)
    }

    pub(crate) fn processes(&self) -> usize {
        self.config.processes
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// A fresh id for a group of jobs (one `map` call).
    pub(crate) fn new_group(&self) -> u64 {
        let mut core = self.lock();
        core.next_group += 1;
        core.next_group
    }

    /// Queues jobs and hands what it can to idle workers at once; each job gets
    /// an id (returned in order). Fails if the pool does not take work any more.
    pub(crate) fn submit(&self, jobs: impl IntoIterator<Item = Job>) -> Result<Vec<u64>> {
        let mut core = self.lock();
        match &core.status {
            Status::Open => {}
            Status::Broken(reason) => return Err(Error::BrokenPool { reason: reason.clone() }),
            _ => return Err(Error::Closed),
        }
        let mut ids = Vec::new();
        for job in jobs {
            let id = core.next_id;
            core.next_id += 1;
            core.queue.push_back(Queued {
                id,
                task: job.task,
                chunk: Arc::new(Payload { bytes: job.chunk, fds: job.fds }),
                items: job.items,
                slot: job.slot,
                group: job.group,
                index: job.index,
            });
            ids.push(id);
        }
        let sent = core.dispatch(&self.config);
        drop(core);
        // The engine thread sleeps on the workers' channels (and on room in a
        // full one), which is all it needs to see; it must only be woken to
        // watch a new deadline.
        if sent && self.config.task_timeout.is_some() {
            self.notify();
        }
        Ok(ids)
    }

    /// Cancels a job: a queued one is removed (its result becomes `Cancelled`);
    /// with `kill`, a running one is killed with its worker (and one waiting in
    /// a worker's channel is skipped). True if cancelled.
    pub(crate) fn cancel(&self, id: u64, kill: bool) -> bool {
        let mut core = self.lock();
        if let Some(pos) = core.queue.iter().position(|q| q.id == id) {
            let queued = core.queue.remove(pos).expect("position is in range");
            drop(core);
            queued.slot.complete(Err(Error::Cancelled));
            return true;
        }
        if !kill || core.finished {
            return false;
        }
        for w in &mut core.workers {
            let Some(pos) = w.jobs.iter().position(|j| j.id == id) else { continue };
            if pos == 0 {
                if w.killed.is_none() {
                    w.killed = Some(KillReason::Cancelled);
                    w.child.signal(libc::SIGKILL);
                }
                return true;
            }
            let job = &mut w.jobs[pos];
            job.cancelled = true;
            let slot = job.slot.clone();
            drop(core);
            slot.complete(Err(Error::Cancelled));
            return true;
        }
        false
    }

    /// Cancels every queued job (their results become `Cancelled`).
    pub(crate) fn cancel_queued(&self) {
        let jobs: Vec<Queued> = self.lock().queue.drain(..).collect();
        for q in jobs {
            q.slot.complete(Err(Error::Cancelled));
        }
    }

    /// Whether job `id` is still queued (not yet handed to a worker).
    pub(crate) fn is_queued(&self, id: u64) -> bool {
        self.lock().queue.iter().any(|q| q.id == id)
    }

    fn set_status(&self, change: impl FnOnce(&Status) -> Option<Status>) {
        let mut core = self.lock();
        if let Some(status) = change(&core.status) {
            core.status = status;
        }
        drop(core);
        self.notify();
    }

    /// Python's `close`: no new work; what is queued still runs.
    pub(crate) fn close(&self) {
        self.set_status(|s| (*s == Status::Open).then_some(Status::Closed));
    }

    /// Python's `terminate`: stop the workers now; queued and running jobs fail with `Closed`.
    pub(crate) fn terminate(&self) {
        self.set_status(|s| (!matches!(s, Status::Broken(_))).then_some(Status::Terminated));
    }

    /// The pool handle was dropped: jobs nobody waits for are cancelled, the rest
    /// run to completion, then the workers stop.
    pub(crate) fn drop_handle(&self) {
        self.set_status(|s| matches!(s, Status::Open | Status::Closed).then_some(Status::Dropped));
    }

    /// True if `close` or `terminate` was called (or the pool broke).
    pub(crate) fn is_stopping(&self) -> bool {
        self.lock().status != Status::Open
    }

    /// Waits until the engine has stopped its workers; false on timeout.
    pub(crate) fn wait_finished(&self, deadline: Option<Instant>) -> bool {
        let mut core = self.lock();
        while !core.finished {
            core = match deadline {
                None => self.finished.wait(core).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.finished.wait_timeout(core, d - now).unwrap_or_else(|e| e.into_inner()).0
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
        let core = self.lock();
        Insights { workers: core.workers.iter().map(|w| w.stats.clone()).collect(), restarts: core.restarts.clone() }
    }
}

impl Core {
    /// How many more jobs worker `i` may take now.
    fn room(&self, i: usize, config: &PoolConfig) -> usize {
        let w = &self.workers[i];
        // Without an initializer there is nothing to wait for: work sent before
        // the worker has said it is ready waits in its channel meanwhile.
        let ready = w.ready || config.initializer.is_none();
        if !ready || w.stopping || w.killed.is_some() {
            return 0;
        }
        let depth = match w.recent {
            Some(d) => 1 + (LOOKAHEAD.as_nanos() / d.as_nanos().max(1)).min(MAX_DEPTH as u128 - 1) as usize,
            None => 1,
        };
        let budget = config.max_tasks_per_child.map_or(usize::MAX, |max| max.saturating_sub(w.sent));
        depth.saturating_sub(w.jobs.len()).min(budget)
    }

    /// Hands queued jobs to workers: idle ones first, in rotation; then, for
    /// short jobs, behind the running ones. True if any job was sent.
    fn dispatch(&mut self, config: &PoolConfig) -> bool {
        let mut sent = false;
        let n = self.workers.len();
        if matches!(self.status, Status::Open | Status::Closed | Status::Dropped) {
            while !self.queue.is_empty() && n > 0 {
                let mut best: Option<usize> = None;
                for k in 0..n {
                    let i = (self.next + k) % n;
                    if self.room(i, config) == 0 {
                        continue;
                    }
                    if best.is_none_or(|b| self.workers[i].jobs.len() < self.workers[b].jobs.len()) {
                        best = Some(i);
                        if self.workers[i].jobs.is_empty() {
                            break;
                        }
                    }
                }
                let Some(i) = best else { break };
                let Some(job) = self.queue.pop_front() else { break };
                self.next = i + 1;
                send_job(&mut self.workers[i], job, config);
                sent = true;
            }
        }
        if sent {
            // One write per worker for all the jobs it just got.
            for i in 0..n {
                if !self.workers[i].outbox.is_empty() {
                    flush(&mut self.workers[i]);
                    self.set_interest(i);
                }
            }
        }
        sent
    }

    /// Makes the engine thread watch worker `i`'s channel for what it needs now:
    /// results, always, and room if its outbox is not empty. Edge-triggered: the
    /// engine thread is woken once per arrival and reads the channel dry, unless
    /// a caller is reading it (then that caller reads it dry before giving it back).
    fn set_interest(&mut self, i: usize) {
        let w = &mut self.workers[i];
        let mut want = EpollFlags::EPOLLIN | EpollFlags::EPOLLET;
        if !w.outbox.is_empty() {
            want |= EpollFlags::EPOLLOUT;
        }
        if want != w.interest {
            let mut event = EpollEvent::new(want, 2 * w.serial);
            if self.epoll.modify(w.child.channel(), &mut event).is_ok() {
                w.interest = want;
            }
        }
    }

    /// Adds a started worker, watched by the engine thread.
    fn add_worker(&mut self, mut w: Worker) -> Result<()> {
        w.serial = self.next_serial;
        self.next_serial += 1;
        let added = self
            .epoll
            .add(w.child.channel(), EpollEvent::new(w.interest, 2 * w.serial))
            .and_then(|()| self.epoll.add(w.child.sentinel(), EpollEvent::new(EpollFlags::EPOLLIN, 2 * w.serial + 1)));
        if let Err(e) = added {
            let _ = self.epoll.delete(w.child.channel());
            w.child.kill_and_reap();
            state().remove_child(&w.child);
            return Err(std::io::Error::from(e).into());
        }
        self.workers.push(w);
        Ok(())
    }

    /// Removes worker `i` (it ended) from the pool and from the engine's watch.
    fn remove_worker(&mut self, i: usize) -> Worker {
        let w = self.workers.swap_remove(i);
        let _ = self.epoll.delete(w.child.channel());
        let _ = self.epoll.delete(w.child.sentinel());
        w
    }

    fn by_serial(&self, serial: u64) -> Option<usize> {
        self.workers.iter().position(|w| w.serial == serial)
    }

    /// Reads the messages worker `i` has sent: one read, then every whole
    /// message it brought (what is still in the channel keeps it readable), or
    /// with `drain`, everything there is.
    fn read_worker(&mut self, i: usize, config: &PoolConfig, drain: bool, done: &mut Completions) {
        loop {
            let progress = {
                let w = &mut self.workers[i];
                w.reader.read_some(w.child.channel())
            };
            match progress {
                Ok(Progress::Frame(frame)) => match parse_from_worker(frame) {
                    Some(message) => {
                        self.handle(i, message, config, done);
                        if !drain && !self.workers[i].reader.has_frame() {
                            return;
                        }
                    }
                    None => return self.distrust(i),
                },
                // End of stream: the worker is exiting; its sentinel will say how.
                Ok(Progress::Pending) | Ok(Progress::Eof) => return,
                // A frame longer than any the protocol sends.
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return self.distrust(i),
                // Reset (it exited with jobs unread) or cut short: it is ending,
                // and its sentinel will say how.
                Err(_) => return,
            }
        }
    }

    /// A worker that speaks garbage cannot be trusted with more work.
    fn distrust(&mut self, i: usize) {
        let w = &mut self.workers[i];
        if w.killed.is_none() {
            w.killed = Some(KillReason::Garbled);
            w.child.signal(libc::SIGKILL);
        }
    }

    fn handle(&mut self, i: usize, message: FromWorker, config: &PoolConfig, done: &mut Completions) {
        match message {
            FromWorker::Ready => {
                let w = &mut self.workers[i];
                w.ready = true;
                w.idle_since = Instant::now();
            }
            FromWorker::InitFailed(failure) => {
                let err = failure.into_error("the pool's initializer");
                self.break_pool(format!("the initializer failed: {err}"));
            }
            FromWorker::Done { job, outcome, any_failed, busy_ns, codec_ns } => {
                let w = &mut self.workers[i];
                if w.jobs.front().is_none_or(|r| r.id != job) {
                    return self.distrust(i);
                }
                let Some(running) = w.jobs.pop_front() else { return };
                let now = Instant::now();
                let busy = Duration::from_nanos(busy_ns);
                w.recent = Some(match w.recent {
                    Some(r) => (r * 3 + busy) / 4,
                    None => busy,
                });
                w.stats.tasks += running.items as u64;
                w.stats.chunks += 1;
                w.stats.working += busy;
                w.stats.codec += Duration::from_nanos(codec_ns);
                w.stats.round_trip += now.duration_since(running.sent);
                match w.jobs.front_mut() {
                    Some(next) => {
                        next.deadline = config.task_timeout.map(|t| now + t);
                        next.chunk = None;
                    }
                    None => w.idle_since = now,
                }
                if running.cancelled {
                    return;
                }
                let outcome: Outcome = match outcome {
                    Ok(returned) => Ok(Chunk { bytes: returned.frame, start: returned.start, any_failed }),
                    Err(failure) => Err(failure.into_error(running.task)),
                };
                if (any_failed || outcome.is_err()) && running.group != 0 {
                    self.cancel_rest_of_group(running.group, running.index, done);
                }
                done.push((running.slot, outcome));
            }
        }
    }

    /// After a chunk of a `map` failed, its later chunks are not worth running.
    fn cancel_rest_of_group(&mut self, group: u64, index: usize, done: &mut Completions) {
        self.queue.retain(|q| {
            let later = q.group == group && q.index > index;
            if later {
                done.push((q.slot.clone(), Err(Error::Cancelled)));
            }
            !later
        });
    }

    /// After the pool handle is dropped: jobs nobody holds a result for are dropped.
    fn cancel_unwanted(&mut self) {
        self.queue.retain(|q| Arc::strong_count(&q.slot) > 1);
    }

    fn break_pool(&mut self, reason: String) {
        if !matches!(self.status, Status::Broken(_) | Status::Terminated) {
            self.status = Status::Broken(reason);
        }
    }

    fn position(&self, child: &Arc<ChildHandle>) -> Option<usize> {
        self.workers.iter().position(|w| Arc::ptr_eq(&w.child, child))
    }
}

/// Sends `job` to worker `w` (or queues it in the worker's outbox behind a full channel).
fn send_job(w: &mut Worker, job: Queued, config: &PoolConfig) {
    let now = Instant::now();
    let first = w.jobs.is_empty();
    if first {
        w.stats.waiting += now.duration_since(w.idle_since);
    }
    w.outbox.push_back(Outgoing {
        head: run_head(job.id, job.task, job.chunk.bytes.len(), job.chunk.fds.len()),
        body: Some(job.chunk.clone()),
        written: 0,
    });
    w.jobs.push_back(Running {
        id: job.id,
        task: job.task,
        items: job.items,
        slot: job.slot,
        group: job.group,
        index: job.index,
        chunk: (!first).then_some(job.chunk),
        deadline: if first { config.task_timeout.map(|t| now + t) } else { None },
        sent: now,
        cancelled: false,
    });
    w.sent += 1;
    if config.max_tasks_per_child.is_some_and(|max| w.sent >= max) {
        // Its last job: it exits once that is done.
        w.stopping = true;
        w.outbox.push_back(Outgoing { head: stop_frame(), body: None, written: 0 });
    }
}

/// Writes what the worker's outbox holds, as far as its channel takes it, a
/// few frames per system call. A frame with descriptors starts a call of its
/// own (they are attached to the call's first byte).
fn flush(w: &mut Worker) {
    const BATCH: usize = 32;
    while !w.outbox.is_empty() {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * BATCH);
        let mut fds: Vec<RawFd> = Vec::new();
        for (k, out) in w.outbox.iter().take(BATCH).enumerate() {
            if k > 0 && !out.fds().is_empty() {
                break;
            }
            fds.extend(out.fds().iter().map(|f| f.as_raw_fd()));
            let body = out.body();
            if out.written < out.head.len() {
                parts.push(&out.head[out.written..]);
                parts.push(body);
            } else {
                parts.push(&body[out.written - out.head.len()..]);
            }
        }
        let mut n = match sock::send_parts_with_fds(w.child.channel(), &parts, &fds) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => {
                // The worker is gone; its sentinel will fire and fail its job.
                w.outbox.clear();
                w.child.signal(libc::SIGKILL);
                return;
            }
        };
        while let Some(out) = w.outbox.front_mut() {
            let total = out.head.len() + out.body().len();
            let left = total - out.written;
            if n < left {
                out.written += n;
                // The channel is full: the rest waits for room.
                return;
            }
            n -= left;
            w.outbox.pop_front();
            if n == 0 {
                break;
            }
        }
    }
}

fn start_worker(config: &PoolConfig) -> Result<Worker> {
    let worker_config =
        WorkerConfig { initializer: config.initializer.as_ref().map(|(t, a)| (t.to_string(), a.clone())) };
    let child = start::launch(Launch {
        method: config.method,
        name: None,
        // Python's pool workers are daemons: terminated, not waited for, at exit.
        daemon: true,
        work: LaunchWork::Worker(worker_config),
    })?;
    let stats = WorkerInsight { pid: child.pid(), ..WorkerInsight::default() };
    Ok(Worker {
        child,
        serial: 0,
        driven: false,
        interest: EpollFlags::EPOLLIN | EpollFlags::EPOLLET,
        reader: FrameReader::buffered(DEFAULT_MAX_FRAME),
        ready: false,
        stopping: false,
        killed: None,
        jobs: VecDeque::new(),
        outbox: VecDeque::new(),
        sent: 0,
        recent: None,
        stats,
        idle_since: Instant::now(),
    })
}

/// The engine thread.
fn run(engine: Arc<Engine>) {
    let config = &engine.config;
    let mut done = Completions::new();
    let mut events = vec![EpollEvent::empty(); 64];
    loop {
        let deadline = {
            let mut core = engine.lock();
            match core.status.clone() {
                Status::Terminated => {
                    drop(core);
                    return finish(&engine, Error::Closed, true);
                }
                Status::Broken(reason) => {
                    drop(core);
                    return finish(&engine, Error::BrokenPool { reason }, true);
                }
                Status::Dropped => core.cancel_unwanted(),
                Status::Open | Status::Closed => {}
            }
            core.dispatch(config);
            let idle = core.queue.is_empty() && core.workers.iter().all(|w| w.jobs.is_empty());
            if matches!(core.status, Status::Closed | Status::Dropped) && idle {
                drop(core);
                return finish(&engine, Error::Closed, false);
            }
            core.workers.iter().filter_map(|w| w.jobs.front().and_then(|j| j.deadline)).min()
        };
        complete_all(&mut done);
        let timeout = match deadline {
            None => EpollTimeout::NONE,
            Some(d) => {
                // Round up so that we never wake just before the deadline and spin.
                let ms = d.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000);
                EpollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(EpollTimeout::MAX)
            }
        };
        let n = match engine.epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::Error::EINTR) => 0,
            Err(_) => {
                // epoll itself failed: nothing sane is left.
                let reason = "the pool's event loop failed".to_string();
                return finish(&engine, Error::BrokenPool { reason }, true);
            }
        };
        let mut dead = Vec::new();
        {
            let mut core = engine.lock();
            for event in &events[..n] {
                let token = event.data();
                if token == WAKE_TOKEN {
                    let mut buf = 0u64;
                    // SAFETY: reads 8 bytes into a valid u64 from our eventfd.
                    unsafe { libc::read(engine.wake.as_raw_fd(), (&mut buf as *mut u64).cast(), 8) };
                    continue;
                }
                let Some(i) = core.by_serial(token / 2) else { continue };
                let flags = event.events();
                if token % 2 == 1 {
                    if core.workers[i].child.poll_exit().is_some() {
                        dead.push(core.workers[i].child.clone());
                    }
                    continue;
                }
                if flags.contains(EpollFlags::EPOLLOUT) {
                    flush(&mut core.workers[i]);
                    core.set_interest(i);
                }
                // A channel a caller is reading is left to it (see `wait_for`).
                let readable = flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR);
                if readable && !core.workers[i].driven {
                    core.read_worker(i, config, true, &mut done);
                }
            }
            let now = Instant::now();
            for w in &mut core.workers {
                if w.killed.is_none() && w.jobs.front().and_then(|j| j.deadline).is_some_and(|d| d <= now) {
                    w.killed = Some(KillReason::Timeout);
                    w.child.signal(libc::SIGKILL);
                }
            }
            // Refill the workers before waking anyone.
            core.dispatch(config);
        }
        complete_all(&mut done);
        for child in dead {
            // A worker's results come before its death: read what it left.
            let mut core = engine.lock();
            if let Some(i) = core.position(&child) {
                core.read_worker(i, config, true, &mut done);
            }
            drop(core);
            complete_all(&mut done);
            bury(&engine, &child, &mut done);
            complete_all(&mut done);
        }
    }
}

impl Engine {
    /// Waits for `slot` until `deadline`; true once it is complete. When no one
    /// else is reading the channel of the worker that holds its job, this thread
    /// reads it itself, so the result reaches the caller without passing
    /// through the engine thread (two wake-ups per round trip instead of three).
    pub(crate) fn wait_for(&self, slot: &Arc<Slot>, deadline: Option<Instant>) -> bool {
        loop {
            if slot.is_done() {
                return true;
            }
            let child = {
                let mut core = self.lock();
                // Only the worker running the job: a job waiting behind another may
                // be cancelled without its worker being killed, and nothing on the
                // channel would then wake this thread.
                let found = core.workers.iter().position(|w| {
                    !w.driven && w.killed.is_none() && w.jobs.front().is_some_and(|j| Arc::ptr_eq(&j.slot, slot))
                });
                let Some(i) = found else {
                    drop(core);
                    return slot.wait(deadline);
                };
                core.workers[i].driven = true;
                core.workers[i].child.clone()
            };
            // The engine thread may have read the result just before it stopped watching.
            let ready = if slot.is_done() { None } else { Some(poll(&[child.channel(), child.sentinel()], deadline)) };
            let mut done = Completions::new();
            {
                let mut core = self.lock();
                if let Some(i) = core.position(&child) {
                    // Edge-triggered: whatever arrived while this thread was
                    // reading the channel woke the engine thread only once, and
                    // it left it here; read it all before handing the channel back.
                    core.read_worker(i, &self.config, true, &mut done);
                    core.workers[i].driven = false;
                    core.dispatch(&self.config);
                }
            }
            complete_all(&mut done);
            match ready {
                None => return true,
                // The worker ended (the engine thread buries it and fails its job),
                // or waiting failed: wait the plain way.
                Some(Ok(r)) if r[1].readable => return slot.wait(deadline),
                Some(Err(_)) => return slot.wait(deadline),
                Some(Ok(_)) => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return slot.is_done();
            }
        }
    }
}

/// A worker ended: requeue the jobs waiting in its channel, record why, start a
/// replacement, then fail the job it was running.
fn bury(engine: &Engine, child: &Arc<ChildHandle>, done: &mut Completions) {
    let mut core = engine.lock();
    let Some(i) = core.position(child) else { return };
    let mut w = core.remove_worker(i);
    let exit = child.poll_exit().unwrap_or(Exit::Signal(libc::SIGKILL));
    state().remove_child(child);
    let cause = match w.killed {
        Some(KillReason::Timeout) => "killed: its task ran past the task timeout".to_string(),
        Some(KillReason::Cancelled) => "killed: its task was cancelled".to_string(),
        Some(KillReason::Stopping) => "stopped with the pool".to_string(),
        Some(KillReason::Garbled) => "killed: it sent a message the pool could not read".to_string(),
        None if w.stopping && w.jobs.is_empty() => "retired after max_tasks_per_child".to_string(),
        None => describe(exit),
    };
    core.restarts.push(Restart { pid: child.pid(), cause: cause.clone(), figures: w.stats.clone() });
    let running = w.jobs.pop_front();
    // The jobs behind it never started: they go back to the front of the queue, in order.
    while let Some(job) = w.jobs.pop_back() {
        if job.cancelled {
            continue;
        }
        let Some(chunk) = job.chunk else { continue };
        core.queue.push_front(Queued {
            id: job.id,
            task: job.task,
            chunk,
            items: job.items,
            slot: job.slot,
            group: job.group,
            index: job.index,
        });
    }
    let replace = if !w.ready && w.killed.is_none() && !w.stopping {
        // It never got past its initializer: another would fail the same way
        // (CPython would respawn it forever).
        core.break_pool(format!("a worker died while starting ({cause})"));
        false
    } else {
        matches!(core.status, Status::Open | Status::Closed | Status::Dropped)
    };
    drop(core);
    // The pool is whole again (the restart on record, a replacement started)
    // before the owner of the job this worker held wakes up to its failure.
    if replace {
        let started = start_worker(&engine.config).and_then(|new| engine.lock().add_worker(new));
        if let Err(e) = started {
            engine.lock().break_pool(format!("cannot start a replacement worker: {e}"));
        }
    }
    if let Some(running) = running.filter(|r| !r.cancelled) {
        let err = match w.killed {
            Some(KillReason::Timeout) => Error::Timeout,
            Some(KillReason::Cancelled) => Error::Cancelled,
            Some(KillReason::Garbled) => Error::WorkerLost { task: running.task.to_string(), reason: cause },
            _ => Error::WorkerLost { task: running.task.to_string(), reason: describe(exit) },
        };
        if running.group != 0 {
            engine.lock().cancel_rest_of_group(running.group, running.index, done);
        }
        done.push((running.slot, Err(err)));
    }
}

/// Stops every worker (asking politely unless `now`), fails whatever is left
/// with `err`, reaps the workers and reports the engine finished.
fn finish(engine: &Engine, err: Error, now: bool) {
    let mut done = Completions::new();
    let workers = {
        let mut core = engine.lock();
        for w in &mut core.workers {
            if now {
                w.killed.get_or_insert(KillReason::Stopping);
                w.child.signal(libc::SIGTERM);
            } else if !w.stopping {
                w.stopping = true;
                w.outbox.push_back(Outgoing { head: stop_frame(), body: None, written: 0 });
                flush(w);
                if !w.outbox.is_empty() {
                    w.child.signal(libc::SIGKILL);
                }
            }
            for job in w.jobs.drain(..) {
                if !job.cancelled {
                    done.push((job.slot, Err(err.duplicate())));
                }
            }
        }
        for q in core.queue.drain(..) {
            done.push((q.slot, Err(err.duplicate())));
        }
        let mut workers = Vec::new();
        while !core.workers.is_empty() {
            workers.push(core.remove_worker(0));
        }
        workers
    };
    complete_all(&mut done);
    let grace = Instant::now() + STOP_GRACE;
    for w in &workers {
        if !matches!(w.child.wait(Some(grace)), Ok(true)) {
            w.child.kill_and_reap();
        }
        state().remove_child(&w.child);
    }
    let mut core = engine.lock();
    core.finished = true;
    drop(core);
    engine.finished.notify_all();
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
