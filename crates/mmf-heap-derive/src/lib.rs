//! `#[derive(Persist)]` for mmf-heap. Use it through `mmf_heap::Persist` (re-exported
//! there, next to the trait); this crate's documentation is the macro's.

use proc_macro::TokenStream;
use proc_macro2::{Delimiter, Span, TokenStream as TokenStream2, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Data, DeriveInput, Error, GenericParam, Generics, Ident, LitStr, Path, Result,
    parse_macro_input, parse_quote,
};

/// The largest alignment a heap block gives (`mmf_heap::format::ALIGN`).
const MAX_ALIGN: u64 = 16;

/// Implements `mmf_heap::Persist` for a `#[repr(C)]` (or `#[repr(transparent)]`) struct:
/// its `TYPE_HASH` covers the struct's name, its size and each field's name, spelling
/// and type hash; its `NAME_HASH` (what an `Off<Self>` in a field hashes by, so that
/// recursive types have a hash) leaves the field hashes out.
///
/// The layout proofs are zerocopy's: derive `FromBytes`, `IntoBytes`, `Immutable`,
/// `KnownLayout` (and `Clone`, `Copy`) next to it, with
/// `#[zerocopy(crate = "mmf_heap::zerocopy")]` so that no direct zerocopy dependency is
/// needed.
///
/// Refused at compile time, each with an error saying why: enums and unions, structs
/// without `#[repr(C)]` or `#[repr(transparent)]`, `align(N)` above 16 (a field whose
/// alignment is above 16 fails a compile-time assertion), lifetime parameters. Type
/// parameters get a `Persist` bound and are hashed by their `NAME_HASH`; const
/// parameters (integers, `bool`, `char`) by their value.
///
/// Its `SHAPE` lists the fields (name, offset, shape), as `persist!`'s does, so that
/// `mmf heap dump` shows them; generic structs keep the default opaque shape (their
/// instances would share one name, size and field list with different field types).
///
/// `#[persist(crate = "path")]` names the crate the trait lives in (default
/// `::mmf_heap`), for code that reaches mmf-heap through a re-export.
#[proc_macro_derive(Persist, attributes(persist))]
pub fn derive_persist(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input).unwrap_or_else(Error::into_compile_error).into()
}

fn expand(input: &DeriveInput) -> Result<TokenStream2> {
    let krate = crate_path(input)?;
    check_repr(input)?;
    let fields = match &input.data {
        Data::Struct(s) => &s.fields,
        Data::Enum(e) => {
            return Err(Error::new(
                e.enum_token.span,
                "Persist cannot be derived for an enum: a value read from a file may hold any \
                 bits, and an enum is valid only for its discriminants. Store the \
                 discriminant as an integer field (u8, u32) and convert it when you read it",
            ));
        }
        Data::Union(u) => {
            return Err(Error::new(
                u.union_token.span,
                "Persist cannot be derived for a union: which field it holds is known only \
                 to code outside it (and zerocopy's IntoBytes for unions is not stable). Use \
                 a struct with a tag field and bytes ([u8; N]) or separate fields",
            ));
        }
    };
    let name = &input.ident;
    let params = Params::of(&input.generics, &krate)?;
    let self_text = format!("{name}{}", params.text);

    let mut field_texts = Vec::new();
    let mut field_hashes = Vec::new();
    let mut field_shapes = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let field_name = field.ident.as_ref().map_or_else(|| i.to_string(), Ident::to_string);
        let ty = type_text(field.ty.to_token_stream(), &self_text);
        field_texts.push(format!("{field_name}:{ty},"));
        let ty = &field.ty;
        field_hashes.push(quote_spanned!(ty.span()=> <#ty as #krate::Persist>::TYPE_HASH));
        let member = match &field.ident {
            Some(id) => id.to_token_stream(),
            None => syn::Index::from(i).to_token_stream(),
        };
        let shown = LitStr::new(&field_name, Span::call_site());
        field_shapes.push(quote! {
            #krate::shape::Field {
                name: #shown,
                offset: ::core::mem::offset_of!(#name, #member),
                shape: #krate::shape::shape_of::<#ty>,
            }
        });
    }
    // `mmf heap dump` shows the fields of a struct with a shape. Generic structs keep the
    // default (opaque bytes): a shape is told apart by name, size and field names, which
    // the instances of one generic struct can share with different field types.
    let shape = input.generics.params.is_empty().then(|| {
        let shown = LitStr::new(&name.to_string(), Span::call_site());
        quote! {
            const SHAPE: &'static #krate::Shape = &#krate::Shape::Struct {
                name: #shown,
                size: ::core::mem::size_of::<#name>(),
                fields: &[#(#field_shapes,)*],
            };
        }
    });
    // The same text `persist!` builds for a struct without generics (type_hash ignores
    // whitespace, so the spelling of spaces does not matter).
    let text = format!("{self_text}{{{}}}", field_texts.concat());
    let text = LitStr::new(&text, Span::call_site());
    let param_hashes = &params.hashes;

    let mut generics = input.generics.clone();
    let where_clause = generics.make_where_clause();
    for bound in &params.bounds {
        where_clause.predicates.push(bound.clone());
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let align_error = format!(
        "a Persist type aligns to at most {MAX_ALIGN} bytes (heap blocks are {MAX_ALIGN}-byte \
         aligned): {name} or one of its fields asks for more"
    );
    // Without generics the check fires where the struct is defined; with them, when a
    // hash of an instance is used.
    let align_at_definition = input.generics.params.is_empty().then(|| {
        quote! {
            const _: () = ::core::assert!(
                ::core::mem::align_of::<#name>() <= #MAX_ALIGN as usize,
                #align_error
            );
        }
    });
    Ok(quote! {
        impl #impl_generics #krate::Persist for #name #ty_generics #where_clause {
            const TYPE_HASH: u64 = {
                ::core::assert!(
                    ::core::mem::align_of::<Self>() <= #MAX_ALIGN as usize,
                    #align_error
                );
                #krate::persist::type_hash(
                    #text,
                    ::core::mem::size_of::<Self>(),
                    &[#(#field_hashes,)* #(#param_hashes,)*],
                )
            };
            const NAME_HASH: u64 = #krate::persist::type_hash(
                #text,
                ::core::mem::size_of::<Self>(),
                &[#(#param_hashes,)*],
            );
            #shape
        }
        #align_at_definition
    })
}

/// `#[persist(crate = "...")]`, else `::mmf_heap`.
fn crate_path(input: &DeriveInput) -> Result<Path> {
    let mut path = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("persist")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                path = Some(meta.value()?.parse::<LitStr>()?.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error("unknown persist attribute: the only one is `crate = \"path\"`"))
            }
        })?;
    }
    Ok(path.unwrap_or_else(|| parse_quote!(::mmf_heap)))
}

