//! Futexes on shared memory, and the robust process-shared mutex.
//!
//! Both work on words that live in memory shared between processes (a
//! `MAP_SHARED` mapping of a memfd), so the futex calls never use
//! `FUTEX_PRIVATE_FLAG`: the kernel keys them on the file and offset, whatever
//! address each process mapped the memory at.
//!
//! The mutex is glibc's `pthread_mutex_t` with `PTHREAD_PROCESS_SHARED` and
//! `PTHREAD_MUTEX_ROBUST`. A robust mutex is on its owner thread's robust list
//! (registered with the kernel by `set_robust_list`), so when the owner dies at
//! any instruction, the kernel marks the lock word "owner died" and wakes a
//! waiter; the next locker gets `EOWNERDEAD`, owns the lock, repairs what it
//! protects and calls `pthread_mutex_consistent`. Taking and releasing an
//! uncontended robust mutex makes no system call.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout` (`None`: no limit).
///
/// Returns when woken, when the word no longer holds `expected` (at once), when
/// the timeout passed, or when a signal interrupted the sleep: the caller looks
/// again at what it waits for, and at its deadline, in every case.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64 / 2) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned 32-bit word for the duration of the call
    // (the borrow keeps the mapping alive); `ts_ptr` is null or points at a
    // timespec that outlives the call. FUTEX_WAIT reads the word and sleeps; it
    // writes nothing.
    let r = unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr, std::ptr::null::<u32>(), 0)
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ETIMEDOUT) => Ok(()),
            _ => Err(e),
        };
    }
    Ok(())
}

/// Wakes up to `n` processes (or threads) sleeping in [`wait`] on `word`.
/// Returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: i32) -> io::Result<usize> {
    // SAFETY: `word` is a valid, aligned 32-bit word; FUTEX_WAKE only uses its
    // address as a key.
    let r = unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n, std::ptr::null::<libc::timespec>(), 0, 0)
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
}

/// How [`mutex_lock`] acquired the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The previous owner released it.
    Clean,
    /// The previous owner died holding it: the caller owns it now, must repair
    /// what it protects, then call [`mutex_consistent`] before releasing it.
    OwnerDied,
}

/// Initialises a robust, process-shared mutex at `m`.
///
/// # Safety
/// `m` must point at writable memory large and aligned enough for a
/// `pthread_mutex_t`, that no other thread or process uses until this returns,
/// and that stays mapped while the mutex is used.
pub(crate) unsafe fn mutex_init(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    // SAFETY: as guaranteed by the caller.
    unsafe { mutex_init_typed(m, libc::PTHREAD_MUTEX_NORMAL) }
}

/// [`mutex_init`] with a mutex type: `PTHREAD_MUTEX_NORMAL`,
/// `PTHREAD_MUTEX_ERRORCHECK` (locking it again from its owner thread is
/// `EDEADLK`) or `PTHREAD_MUTEX_RECURSIVE` (its owner may lock it again).
///
/// # Safety
/// As for [`mutex_init`].
pub(crate) unsafe fn mutex_init_typed(m: *mut libc::pthread_mutex_t, kind: libc::c_int) -> io::Result<()> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: `attr` is local storage, initialised by pthread_mutexattr_init
    // before any other use.
    check(unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) })?;
    let attr_ptr = attr.as_mut_ptr();
    // SAFETY: `attr_ptr` is an initialised attribute object.
    let mut set = check(unsafe { libc::pthread_mutexattr_setpshared(attr_ptr, libc::PTHREAD_PROCESS_SHARED) });
    if set.is_ok() {
        // SAFETY: as above.
        set = check(unsafe { libc::pthread_mutexattr_setrobust(attr_ptr, libc::PTHREAD_MUTEX_ROBUST) });
    }
    if set.is_ok() {
        // SAFETY: as above.
        set = check(unsafe { libc::pthread_mutexattr_settype(attr_ptr, kind) });
    }
    if set.is_ok() {
        // SAFETY: `attr_ptr` is initialised; `m` is valid and unshared, as the
        // caller guarantees.
        set = check(unsafe { libc::pthread_mutex_init(m, attr_ptr) });
    }
    // SAFETY: `attr_ptr` is initialised and not used again.
    unsafe { libc::pthread_mutexattr_destroy(attr_ptr) };
    set
}

