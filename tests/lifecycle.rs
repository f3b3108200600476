//! Names, identity, nesting and the rules that keep the process tree clean:
//! every child reaped, children die with their parent, daemons terminated and
//! other children joined at exit.

mod common;

use std::time::Duration;

use mproc::{Error, StartMethod};

#[mproc::task]
fn whoami() -> (String, bool, Option<(i32, String)>) {
    let me = mproc::current_process();
    let parent = mproc::parent_process().map(|p| (p.pid().as_raw(), p.name().to_string()));
    (me.name().to_string(), me.is_daemon(), parent)
}

#[mproc::task]
fn name_of_my_first_child(method: StartMethod) -> (String, String) {
    let child = mproc::spawn!(whoami(); start_method = method).unwrap();
    let (child_name, _, _) = child.join().unwrap();
    (mproc::current_process().name().to_string(), child_name)
}

#[mproc::task]
fn sleeps(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Starts a sleeping child, writes its pid to `path`, then waits for the child forever.
#[mproc::task]
fn parent_of_sleeper(method: StartMethod, daemon: bool, path: String) -> i32 {
    let child = mproc::spawn!(sleeps(60_000); start_method = method, daemon = daemon).unwrap();
    std::fs::write(&path, child.pid().to_string()).unwrap();
    let _ = child.join();
    0
}

/// Starts a sleeping daemon child, writes its pid to `path`, and returns at once.
#[mproc::task]
fn leaves_a_daemon(method: StartMethod, path: String) -> i32 {
    let child = mproc::spawn!(sleeps(60_000); start_method = method, daemon = true).unwrap();
    std::fs::write(&path, child.pid().to_string()).unwrap();
    child.pid().as_raw()
}

#[mproc::task]
fn big(len: usize) -> Vec<u8> {
    vec![7; len]
}

#[mproc::task]
fn writes_after(path: String, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    std::fs::write(path, "done").unwrap();
}

/// Starts a non-daemon child that writes a file after a while, and returns at once.
#[mproc::task]
fn leaves_a_worker(method: StartMethod, path: String) {
    let child = mproc::spawn!(writes_after(path, 300); start_method = method).unwrap();
    drop(child);
}

#[mproc::task]
fn short_name() -> String {
    std::fs::read_to_string("/proc/self/comm").unwrap()
}

/// The descriptors this process holds besides stdio, as link targets.
#[mproc::task]
fn open_descriptors() -> Vec<String> {
    let mut out = Vec::new();
    let dir = std::fs::read_dir("/proc/self/fd").unwrap();
    for entry in dir.flatten() {
        let fd: i32 = entry.file_name().to_string_lossy().parse().unwrap();
        if fd <= 2 {
            continue;
        }
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.to_string_lossy().to_string();
            // The directory being listed is itself open.
            if !target.starts_with("/proc/") {
                out.push(target);
            }
        }
    }
    out
}

