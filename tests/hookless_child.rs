//! A re-executed child that never reached the entry hook (and so runs user code)
//! may not start processes of its own: a missing hook never becomes a fork bomb.
//!
//! No test in this file uses `#[mproc::test]`: the one test registered as the
//! re-execution target (`target_without_hook`) deliberately lacks the hook.

mod common;

use std::time::Duration;

use mproc::{Error, StartMethod};

#[mproc::task]
fn noop() {}

/// What the re-executed child runs instead of its task: user code that tries to
/// start a process, and records what happened for the parent to check.
#[test]
fn target_without_hook() {
    if std::env::var_os("MPROC_CHILD").is_none() {
        return;
    }
    let outcome = match mproc::spawn!(noop(); start_method = StartMethod::Fork) {
        Err(Error::NoEntryHook { .. }) => "refused",
        Err(_) => "failed",
        Ok(_) => "started",
    };
    let path = std::env::temp_dir().join(format!("mproc-test-{}-hookless", std::os::unix::process::parent_id()));
    std::fs::write(path, outcome).unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn a_child_without_the_hook_may_not_start_processes() {
    let _target = mproc::__private::test_entry(module_path!(), "target_without_hook");
    let path = common::temp_path("hookless");
    let _ = mproc::spawn!(noop(); start_method = StartMethod::Spawn).unwrap_err();
    // The child writes its outcome at once, well before the parent gives up on it.
    let outcome = std::fs::read_to_string(&path).expect("the hookless child ran and wrote its outcome");
    assert_eq!(outcome, "refused");
    let _ = std::fs::remove_file(path);
}
