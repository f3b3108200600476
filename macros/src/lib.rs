//! Procedural macros for [mproc](https://docs.rs/mproc): `#[task]`, `#[main]`, `#[test]`, `spawn!` and `par_map!`.
//!
//! Depend on `mproc` and write `#[mproc::task]`, `mproc::spawn!(..)`: mproc re-exports these macros, and the
//! code they generate names the runtime as `::mproc::…`, so they only work with `mproc` as a dependency.
//!
//! The examples on this page are not compiled here (a proc-macro crate cannot run its own macros in
//! doctests); the same examples run as doctests in mproc's documentation.
//!
//! Every macro reports misuse as an ordinary compile error at the offending token, with a message that
//! names the fix; mproc's `tests/ui` holds one compile-fail case per diagnostic.

mod ast;
mod attr;
mod entry;
mod par_map;
mod spawn;
mod task;
mod valid;

use proc_macro::TokenStream;

/// Makes a free function runnable in a child process.
///
/// ```ignore
/// #[mproc::task]
/// fn square(n: u64) -> u64 {
///     n * n
/// }
///
/// #[mproc::main]
/// fn main() -> Result<(), mproc::Error> {
///     assert_eq!(square(3), 9);                      // still a plain fn in-process
///     let p = mproc::spawn!(square(7))?;             // runs in a child process
///     assert_eq!(p.join()?, 49);
///     Ok(())
/// }
/// ```
///
/// The function is kept exactly as written. Beside it the macro emits
///
/// ```ignore
/// const _: () = {
///     // One assertion per argument type and for the return type, at that type: a type that cannot
///     // cross a process boundary is reported there, with the runtime's message naming the fix.
///     const __MPROC_CHECKED: usize = { ::mproc::__private::assert_task_value::<u64>(); /* .. */ 0 };
///     fn __mproc_call((__a0,): (u64,)) -> u64 { square(__a0) }
///     // Decodes the argument tuple, calls `square`, encodes the result (panics are caught).
///     fn __mproc_invoke(input: &[u8]) -> ::mproc::__private::Invoked {
///         ::mproc::__private::invoke(input, __mproc_call)
///     }
///     // The same for a chunk of argument tuples (pool workers).
///     fn __mproc_invoke_chunk(input: &[u8]) -> ::mproc::__private::Invoked {
///         ::mproc::__private::invoke_chunk(input, __mproc_call)
///     }
///     // How the runtime recognises `square` when it is handed the function as a value.
///     fn __mproc_key() -> &'static str { ::core::any::type_name_of_val(&square) }
///     ::mproc::__private::inventory::submit! {
///         ::mproc::__private::TaskEntry::new(
///             concat!(module_path!(), "::", "square"), __mproc_key, __mproc_invoke, __mproc_invoke_chunk)
///     }
/// };
/// ```
///
/// (the invoker's types are written through `__MPROC_CHECKED`, so that a failed assertion is the only
/// error reported). Every process running the binary sees the same registry, so a child started by any
/// start method finds the task by name.
///
/// Arguments may use any irrefutable pattern (`mut n: u64`, `(a, b): (i32, i32)`); the child passes them
/// positionally.
///
/// # Compile errors
///
/// Each names its fix: a generic function (type or const parameters, `impl Trait` arguments), lifetime
/// parameters, `async fn`, `unsafe fn`, `extern fn`, a method (`self` receiver), reference arguments
/// (`&str`, `&[T]`, `&Path`, `&T`) or results, an `impl Trait` result, and arguments to the attribute.
/// The attribute works on free functions only, not on associated functions in an `impl` block.
#[proc_macro_attribute]
pub fn task(args: TokenStream, input: TokenStream) -> TokenStream {
    task::expand(args.into(), input.into()).into()
}

