//! Capturing where a task panicked: the panic hook records location and
//! backtrace for the thread running a task, and leaves every other panic to
//! the hook that was there before.

use std::cell::{Cell, RefCell};
use std::sync::Once;

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Option<(Option<String>, Option<String>)>> = const { RefCell::new(None) };
}

/// Installs the capturing hook once per process (done in every child).
pub(crate) fn install_panic_capture() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CAPTURING.with(Cell::get) {
                return previous(info);
            }
            let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let bt = std::backtrace::Backtrace::capture();
            let backtrace = match bt.status() {
                std::backtrace::BacktraceStatus::Captured => Some(bt.to_string()),
                _ => None,
            };
            CAPTURED.with(|c| *c.borrow_mut() = Some((location, backtrace)));
        }));
    });
}

/// Marks the current thread as running a task while alive.
pub(super) struct CaptureGuard {
    was: bool,
}

impl CaptureGuard {
    pub(super) fn enter() -> CaptureGuard {
        CAPTURED.with(|c| c.borrow_mut().take());
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
    CAPTURED.with(|c| c.borrow_mut().take())
}
