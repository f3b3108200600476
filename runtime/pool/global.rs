//! The process-wide pool behind `par_map!`, and the runtime half of that macro.
//!
//! The pool is made on first use with [`cpu_count()`](crate::cpu_count)
//! workers, or configured once beforehand with [`PoolBuilder::build_global`]
//! (rayon's `ThreadPoolBuilder::build_global`). It lives as long as the
//! process; its workers are daemons, so they are stopped at exit.
//!
//! A pool belongs to the process that made it: its workers are that process's
//! children and its engine thread runs there. A child made by fork starts with a
//! copy of the parent's memory, this global included, but with neither. So the
//! global is stored with the pid of its owner, and a process that finds another
//! process's pool there makes its own. The copied handle is leaked, never
//! dropped: dropping it would act on the parent's workers.
//!
//! The global is an atomic pointer to a leaked box, not a lock: a fork taken
//! while another thread held a lock would leave that lock held forever in the
//! child, and the child is exactly the process that must be able to get in.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::progress;
use super::{Pool, PoolBuilder};
use crate::error::{Error, Result};
use crate::task::{self, MapFn};

/// The global pool and the process it belongs to.
struct Global {
    pid: u32,
    pool: Pool,
}

/// Null until a pool is installed; then a leaked `Box<Global>`, replaced (and
/// the old one leaked) only by a process that is not the owner of the one there.
static GLOBAL: AtomicPtr<Global> = AtomicPtr::new(ptr::null_mut());

/// The global pool, made with [`cpu_count()`](crate::cpu_count) workers and the
/// default start method on first use (see [`PoolBuilder::build_global`] to
/// configure it instead). This is the pool `par_map!` uses when it is given none.
///
/// The pool lives as long as the process. A child made by fork that asks for it
/// gets a pool of its own.
///
/// ```
/// #[mproc::task]
/// fn square(n: u64) -> u64 { n * n }
///
/// let pool = mproc::global_pool()?;
/// assert_eq!(pool.processes(), mproc::cpu_count());
/// assert_eq!(pool.apply(square, (4,))?, 16);
/// # Ok::<(), mproc::Error>(())
/// ```
pub fn global_pool() -> Result<&'static Pool> {
    let seen = GLOBAL.load(Ordering::Acquire);
    if let Some(pool) = owned_here(seen) {
        return Ok(pool);
    }
    let built = build_detached(Pool::builder())?;
    // Another thread of this process may have installed one meanwhile: then
    // that one is the pool, and ours is dropped (its workers stop).
    Ok(install(seen, built).unwrap_or_else(|existing| existing))
}

impl PoolBuilder {
    /// Builds the pool as the process's global pool: the one
    /// [`par_map!`](crate::par_map) uses when it is given no pool, and
    /// [`global_pool()`] returns.
    ///
    /// Call it once, before the first `par_map!` or `global_pool()`: those
    /// make the global pool with the defaults when there is none, and after that
    /// it can no longer be configured ([`Error::Misuse`]). A child made by fork
    /// has no global pool of its own until it makes one, and may call this.
    ///
    /// ```
    /// #[mproc::task]
    /// fn square(n: u64) -> u64 { n * n }
    ///
    /// mproc::Pool::builder().processes(2).build_global()?;
    /// assert_eq!(mproc::global_pool()?.processes(), 2);
    /// assert_eq!(mproc::par_map!(square, 0..4u64)?, vec![0, 1, 4, 9]);
    /// assert!(mproc::Pool::builder().build_global().is_err());
    /// # Ok::<(), mproc::Error>(())
    /// ```
    pub fn build_global(self) -> Result<()> {
        let seen = GLOBAL.load(Ordering::Acquire);
        if owned_here(seen).is_some() {
            return Err(already_built());
        }
        let built = build_detached(self)?;
        install(seen, built).map(drop).map_err(|_| already_built())
    }
}

fn already_built() -> Error {
    Error::Misuse {
        what: "the global pool already exists: call PoolBuilder::build_global once, before the first par_map! \
               or global_pool()"
            .into(),
    }
}