macro_rules! for_each_start_method {
    ($($m:ident => $method:expr),*) => {$(
        mod $m {
            use super::*;
            const METHOD: StartMethod = $method;

            #[mproc::test]
            fn default_names_are_process_n() {
                let p = mproc::spawn!(whoami(); start_method = METHOD).unwrap();
                let name = p.name().to_string();
                let n: u32 = name.strip_prefix("Process-").expect("Process-N").parse().expect("a number");
                assert!(n >= 1);
                let (inside, _, _) = p.join().unwrap();
                assert_eq!(inside, name);
            }

            #[mproc::test]
            fn a_child_of_process_n_is_named_process_n_colon_1() {
                let p = mproc::spawn!(name_of_my_first_child(METHOD); start_method = METHOD).unwrap();
                let (parent, child) = p.join().unwrap();
                assert_eq!(child, format!("{parent}:1"));
            }

            #[mproc::test]
            fn the_given_name_and_daemon_flag_reach_the_child() {
                let p = mproc::spawn!(whoami(); name = "worker-a", daemon = true, start_method = METHOD).unwrap();
                assert_eq!(p.name(), "worker-a");
                assert!(p.is_daemon());
                let (name, daemon, _) = p.join().unwrap();
                assert_eq!((name.as_str(), daemon), ("worker-a", true));
            }

            #[mproc::test]
            fn the_parent_process_of_a_child_is_its_caller() {
                let p = mproc::spawn!(whoami(); start_method = METHOD).unwrap();
                let (_, _, parent) = p.join().unwrap();
                assert_eq!(parent, Some((std::process::id() as i32, "MainProcess".to_string())));
            }

            #[mproc::test]
            fn children_die_when_their_parent_is_killed() {
                for daemon in [false, true] {
                    let path = common::temp_path(&format!("{}-orphan-{daemon}", stringify!($m)));
                    let p = mproc::spawn!(parent_of_sleeper(METHOD, daemon, path.display().to_string()); start_method = METHOD).unwrap();
                    let grandchild = common::read_pid(&path);
                    assert!(common::running(grandchild));
                    p.kill().unwrap();
                    assert!(matches!(p.join(), Err(Error::Killed { signal: 9, .. })));
                    assert!(
                        common::eventually(Duration::from_secs(10), || !common::running(grandchild)),
                        "grandchild {grandchild} (daemon: {daemon}) outlived its parent"
                    );
                    let _ = std::fs::remove_file(path);
                }
            }

            #[mproc::test]
            fn daemon_children_are_terminated_when_their_parent_exits() {
                let path = common::temp_path(&format!("{}-daemon", stringify!($m)));
                let p = mproc::spawn!(leaves_a_daemon(METHOD, path.display().to_string()); start_method = METHOD).unwrap();
                let grandchild = p.join().unwrap();
                assert!(
                    common::eventually(Duration::from_secs(10), || !common::running(grandchild)),
                    "daemon grandchild {grandchild} outlived its parent"
                );
                let _ = std::fs::remove_file(path);
            }

            #[mproc::test]
            fn non_daemon_children_are_joined_when_their_parent_exits() {
                let path = common::temp_path(&format!("{}-joined", stringify!($m)));
                let p = mproc::spawn!(leaves_a_worker(METHOD, path.display().to_string()); start_method = METHOD).unwrap();
                p.join().unwrap();
                assert_eq!(std::fs::read_to_string(&path).unwrap(), "done");
                let _ = std::fs::remove_file(path);
            }

            #[mproc::test]
            fn a_daemon_may_have_children_of_its_own() {
                let p = mproc::spawn!(name_of_my_first_child(METHOD); start_method = METHOD, daemon = true).unwrap();
                let (parent, child) = p.join().unwrap();
                assert_eq!(child, format!("{parent}:1"));
            }

            #[mproc::test]
            fn a_dropped_process_is_reaped_without_join() {
                let p = mproc::spawn!(sleeps(20); start_method = METHOD).unwrap();
                let pid = p.pid().as_raw();
                drop(p);
                assert!(
                    common::eventually(Duration::from_secs(10), || !common::exists(pid)),
                    "process {pid} was not reaped"
                );
            }

            #[mproc::test]
            fn a_dropped_process_with_a_result_larger_than_the_socket_buffer_still_ends() {
                let p = mproc::spawn!(big(16 << 20); start_method = METHOD).unwrap();
                let pid = p.pid().as_raw();
                drop(p);
                assert!(
                    common::eventually(Duration::from_secs(20), || !common::exists(pid)),
                    "process {pid} never finished writing its result"
                );
            }

            #[mproc::test]
            fn active_children_lists_running_children_only() {
                let long = mproc::spawn!(sleeps(60_000); start_method = METHOD).unwrap();
                let short = mproc::spawn!(sleeps(1); start_method = METHOD).unwrap();
                let short_pid = short.pid();
                short.join().unwrap();
                let active: Vec<_> = mproc::active_children().iter().map(|c| c.pid()).collect();
                assert!(active.contains(&long.pid()));
                assert!(!active.contains(&short_pid));
                long.kill().unwrap();
            }
        }
    )*};
}

for_each_start_method!(fork => StartMethod::Fork, spawn => StartMethod::Spawn, forkserver => StartMethod::ForkServer);

#[mproc::test]
fn the_default_start_method_with_the_hook_is_forkserver() {
    assert_eq!(mproc::start_method(), StartMethod::ForkServer);
}

#[mproc::test]
fn the_fork_server_is_restarted_after_it_is_killed() {
    let first = mproc::spawn!(sleeps(1); start_method = StartMethod::ForkServer).unwrap();
    first.join().unwrap();
    let server = mproc::__private::forkserver_pid().unwrap();
    // SAFETY: kill(2) with a pid and a signal number has no memory-safety preconditions.
    assert_eq!(unsafe { libc_kill(server, 9) }, 0);
    assert!(common::eventually(Duration::from_secs(10), || !common::running(server)));
    let second = mproc::spawn!(sleeps(2); start_method = StartMethod::ForkServer).unwrap();
    assert_eq!(second.join().unwrap(), 2);
    assert_ne!(mproc::__private::forkserver_pid().unwrap(), server);
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[mproc::test]
fn re_executed_children_inherit_no_descriptor_but_their_channel() {
    let path = common::temp_path("fd-leak");
    let _file = std::fs::File::create(&path).unwrap();
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let open = mproc::spawn!(open_descriptors(); start_method = method).unwrap().join().unwrap();
        assert!(!open.iter().any(|t| t.contains("fd-leak")), "{method:?} child holds the parent's file: {open:?}");
        assert_eq!(open.iter().filter(|t| t.starts_with("socket:")).count(), 1, "{method:?} child: {open:?}");
    }
    let _ = std::fs::remove_file(path);
}

#[mproc::test]
fn re_executed_children_carry_the_program_name() {
    let mine = std::fs::read_to_string("/proc/self/comm").unwrap();
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let theirs = mproc::spawn!(short_name(); start_method = method).unwrap().join().unwrap();
        assert_eq!(theirs, mine, "{method}");
    }
}

#[test]
fn children_left_running_by_a_test_are_killed_when_it_ends() {
    let pid = {
        let _scope =
            mproc::__private::test_entry(module_path!(), "children_left_running_by_a_test_are_killed_when_it_ends");
        let p = mproc::spawn!(sleeps(60_000); start_method = StartMethod::Fork).unwrap();
        let pid = p.pid().as_raw();
        std::mem::forget(p);
        pid
    };
    assert!(!common::exists(pid), "process {pid} survived the end of its test");
}
