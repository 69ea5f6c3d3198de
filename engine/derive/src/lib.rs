//! `#[derive(SizeOf)]`: implements `ember_engine::blocks::SizeOf` for a struct or enum by summing
//! the heap and device bytes of its fields (the inline size comes from `size_of::<Self>()`).
//!
//! Fields of types without a `SizeOf` implementation can be skipped with `#[size_of(skip)]`
//! (they then count only their inline bytes).

#![forbid(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{parse_macro_input, parse_quote, Data, DeriveInput, Fields, GenericParam};

/// Derives `SizeOf`: heap bytes and device bytes are the sums over the fields (of the active
/// variant, for enums); the type is flat when every field is.
#[proc_macro_derive(SizeOf, attributes(size_of))]
pub fn derive_size_of(input: TokenStream) -> TokenStream {
    let mut input = parse_macro_input!(input as DeriveInput);
    let krate = crate_path(&input);
    for param in &mut input.generics.params {
        if let GenericParam::Type(t) = param {
            t.bounds.push(parse_quote!(#krate::blocks::SizeOf));
        }
    }
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let (heap, device, flat) = match &input.data {
        Data::Struct(s) => {
            let (bindings, pattern) = bind_fields(&s.fields);
            let (heap, device, flat) = sums(&s.fields, &bindings, &krate);
            (
                quote! { let #name #pattern = self; #heap },
                quote! { let #name #pattern = self; #device },
                flat,
            )
        }
        Data::Enum(e) => {
            let mut heap_arms = Vec::new();
            let mut device_arms = Vec::new();
            let mut flats = Vec::new();
            for v in &e.variants {
                let vname = &v.ident;
                let (bindings, pattern) = bind_fields(&v.fields);
                let (heap, device, flat) = sums(&v.fields, &bindings, &krate);
                heap_arms.push(quote! { #name::#vname #pattern => { #heap } });
                device_arms.push(quote! { #name::#vname #pattern => { #device } });
                flats.push(flat);
            }
            let empty = e.variants.is_empty();
            let (heap, device) = if empty {
                (quote! { 0 }, quote! { 0 })
            } else {
                (
                    quote! { #[allow(unused_variables)] match self { #(#heap_arms)* } },
                    quote! { #[allow(unused_variables)] match self { #(#device_arms)* } },
                )
            };
            (heap, device, quote! { true #(&& #flats)* })
        }
        Data::Union(_) => {
            return syn::Error::new_spanned(&input.ident, "SizeOf cannot be derived for unions")
                .to_compile_error()
                .into()
        }
    };
    quote! {
        impl #impl_generics #krate::blocks::SizeOf for #name #ty_generics #where_clause {
            const FLAT: bool = #flat;
            #[allow(unused_variables, clippy::let_and_return)]
            fn heap_bytes(&self) -> usize { #heap }
            #[allow(unused_variables, clippy::let_and_return)]
            fn device_bytes(&self) -> usize { #device }
        }
    }
    .into()
}

/// `#[size_of(crate = "path")]` on the type overrides the path of the engine crate.
fn crate_path(input: &DeriveInput) -> Tokens {
    for attr in &input.attrs {
        if attr.path().is_ident("size_of") {
            let mut path = None;
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("crate") {
                    let s: syn::LitStr = meta.value()?.parse()?;
                    path = Some(s.parse::<Tokens>()?);
                }
                Ok(())
            });
            if let Some(p) = path {
                return p;
            }
        }
    }
    quote! { ::ember_engine }
}

fn skipped(field: &syn::Field) -> bool {
    field.attrs.iter().any(|a| {
        a.path().is_ident("size_of") && {
            let mut skip = false;
            let _ = a.parse_nested_meta(|m| {
                skip |= m.path.is_ident("skip");
                Ok(())
            });
            skip
        }
    })
}

fn bind_fields(fields: &Fields) -> (Vec<syn::Ident>, Tokens) {
    let bindings: Vec<syn::Ident> = (0..fields.len()).map(|i| format_ident!("__f{i}")).collect();
    let pattern = match fields {
        Fields::Named(n) => {
            let names = n
                .named
                .iter()
                .map(|f| f.ident.as_ref().expect("named field"));
            quote! { { #(#names: #bindings),* } }
        }
        Fields::Unnamed(_) => quote! { ( #(#bindings),* ) },
        Fields::Unit => quote! {},
    };
    (bindings, pattern)
}

fn sums(fields: &Fields, bindings: &[syn::Ident], krate: &Tokens) -> (Tokens, Tokens, Tokens) {
    let mut heap = vec![quote! { 0usize }];
    let mut device = vec![quote! { 0usize }];
    let mut flat = vec![quote! { true }];
    for (field, b) in fields.iter().zip(bindings) {
        if skipped(field) {
            continue;
        }
        let ty = &field.ty;
        heap.push(quote! { #krate::blocks::SizeOf::heap_bytes(#b) });
        device.push(quote! { #krate::blocks::SizeOf::device_bytes(#b) });
        flat.push(quote! { <#ty as #krate::blocks::SizeOf>::FLAT });
    }
    (
        quote! { #(#heap)+* },
        quote! { #(#device)+* },
        quote! { #(#flat)&&* },
    )
}
