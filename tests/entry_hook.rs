//! A re-executed child that never reaches the entry hook is detected, killed and
//! reported; and it may not start processes of its own.
//!
//! No test in this file uses `#[mproc::test]`: the one test registered as the
//! re-execution target (`target_without_hook`) deliberately lacks the hook.

use std::time::{Duration, Instant};

use mproc::{Error, StartMethod};

#[mproc::task]
fn noop() {}

/// What a re-executed child runs instead of its task: user code without the hook.
#[test]
fn target_without_hook() {
    if std::env::var_os("MPROC_CHILD").is_some() || std::env::var_os("MPROC_FORKSERVER").is_some() {
        std::thread::sleep(Duration::from_secs(30));
    }
}

fn register_target() -> mproc::__private::TestGuard {
    mproc::__private::test_entry(module_path!(), "target_without_hook")
}

#[test]
fn a_spawned_child_that_never_reaches_the_hook_is_killed_and_reported_within_about_a_second() {
    let _target = register_target();
    let t = Instant::now();
    let err = mproc::spawn!(noop(); start_method = StartMethod::Spawn).unwrap_err();
    let took = t.elapsed();
    assert!(matches!(err, Error::NoEntryHook { .. }), "{err:?}");
    assert!(err.to_string().contains("#[mproc::main]"), "the message names the fix: {err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(mproc::active_children().is_empty(), "the hookless child was left running");
}

#[test]
fn a_fork_server_that_never_reaches_the_hook_is_killed_and_reported() {
    let _target = register_target();
    let err = mproc::spawn!(noop(); start_method = StartMethod::ForkServer).unwrap_err();
    assert!(matches!(err, Error::NoEntryHook { .. }), "{err:?}");
}
