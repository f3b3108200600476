//! A panic's backtrace travels to the parent when the environment asks for one.
//! (One test: it changes the environment of the test process.)

use mproc::{Error, StartMethod};

#[mproc::task]
fn panics_deep_inside() -> u8 {
    panic!("deep")
}

fn backtrace_of_a_panic() -> Option<String> {
    match mproc::spawn!(panics_deep_inside(); start_method = StartMethod::Spawn).unwrap().join() {
        Err(Error::Panicked { backtrace, .. }) => backtrace,
        other => panic!("expected Panicked, got {other:?}"),
    }
}

#[mproc::test]
fn the_backtrace_travels_only_when_rust_backtrace_asks_for_it() {
    // SAFETY: the only test in this binary; nothing else reads the environment now.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    assert_eq!(backtrace_of_a_panic(), None);

    // SAFETY: as above.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "1") };
    let backtrace = backtrace_of_a_panic().expect("a backtrace");
    assert!(backtrace.contains("panics_deep_inside"), "{backtrace}");
}
