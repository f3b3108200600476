//! Which processes are alive: a process is named by its pid and its start
//! time (field 22 of `/proc/<pid>/stat`, in clock ticks since boot), so a pid
//! reused by a new process is not taken for the old one.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::sys::pid;

/// A process, immune to pid reuse. `start` is 0 when it could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ProcessId {
    pub(super) pid: u32,
    pub(super) start: u64,
}

/// This process's pid and start time, read once per process (a forked child
/// finds another pid in the cache and reads its own).
static CACHED_PID: AtomicU64 = AtomicU64::new(0);
static CACHED_START: AtomicU64 = AtomicU64::new(0);

/// This process.
pub(super) fn current() -> ProcessId {
    let pid = pid::getpid() as u32;
    if CACHED_PID.load(Acquire) == pid as u64 {
        return ProcessId { pid, start: CACHED_START.load(Relaxed) };
    }
    let start = stat(pid).map_or(0, |(_, start)| start);
    CACHED_START.store(start, Relaxed);
    CACHED_PID.store(pid as u64, Release);
    ProcessId { pid, start }
}

/// Whether `id` is a running process (not a zombie, not a newer process that
/// reuses the pid). When its stat cannot be read for another reason than its
/// absence, it is taken to be alive: a wrong "dead" would give away what a
/// live process holds.
pub(super) fn is_alive(id: ProcessId) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", id.pid)) {
        Ok(text) => match parse(&text) {
            Some((state, start)) => {
                !matches!(state, 'Z' | 'X' | 'x') && (id.start == 0 || start == 0 || start == id.start)
            }
            None => true,
        },
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

fn stat(pid: u32) -> Option<(char, u64)> {
    parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The state letter and start time from a `/proc/<pid>/stat` line. The command
/// name (field 2) is in parentheses and may hold spaces and parentheses, so
/// the fields are counted from the last `)`.
fn parse(text: &str) -> Option<(char, u64)> {
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; the start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn this_process_is_alive_and_has_a_start_time() {
        let me = current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start > 0);
        assert!(is_alive(me));
        assert_eq!(current(), me);
    }

    #[test]
    fn a_reused_pid_with_another_start_time_is_dead() {
        let me = current();
        assert!(!is_alive(ProcessId { pid: me.pid, start: me.start + 1 }));
    }

    #[test]
    fn an_absent_pid_is_dead() {
        // Above the kernel's pid_max (at most 2^22).
        assert!(!is_alive(ProcessId { pid: 1 << 23, start: 1 }));
    }

    #[test]
    fn a_command_name_with_parentheses_and_spaces_parses() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse(line), Some(('S', 987654)));
    }
}
