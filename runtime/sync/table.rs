//! The table of processes in a semaphore's or a barrier's segment: who holds
//! slots, who waits, so that what a dead process held can be taken back.
//!
//! An entry names one mapping of the primitive in one process: pid, start time
//! and the mapping's number in that process. It counts what that mapping's
//! threads hold (`held`: semaphore slots) and how many of them are waiting
//! (`waiting`: in a semaphore's acquire, or inside a barrier's wait). An entry
//! whose counts are both zero is free, whatever else it says, so an entry half
//! written by a process killed while filling it in is simply free. Every read
//! and write happens under the segment's mutex; each change is one store, so
//! the table is whole at any instruction a process may die at.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::liveness::{self, ProcessId};

/// One row of the table (see the module docs).
#[repr(C)]
pub(super) struct Entry {
    pid: AtomicU32,
    map: AtomicU32,
    start: AtomicU64,
    held: AtomicU32,
    waiting: AtomicU32,
}

impl Entry {
    fn in_use(&self) -> bool {
        self.held.load(Relaxed) != 0 || self.waiting.load(Relaxed) != 0
    }

    fn process(&self) -> ProcessId {
        ProcessId { pid: self.pid.load(Relaxed), start: self.start.load(Relaxed) }
    }

    /// Whether the entry is `process`'s (through any mapping).
    pub(super) fn belongs_to(&self, process: ProcessId) -> bool {
        self.process() == process
    }

    fn is(&self, me: Me) -> bool {
        self.process() == me.process && self.map.load(Relaxed) == me.map
    }

    pub(super) fn held(&self) -> u32 {
        self.held.load(Relaxed)
    }

    pub(super) fn waiting(&self) -> u32 {
        self.waiting.load(Relaxed)
    }

    pub(super) fn set_held(&self, n: u32) {
        self.held.store(n, Relaxed);
    }

    pub(super) fn set_waiting(&self, n: u32) {
        self.waiting.store(n, Relaxed);
    }
}

/// The caller: this process and its mapping of the primitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Me {
    pub(super) process: ProcessId,
    pub(super) map: u32,
}

impl Me {
    pub(super) fn new(map: u32) -> Me {
        Me { process: liveness::current(), map }
    }
}

/// The table, borrowed under the segment's mutex.
pub(super) struct Table<'a> {
    entries: &'a [Entry],
    /// Entries in use are all below this index.
    used: &'a AtomicU32,
}

