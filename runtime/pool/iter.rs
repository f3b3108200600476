//! `imap` and `imap_unordered`: results as an iterator, input pulled lazily.
//!
//! Both keep a bounded window of chunks in flight (enough to keep every worker
//! busy: one running and a few waiting in its channel) and pull input (on the
//! caller's thread, inside `next`) only to refill that window, so an endless
//! input works and a panic in the input iterator reaches the caller.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use super::Pool;
use super::chunk::Adaptive;
use super::engine::Job;
use super::slot::{Slot, decode_chunk};
use crate::error::{Error, Result};
use crate::handle;
use crate::task::TaskValue;

/// Chunks in flight per worker: enough to keep a worker with short jobs busy
/// (the engine lets it hold several at once).
const WINDOW_PER_WORKER: usize = 16;

/// Pulls up to `n` argument tuples from the input and encodes them as one
/// chunk: its bytes, the descriptors of the handles among them, how many items.
type Source<'p> = Box<dyn FnMut(usize) -> Option<Result<(Vec<u8>, Vec<OwnedFd>, usize)>> + 'p>;

/// A chunk submitted and not yet consumed.
struct InFlight {
    slot: Arc<Slot>,
    items: usize,
    sent: Instant,
    id: u64,
}

/// What `imap` and `imap_unordered` share: the input, the chunk policy, the window.
struct Feed<'p> {
    pool: &'p Pool,
    task: &'static str,
    source: Source<'p>,
    chunking: Adaptive,
    window: usize,
    exhausted: bool,
    error: Option<Error>,
}

impl<'p> Feed<'p> {
    fn new<A: TaskValue>(
        pool: &'p Pool,
        task: Result<&'static str>,
        input: Box<dyn Iterator<Item = A> + 'p>,
        chunksize: Option<usize>,
    ) -> Feed<'p> {
        let hint = input.size_hint();
        let mut input = input.fuse();
        let source: Source<'p> = Box::new(move |n| {
            let part: Vec<A> = input.by_ref().take(n).collect();
            if part.is_empty() {
                return None;
            }
            Some(handle::encode_with_handles(&part).map(|(bytes, fds)| (bytes, fds, part.len())))
        });
        let (task, error) = match task {
            Ok(t) => (t, None),
            Err(e) => ("", Some(e)),
        };
        Feed {
            pool,
            task,
            source,
            chunking: Adaptive::new(chunksize, hint, pool.processes()),
            window: WINDOW_PER_WORKER * pool.processes(),
            exhausted: error.is_some(),
            error,
        }
    }

    /// How many chunks to pull now, with `in_flight` out: none while the window
    /// is more than half full, so that refills come in batches.
    fn room(&self, in_flight: usize) -> Option<usize> {
        (in_flight <= self.window / 2).then(|| self.window - in_flight)
    }

    /// Pulls up to `room` chunks from the input and submits them together
    /// (one hand-off to the engine for all of them).
    fn refill(&mut self, room: usize) -> Vec<InFlight> {
        let mut jobs = Vec::new();
        let mut flights = Vec::new();
        while flights.len() < room && !self.exhausted {
            match (self.source)(self.chunking.size()) {
                None => self.exhausted = true,
                Some(Err(e)) => {
                    self.exhausted = true;
                    self.error = Some(e);
                }
                Some(Ok((chunk, fds, items))) => {
                    let slot = Slot::new();
                    jobs.push(Job { task: self.task, chunk, fds, items, slot: slot.clone(), group: 0, index: 0 });
                    flights.push(InFlight { slot, items, sent: Instant::now(), id: 0 });
                }
            }
        }
        if jobs.is_empty() {
            return flights;
        }
        match self.pool.engine().submit(jobs) {
            Ok(ids) => {
                for (flight, id) in flights.iter_mut().zip(ids) {
                    flight.id = id;
                }
                flights
            }
            Err(e) => {
                self.exhausted = true;
                self.error = Some(e);
                Vec::new()
            }
        }
    }

    /// Cancels chunks still queued: nobody will read their results.
    fn cancel<'a>(&self, chunks: impl Iterator<Item = &'a InFlight>) {
        for chunk in chunks {
            self.pool.engine().cancel(chunk.id, false);
        }
    }

    /// Decodes a finished chunk into one result per item, learning from its timing.
    fn results<R: TaskValue>(&mut self, chunk: &InFlight) -> Vec<Result<R>> {
        let InFlight { slot, items, sent, .. } = chunk;
        let items = *items;
        slot.wait(None);
        self.chunking.observe(items, sent.elapsed());
        let decoded = slot.peek(|o| match o {
            Some(outcome) => decode_chunk::<R>(outcome, self.task),
            None => Err(Error::ResultTaken),
        });
        slot.take();
        match decoded {
            Ok(values) => values,
            // The chunk as a whole failed (worker lost, timeout): so did each of its items.
            Err(e) => (0..items).map(|_| Err(e.duplicate())).collect(),
        }
    }
}