/// Locks the robust mutex at `m`, waiting as long as it takes.
///
/// # Safety
/// `m` must point at a mutex initialised by [`mutex_init`] (in this process or
/// another one sharing the memory), mapped for the duration of the call.
pub(crate) unsafe fn mutex_lock(m: *mut libc::pthread_mutex_t) -> io::Result<Acquired> {
    // SAFETY: guaranteed by the caller.
    match unsafe { libc::pthread_mutex_lock(m) } {
        0 => Ok(Acquired::Clean),
        libc::EOWNERDEAD => Ok(Acquired::OwnerDied),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Marks the robust mutex at `m` consistent again after [`Acquired::OwnerDied`].
///
/// # Safety
/// As for [`mutex_lock`]; the calling thread must hold the lock.
pub(crate) unsafe fn mutex_consistent(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    // SAFETY: guaranteed by the caller.
    check(unsafe { libc::pthread_mutex_consistent(m) })
}

/// Unlocks the robust mutex at `m`.
///
/// # Safety
/// As for [`mutex_lock`]; the calling thread must hold the lock.
pub(crate) unsafe fn mutex_unlock(m: *mut libc::pthread_mutex_t) {
    // SAFETY: guaranteed by the caller. The only failure (EPERM: not the owner)
    // cannot happen when the caller holds the lock.
    unsafe {
        libc::pthread_mutex_unlock(m);
    }
}

/// Locks the robust mutex at `m` if no one holds it: `None` if someone does.
/// Errors as `pthread_mutex_trylock` reports them (`EDEADLK`: an error-checking
/// mutex this thread already holds).
///
/// # Safety
/// As for [`mutex_lock`].
pub(crate) unsafe fn mutex_trylock(m: *mut libc::pthread_mutex_t) -> io::Result<Option<Acquired>> {
    // SAFETY: guaranteed by the caller.
    match unsafe { libc::pthread_mutex_trylock(m) } {
        0 => Ok(Some(Acquired::Clean)),
        libc::EOWNERDEAD => Ok(Some(Acquired::OwnerDied)),
        libc::EBUSY => Ok(None),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

unsafe extern "C" {
    /// glibc 2.30+: `pthread_mutex_timedlock` against a chosen clock.
    fn pthread_mutex_clocklock(
        m: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// Locks the robust mutex at `m`, waiting at most `timeout` (measured on the
/// monotonic clock, so changes to the wall clock do not matter): `None` if the
/// time ran out.
///
/// # Safety
/// As for [`mutex_lock`].
pub(crate) unsafe fn mutex_lock_timeout(
    m: *mut libc::pthread_mutex_t,
    timeout: Duration,
) -> io::Result<Option<Acquired>> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let nanos = now.tv_nsec as u64 + timeout.subsec_nanos() as u64;
    let secs = (now.tv_sec as u64).saturating_add(timeout.as_secs()).saturating_add(nanos / 1_000_000_000);
    let deadline = libc::timespec {
        tv_sec: secs.min(i64::MAX as u64 / 2) as libc::time_t,
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: guaranteed by the caller; `deadline` outlives the call.
    match unsafe { pthread_mutex_clocklock(m, libc::CLOCK_MONOTONIC, &deadline) } {
        0 => Ok(Some(Acquired::Clean)),
        libc::EOWNERDEAD => Ok(Some(Acquired::OwnerDied)),
        libc::ETIMEDOUT => Ok(None),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Unlocks the robust mutex at `m`, reporting `EPERM` when the calling thread
/// does not hold it (glibc checks the owner of a robust mutex), rather than
/// assuming it does as [`mutex_unlock`] may.
///
/// # Safety
/// `m` must point at a mutex initialised by [`mutex_init`], mapped for the
/// duration of the call. The caller need not hold it.
pub(crate) unsafe fn mutex_unlock_checked(m: *mut libc::pthread_mutex_t) -> io::Result<()> {
    // SAFETY: guaranteed by the caller; for a robust mutex glibc answers EPERM
    // without touching it when this thread is not the owner.
    check(unsafe { libc::pthread_mutex_unlock(m) })
}

/// The thread id recorded as the robust mutex's owner (0: unlocked). Kernel
/// robust-futex ABI: the lock word holds the owner's TID in its low 30 bits,
/// and glibc keeps that word first in `pthread_mutex_t` on every Linux target.
///
/// # Safety
/// As for [`mutex_lock`].
pub(crate) unsafe fn mutex_owner(m: *mut libc::pthread_mutex_t) -> u32 {
    // SAFETY: the mutex starts with its 32-bit, 4-aligned lock word (glibc's
    // `__data.__lock`); it is only read here, atomically, as glibc and the
    // kernel update it atomically.
    let word = unsafe { &*m.cast::<AtomicU32>() };
    word.load(std::sync::atomic::Ordering::Relaxed) & 0x3fff_ffff // FUTEX_TID_MASK
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(r)) }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    #[test]
    fn a_wait_on_a_changed_word_returns_at_once() {
        let w = AtomicU32::new(1);
        let t = Instant::now();
        wait(&w, 0, Some(Duration::from_secs(5))).unwrap();
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_wait_times_out() {
        let w = AtomicU32::new(0);
        let t = Instant::now();
        wait(&w, 0, Some(Duration::from_millis(30))).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(25));
    }

    #[test]
    fn wake_reaches_a_sleeper() {
        let w = std::sync::Arc::new(AtomicU32::new(0));
        let w2 = w.clone();
        let sleeper = std::thread::spawn(move || {
            while w2.load(Ordering::Acquire) == 0 {
                wait(&w2, 0, Some(Duration::from_secs(10))).unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        w.store(1, Ordering::Release);
        wake(&w, i32::MAX).unwrap();
        sleeper.join().unwrap();
    }
}
