//! What the macros refuse, each refusal a `syn::Error` at the offending token whose message names the fix.
//!
//! Everything is checked and every problem reported together, so one build shows them all.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::visit::{self, Visit};
use syn::{Error, FnArg, GenericParam, Result, Type, TypeImplTrait, TypeReference};

use crate::ast::{Func, ParMap};
use crate::attr::{self, SpawnOption};

pub const SPAWN_NOT_A_CALL: &str = "spawn! takes a call: spawn!(task(args))";

const TASK_GENERIC: &str = "a #[mproc::task] cannot be generic: a child process finds the task by name, \
     and a generic fn has no single instance; write a non-generic wrapper per type";
const TASK_LIFETIME: &str = "a #[mproc::task] cannot have lifetime parameters: arguments are copied into \
     the child process, so take owned types";
const TASK_ASYNC: &str = "a #[mproc::task] cannot be async: make it a plain fn (it runs in its own \
     process; use a runtime inside it if you need one)";
const TASK_UNSAFE: &str = "a #[mproc::task] cannot be unsafe: a child process has no caller to uphold its \
     safety contract; write a safe wrapper";
const TASK_VARIADIC: &str = "a #[mproc::task] cannot be variadic: take a `Vec` instead";
const TASK_IMPL_RETURN: &str = "a #[mproc::task] must return a concrete type, not `impl Trait`: the result \
     is sent back to the parent process";

/// The message for a `self` receiver; `owner` is what to move the function out of.
pub fn method(owner: &str) -> String {
    format!("a #[mproc::task] must be a free function, not a method: move it out of the {owner}")
}

pub fn task(args: &TokenStream, func: &Func) -> Result<()> {
    let mut errors = Errors::default();
    errors.check(attr::no_args(args, "mproc::task"));
    let sig = &func.item.sig;
    if let Some(token) = &sig.asyncness {
        errors.spanned(token, TASK_ASYNC);
    }
    if let Some(token) = &sig.unsafety {
        errors.spanned(token, TASK_UNSAFE);
    }
    if let Some(abi) = &sig.abi {
        let written = render(abi);
        errors.spanned(
            abi,
            format!(
                "a #[mproc::task] cannot be `{written}`: remove `{written}`, or write a plain Rust fn that calls it"
            ),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, TASK_VARIADIC);
    }
    for param in &sig.generics.params {
        let message = match param {
            GenericParam::Lifetime(_) => TASK_LIFETIME,
            GenericParam::Type(_) | GenericParam::Const(_) => TASK_GENERIC,
        };
        errors.spanned(param, message);
    }
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(receiver) => errors.spanned(receiver, method("impl block")),
            FnArg::Typed(arg) => errors.check(task_arg(&arg.ty)),
        }
    }
    if let Some(ty) = func.return_type() {
        errors.check(task_return(ty));
    }
    errors.finish()
}

/// `impl Trait` in argument position makes the function generic; a reference cannot be copied into
/// another process. Only the first problem in one type is reported: they are usually one mistake.
fn task_arg(ty: &Type) -> Result<()> {
    if let Some(impl_trait) = Find::first(ty).impl_trait {
        return Err(Error::new_spanned(impl_trait, TASK_GENERIC));
    }
    if let Some(reference) = Find::first(ty).reference {
        let written = render(reference);
        let message = match owned(reference) {
            None => format!("take an owned type instead of `{written}`: arguments are copied into the child process"),
            Some(owned) if reference.mutability.is_some() => format!(
                "take `{owned}` instead of `{written}` and return the new value: arguments are copied into the child process"
            ),
            Some(owned) => {
                format!("take `{owned}` instead of `{written}`: arguments are copied into the child process")
            }
        };
        return Err(Error::new_spanned(reference, message));
    }
    Ok(())
}

