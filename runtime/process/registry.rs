//! This process's place in the process tree: who it is, which children it
//! started, and what happens to them when it exits.
//!
//! The state lives behind one pointer so that a child created by `fork` can
//! replace it wholesale, without taking any lock another thread of the parent
//! may have been holding at the moment of the fork.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::child::ChildHandle;
use super::supervisor::Supervisor;
use crate::start::forkserver::ServerHandle;
use crate::sys::pid;

/// Who a process is: what `current_process()` reports, sent to each child at start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub name: String,
    /// Python's `_identity`: `[]` for the main process, `[2]` for its second
    /// child, `[2, 1]` for that child's first child.
    pub path: Vec<u32>,
    pub daemon: bool,
    /// The logical parent (the process that asked for this one).
    pub parent: Option<(i32, String)>,
}

impl Identity {
    fn main() -> Identity {
        Identity { name: "MainProcess".into(), path: Vec::new(), daemon: false, parent: None }
    }
}

pub(crate) struct ProcessState {
    pub pid: i32,
    pub me: Identity,
    next_child: AtomicU32,
    children: Mutex<Vec<Arc<ChildHandle>>>,
    pub forkserver: Mutex<Option<ServerHandle>>,
    pub supervisor: OnceLock<Supervisor>,
}

static STATE: AtomicPtr<ProcessState> = AtomicPtr::new(std::ptr::null_mut());

impl ProcessState {
    fn new(me: Identity) -> ProcessState {
        ProcessState {
            pid: pid::getpid(),
            me,
            next_child: AtomicU32::new(1),
            children: Mutex::new(Vec::new()),
            forkserver: Mutex::new(None),
            supervisor: OnceLock::new(),
        }
    }

    /// The identity and default name of the next child.
    pub fn next_identity(&self) -> (Vec<u32>, String) {
        let n = self.next_child.fetch_add(1, Ordering::Relaxed);
        let mut path = self.me.path.clone();
        path.push(n);
        let digits: Vec<String> = path.iter().map(u32::to_string).collect();
        let name = format!("Process-{}", digits.join(":"));
        (path, name)
    }

    fn children(&self) -> MutexGuard<'_, Vec<Arc<ChildHandle>>> {
        // A panic while holding this lock leaves the list itself consistent.
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_child(&self, child: Arc<ChildHandle>) {
        self.children().push(child);
    }

    pub fn remove_child(&self, child: &ChildHandle) {
        self.children().retain(|c| !std::ptr::eq(Arc::as_ptr(c), child));
    }

    /// The children not yet known to have ended (checked without blocking).
    pub fn live_children(&self) -> Vec<Arc<ChildHandle>> {
        let all: Vec<_> = self.children().clone();
        all.into_iter().filter(|c| c.poll_exit().is_none()).collect()
    }

    fn all_children(&self) -> Vec<Arc<ChildHandle>> {
        self.children().clone()
    }
}

/// This process's state, created on first use.
pub(crate) fn state() -> &'static ProcessState {
    let p = STATE.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a non-null pointer was stored from Box::leak and is never freed.
        return unsafe { &*p };
    }
    let fresh = Box::into_raw(Box::new(ProcessState::new(Identity::main())));
    match STATE.compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: we just stored `fresh`, a leaked Box that lives forever.
        Ok(_) => unsafe { &*fresh },
        Err(existing) => {
            // SAFETY: `fresh` was never shared; `existing` is a leaked Box that lives forever.
            unsafe {
                drop(Box::from_raw(fresh));
                &*existing
            }
        }
    }
}

/// Gives a new child process (after fork, or at boot after exec) a state of its
/// own. The parent's state is leaked on purpose: another thread of the parent may
/// have held one of its locks at the moment of the fork, and that lock will never
/// be released in this process.
pub(crate) fn become_child(me: Identity) {
    let fresh = Box::into_raw(Box::new(ProcessState::new(me)));
    STATE.store(fresh, Ordering::Release);
    TEST_SCOPE.with(|s| s.set(0));
}

thread_local! {
    static TEST_SCOPE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The `#[mproc::test]` running on this thread (0 when none).
pub(crate) fn current_scope() -> u64 {
    TEST_SCOPE.with(|s| s.get())
}

/// Opens a test scope on this thread: children started from it while the scope
/// is open are killed and reaped when it closes.
pub(crate) fn enter_scope() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    TEST_SCOPE.with(|s| s.set(id));
    id
}

/// Closes a test scope: kills and reaps the children it left running.
pub(crate) fn close_scope(id: u64) {
    TEST_SCOPE.with(|s| {
        if s.get() == id {
            s.set(0)
        }
    });
    let st = state();
    for child in st.all_children().into_iter().filter(|c| c.scope() == id) {
        child.kill_and_reap();
        st.remove_child(&child);
    }
}

/// How long daemon children get to exit after SIGTERM before SIGKILL.
const DAEMON_GRACE: Duration = Duration::from_secs(1);

/// Python's exit rule, run when this process exits normally: daemon children are
/// terminated, non-daemon children are joined. With `kill_all` (test binaries,
/// where a test must never leave a process behind) every child is killed.
pub(crate) fn exit_cleanup(kill_all: bool) {
    let st = state();
    let children = st.all_children();
    if children.is_empty() {
        shutdown_forkserver(st);
        return;
    }
    for c in &children {
        if kill_all {
            c.signal(libc::SIGKILL);
        } else if c.daemon() {
            c.signal(libc::SIGTERM);
        }
    }
    for c in children.iter().filter(|c| !c.daemon() && !kill_all) {
        let _ = c.wait(None);
    }
    let grace = Instant::now() + DAEMON_GRACE;
    for c in children.iter().filter(|c| c.daemon() || kill_all) {
        if !matches!(c.wait(Some(grace)), Ok(true)) {
            c.kill_and_reap();
        }
    }
    for c in &children {
        st.remove_child(c);
    }
    shutdown_forkserver(st);
}

fn shutdown_forkserver(st: &ProcessState) {
    let server = st.forkserver.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(server) = server {
        server.shutdown();
    }
}
