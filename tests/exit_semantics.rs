//! A child's fate reaches the parent the same way under every start method.

mod common;

use std::time::{Duration, Instant};

use mproc::{Error, StartMethod};

#[mproc::task]
fn square(n: u64) -> u64 {
    n * n
}

#[mproc::task]
fn panics(message: String) -> u64 {
    panic!("{message}");
}

#[mproc::task]
fn exits(code: i32) -> u64 {
    std::process::exit(code);
}

#[mproc::task]
fn segfaults() -> u64 {
    // SAFETY: none — writing through a null pointer is the crash under test.
    unsafe { std::ptr::null_mut::<u64>().write_volatile(1) };
    0
}

#[mproc::task]
fn aborts() -> u64 {
    std::process::abort();
}

#[mproc::task]
fn sleeps(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[mproc::task]
fn big(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn plain(n: u64) -> u64 {
    n
}

macro_rules! for_each_start_method {
    ($($m:ident => $method:expr),*) => {$(
        mod $m {
            use super::*;
            const METHOD: StartMethod = $method;

            #[mproc::test]
            fn join_returns_the_task_result() {
                let p = mproc::spawn!(square(12); start_method = METHOD).unwrap();
                assert_eq!(p.join().unwrap(), 144);
            }

            #[mproc::test]
            fn exitcode_is_zero_after_success() {
                let p = mproc::spawn!(square(2); start_method = METHOD).unwrap();
                assert!(common::eventually(Duration::from_secs(10), || p.exitcode().is_some()));
                assert_eq!(p.exitcode(), Some(0));
                assert_eq!(p.join().unwrap(), 4);
            }

            #[mproc::test]
            fn panic_arrives_as_panicked_with_message_and_location() {
                let p = mproc::spawn!(panics("boom 42".to_string()); start_method = METHOD).unwrap();
                assert!(common::eventually(Duration::from_secs(10), || !p.is_alive()));
                assert_eq!(p.exitcode(), Some(1));
                match p.join() {
                    Err(Error::Panicked { task, message, location, .. }) => {
                        assert_eq!(message, "boom 42");
                        assert!(task.ends_with("::panics"), "task name {task}");
                        let location = location.expect("a location");
                        assert!(location.contains("exit_semantics.rs"), "location {location}");
                    }
                    other => panic!("expected Panicked, got {other:?}"),
                }
            }

            #[mproc::test]
            fn process_exit_arrives_as_exited_with_its_code() {
                let p = mproc::spawn!(exits(7); start_method = METHOD).unwrap();
                assert!(common::eventually(Duration::from_secs(10), || !p.is_alive()));
                assert_eq!(p.exitcode(), Some(7));
                assert!(matches!(p.join(), Err(Error::Exited { code: 7, .. })));
            }

            #[mproc::test]
            fn segfault_arrives_as_killed_by_sigsegv() {
                let p = mproc::spawn!(segfaults(); start_method = METHOD).unwrap();
                assert!(common::eventually(Duration::from_secs(10), || !p.is_alive()));
                assert_eq!(p.exitcode(), Some(-11));
                assert!(matches!(p.join(), Err(Error::Killed { signal: 11, .. })));
            }

            #[mproc::test]
            fn abort_arrives_as_killed_by_sigabrt() {
                let p = mproc::spawn!(aborts(); start_method = METHOD).unwrap();
                assert!(matches!(p.join(), Err(Error::Killed { signal: 6, .. })));
            }

            #[mproc::test]
            fn terminate_sets_exitcode_to_minus_sigterm() {
                let p = mproc::spawn!(sleeps(60_000); start_method = METHOD).unwrap();
                p.terminate().unwrap();
                let r = p.join_timeout(Duration::from_secs(10));
                assert!(matches!(r, Err(Error::Killed { signal: 15, .. })), "{r:?}");
                assert_eq!(p.exitcode(), Some(-15));
            }

            #[mproc::test]
            fn kill_sets_exitcode_to_minus_sigkill() {
                let p = mproc::spawn!(sleeps(60_000); start_method = METHOD).unwrap();
                p.kill().unwrap();
                let r = p.join_timeout(Duration::from_secs(10));
                assert!(matches!(r, Err(Error::Killed { signal: 9, .. })), "{r:?}");
                assert_eq!(p.exitcode(), Some(-9));
            }

            #[mproc::test]
            fn join_timeout_on_a_live_process_returns_none_promptly_and_leaves_it_running() {
                let p = mproc::spawn!(sleeps(60_000); start_method = METHOD).unwrap();
                let t = Instant::now();
                assert!(p.join_timeout(Duration::from_millis(100)).unwrap().is_none());
                let waited = t.elapsed();
                assert!(waited >= Duration::from_millis(100), "returned early: {waited:?}");
                assert!(waited < Duration::from_secs(5), "returned late: {waited:?}");
                assert!(p.is_alive());
                assert_eq!(p.exitcode(), None);
                p.kill().unwrap();
            }

            #[mproc::test]
            fn join_timeout_returns_the_result_once_it_is_there() {
                let p = mproc::spawn!(sleeps(50); start_method = METHOD).unwrap();
                assert_eq!(p.join_timeout(Duration::from_secs(10)).unwrap(), Some(50));
            }

            #[mproc::test]
            fn joining_again_after_the_result_was_taken_reports_already_joined() {
                let p = mproc::spawn!(square(3); start_method = METHOD).unwrap();
                assert_eq!(p.join_timeout(Duration::from_secs(10)).unwrap(), Some(9));
                assert!(matches!(p.join(), Err(Error::AlreadyJoined { .. })));
            }

            #[mproc::test]
            fn results_larger_than_the_socket_buffer_arrive_intact() {
                let len = 8 << 20;
                let p = mproc::spawn!(big(len); start_method = METHOD).unwrap();
                let v = p.join().unwrap();
                assert_eq!(v.len(), len);
                assert!(v.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
            }

            #[mproc::test]
            fn a_function_without_the_task_attribute_is_not_a_task() {
                let err = mproc::Process::builder().start_method(METHOD).spawn(plain, (1,)).unwrap_err();
                match err {
                    Error::NotATask { name } => assert!(name.ends_with("plain"), "{name}"),
                    other => panic!("expected NotATask, got {other:?}"),
                }
            }
        }
    )*};
}

for_each_start_method!(fork => StartMethod::Fork, spawn => StartMethod::Spawn, forkserver => StartMethod::ForkServer);

#[mproc::test]
fn fork_runs_a_capturing_closure() {
    let words = ["a".to_string(), "bb".to_string(), "ccc".to_string()];
    let p = mproc::fork(move || words.iter().map(String::len).sum::<usize>()).unwrap();
    assert_eq!(p.join().unwrap(), 6);
}

#[mproc::test]
fn a_panicking_fork_closure_arrives_as_panicked() {
    let p = mproc::fork(|| -> u8 { panic!("closure boom") }).unwrap();
    match p.join() {
        Err(Error::Panicked { task, message, .. }) => {
            assert_eq!(task, "<closure>");
            assert_eq!(message, "closure boom");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
}

#[mproc::test]
fn a_closure_cannot_be_started_by_spawn() {
    let err = mproc::Process::builder().start_method(StartMethod::Spawn).fork(|| 1u8).unwrap_err();
    assert!(err.to_string().contains("forked child"), "{err}");
}