fn task_return(ty: &Type) -> Result<()> {
    if let Some(impl_trait) = Find::first(ty).impl_trait {
        return Err(Error::new_spanned(impl_trait, TASK_IMPL_RETURN));
    }
    if let Some(reference) = Find::first(ty).reference {
        let written = render(reference);
        let message = match owned(reference) {
            None => {
                format!("return an owned type instead of `{written}`: the result is copied back to the parent process")
            }
            Some(owned) => {
                format!("return `{owned}` instead of `{written}`: the result is copied back to the parent process")
            }
        };
        return Err(Error::new_spanned(reference, message));
    }
    Ok(())
}

/// The owned type to suggest instead of a reference; `None` for `&dyn Trait`, which has no single one.
fn owned(reference: &TypeReference) -> Option<String> {
    let elem = &*reference.elem;
    match elem {
        Type::Slice(slice) => Some(format!("Vec<{}>", render(&slice.elem))),
        Type::TraitObject(_) => None,
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last().map(|s| s.ident.to_string());
            Some(match last.as_deref() {
                Some("str") => "String".to_owned(),
                Some("Path") => "PathBuf".to_owned(),
                Some("OsStr") => "OsString".to_owned(),
                Some("CStr") => "CString".to_owned(),
                _ => render(elem),
            })
        }
        _ => Some(render(elem)),
    }
}

const MAIN_ASYNC: &str = "#[mproc::main] cannot go on an async fn: put #[mproc::main] below #[tokio::main], \
     or call mproc::init() first in main";
const MAIN_NAME: &str = "#[mproc::main] goes on `fn main`: in another entry point, call mproc::init() first";
const MAIN_PARAMS: &str = "`fn main` takes no parameters: read the command line with std::env::args()";

pub fn main(args: &TokenStream, func: &Func) -> Result<()> {
    let mut errors = Errors::default();
    errors.check(attr::no_args(args, "mproc::main"));
    let sig = &func.item.sig;
    if sig.ident != "main" {
        errors.spanned(&sig.ident, MAIN_NAME);
    }
    if let Some(token) = &sig.asyncness {
        errors.spanned(token, MAIN_ASYNC);
    }
    if !sig.inputs.is_empty() {
        errors.spanned(&sig.inputs, MAIN_PARAMS);
    }
    errors.finish()
}

const TEST_HAS_TEST: &str = "remove #[test]: #[mproc::test] adds it";
const TEST_PARAMS: &str = "a #[mproc::test] takes no parameters: the test harness calls it with none";
const TEST_ASYNC: &str =
    "a #[mproc::test] cannot be async: make it a plain fn (use a runtime inside it if you need one)";
const TEST_GENERIC: &str = "a #[mproc::test] cannot be generic: write one test per type";

pub fn test(args: &TokenStream, func: &Func) -> Result<()> {
    let mut errors = Errors::default();
    errors.check(attr::no_args(args, "mproc::test"));
    for attr in func.item.attrs.iter().filter(|a| attr::is_test_attr(a)) {
        errors.spanned(attr, TEST_HAS_TEST);
    }
    let sig = &func.item.sig;
    if let Some(token) = &sig.asyncness {
        errors.spanned(token, TEST_ASYNC);
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(&sig.generics.params, TEST_GENERIC);
    }
    if !sig.inputs.is_empty() {
        errors.spanned(&sig.inputs, TEST_PARAMS);
    }
    errors.finish()
}

/// The `ProcessBuilder` methods `spawn!` forwards its options to, under the same names.
const SPAWN_OPTIONS: [&str; 3] = ["name", "daemon", "start_method"];

pub fn spawn_options(options: &[SpawnOption]) -> Result<()> {
    let mut errors = Errors::default();
    for (i, option) in options.iter().enumerate() {
        let key = option.key.to_string();
        if !SPAWN_OPTIONS.contains(&key.as_str()) {
            errors.spanned(&option.key, format!("unknown option `{key}`: expected `name`, `daemon` or `start_method`"));
        } else if options[..i].iter().any(|earlier| earlier.key == option.key) {
            errors.spanned(&option.key, format!("duplicate option `{key}`: give each option once"));
        }
    }
    errors.finish()
}

