//! `spawn!(task(args..); options..)`: the call, checked as written, turned into
//! `Process::builder()..spawn(task, args)`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;
use syn::spanned::Spanned;

use crate::ast::Spawn;
use crate::valid;

pub fn expand(input: TokenStream) -> TokenStream {
    let spawn = match syn::parse2::<Spawn>(input) {
        Ok(spawn) => spawn,
        Err(error) => return error.to_compile_error(),
    };
    if let Err(error) = valid::spawn_options(&spawn.options) {
        return error.to_compile_error();
    }

    let Spawn { func, paren, args, options } = &spawn;

    // The arguments go to `spawn` through a closure whose parameters get the task's own parameter
    // types, from a call to the task that never runs. So they are checked exactly as in a plain call,
    // and checked once: passing the arguments' own tuple to `spawn` would report a mismatch a second
    // time, as a tuple against the runtime's signature.
    //
    // Mixed-site names cannot collide with, or be captured by, the user's expressions. Each parameter
    // carries its argument's location and the parentheses carry the call's, so rustc's "mismatched
    // types" and "takes 1 argument but 2 arguments were supplied" underline the call as written.
    let pack = Ident::new("__mproc_pack", Span::mixed_site().located_at(func.span()));
    let params: Vec<_> = args
        .iter()
        .enumerate()
        .map(|(i, arg)| Ident::new(&format!("__a{i}"), Span::mixed_site().located_at(arg.span())))
        .collect();
    let mut call_params = TokenStream::new();
    paren.surround(&mut call_params, |tokens| tokens.extend(quote!(#(#params),*)));
    let mut call_args = TokenStream::new();
    let args = args.iter();
    paren.surround(&mut call_args, |tokens| tokens.extend(quote!(#(#args),*)));
    // With no arguments the closure returns `()` from its `if` alone: a written `()` would trip
    // clippy's `unused_unit` in the user's crate.
    let packed = (!params.is_empty()).then(|| quote!((#(#params,)*)));

    let options = options.iter().map(|option| {
        let method = &option.key;
        let value = &option.value;
        quote!(.#method(#value))
    });
    // An unmet `TaskFn` bound (a plain fn whose arguments are not task values) is reported at the
    // method name: place it on the function being spawned.
    let spawn_method = Ident::new("spawn", Span::call_site().located_at(func.span()));

    quote! {
        {
            let #pack = |#(#params),*| {
                if false {
                    let _ = #func #call_params;
                    ::core::unreachable!()
                }
                #packed
            };
            ::mproc::Process::builder() #(#options)* .#spawn_method(#func, #pack #call_args)
        }
    }
}
