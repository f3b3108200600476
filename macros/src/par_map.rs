//! `par_map!([pool,] f, items; options..)`: checked as written, turned into one call of the runtime's
//! typed `par_map` (or `par_map_global`) with the options as a struct.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Error, Expr, Ident};

use crate::ast::ParMap;
use crate::valid;

pub fn expand(input: TokenStream) -> TokenStream {
    let par_map = match syn::parse2::<ParMap>(input) {
        Ok(par_map) => par_map,
        Err(error) => return error.to_compile_error(),
    };
    if let Err(error) = valid::par_map(&par_map) {
        return error.to_compile_error();
    }

    let args: Vec<&Expr> = par_map.args.iter().collect();
    let (pool, func, items) = match args.as_slice() {
        [pool, func, items] => (Some(*pool), *func, *items),
        [func, items] => (None, *func, *items),
        // Refused by valid::par_map already.
        _ => return Error::new(Span::call_site(), valid::PAR_MAP_FORMS).to_compile_error(),
    };

    // Each option is written at its value's location, so a value of the wrong type ("expected
    // `usize`, found `&str`") is reported on the value as written.
    let mut chunksize = quote!(::core::option::Option::None);
    let mut ordered = quote!(true);
    let mut progress = quote!(false);
    for option in &par_map.options {
        let value = &option.value;
        let at = Span::call_site().located_at(value.span());
        match option.key.to_string().as_str() {
            // Through a typed `let`: a wrong type is then reported as plainly as for a `bool` field.
            "chunksize" => {
                let n = Ident::new("__mproc_chunksize", Span::mixed_site());
                chunksize = quote_spanned!(at=> ::core::option::Option::Some({ let #n: usize = #value; #n }))
            }
            "ordered" => ordered = quote!(#value),
            "progress" => progress = quote!(#value),
            // Refused by valid::par_map already.
            _ => {}
        }
    }
    let options = quote! {
        ::mproc::__private::ParMapOptions { chunksize: #chunksize, ordered: #ordered, progress: #progress }
    };

    // The runtime functions check the items against the task (see their bounds), so a mismatch is
    // reported at the user's items or task. The function's name carries the task's location so that
    // "required by a bound introduced by this call" points into the user's macro call too.
    match pool {
        // The pool is borrowed, never moved: `pool`, `&pool` and an `Arc<Pool>` all work (a reference
        // to a reference coerces to `&Pool`).
        Some(pool) => {
            let call = Ident::new("par_map", Span::call_site().located_at(func.span()));
            let pool = quote_spanned!(Span::call_site().located_at(pool.span())=> &(#pool));
            quote!(::mproc::__private::#call(#pool, #func, #items, #options))
        }
        None => {
            let call = Ident::new("par_map_global", Span::call_site().located_at(func.span()));
            quote!(::mproc::__private::#call(#func, #items, #options))
        }
    }
}