impl<'a> Table<'a> {
    pub(super) fn new(entries: &'a [Entry], used: &'a AtomicU32) -> Table<'a> {
        Table { entries, used }
    }

    /// The entries that may be in use (a corrupt `used` is clamped).
    fn span(&self) -> &'a [Entry] {
        let used = (self.used.load(Relaxed) as usize).min(self.entries.len());
        &self.entries[..used]
    }

    /// Entries in use.
    pub(super) fn in_use(&self) -> impl Iterator<Item = &'a Entry> + 'a {
        self.span().iter().filter(|e| e.in_use())
    }

    /// The caller's entry, if it has one in use.
    pub(super) fn find(&self, me: Me) -> Option<&'a Entry> {
        self.in_use().find(|e| e.is(me))
    }

    /// The caller's entry, made if needed: `None` when the table is full.
    pub(super) fn find_or_insert(&self, me: Me) -> Option<&'a Entry> {
        if let Some(e) = self.find(me) {
            return Some(e);
        }
        let span = self.span();
        let entry = match span.iter().find(|e| !e.in_use()) {
            Some(free) => free,
            None => {
                let e = self.entries.get(span.len())?;
                // A fresh entry past `used` may hold stale counts from before a
                // shrink: clear them before it becomes visible.
                e.held.store(0, Relaxed);
                e.waiting.store(0, Relaxed);
                self.used.store(span.len() as u32 + 1, Relaxed);
                e
            }
        };
        // The counts are zero, so the entry is free until one of them is set:
        // a process killed while filling it in leaves a free entry.
        entry.start.store(me.process.start, Relaxed);
        entry.map.store(me.map, Relaxed);
        entry.pid.store(me.process.pid, Relaxed);
        Some(entry)
    }

    /// Gives back the free entries at the end.
    pub(super) fn shrink(&self) {
        let span = self.span();
        let keep = span.iter().rposition(Entry::in_use).map_or(0, |i| i + 1);
        if keep < span.len() {
            self.used.store(keep as u32, Relaxed);
        }
    }

    /// Sum of `held` over the entries in use.
    pub(super) fn held(&self) -> u64 {
        self.in_use().map(|e| u64::from(e.held())).sum()
    }

    /// Sum of `waiting` over the entries in use.
    pub(super) fn waiting(&self) -> u64 {
        self.in_use().map(|e| u64::from(e.waiting())).sum()
    }

    /// Whether another process has an entry in use: then the caller's wait may
    /// depend on a process that can die.
    pub(super) fn others(&self, me: Me) -> bool {
        self.in_use().any(|e| e.process() != me.process)
    }

    /// Whether every entry in use belongs to one process other than the
    /// caller's (and there is one). Its waiters may sleep without a bound,
    /// since no other process could keep them waiting; the caller, about to
    /// add its own entry, must wake them so that they bound their sleep.
    pub(super) fn only_another(&self, me: Me) -> bool {
        let mut in_use = self.in_use();
        match in_use.next() {
            Some(first) => {
                let p = first.process();
                p != me.process && in_use.all(|e| e.process() == p)
            }
            None => false,
        }
    }

    /// Finds the entries of dead processes, hands each to `dead` (which reads
    /// its counts), then frees it. Returns how many were found.
    pub(super) fn purge_dead(&self, me: Me, mut dead: impl FnMut(&Entry)) -> usize {
        let mut alive: Vec<ProcessId> = Vec::new();
        let mut gone: Vec<ProcessId> = Vec::new();
        let mut found = 0;
        for e in self.in_use() {
            let p = e.process();
            if p == me.process || alive.contains(&p) {
                continue;
            }
            if !gone.contains(&p) {
                if liveness::is_alive(p) {
                    alive.push(p);
                    continue;
                }
                gone.push(p);
            }
            dead(e);
            e.held.store(0, Relaxed);
            e.waiting.store(0, Relaxed);
            found += 1;
        }
        self.shrink();
        found
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn table(n: usize) -> (Vec<Entry>, AtomicU32) {
        let entries = (0..n)
            .map(|_| Entry {
                pid: AtomicU32::new(0),
                map: AtomicU32::new(0),
                start: AtomicU64::new(0),
                held: AtomicU32::new(0),
                waiting: AtomicU32::new(0),
            })
            .collect();
        (entries, AtomicU32::new(0))
    }

    #[test]
    fn an_entry_is_found_again_and_freed_when_its_counts_are_zero() {
        let (entries, used) = table(4);
        let t = Table::new(&entries, &used);
        let me = Me::new(1);
        let e = t.find_or_insert(me).unwrap();
        assert!(t.find(me).is_none(), "free until a count is set");
        e.set_held(2);
        assert!(std::ptr::eq(t.find(me).unwrap(), e));
        assert_eq!(t.held(), 2);
        e.set_held(0);
        t.shrink();
        assert_eq!(used.load(Relaxed), 0);
    }

    #[test]
    fn a_full_table_answers_none() {
        let (entries, used) = table(2);
        let t = Table::new(&entries, &used);
        for map in 0..2 {
            t.find_or_insert(Me::new(map)).unwrap().set_held(1);
        }
        assert!(t.find_or_insert(Me::new(7)).is_none());
        assert!(!t.others(Me::new(7)));
    }

    #[test]
    fn entries_of_dead_processes_are_purged() {
        let (entries, used) = table(4);
        let t = Table::new(&entries, &used);
        let me = Me::new(1);
        t.find_or_insert(me).unwrap().set_held(1);
        let ghost = Me { process: ProcessId { pid: 1 << 23, start: 5 }, map: 1 };
        t.find_or_insert(ghost).unwrap().set_held(3);
        assert!(t.others(me));
        let mut returned = 0;
        assert_eq!(t.purge_dead(me, |e| returned += e.held()), 1);
        assert_eq!(returned, 3);
        assert_eq!(t.held(), 1);
        assert!(!t.others(me));
    }
}
