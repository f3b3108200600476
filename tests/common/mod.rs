//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod alloc;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// True while `pid` exists and is not a zombie.
pub fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

/// True while `pid` exists at all (running or zombie).
pub fn exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// A fresh path in the temp dir, unique to this process and `tag`.
pub fn temp_path(tag: &str) -> PathBuf {
    let mut p = std::env::temp_dir();
    p.push(format!("mproc-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Waits until the file at `path` holds a number, and returns it.
pub fn read_pid(path: &std::path::Path) -> i32 {
    let mut pid = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            pid = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok());
            pid.is_some()
        }),
        "no pid written to {}",
        path.display()
    );
    pid.unwrap()
}
