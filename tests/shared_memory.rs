//! SharedMemory: names, creation and unlinking, who unlinks on drop, segments
//! passed to children under every start method, the sweep of segments whose
//! creator was killed, and interoperability with Python's
//! `multiprocessing.shared_memory`.

mod common;

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use mproc::{Error, Process, SharedMemory, StartMethod};

// ---------------------------------------------------------------- helpers

/// A name unique to this test process and `tag`, removed (with any ownership
/// record) when the guard drops, even if the test fails.
struct Name(String);

impl Name {
    fn new(tag: &str) -> Name {
        let name = Name(format!("mproc-test-{}-{tag}", std::process::id()));
        name.remove_all();
        name
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/shm/{}", self.0))
    }

    fn exists(&self) -> bool {
        self.path().exists()
    }

    /// The ownership records of this name.
    fn records(&self) -> usize {
        let suffix = format!(".{}", self.0);
        std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|f| f.starts_with(".mproc-shm.") && f.ends_with(&suffix))
            .count()
    }

    fn remove_all(&self) {
        let _ = std::fs::remove_file(self.path());
        let suffix = format!(".{}", self.0);
        for entry in std::fs::read_dir("/dev/shm").unwrap().flatten() {
            let f = entry.file_name().into_string().unwrap_or_default();
            if f.starts_with(".mproc-shm.") && f.ends_with(&suffix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        self.remove_all();
    }
}

fn io_kind(r: Result<SharedMemory, Error>) -> io::ErrorKind {
    match r {
        Err(Error::Io(e)) => e.kind(),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- tasks

/// Opens the segment by name and writes `data` at `offset`.
#[mproc::task]
fn writes_by_name(name: String, offset: usize, data: Vec<u8>) {
    let shm = SharedMemory::open(&name).unwrap();
    shm.write_at(offset, &data).unwrap();
}

/// Writes `data` at `offset` of the segment it was given; returns its name.
#[mproc::task]
fn writes_through(shm: SharedMemory, offset: usize, data: Vec<u8>) -> String {
    shm.write_at(offset, &data).unwrap();
    shm.name().to_owned()
}

/// Drops the segment it was given; returns whether the name still exists.
#[mproc::task]
fn drops_it(shm: SharedMemory) -> bool {
    let path = format!("/dev/shm/{}", shm.name());
    drop(shm);
    std::path::Path::new(&path).exists()
}

/// Creates a segment (and keeps it if asked), says so by setting its first
/// byte, and sleeps.
#[mproc::task]
fn creates_and_sleeps(name: String, keep: bool) {
    let shm = SharedMemory::create(&name, 4096).unwrap();
    if keep {
        shm.keep().unwrap();
    }
    shm.write_at(0, &[1]).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    drop(shm);
}

/// Starts a child that creates `name` (kept or not), waits until it has, and
/// kills it.
fn kill_a_creator(name: &str, keep: bool) {
    let child = mproc::spawn!(creates_and_sleeps(name.to_owned(), keep)).unwrap();
    let ready = || SharedMemory::open(name).is_ok_and(|shm| shm.to_vec()[0] == 1);
    assert!(common::eventually(Duration::from_secs(30), ready), "the child never created {name}");
    child.kill().unwrap();
    let joined = child.join();
    assert!(matches!(joined, Err(Error::Killed { signal: 9, .. })), "{joined:?}");
}

// ---------------------------------------------------------------- in one process

#[mproc::test]
fn a_created_segment_opened_by_name_shares_its_bytes() {
    let name = Name::new("open");
    let a = SharedMemory::create(&name, 100).unwrap();
    let b = SharedMemory::open(&name).unwrap();
    assert_eq!((b.name(), b.size(), b.len()), (&*name.0, 100, 100));
    a.write_at(10, b"hello").unwrap();
    let mut buf = [0u8; 5];
    b.read_at(10, &mut buf).unwrap();
    assert_eq!(&buf, b"hello");
}

#[test]
fn shared_memory_is_send_sync_clone_and_debug() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<SharedMemory>();
}

#[mproc::test]
fn a_new_segment_is_zeroed() {
    let name = Name::new("zeroed");
    let shm = SharedMemory::create(&name, 10_000).unwrap();
    assert!(shm.to_vec().iter().all(|&b| b == 0));
}

#[mproc::test]
fn a_leading_slash_names_the_same_segment() {
    let name = Name::new("slash");
    let _shm = SharedMemory::create(&format!("/{}", &*name), 10).unwrap();
    assert!(name.exists());
    assert_eq!(SharedMemory::open(&name).unwrap().name(), &*name.0);
}

#[mproc::test]
fn creating_an_existing_name_fails_with_already_exists() {
    let name = Name::new("exists");
    let _shm = SharedMemory::create(&name, 10).unwrap();
    assert_eq!(io_kind(SharedMemory::create(&name, 10)), io::ErrorKind::AlreadyExists);
}

#[mproc::test]
fn creating_a_name_taken_by_a_foreign_file_fails_and_leaves_it() {
    let name = Name::new("foreign-taken");
    std::fs::write(name.path(), b"someone else's").unwrap();
    assert_eq!(io_kind(SharedMemory::create(&name, 10)), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(name.path()).unwrap(), b"someone else's");
}

#[mproc::test]
fn opening_a_missing_name_fails_with_not_found() {
    let name = Name::new("missing");
    let err = SharedMemory::open(&name).unwrap_err();
    assert!(matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::NotFound), "{err}");
    assert!(err.to_string().contains(&*name.0), "{err}");
}

#[mproc::test]
fn a_segment_is_readable_and_writable_by_its_owner_only() {
    let name = Name::new("mode");
    let _shm = SharedMemory::create(&name, 10).unwrap();
    let mode = std::fs::metadata(name.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[mproc::test]
fn invalid_names_are_rejected_with_invalid_input() {
    let long = "x".repeat(SharedMemory::MAX_NAME_LEN + 1);
    for bad in ["", "/", "a/b", "//a", "a\0b", ".", "..", ".mproc-shm.1.2.3.4.x", &long] {
        assert_eq!(io_kind(SharedMemory::create(bad, 10)), io::ErrorKind::InvalidInput, "{bad:?}");
    }
    for bad in ["", "a/b", "a\0b", "..", &"x".repeat(256)] {
        assert_eq!(io_kind(SharedMemory::open(bad)), io::ErrorKind::InvalidInput, "{bad:?}");
    }
}

#[mproc::test]
fn a_size_of_zero_is_rejected() {
    let name = Name::new("zero");
    assert_eq!(io_kind(SharedMemory::create(&name, 0)), io::ErrorKind::InvalidInput);
    assert!(!name.exists());
}

#[mproc::test]
fn a_size_larger_than_dev_shm_is_an_error_not_a_sigbus_later() {
    let name = Name::new("huge");
    let err = SharedMemory::create(&name, 1 << 50).unwrap_err();
    assert!(matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::StorageFull), "{err}");
    assert!(err.to_string().contains("/dev/shm cannot hold it"), "{err}");
    assert!(!name.exists(), "a failed create leaves no name behind");
    assert_eq!(name.records(), 0, "nor a record");
}

#[mproc::test]
fn reads_and_writes_out_of_range_are_misuse() {
    let name = Name::new("range");
    let shm = SharedMemory::create(&name, 10).unwrap();
    assert!(matches!(shm.write_at(8, b"abc"), Err(Error::Misuse { .. })));
    assert!(matches!(shm.read_at(usize::MAX, &mut [0u8; 2]), Err(Error::Misuse { .. })));
    shm.write_at(7, b"abc").unwrap();
    shm.read_at(10, &mut []).unwrap();
}

#[mproc::test]
fn fill_sets_every_byte() {
    let name = Name::new("fill");
    let shm = SharedMemory::create(&name, 5000).unwrap();
    shm.fill(0xAB);
    assert!(shm.to_vec().iter().all(|&b| b == 0xAB));
}

#[mproc::test]
fn slices_see_what_the_copies_wrote() {
    let name = Name::new("slices");
    let mut shm = SharedMemory::create(&name, 64).unwrap();
    shm.write_at(0, b"abc").unwrap();
    // SAFETY: no other process or handle uses the segment meanwhile.
    unsafe {
        assert_eq!(&shm.as_slice()[..3], b"abc");
        shm.as_mut_slice()[3..6].copy_from_slice(b"def");
    }
    assert_eq!(&shm.to_vec()[..6], b"abcdef");
}

#[mproc::test]
fn the_creators_drop_unlinks_the_name_and_its_record() {
    let name = Name::new("creator-drop");
    let shm = SharedMemory::create(&name, 10).unwrap();
    assert!(name.exists());
    assert_eq!(name.records(), 1);
    drop(shm);
    assert!(!name.exists());
    assert_eq!(name.records(), 0);
}

#[mproc::test]
fn an_openers_drop_never_unlinks() {
    let name = Name::new("opener-drop");
    let _shm = SharedMemory::create(&name, 10).unwrap();
    drop(SharedMemory::open(&name).unwrap());
    assert!(name.exists());
}

#[mproc::test]
fn the_name_goes_when_the_creators_last_clone_drops() {
    let name = Name::new("clones");
    let a = SharedMemory::create(&name, 10).unwrap();
    let b = a.clone();
    b.write_at(0, b"x").unwrap();
    drop(a);
    assert!(name.exists());
    assert_eq!(b.to_vec()[0], b'x');
    drop(b);
    assert!(!name.exists());
}

#[mproc::test]
fn unlink_removes_the_name_and_a_second_unlink_is_not_found() {
    let name = Name::new("unlink");
    let shm = SharedMemory::create(&name, 10).unwrap();
    let opener = SharedMemory::open(&name).unwrap();
    opener.unlink().unwrap();
    assert!(!name.exists());
    assert!(matches!(shm.unlink(), Err(Error::Io(e)) if e.kind() == io::ErrorKind::NotFound));
    assert_eq!(name.records(), 0, "the creator's unlink removed its record");
    // The memory lives on in both mappings.
    shm.write_at(0, b"z").unwrap();
    assert_eq!(opener.to_vec()[0], b'z');
}

#[mproc::test]
fn unlink_leaves_a_new_segment_made_under_the_same_name_alone() {
    let name = Name::new("unlink-other");
    let old = SharedMemory::create(&name, 10).unwrap();
    old.unlink().unwrap();
    let new = SharedMemory::create(&name, 20).unwrap();
    assert!(matches!(old.unlink(), Err(Error::Io(e)) if e.kind() == io::ErrorKind::NotFound));
    drop(old);
    assert!(name.exists());
    assert_eq!(SharedMemory::open(&name).unwrap().size(), 20);
    drop(new);
}

#[mproc::test]
fn keep_leaves_the_segment_after_the_creators_drop() {
    let name = Name::new("keep");
    let shm = SharedMemory::create(&name, 10).unwrap();
    shm.keep().unwrap();
    assert_eq!(name.records(), 0, "a kept segment has no record to sweep");
    drop(shm);
    assert!(name.exists());
    SharedMemory::open(&name).unwrap().unlink().unwrap();
}

#[mproc::test]
fn keep_on_an_opened_handle_is_misuse() {
    let name = Name::new("keep-opener");
    let _shm = SharedMemory::create(&name, 10).unwrap();
    let opener = SharedMemory::open(&name).unwrap();
    assert!(matches!(opener.keep(), Err(Error::Misuse { .. })));
}

#[mproc::test]
fn a_segment_not_made_by_mproc_is_never_swept() {
    let name = Name::new("foreign");
    std::fs::write(name.path(), [0u8; 16]).unwrap();
    SharedMemory::sweep().unwrap();
    assert!(name.exists());
    assert_eq!(SharedMemory::open(&name).unwrap().size(), 16);
}

#[mproc::test]
fn a_live_creators_segment_is_not_swept() {
    let name = Name::new("live");
    let _shm = SharedMemory::create(&name, 10).unwrap();
    SharedMemory::sweep().unwrap();
    assert!(name.exists());
}

// ---------------------------------------------------------------- creators that die

#[mproc::test]
fn a_segment_whose_creator_was_killed_is_swept_by_sweep() {
    let name = Name::new("killed-sweep");
    kill_a_creator(&name, false);
    assert!(name.exists(), "nothing ran to unlink it");
    SharedMemory::sweep().unwrap();
    assert!(!name.exists());
    assert_eq!(name.records(), 0);
}

#[mproc::test]
fn a_segment_whose_creator_was_killed_is_swept_by_the_next_create() {
    let name = Name::new("killed-create");
    let other = Name::new("killed-create-next");
    kill_a_creator(&name, false);
    let _next = SharedMemory::create(&other, 10).unwrap();
    assert!(!name.exists());
    assert_eq!(name.records(), 0);
}

#[mproc::test]
fn a_kept_segment_outlives_its_killed_creator_and_the_sweep() {
    let name = Name::new("killed-kept");
    kill_a_creator(&name, true);
    SharedMemory::sweep().unwrap();
    assert!(name.exists());
    SharedMemory::open(&name).unwrap().unlink().unwrap();
}

// ---------------------------------------------------------------- across processes

macro_rules! for_each_start_method {
    ($($name:ident => $method:expr),*) => {$(
        mod $name {
            use super::*;
            const METHOD: StartMethod = $method;

            #[mproc::test]
            fn a_child_writes_by_name_and_the_parent_reads() {
                let name = Name::new(concat!(stringify!($name), "-by-name"));
                let shm = SharedMemory::create(&name, 1 << 20).unwrap();
                let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
                Process::builder()
                    .start_method(METHOD)
                    .spawn(writes_by_name, (name.0.clone(), 3, data.clone()))
                    .unwrap()
                    .join()
                    .unwrap();
                let mut back = vec![0u8; data.len()];
                shm.read_at(3, &mut back).unwrap();
                assert_eq!(back, data);
            }

            #[mproc::test]
            fn a_child_writes_through_a_passed_handle_and_the_parent_reads() {
                let name = Name::new(concat!(stringify!($name), "-by-handle"));
                let shm = SharedMemory::create(&name, 1 << 20).unwrap();
                let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
                let child = Process::builder().start_method(METHOD).spawn(writes_through, (shm.clone(), 5, data.clone()));
                assert_eq!(child.unwrap().join().unwrap(), name.0);
                let mut back = vec![0u8; data.len()];
                shm.read_at(5, &mut back).unwrap();
                assert_eq!(back, data);
            }

            #[mproc::test]
            fn a_passed_handle_works_after_the_name_was_unlinked() {
                let name = Name::new(concat!(stringify!($name), "-unlinked"));
                let shm = SharedMemory::create(&name, 4096).unwrap();
                shm.unlink().unwrap();
                let child = Process::builder().start_method(METHOD).spawn(writes_through, (shm.clone(), 0, b"still here".to_vec()));
                child.unwrap().join().unwrap();
                assert_eq!(&shm.to_vec()[..10], b"still here");
            }

            #[mproc::test]
            fn a_passed_handle_never_unlinks_when_the_child_drops_it() {
                let name = Name::new(concat!(stringify!($name), "-child-drop"));
                let shm = SharedMemory::create(&name, 4096).unwrap();
                let child = Process::builder().start_method(METHOD).spawn(drops_it, (shm.clone(),));
                assert!(child.unwrap().join().unwrap(), "the name existed after the child's drop");
                assert!(name.exists());
            }
        }
    )*};
}

for_each_start_method!(fork => StartMethod::Fork, forkserver => StartMethod::ForkServer, spawn => StartMethod::Spawn);

// ---------------------------------------------------------------- Python

/// Runs `python3 -c script name`, with pipes for stdin and stdout; `None`
/// where there is no python3 (the test then passes without checking).
fn python(script: &str, name: &str) -> Option<std::process::Child> {
    match Command::new("python3").args(["-c", script, name]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn() {
        Ok(child) => Some(child),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("python3 not found: skipping the Python interoperability test");
            None
        }
        Err(e) => panic!("cannot start python3: {e}"),
    }
}

#[mproc::test]
fn a_segment_created_by_python_opens_by_name() {
    const SCRIPT: &str = r#"
import sys
from multiprocessing import shared_memory
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=64)
shm.buf[:5] = b"hello"
print("ready", flush=True)
sys.stdin.readline()
print(bytes(shm.buf[5:10]).decode(), flush=True)
shm.close()
shm.unlink()
"#;
    let name = Name::new("python-created");
    let Some(mut py) = python(SCRIPT, &name) else { return };
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let shm = SharedMemory::open(&name).unwrap();
    assert_eq!(shm.size(), 64);
    let mut buf = [0u8; 5];
    shm.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    shm.write_at(5, b"world").unwrap();
    drop(shm);
    py.stdin.take().unwrap().write_all(b"\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "world");
    assert!(py.wait().unwrap().success());
    assert!(!name.exists(), "Python, the creator, unlinked it");
}

#[mproc::test]
fn python_opens_a_segment_created_by_mproc() {
    // Python before 3.13 registers an attached segment with its resource
    // tracker, which unlinks it at exit (CPython bug 82300): unregister.
    const SCRIPT: &str = r#"
import sys
from multiprocessing import resource_tracker, shared_memory
shm = shared_memory.SharedMemory(name=sys.argv[1])
resource_tracker.unregister(shm._name, "shared_memory")
assert bytes(shm.buf[:5]) == b"hello", bytes(shm.buf[:5])
shm.buf[5:10] = b"world"
print(shm.size, flush=True)
shm.close()
"#;
    let name = Name::new("python-opened");
    let shm = SharedMemory::create(&name, 4096).unwrap();
    shm.write_at(0, b"hello").unwrap();
    let Some(py) = python(SCRIPT, &name) else { return };
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4096");
    assert_eq!(&shm.to_vec()[..10], b"helloworld");
    assert!(name.exists());
}