/// Results of [`Pool::imap`] in input order.
pub struct Imap<'p, R> {
    feed: Feed<'p>,
    in_flight: VecDeque<InFlight>,
    ready: VecDeque<Result<R>>,
    _value: PhantomData<fn() -> R>,
}

impl<'p, R: TaskValue> Imap<'p, R> {
    pub(crate) fn new<A: TaskValue>(
        pool: &'p Pool,
        task: Result<&'static str>,
        input: Box<dyn Iterator<Item = A> + 'p>,
        chunksize: Option<usize>,
    ) -> Self {
        Imap {
            feed: Feed::new(pool, task, input, chunksize),
            in_flight: VecDeque::new(),
            ready: VecDeque::new(),
            _value: PhantomData,
        }
    }
}

impl<R: TaskValue> Iterator for Imap<'_, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            if let Some(room) = self.feed.room(self.in_flight.len()) {
                self.in_flight.extend(self.feed.refill(room));
            }
            let Some(chunk) = self.in_flight.pop_front() else {
                return self.feed.error.take().map(Err);
            };
            let results = self.feed.results::<R>(&chunk);
            self.ready.extend(results);
        }
    }
}

/// Dropping it before the end cancels the chunks still queued for it.
impl<R> Drop for Imap<'_, R> {
    fn drop(&mut self) {
        self.feed.cancel(self.in_flight.iter());
    }
}

/// Results of [`Pool::imap_unordered`] as they complete.
pub struct ImapUnordered<'p, R> {
    feed: Feed<'p>,
    in_flight: HashMap<u64, InFlight>,
    next_key: u64,
    done_tx: Sender<u64>,
    done_rx: Receiver<u64>,
    ready: VecDeque<Result<R>>,
    _value: PhantomData<fn() -> R>,
}

impl<'p, R: TaskValue> ImapUnordered<'p, R> {
    pub(crate) fn new<A: TaskValue>(
        pool: &'p Pool,
        task: Result<&'static str>,
        input: Box<dyn Iterator<Item = A> + 'p>,
        chunksize: Option<usize>,
    ) -> Self {
        let (done_tx, done_rx) = channel();
        ImapUnordered {
            feed: Feed::new(pool, task, input, chunksize),
            in_flight: HashMap::new(),
            next_key: 0,
            done_tx,
            done_rx,
            ready: VecDeque::new(),
            _value: PhantomData,
        }
    }
}

impl<R: TaskValue> Iterator for ImapUnordered<'_, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            let room = self.feed.room(self.in_flight.len()).unwrap_or(0);
            for chunk in self.feed.refill(room) {
                let key = self.next_key;
                self.next_key += 1;
                let tx = self.done_tx.clone();
                chunk.slot.on_complete(move || {
                    let _ = tx.send(key);
                });
                self.in_flight.insert(key, chunk);
            }
            if self.in_flight.is_empty() {
                return self.feed.error.take().map(Err);
            }
            let key = self.done_rx.recv().ok()?;
            let Some(chunk) = self.in_flight.remove(&key) else { continue };
            let results = self.feed.results::<R>(&chunk);
            self.ready.extend(results);
        }
    }
}

/// Dropping it before the end cancels the chunks still queued for it.
impl<R> Drop for ImapUnordered<'_, R> {
    fn drop(&mut self) {
        self.feed.cancel(self.in_flight.values());
    }
}
