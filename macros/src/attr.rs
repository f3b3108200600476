//! Attribute arguments and `spawn!` options: their syntax only; `valid.rs` decides what is allowed.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Error, Expr, Ident, Result, Token};

/// Our attributes take no arguments; `#[mproc::task(..)]` is an error at the arguments.
pub fn no_args(args: &TokenStream, macro_name: &str) -> Result<()> {
    if args.is_empty() {
        return Ok(());
    }
    Err(Error::new_spanned(args, format!("#[{macro_name}] takes no arguments: write #[{macro_name}]")))
}

/// `#[test]`, also spelled through the prelude (`#[core::prelude::v1::test]`). Other attributes named
/// `test` (`#[tokio::test]`) are someone else's and left alone.
pub fn is_test_attr(attr: &Attribute) -> bool {
    let path = attr.path();
    let segments: Vec<_> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match segments.as_slice() {
        [only] => only == "test",
        [root, .., last] => (root == "core" || root == "std") && last == "test",
        [] => false,
    }
}

/// One `key = value` option of `spawn!`.
pub struct SpawnOption {
    pub key: Ident,
    pub value: Expr,
}

impl Parse for SpawnOption {
    fn parse(input: ParseStream) -> Result<Self> {
        // Any word, keywords included, so a misspelt option is answered with the list of valid ones
        // rather than "expected identifier".
        let key = Ident::parse_any(input)?;
        if !input.peek(Token![=]) {
            return Err(Error::new(key.span(), format!("expected `=` after `{key}`: write `{key} = value`")));
        }
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(SpawnOption { key, value })
    }
}

/// One `key = value` option of `par_map!`: the same syntax as `spawn!`'s.
pub type ParMapOption = SpawnOption;
