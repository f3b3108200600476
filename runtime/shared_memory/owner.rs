//! Who created a segment, recorded beside it, and the sweep that unlinks the
//! segments whose creator died.
//!
//! **The record.** Right after it claims a name, a creator makes an empty
//! file in the same directory whose *name* holds everything the sweep needs:
//!
//! ```text
//! .mproc-shm.<pid>.<start>.<pidns>.<ino>.<name>
//! ```
//!
//! `pid` is the creator's process id, `start` its start time (field 22 of
//! `/proc/<pid>/stat`, in clock ticks since boot: a reused pid has another),
//! `pidns` the inode of its pid namespace (`/proc/self/ns/pid`: a pid means
//! something only there), `ino` the segment's inode number, and `name` the
//! segment's name. An empty file appears whole, by one `open(O_CREAT)`, so no
//! reader ever sees half a record. The record goes away when the creator
//! unlinks the segment (by hand or in `Drop`) or keeps it (`keep()`).
//!
//! **The sweep** lists the directory and, for each record of this user and
//! this pid namespace whose creator is dead (no such process, a zombie, or a
//! process with another start time), unlinks the segment — but only if the
//! name still refers to the recorded inode, so a segment that someone else
//! made under that name since is left alone — and then the record.
//!
//! What is never touched: files without a record (segments made by Python, C
//! programs, `keep()`), records of other users (the directory is sticky, and
//! records are private), records of other pid namespaces (another container
//! sharing `/dev/shm`), records that do not parse, and records whose creator
//! may be alive (its `/proc` entry cannot be read for a reason other than
//! absence).

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use super::DIR;

/// Start of every record's file name.
pub(super) const PREFIX: &str = ".mproc-shm.";

/// Longest record name with the widest numbers, less the segment's name
/// (`PREFIX`, then pid ≤ 10 digits, start ≤ 20, pidns ≤ 20, ino ≤ 20, and
/// five dots): a created name must leave room for it within `NAME_MAX`.
pub(super) const RECORD_OVERHEAD: usize = PREFIX.len() + 10 + 20 + 20 + 20 + 4;

/// A process, in a form that survives pid reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Identity {
    pid: i32,
    start: u64,
    pidns: u64,
}

impl Identity {
    /// This process, or `None` where `/proc` cannot tell (then nothing is
    /// recorded, and the sweep does nothing).
    pub(super) fn current() -> Option<Identity> {
        let pid = std::process::id() as i32;
        let stat = fs::read_to_string("/proc/self/stat").ok()?;
        let (_, start) = parse_stat(&stat)?;
        let pidns = fs::metadata("/proc/self/ns/pid").ok()?.ino();
        Some(Identity { pid, start, pidns })
    }
}

/// A segment's record: who created which inode under which name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) creator: Identity,
    pub(super) ino: u64,
    pub(super) name: String,
}

impl Record {
    pub(super) fn new(creator: Identity, ino: u64, name: &str) -> Record {
        Record { creator, ino, name: name.to_owned() }
    }

    /// The record's file name.
    pub(super) fn file_name(&self) -> String {
        let Identity { pid, start, pidns } = self.creator;
        format!("{PREFIX}{pid}.{start}.{pidns}.{}.{}", self.ino, self.name)
    }

    /// Reads a record back from its file name (`None`: not a record, or not
    /// one this version wrote).
    pub(super) fn parse(file_name: &str) -> Option<Record> {
        let mut parts = file_name.strip_prefix(PREFIX)?.splitn(5, '.');
        let mut number = || parts.next()?.parse::<u64>().ok();
        let (pid, start, pidns, ino) = (number()?, number()?, number()?, number()?);
        let name = parts.next()?;
        if name.is_empty() || pid == 0 || pid > i32::MAX as u64 {
            return None;
        }
        Some(Record { creator: Identity { pid: pid as i32, start, pidns }, ino, name: name.to_owned() })
    }

    /// Makes the record's file (empty, owner-only). One that exists already
    /// (left behind for an inode number since reused) is fine as it is.
    pub(super) fn write(&self) -> io::Result<()> {
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path(&self.file_name()))
            .map(drop)
    }

    /// Removes the record's file; one already gone is fine.
    pub(super) fn remove(&self) -> io::Result<()> {
        match fs::remove_file(path(&self.file_name())) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn path(file_name: &str) -> String {
    format!("{DIR}/{file_name}")
}

/// Whether a process lives, as far as `/proc` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Liveness {
    Alive,
    Dead,
    /// `/proc` would not say: treated as alive.
    Unknown,
}

