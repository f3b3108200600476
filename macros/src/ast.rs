//! The inputs of the macros, parsed into small models; nothing here judges whether they are allowed.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::token::{Comma, Paren};
use syn::{Error, Expr, FnArg, ItemFn, Result, ReturnType, Token, TraitItemFn, Type};

use crate::attr::{ParMapOption, SpawnOption};

/// A function under `#[mproc::task]`, `#[mproc::main]` or `#[mproc::test]`.
pub struct Func {
    pub item: ItemFn,
}

impl Func {
    /// `macro_name` is the attribute as users write it, for the message when it is not on a function.
    pub fn parse(input: TokenStream, macro_name: &str) -> Result<Self> {
        if let Ok(item) = syn::parse2::<ItemFn>(input.clone()) {
            return Ok(Func { item });
        }
        // A method declared in a trait has no body and so is not an `ItemFn`; say that it is a method,
        // which is the real problem, rather than that a body is missing.
        if let Ok(method) = syn::parse2::<TraitItemFn>(input.clone())
            && let Some(receiver) = method.sig.receiver()
        {
            return Err(Error::new_spanned(receiver, crate::valid::method("trait")));
        }
        Err(Error::new_spanned(input, format!("#[{macro_name}] goes on a function: `fn name(..) {{ .. }}`")))
    }

    /// The name as written, without `r#`: what `module_path!()`-style names use.
    pub fn name(&self) -> String {
        self.item.sig.ident.unraw().to_string()
    }

    /// The declared argument types, in order; a `self` receiver has none.
    pub fn arg_types(&self) -> impl Iterator<Item = &Type> {
        self.item.sig.inputs.iter().filter_map(|arg| match arg {
            FnArg::Typed(pat) => Some(&*pat.ty),
            FnArg::Receiver(_) => None,
        })
    }

    /// The declared return type, `None` for the implicit `()`.
    pub fn return_type(&self) -> Option<&Type> {
        match &self.item.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some(ty),
        }
    }
}

/// `spawn!(func(args..); options..)`.
pub struct Spawn {
    pub func: Expr,
    pub paren: Paren,
    pub args: Punctuated<Expr, Comma>,
    pub options: Vec<SpawnOption>,
}

impl Parse for Spawn {
    fn parse(input: ParseStream) -> Result<Self> {
        if input.is_empty() {
            return Err(Error::new(Span::call_site(), crate::valid::SPAWN_NOT_A_CALL));
        }
        let call = match input.parse::<Expr>()? {
            Expr::Call(call) => call,
            other => return Err(Error::new(other.span(), crate::valid::SPAWN_NOT_A_CALL)),
        };
        let mut options = Vec::new();
        if input.parse::<Option<Token![;]>>()?.is_some() {
            while !input.is_empty() {
                options.push(input.parse()?);
                if input.is_empty() {
                    break;
                }
                input.parse::<Token![,]>()?;
            }
        } else if !input.is_empty() {
            return Err(input.error("expected `;` between the call and its options: spawn!(task(args); name = ..)"));
        }
        Ok(Spawn { func: *call.func, paren: call.paren_token, args: call.args, options })
    }
}

/// `par_map!(f, items; options..)` or `par_map!(pool, f, items; options..)`: the comma-separated
/// expressions before the `;` as written, and the options after it.
pub struct ParMap {
    pub args: Punctuated<Expr, Comma>,
    pub options: Vec<ParMapOption>,
}

impl Parse for ParMap {
    fn parse(input: ParseStream) -> Result<Self> {
        let mut args = Punctuated::new();
        while !input.is_empty() && !input.peek(Token![;]) {
            args.push_value(input.parse()?);
            if input.is_empty() || input.peek(Token![;]) {
                break;
            }
            args.push_punct(input.parse::<Token![,]>()?);
        }
        let mut options = Vec::new();
        if input.parse::<Option<Token![;]>>()?.is_some() {
            while !input.is_empty() {
                options.push(input.parse()?);
                if input.is_empty() {
                    break;
                }
                input.parse::<Token![,]>()?;
            }
        }
        Ok(ParMap { args, options })
    }
}
