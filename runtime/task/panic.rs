//! Capturing where a task panicked: the panic hook records location and
//! backtrace for the thread running a task, and leaves every other panic to
//! the hook that was there before.

use std::cell::Cell;
use std::sync::{Mutex, Once};

thread_local! {
    // No destructor: a forked child's first touch of it stays cheap.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
}

/// Location and backtrace of the last captured panic. A process runs one task at
/// a time, so one slot is enough (and a global avoids a thread-local destructor).
static CAPTURED: Mutex<Option<(Option<String>, Option<String>)>> = Mutex::new(None);

fn captured() -> std::sync::MutexGuard<'static, Option<(Option<String>, Option<String>)>> {
    CAPTURED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the capturing hook once per process. The parent installs it before
/// its first fork, so forked children inherit it ready-made. It then hands every
/// panic to the hook that was there before.
pub(crate) fn install_panic_capture() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                let bt = std::backtrace::Backtrace::capture();
                let backtrace = match bt.status() {
                    std::backtrace::BacktraceStatus::Captured => Some(bt.to_string()),
                    _ => None,
                };
                *captured() = Some((location, backtrace));
            }
            // The panic is also reported the usual way (on the child's stderr, as
            // Python prints a child's traceback): a child whose handle was dropped,
            // or one built with panic = "abort", would otherwise fail silently.
            previous(info)
        }));
    });
}

/// Marks the current thread as running a task while alive.
pub(super) struct CaptureGuard {
    was: bool,
}

impl CaptureGuard {
    pub(super) fn enter() -> CaptureGuard {
        // Nothing stale to clear: whoever catches a panic takes what was recorded.
        CaptureGuard { was: CAPTURING.with(|c| c.replace(true)) }
    }
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURING.with(|c| c.set(self.was));
    }
}

/// Takes what the hook recorded for the last panic on this thread.
pub(super) fn take_captured() -> Option<(Option<String>, Option<String>)> {
    captured().take()
}
