//! `#[mproc::main]` and `#[mproc::test]`: the user's function with one statement put first.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, parse_quote};

use crate::ast::Func;
use crate::valid;

pub fn main(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut func = match Func::parse(input.clone(), "mproc::main") {
        Ok(func) => func,
        Err(error) => return crate::error_beside(error, input),
    };
    if let Err(error) = valid::main(&args, &func) {
        let sig = &func.item.sig;
        if sig.ident == "main" && (sig.asyncness.is_some() || !sig.inputs.is_empty()) {
            // rustc refuses such a `main` too, in words that do not name our fix; a bare stand-in keeps
            // the build to the one error that does.
            let error = error.to_compile_error();
            return quote!(#error fn main() {});
        }
        return crate::error_beside(error, input);
    }
    // First, before any user code: in a child process `init` runs the task and exits, and nothing
    // main does for the parent (parsing arguments, opening files) should happen there.
    func.item.block.stmts.insert(0, parse_quote!(::mproc::init();));
    let item = &func.item;
    quote!(#item)
}

pub fn test(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut func = match Func::parse(input.clone(), "mproc::test") {
        Ok(func) => func,
        Err(error) => return crate::error_beside(error, input),
    };
    if let Err(error) = valid::test(&args, &func) {
        return crate::error_beside(error, input);
    }
    let name = func.name();
    // Mixed-site: the guard is invisible to the test body, so it can neither clash with nor be moved by it.
    let guard = Ident::new("__mproc_test_guard", Span::mixed_site());
    func.item.block.stmts.insert(
        0,
        parse_quote! {
            let #guard = ::mproc::__private::test_entry(::core::module_path!(), #name);
        },
    );
    let item = &func.item;
    // `#[test]` through its absolute path, so a user's own `test` macro in scope cannot replace it.
    quote! {
        #[::core::prelude::v1::test]
        #item
    }
}
