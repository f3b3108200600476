//! The entry hook: how a re-executed child is diverted to its task before any
//! user code runs, and how the parent knows it will be.
//!
//! A `Spawn` child (and the fork server) is the same binary started again with
//! an environment variable naming an inherited socket. `#[mproc::main]` (or
//! `mproc::init()`) and `#[mproc::test]` look for that variable first thing: if
//! it is there, the process becomes the child and never returns to user code.
//! The child then greets its parent on the socket; a parent that gets no
//! greeting within [`HELLO_TIMEOUT`] kills the child and reports
//! `Error::NoEntryHook`. A hookless child that tries to start processes itself
//! is refused, so a missing hook can never become a fork bomb.

pub(crate) mod child;

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::process::registry;
use crate::sys::fd;

/// Names the inherited result socket of a `Spawn` child.
pub(crate) const ENV_CHILD: &str = "MPROC_CHILD";
/// Names the inherited control socket of a fork server.
pub(crate) const ENV_SERVER: &str = "MPROC_FORKSERVER";
/// Names the inherited real standard output of a child of a test binary (whose
/// own standard output is silenced until the hook restores it, hiding the test
/// harness's chatter).
pub(crate) const ENV_STDOUT: &str = "MPROC_STDOUT";

/// How long a re-executed child has to reach the hook and greet its parent.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(1);

/// How this process can be re-executed into a child.
#[derive(Clone, Debug)]
pub(crate) enum Reexec {
    /// A binary whose `main` runs the hook: start it with no arguments.
    Main,
    /// A test binary: run one test whose body starts with the hook.
    Test { test: String },
}

static REEXEC: OnceLock<Reexec> = OnceLock::new();
static HOOK_TESTS: Mutex<Option<String>> = Mutex::new(None);

/// True once this process ran the entry hook (`#[mproc::main]`, `mproc::init()`
/// or `#[mproc::test]`), which makes `ForkServer` the default start method.
pub(crate) fn hook_installed() -> bool {
    REEXEC.get().is_some() || HOOK_TESTS.lock().map(|t| t.is_some()).unwrap_or(false)
}

/// Arguments that re-execute this binary into a child, or `None` when this process
/// never ran the hook (then a re-executed copy would not either).
pub(crate) fn reexec() -> Option<Reexec> {
    if let Some(r) = REEXEC.get() {
        return Some(r.clone());
    }
    let test = HOOK_TESTS.lock().ok()?.clone()?;
    Some(Reexec::Test { test })
}

impl Reexec {
    pub(crate) fn args(&self) -> Vec<OsString> {
        match self {
            Reexec::Main => Vec::new(),
            Reexec::Test { test } => {
                [test.as_str(), "--exact", "--nocapture", "--include-ignored", "--test-threads=1", "-q"]
                    .iter()
                    .map(OsString::from)
                    .collect()
            }
        }
    }
}

/// The entry hook. Call it first thing in `main` (or use `#[mproc::main]`, which
/// does): in a child process started by `Spawn` or `ForkServer` it runs the task
/// and never returns; in the main process it records that children may be
/// re-executed from this binary and arranges Python's exit rule (daemon children
/// terminated, the others joined when `main` returns).
///
/// ```
/// # #[allow(clippy::needless_doctest_main)]
/// fn main() {
///     mproc::init();
///     println!("the program");
/// }
/// ```
pub fn init() {
    // Recorded before diverting: a child can start children of its own the same way.
    let _ = REEXEC.set(Reexec::Main);
    divert_if_child();
    register_exit_rule(false);
}

/// The hook of `#[mproc::test]`: diverts a child, records the test as one a
/// child can be re-executed into, and opens a scope whose children are killed
/// when the test ends, whether it passes or fails.
#[doc(hidden)]
pub fn test_entry(module_path: &'static str, fn_name: &'static str) -> TestGuard {
    let test = match module_path.split_once("::") {
        Some((_crate, rest)) => format!("{rest}::{fn_name}"),
        None => fn_name.to_string(),
    };
    if let Ok(mut t) = HOOK_TESTS.lock() {
        t.get_or_insert(test);
    }
    divert_if_child();
    register_exit_rule(true);
    TestGuard { scope: registry::enter_scope() }
}

/// Kills the children a `#[mproc::test]` left running when it ends. Returned by
/// the code `#[mproc::test]` generates.
#[doc(hidden)]
#[must_use]
pub struct TestGuard {
    scope: u64,
}

impl Drop for TestGuard {
    fn drop(&mut self) {
        registry::close_scope(self.scope);
    }
}

fn register_exit_rule(kill_all: bool) {
    static ONCE: Once = Once::new();
    static KILL_ALL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if kill_all {
        KILL_ALL.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    extern "C" fn at_exit() {
        let kill_all = KILL_ALL.load(std::sync::atomic::Ordering::Relaxed);
        // A panic must not unwind out of an exit handler into C.
        let _ = std::panic::catch_unwind(|| registry::exit_cleanup(kill_all));
    }
    ONCE.call_once(|| {
        // SAFETY: at_exit is an extern "C" fn with no arguments that never unwinds.
        unsafe { libc::atexit(at_exit) };
    });
}

/// A child that was started to run a task but never ran the hook must not start
/// processes of its own (that is how a missing hook would turn into a fork bomb).
pub(crate) fn refuse_if_hookless_child() -> Result<()> {
    if std::env::var_os(ENV_CHILD).is_some() || std::env::var_os(ENV_SERVER).is_some() {
        return Err(Error::NoEntryHook {
            detail: format!(
                "this process was started as a child but ran user code instead of the task; \
                 pid {}",
                crate::sys::pid::getpid()
            ),
        });
    }
    Ok(())
}

fn divert_if_child() {
    let child = take_env_fd(ENV_CHILD);
    let server = take_env_fd(ENV_SERVER);
    if child.is_some() || server.is_some() {
        // Named like the program, not like the /proc/self/exe link it was started through.
        let arg0 = std::env::args_os().next().unwrap_or_default();
        let base = std::path::Path::new(&arg0).file_name().unwrap_or_default();
        crate::sys::pid::set_process_name(&base.to_string_lossy());
    }
    if let Some(out) = take_env_fd(ENV_STDOUT) {
        // Give the task the real standard output back.
        let _ = fd::dup2(out.as_raw_fd(), 1);
    }
    if let Some(channel) = child {
        child::boot_spawned(channel);
    }
    if let Some(control) = server {
        crate::start::server::serve(control);
    }
}

/// Reads and removes an inherited-descriptor variable and takes ownership of the
/// descriptor (marking it close-on-exec so the task's own subprocesses do not get it).
fn take_env_fd(var: &str) -> Option<std::os::fd::OwnedFd> {
    let value = std::env::var_os(var)?;
    // SAFETY: the hook runs first thing in main (or first in a test body, while the
    // harness's other threads only wait), before the program starts threads that
    // could read the environment concurrently.
    unsafe { std::env::remove_var(var) };
    let raw: i32 = value.to_str()?.parse().ok()?;
    // SAFETY: the parent put this descriptor number in our environment and left the
    // descriptor open for us across exec; nothing else in this process owns it.
    let owned = unsafe { fd::adopt(raw) };
    let _ = fd::set_cloexec(owned.as_fd().as_raw_fd(), true);
    Some(owned)
}
