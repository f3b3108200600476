//! A program that never ran the entry hook: `Fork` works, the re-executing start
//! methods fail at once with a message that names the fix.

use mproc::{Error, StartMethod};

#[mproc::task]
fn triple(n: u32) -> u32 {
    n * 3
}

#[test]
fn without_the_hook_the_default_start_method_is_fork() {
    assert_eq!(mproc::start_method(), StartMethod::Fork);
}

#[test]
fn without_the_hook_fork_works() {
    let p = mproc::spawn!(triple(5)).unwrap();
    assert_eq!(p.join().unwrap(), 15);
}

#[test]
fn without_the_hook_spawn_and_forkserver_fail_at_once_naming_the_fix() {
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let err = mproc::spawn!(triple(5); start_method = method).unwrap_err();
        assert!(matches!(err, Error::NoEntryHook { .. }), "{method:?}: {err:?}");
        assert!(err.to_string().contains("add #[mproc::main]"), "{err}");
    }
}