fn liveness(who: Identity) -> Liveness {
    match fs::read_to_string(format!("/proc/{}/stat", who.pid)) {
        Ok(stat) => match parse_stat(&stat) {
            Some(('Z' | 'X', _)) => Liveness::Dead,
            Some((_, start)) if start != who.start => Liveness::Dead,
            Some(_) => Liveness::Alive,
            None => Liveness::Unknown,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Liveness::Dead,
        // ESRCH: the process went away between the lookup and the read.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Liveness::Dead,
        Err(_) => Liveness::Unknown,
    }
}

/// The state (field 3) and start time (field 22) of a `/proc/<pid>/stat`
/// line. The command name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so the fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 was the state; field 22 is 19 further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Unlinks every segment whose recorded creator is dead (see the module doc),
/// and its record. Returns how many segments it unlinked.
pub(super) fn sweep() -> io::Result<usize> {
    let Some(me) = Identity::current() else { return Ok(0) };
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let mut swept = 0;
    for entry in fs::read_dir(DIR)? {
        let Ok(entry) = entry else { continue };
        let Some(record) = entry.file_name().to_str().and_then(Record::parse) else { continue };
        if record.creator.pidns != me.pidns || liveness(record.creator) != Liveness::Dead {
            continue;
        }
        match entry.metadata() {
            Ok(m) if m.uid() == uid => {}
            _ => continue,
        }
        // One entry that cannot be swept (a file made read-only, a race with
        // another sweeper) does not stop the others.
        match unlink_if_inode(&record.name, record.ino) {
            Ok(true) => swept += 1,
            Ok(false) => {}
            Err(_) => continue,
        }
        let _ = record.remove();
    }
    Ok(swept)
}

/// Unlinks `DIR/name` if it is the file with inode `ino`. Returns whether it
/// did. (Between the check and the unlink, someone could replace the file;
/// only unlinking an open descriptor would close that window, and no such
/// call exists.)
pub(super) fn unlink_if_inode(name: &str, ino: u64) -> io::Result<bool> {
    let p = path(name);
    match fs::symlink_metadata(&p) {
        Ok(m) if m.ino() == ino => match fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        },
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_record_name_reads_back_the_same_record_even_with_dots_in_the_name() {
        let me = Identity::current().expect("/proc is mounted");
        let r = Record::new(me, 12345, "a.b..c");
        assert_eq!(Record::parse(&r.file_name()), Some(r));
    }

    #[test]
    fn names_that_are_not_records_do_not_parse() {
        for name in ["psm_1234", ".mproc-shm.", ".mproc-shm.1.2.3.4.", ".mproc-shm.x.2.3.4.n", ".mproc-shm.0.2.3.4.n"] {
            assert_eq!(Record::parse(name), None, "{name}");
        }
    }

    #[test]
    fn the_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = Identity::current().unwrap();
        assert_eq!(liveness(me), Liveness::Alive);
        assert_eq!(liveness(Identity { start: me.start + 1, ..me }), Liveness::Dead);
    }

    #[test]
    fn a_dead_creators_record_is_removed_but_a_segment_with_another_inode_is_left() {
        let me = Identity::current().unwrap();
        let name = format!("mproc-unit-sweep-{}", std::process::id());
        fs::write(path(&name), b"not made by mproc").unwrap();
        let ino = fs::metadata(path(&name)).unwrap().ino();
        // A creator that never lived (pid 1 with another start time), of an
        // inode that is not the file's.
        let dead = Identity { pid: 1, start: u64::MAX, pidns: me.pidns };
        let record = Record::new(dead, ino.wrapping_add(1), &name);
        record.write().unwrap();
        sweep().unwrap();
        assert!(fs::metadata(path(&record.file_name())).is_err(), "the record is gone");
        assert!(fs::metadata(path(&name)).is_ok(), "the foreign segment stays");
        fs::remove_file(path(&name)).unwrap();
    }
}