/// `par_map!`'s options; each becomes a field of the runtime's `ParMapOptions` of the same name.
const PAR_MAP_OPTIONS: [&str; 3] = ["chunksize", "ordered", "progress"];

pub const PAR_MAP_FORMS: &str = "par_map! takes a task and its items: par_map!(f, items) or par_map!(pool, f, items)";

/// Two or three expressions before the `;` (an option written among them is reported as such: the
/// `;` is what is missing), and known options, each once.
pub fn par_map(par_map: &ParMap) -> Result<()> {
    let mut errors = Errors::default();
    let mut misplaced = false;
    for arg in &par_map.args {
        if let syn::Expr::Assign(assign) = arg
            && let syn::Expr::Path(key) = &*assign.left
            && let Some(key) = key.path.get_ident()
            && PAR_MAP_OPTIONS.iter().any(|option| key == option)
        {
            misplaced = true;
            let written = render(assign);
            errors.spanned(assign, format!("options go after a `;`: par_map!(f, items; {written})"));
        }
    }
    let count = par_map.args.len();
    if !misplaced && count > 3 {
        // Underline what is too much: from the fourth expression on.
        let extra = par_map.args.iter().skip(3);
        errors.spanned(quote::quote!(#(#extra),*), PAR_MAP_FORMS);
    } else if !misplaced && count < 2 {
        errors.add(Error::new(proc_macro2::Span::call_site(), PAR_MAP_FORMS));
    }
    for (i, option) in par_map.options.iter().enumerate() {
        let key = option.key.to_string();
        if !PAR_MAP_OPTIONS.contains(&key.as_str()) {
            errors
                .spanned(&option.key, format!("unknown option `{key}`: expected `chunksize`, `ordered` or `progress`"));
        } else if par_map.options[..i].iter().any(|earlier| earlier.key == option.key) {
            errors.spanned(&option.key, format!("duplicate option `{key}`: give each option once"));
        }
    }
    errors.finish()
}

/// The first `impl Trait` and the first reference written in a type. Function pointer and trait object
/// types are not entered: a reference there is part of a signature, not data to copy, and such types are
/// refused anyway by the `TaskValue` assertion with its own message.
#[derive(Default)]
struct Find<'a> {
    impl_trait: Option<&'a TypeImplTrait>,
    reference: Option<&'a TypeReference>,
}

impl<'a> Find<'a> {
    fn first(ty: &'a Type) -> Self {
        let mut find = Find::default();
        find.visit_type(ty);
        find
    }
}

impl<'a> Visit<'a> for Find<'a> {
    fn visit_type_impl_trait(&mut self, node: &'a TypeImplTrait) {
        self.impl_trait.get_or_insert(node);
    }

    fn visit_type_reference(&mut self, node: &'a TypeReference) {
        self.reference.get_or_insert(node);
        visit::visit_type_reference(self, node);
    }

    fn visit_type_bare_fn(&mut self, _: &'a syn::TypeBareFn) {}

    fn visit_type_trait_object(&mut self, _: &'a syn::TypeTraitObject) {}

    // An array length is an expression, whose own types are not the argument's.
    fn visit_expr(&mut self, _: &'a syn::Expr) {}
}

/// Tokens as a person would write them, for messages: `Vec<u8>` rather than `Vec < u8 >`.
fn render(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (spaced, tight) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
        ("[ ", "["),
        (" ]", "]"),
        ("( ", "("),
        (" )", ")"),
        (" ;", ";"),
    ] {
        text = text.replace(spaced, tight);
    }
    text
}

/// Collects every problem so they are reported together.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    /// An error over all of `tokens`, so rustc underlines the whole of what is wrong.
    fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.add(Error::new_spanned(tokens, message));
    }

    fn check(&mut self, result: Result<()>) {
        if let Err(error) = result {
            self.add(error);
        }
    }

    fn add(&mut self, error: Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
