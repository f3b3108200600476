//! The process-wide start method is set once; a Context overrides it locally.
//! (One test: the setting is global to the test process.)

use std::sync::atomic::{AtomicU32, Ordering};

use mproc::{Context, Error, StartMethod};

/// Set by the parent at run time: a forked child sees the change, a
/// re-executed one starts from the initial value.
static MARK: AtomicU32 = AtomicU32::new(0);

#[mproc::task]
fn mark() -> u32 {
    MARK.load(Ordering::SeqCst)
}

#[mproc::test]
fn the_start_method_is_set_once_and_a_context_overrides_it() {
    MARK.store(7, Ordering::SeqCst);
    mproc::set_start_method(StartMethod::Spawn).unwrap();
    assert_eq!(mproc::start_method(), StartMethod::Spawn);
    let again = mproc::set_start_method(StartMethod::Fork).unwrap_err();
    assert!(matches!(again, Error::StartMethodAlreadySet { current: StartMethod::Spawn }), "{again:?}");
    assert_eq!(mproc::start_method(), StartMethod::Spawn);

    // The default (Spawn) re-executes: the child does not see the parent's change.
    assert_eq!(mproc::spawn!(mark()).unwrap().join().unwrap(), 0);
    // A Fork context forks: the child does.
    let ctx = Context::new(StartMethod::Fork);
    assert_eq!(ctx.start_method(), StartMethod::Fork);
    assert_eq!(ctx.process().spawn(mark, ()).unwrap().join().unwrap(), 7);
}