/// Marks `fn main` as the program's entry hook, so a child process can start from this binary.
///
/// ```ignore
/// #[mproc::main]
/// fn main() -> Result<(), mproc::Error> {
///     let p = mproc::spawn!(square(7))?;
///     assert_eq!(p.join()?, 49);
///     Ok(())
/// }
/// ```
///
/// expands to the same function with `::mproc::init();` as the first statement of its body:
///
/// ```ignore
/// fn main() -> Result<(), mproc::Error> {
///     ::mproc::init();
///     let p = mproc::spawn!(square(7))?;
///     // ..
/// }
/// ```
///
/// In a child started by the spawn or forkserver method, `init()` runs the requested task and never
/// returns, so nothing of `main` runs there; in the main process it returns and `main` goes on. Calling
/// `mproc::init()` yourself as the first line of `main` is equivalent.
///
/// # Compile errors
///
/// On a function not named `main`, on a `main` with parameters, on an `async fn` (put `#[mproc::main]`
/// below `#[tokio::main]`, which turns the function into a plain `fn main` first), and with arguments.
#[proc_macro_attribute]
pub fn main(args: TokenStream, input: TokenStream) -> TokenStream {
    entry::main(args.into(), input.into()).into()
}

/// A `#[test]` that may start child processes by any start method.
///
/// ```ignore
/// #[mproc::test]
/// fn square_runs_in_a_child() {
///     let p = mproc::spawn!(square(7)).unwrap();
///     assert_eq!(p.join().unwrap(), 49);
/// }
/// ```
///
/// expands to
///
/// ```ignore
/// #[test]
/// fn square_runs_in_a_child() {
///     let __mproc_test_guard = ::mproc::__private::test_entry(module_path!(), "square_runs_in_a_child");
///     let p = mproc::spawn!(square(7)).unwrap();
///     assert_eq!(p.join().unwrap(), 49);
/// }
/// ```
///
/// A test binary has no `main` for `#[mproc::main]` to go on, so each test is its own entry hook:
/// `test_entry` diverts a child re-executed into this test to its task, and the guard, held for the
/// whole body, kills the children the test left running when it ends, whether it passes or fails. The
/// other attributes (`#[should_panic]`, `#[ignore]`, ...) and a `Result` return type are kept.
///
/// # Compile errors
///
/// With a `#[test]` attribute of its own (`#[mproc::test]` adds it), parameters, `async fn`, generic
/// parameters, and arguments to the attribute.
#[proc_macro_attribute]
pub fn test(args: TokenStream, input: TokenStream) -> TokenStream {
    entry::test(args.into(), input.into()).into()
}

/// Starts a `#[mproc::task]` in a child process: `spawn!(task(args..))`, optionally followed by `;` and
/// options `name = ..`, `daemon = ..`, `start_method = ..` (in any order, each at most once).
///
/// ```ignore
/// let p = mproc::spawn!(square(7))?;
/// let p = mproc::spawn!(add(1, 2); name = "adder", daemon = true, start_method = mproc::StartMethod::Spawn)?;
/// ```
///
/// The second line expands to
///
/// ```ignore
/// {
///     let __mproc_pack = |__a0, __a1| {
///         if false {
///             let _ = add(__a0, __a1);
///             ::core::unreachable!()
///         }
///         (__a0, __a1,)
///     };
///     ::mproc::Process::builder()
///         .name("adder").daemon(true).start_method(mproc::StartMethod::Spawn)
///         .spawn(add, __mproc_pack(1, 2))
/// }
/// ```
///
/// which is `Result<Process<R>, mproc::Error>` for a task returning `R`. The arguments are evaluated
/// once, in order, in the parent. The branch that never runs gives the closure's parameters the task's
/// parameter types, so the arguments are checked as in a plain call `add(1, 2)`, and rustc's own errors
/// ("mismatched types", "this function takes 2 arguments but 1 argument was supplied") point at your
/// call and its arguments.
///
/// # Compile errors
///
/// On anything but a call, an unknown or repeated option, and an option without `= value`.
#[proc_macro]
pub fn spawn(input: TokenStream) -> TokenStream {
    spawn::expand(input.into()).into()
}

