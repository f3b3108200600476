//! `#[mproc::task]`: the function as written, and beside it its registration with the runtime.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::{Type, parse_quote};

use crate::ast::Func;
use crate::valid;

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let func = match Func::parse(input.clone(), "mproc::task") {
        Ok(func) => func,
        Err(error) => return crate::error_beside(error, input),
    };
    if let Err(error) = valid::task(&args, &func) {
        return crate::error_beside(error, input);
    }
    let registration = registration(&func);
    // The original tokens rather than the parsed item: the function stays byte-for-byte what was written.
    quote! {
        #input
        #registration
    }
}

fn registration(func: &Func) -> TokenStream {
    let ident = &func.item.sig.ident;
    let name = func.name();
    let arg_types: Vec<_> = func.arg_types().collect();
    let binds: Vec<_> = (0..arg_types.len()).map(|i| format_ident!("__a{}", i)).collect();
    let unit: Type = parse_quote!(());
    let return_type = func.return_type().unwrap_or(&unit);
    let asserts = arg_types.iter().copied().chain([return_type]).map(assert_task_value);
    // Where the function is compiled out, its registration must be too.
    let cfgs = func.item.attrs.iter().filter(|attr| attr.path().is_ident("cfg"));

    quote! {
        #(#cfgs)*
        // Calling a `#[deprecated]` task from its own registration is not a use worth a warning.
        #[allow(deprecated)]
        const _: () = {
            const __MPROC_CHECKED: usize = {
                #(#asserts)*
                0
            };

            // `<[T; __MPROC_CHECKED] as __MprocChecked>::T` is `T` once every assertion above holds. When
            // one fails the constant is an error, so is this type, and rustc says nothing more about the
            // invoker: the user sees one error, at the type, not a second one at the attribute about the
            // whole argument tuple.
            trait __MprocChecked {
                type T;
            }
            impl<T, const N: usize> __MprocChecked for [T; N] {
                type T = T;
            }

            fn __mproc_call(
                (#(#binds,)*): <[(#(#arg_types,)*); __MPROC_CHECKED] as __MprocChecked>::T,
            ) -> <[#return_type; __MPROC_CHECKED] as __MprocChecked>::T {
                #ident(#(#binds),*)
            }

            // One call, for a process of its own.
            fn __mproc_invoke(input: &[u8]) -> ::mproc::__private::Invoked {
                ::mproc::__private::invoke(input, __mproc_call)
            }

            // A chunk of calls, for a pool worker: one frame in, one frame out.
            fn __mproc_invoke_chunk(input: &[u8]) -> ::mproc::__private::Invoked {
                ::mproc::__private::invoke_chunk(input, __mproc_call)
            }

            // `spawn(square, ..)` receives the function as a value; the type name of that value is how
            // the runtime finds this entry for it.
            fn __mproc_key() -> &'static str {
                ::core::any::type_name_of_val(&#ident)
            }

            ::mproc::__private::inventory::submit! {
                ::mproc::__private::TaskEntry::new(
                    ::core::concat!(::core::module_path!(), "::", #name),
                    __mproc_key,
                    __mproc_invoke,
                    __mproc_invoke_chunk,
                )
            }
        };
    }
}

/// `assert_task_value::<T>();` spanned so that rustc underlines exactly `T` as written: the tokens before
/// the type carry its first token's location and those after it its last token's, and rustc reports an
/// unmet bound over the path expression, from the first of those to the last.
fn assert_task_value(ty: &Type) -> TokenStream {
    let mut tokens = ty.to_token_stream().into_iter();
    let first = tokens.next().map_or_else(Span::call_site, |tt| tt.span());
    let last = tokens.last().map_or(first, |tt| tt.span());
    let head = quote_spanned!(first=> ::mproc::__private::assert_task_value::<);
    let tail = quote_spanned!(last=> >(););
    quote!(#head #ty #tail)
}