/// The pool `global` points at, if it belongs to this process.
fn owned_here(global: *mut Global) -> Option<&'static Pool> {
    // SAFETY: a non-null pointer in GLOBAL came from Box::into_raw and is never
    // freed (a replaced one is leaked), so it is valid for 'static.
    let global = unsafe { global.as_ref() }?;
    (global.pid == std::process::id()).then_some(&global.pool)
}

/// Installs `pool` as the global pool, in place of `seen` (null, or another
/// process's). Returns it, or `Err` with the pool of this process that another
/// thread installed first.
fn install(mut seen: *mut Global, pool: Pool) -> std::result::Result<&'static Pool, &'static Pool> {
    let fresh = Box::into_raw(Box::new(Global { pid: std::process::id(), pool }));
    loop {
        match GLOBAL.compare_exchange(seen, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: `fresh` is a leaked Box, now published and never freed.
            Ok(_) => return Ok(unsafe { &(*fresh).pool }),
            Err(current) => {
                if let Some(existing) = owned_here(current) {
                    // SAFETY: `fresh` was never published; this is its only owner.
                    drop(unsafe { Box::from_raw(fresh) });
                    return Err(existing);
                }
                // Still another process's pool (only ours replace it): try again.
                seen = current;
            }
        }
    }
}

/// Starts the pool on a thread of its own. Children started from a
/// `#[mproc::test]`'s thread are killed when that test ends; the global pool
/// outlives whichever test happened to use it first, so its workers must not
/// count as that test's children.
fn build_detached(builder: PoolBuilder) -> Result<Pool> {
    let builder_thread = std::thread::Builder::new().name("mproc-global-pool".into()).spawn(move || builder.build())?;
    builder_thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The options of a `par_map!`, as the macro writes them.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct ParMapOptions {
    /// Calls per job; `None` for the pool's default.
    pub chunksize: Option<usize>,
    /// Results in input order (`true`) or in completion order.
    pub ordered: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// `par_map!(f, items; ..)`: [`par_map`] on the global pool.
#[doc(hidden)]
pub fn par_map_global<F, I, T, M>(f: F, items: I, options: ParMapOptions) -> Result<Vec<F::Output>>
where
    I: IntoIterator<Item = T>,
    F: MapFn<T, M>,
{
    par_map(global_pool()?, f, items, options)
}

/// `par_map!(pool, f, items; ..)`.
///
/// The bounds are shaped for the diagnostics (`tests/ui/par_map_*`): with the
/// item type a parameter of its own, bound through `I`, rustc learns it from the
/// task (the argument before the items) and reports items of another type once,
/// at the items ("expected `u64`, found `&str`"). Written `F: MapFn<I::Item, M>`,
/// the same mistake is reported twice, over the whole macro call.
#[doc(hidden)]
pub fn par_map<F, I, T, M>(pool: &Pool, f: F, items: I, options: ParMapOptions) -> Result<Vec<F::Output>>
where
    I: IntoIterator<Item = T>,
    F: MapFn<T, M>,
{
    let ParMapOptions { chunksize, ordered, progress } = options;
    if !progress {
        return match (ordered, chunksize) {
            (true, _) => pool.map_async_with(f, items, chunksize).get(),
            (false, None) => pool.imap_unordered(f, items).collect(),
            (false, Some(n)) => pool.imap_unordered_chunked(f, items, n).collect(),
        };
    }
    // With a bar, results are taken as their chunks arrive, so that the bar moves.
    let items = items.into_iter();
    let total = match items.size_hint() {
        (lo, Some(hi)) if lo == hi => Some(lo),
        _ => None,
    };
    let name = task::of(&f).map(|entry| entry.name()).unwrap_or("par_map");
    let results: Box<dyn Iterator<Item = Result<F::Output>> + '_> = match (ordered, chunksize) {
        (true, None) => Box::new(pool.imap(f, items)),
        (true, Some(n)) => Box::new(pool.imap_chunked(f, items, n)),
        (false, None) => Box::new(pool.imap_unordered(f, items)),
        (false, Some(n)) => Box::new(pool.imap_unordered_chunked(f, items, n)),
    };
    progress::collect(name, total, results)
}