/// The struct must have a defined layout: `#[repr(C)]` (optionally `packed`, `align(N)`
/// with N ≤ 16) or `#[repr(transparent)]`.
fn check_repr(input: &DeriveInput) -> Result<()> {
    let mut defined = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("C") || meta.path.is_ident("transparent") {
                defined = true;
            } else if meta.path.is_ident("align") {
                let content;
                syn::parenthesized!(content in meta.input);
                let n: syn::LitInt = content.parse()?;
                if n.base10_parse::<u64>()? > MAX_ALIGN {
                    return Err(Error::new(
                        n.span(),
                        format!(
                            "a Persist type aligns to at most {MAX_ALIGN} bytes (heap blocks \
                             are {MAX_ALIGN}-byte aligned)"
                        ),
                    ));
                }
            } else if meta.path.is_ident("packed") && meta.input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in meta.input);
                content.parse::<syn::LitInt>()?;
            }
            Ok(())
        })?;
    }
    if defined || !matches!(input.data, Data::Struct(_)) {
        return Ok(());
    }
    Err(Error::new(
        input.ident.span(),
        "a Persist struct needs #[repr(C)] (or #[repr(transparent)]): the default layout may \
         change between compiler versions, and the file's bytes must not",
    ))
}

/// What the generic parameters add: their text in the type's name, their hashes, the
/// `Persist` bounds of type parameters.
struct Params {
    text: String,
    hashes: Vec<TokenStream2>,
    bounds: Vec<syn::WherePredicate>,
}

impl Params {
    fn of(generics: &Generics, krate: &Path) -> Result<Self> {
        let mut names = Vec::new();
        let mut hashes = Vec::new();
        let mut bounds = Vec::new();
        for param in &generics.params {
            match param {
                GenericParam::Lifetime(l) => {
                    return Err(Error::new(
                        l.span(),
                        "a Persist type cannot borrow: it is read from a file, which outlives \
                         every reference. Use Off<T>, PBytes or PStr to point into the heap",
                    ));
                }
                GenericParam::Type(t) => {
                    let id = &t.ident;
                    names.push(id.to_string());
                    hashes.push(quote!(<#id as #krate::Persist>::NAME_HASH));
                    bounds.push(parse_quote!(#id: #krate::Persist));
                }
                GenericParam::Const(c) => {
                    let id = &c.ident;
                    names.push(id.to_string());
                    hashes.push(quote_spanned!(c.ty.span()=> #id as u64));
                }
            }
        }
        let text = if names.is_empty() { String::new() } else { format!("<{}>", names.join(",")) };
        Ok(Params { text, hashes, bounds })
    }
}

/// The type's text without whitespace, `Self` spelled as the type's name (so that
/// `Off<Self>` and `Off<Node>` hash alike).
fn type_text(tokens: TokenStream2, self_text: &str) -> String {
    let mut out = String::new();
    for tt in tokens {
        match tt {
            TokenTree::Ident(id) if id == "Self" => out.push_str(self_text),
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                out.push_str(&type_text(g.stream(), self_text));
                out.push_str(close);
            }
            other => out.push_str(&other.to_string()),
        }
    }
    out.retain(|c| !c.is_ascii_whitespace());
    out
}