/// Applies a `#[mproc::task]` to every item in a pool of worker processes and collects the results:
/// `par_map!(f, items)` on the global pool, `par_map!(pool, f, items)` on a given one, optionally followed
/// by `;` and options `chunksize = ..`, `ordered = ..`, `progress = ..` (in any order, each at most once).
///
/// ```ignore
/// let squares: Vec<u64> = mproc::par_map!(square, 0..1000u64)?;
/// let sums = mproc::par_map!(pool, add, vec![(1, 2), (3, 4)]; chunksize = 64, progress = true)?;
/// ```
///
/// The value is `Result<Vec<R>, mproc::Error>` for a task returning `R`, in input order; the first
/// failing item in input order is the error.
///
/// - **`f`**: a `#[mproc::task]`. A one-argument task takes the items themselves; a task of several
///   arguments takes each item as its argument tuple.
/// - **`items`**: anything `IntoIterator`, evaluated once.
/// - **`pool`**: any expression that borrows as a `&Pool` (`pool`, `&pool`, an `Arc<Pool>`); it is
///   borrowed for the call, never moved. Without it, the process's global pool is used: made on first
///   use with `cpu_count()` workers, or configured beforehand with `PoolBuilder::build_global`.
/// - **`chunksize = n`** (`usize`): calls sent to a worker together. Default: CPython's rule,
///   `ceil(len / (4 × workers))`.
/// - **`ordered = false`** (`bool`): results in completion order instead of input order (the first
///   error to arrive is the error).
/// - **`progress = true`** (`bool`): draw a progress bar on stderr (items done of the total, rate,
///   time left; a spinner with the count when the total is unknown). Nothing is drawn when stderr is
///   not a terminal.
///
/// The second line above expands to
///
/// ```ignore
/// ::mproc::__private::par_map(
///     &(pool),
///     add,
///     vec![(1, 2), (3, 4)],
///     ::mproc::__private::ParMapOptions {
///         chunksize: ::core::option::Option::Some({ let __mproc_chunksize: usize = 64; __mproc_chunksize }),
///         ordered: true,
///         progress: true,
///     },
/// )
/// ```
///
/// and the first to `::mproc::__private::par_map_global(square, 0..1000u64, ParMapOptions { chunksize: None,
/// ordered: true, progress: false })`. The pool, the task and the items are evaluated once, in that order.
/// Without options the call is `Pool::map` (`Pool::map_chunked` with a chunksize); `ordered = false`
/// collects `Pool::imap_unordered`, and `progress = true` collects `imap` or `imap_unordered` so that the
/// bar moves as chunks arrive.
///
/// Both functions are generic over `I: IntoIterator<Item = T>, F: MapFn<T, M>`, so the items are
/// checked against the task as written: items of the wrong type (`&str` for a `u64` argument, a triple
/// for a two-argument task, `&u64` from `.iter()`) are reported at the items, "expected `u64`, found
/// `&str`"; a function that cannot be mapped at all (an argument that is not a task value) at the
/// function, with `MapFn`'s message. Option values are typed where written (`chunksize = "4"`: "expected
/// `usize`, found `&str`" at `"4"`), and a pool that is not one at the pool.
///
/// # Compile errors
///
/// With other than two or three expressions before the `;`, an option written before the `;` (the
/// `;` is missing), an unknown or repeated option, and an option without `= value`.
#[proc_macro]
pub fn par_map(input: TokenStream) -> TokenStream {
    par_map::expand(input.into()).into()
}

/// On a refused item, the item is still emitted unchanged beside the error: the code that uses it then
/// compiles, and the build shows only the error that matters.
fn error_beside(error: syn::Error, input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let error = error.to_compile_error();
    quote::quote!(#error #input)
}
