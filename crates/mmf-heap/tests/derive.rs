//! `#[derive(Persist)]`: the same hash as `persist!`, hashes that tell types apart and
//! stay put (they are stored in files), recursive and generic types, roots typed by it.
//! What the derive refuses is in `derive_ui.rs`.

use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::{Error, Heap, MemoryBackend, Off, PBytes, PStr, Persist};

/// The same struct, named alike, once derived and once with `persist!` (spaced oddly:
/// whitespace does not count).
mod derived {
    use super::*;

    #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
    #[zerocopy(crate = "mmf_heap::zerocopy")]
    #[repr(C)]
    pub struct Account {
        pub id: u64,
        pub tag: [u8; 8],
        pub name: PStr,
        pub next: Off<Self>,
    }
}

mod declared {
    use super::*;

    #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
    #[zerocopy(crate = "mmf_heap::zerocopy")]
    #[repr(C)]
    pub struct Account {
        pub id: u64,
        pub tag: [u8; 8],
        pub name: PStr,
        pub next: Off<Account>,
    }
    mmf_heap::persist!(Account { id : u64, tag: [u8 ;8], name: PStr, next: Off < Account > });
}

/// The derived struct with one field's type changed (same size, same names).
mod retyped {
    use super::*;

    #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
    #[zerocopy(crate = "mmf_heap::zerocopy")]
    #[repr(C)]
    pub struct Account {
        pub id: i64,
        pub tag: [u8; 8],
        pub name: PStr,
        pub next: Off<Self>,
    }
}

/// ... and with a field renamed.
mod renamed {
    use super::*;

    #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
    #[zerocopy(crate = "mmf_heap::zerocopy")]
    #[repr(C)]
    pub struct Account {
        pub key: u64,
        pub tag: [u8; 8],
        pub name: PStr,
        pub next: Off<Self>,
    }
}

/// Generic types: zerocopy proves `IntoBytes` for a generic `#[repr(C)]` struct only when
/// its fields are unaligned (no padding whatever the parameter), for a transparent one
/// always.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
struct Pair<T: Persist + mmf_heap::zerocopy::Unaligned> {
    a: T,
    b: T,
}

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(transparent)]
struct Wrapper<T> {
    inner: T,
}

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(transparent)]
struct Buf<const N: usize> {
    bytes: [u8; N],
}

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
struct Tuple(u64, PBytes);

/// A tree through arrays of pointers to itself.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C, align(16))]
struct Tree {
    kids: [Off<Tree>; 4],
    value: u64,
    _pad: u64,
}

#[test]
fn the_derive_and_persist_give_the_same_hashes() {
    assert_eq!(derived::Account::TYPE_HASH, declared::Account::TYPE_HASH);
    assert_eq!(derived::Account::NAME_HASH, declared::Account::NAME_HASH);
    assert_ne!(derived::Account::TYPE_HASH, derived::Account::NAME_HASH);
}

#[test]
fn a_changed_field_type_or_name_changes_the_hash() {
    let hashes = [
        derived::Account::TYPE_HASH,
        retyped::Account::TYPE_HASH,
        renamed::Account::TYPE_HASH,
        retyped::Account::NAME_HASH,
        renamed::Account::NAME_HASH,
        derived::Account::NAME_HASH,
    ];
    for (i, a) in hashes.iter().enumerate() {
        for b in &hashes[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Pointers to the two types differ too (Off hashes its target by NAME_HASH).
    assert_ne!(Off::<derived::Account>::TYPE_HASH, Off::<retyped::Account>::TYPE_HASH);
}

#[test]
fn generic_types_hash_their_parameters() {
    assert_ne!(Pair::<u8>::TYPE_HASH, Pair::<i8>::TYPE_HASH);
    assert_ne!(Pair::<u8>::NAME_HASH, Pair::<i8>::NAME_HASH);
    assert_ne!(Wrapper::<u32>::TYPE_HASH, Wrapper::<i32>::TYPE_HASH);
    assert_ne!(Off::<Wrapper<u32>>::TYPE_HASH, Off::<Wrapper<i32>>::TYPE_HASH);
    assert_ne!(Off::<Wrapper<u32>>::TYPE_HASH, Off::<Wrapper<Wrapper<u32>>>::TYPE_HASH);
    assert_ne!(Buf::<8>::TYPE_HASH, Buf::<16>::TYPE_HASH);
    assert_ne!(Buf::<8>::NAME_HASH, Buf::<16>::NAME_HASH);
    assert_ne!(Buf::<8>::TYPE_HASH, u64::TYPE_HASH);
    assert_ne!(Tree::TYPE_HASH, Tuple::TYPE_HASH);
}

/// Type hashes are stored in heap files (with each named root): they are part of the
/// format (`docs/heap-format.md`, "Type hashes"), computed here from that definition with
/// xxh3 at run time, and pinned. A change here makes every existing heap's roots a
/// `TypeMismatch`.
#[test]
fn type_hashes_follow_the_format_and_stay_put() {
    use xxhash_rust::xxh3::xxh3_64_with_seed as xxh3;
    let chain = |text: &str, size: u64, fields: &[u64]| {
        fields.iter().fold(xxh3(text.as_bytes(), size), |h, f| xxh3(&f.to_le_bytes(), h))
    };
    assert_eq!(u64::TYPE_HASH, chain("u64", 8, &[]));
    assert_eq!(PStr::TYPE_HASH, chain("PStr", 16, &[]));
    let tag = chain("[T;N]", 8, &[u8::TYPE_HASH]);
    assert_eq!(<[u8; 8]>::TYPE_HASH, tag);
    let text = "Account{id:u64,tag:[u8;8],name:PStr,next:Off<Account>,}";
    let name_hash = chain(text, 40, &[]);
    let off = chain("Off<T>", 8, &[name_hash]);
    assert_eq!(derived::Account::NAME_HASH, name_hash);
    assert_eq!(Off::<derived::Account>::TYPE_HASH, off);
    let type_hash = chain(text, 40, &[u64::TYPE_HASH, tag, PStr::TYPE_HASH, off]);
    assert_eq!(derived::Account::TYPE_HASH, type_hash);

    let pinned = [u64::TYPE_HASH, derived::Account::TYPE_HASH, Off::<derived::Account>::TYPE_HASH];
    assert_eq!(pinned, [0x3458_035c_5579_be69, 0x62c4_2291_f9a3_5508, 0x5481_68a7_be86_bf3c]);
}

#[test]
fn whitespace_in_the_text_does_not_count() {
    use mmf_heap::persist::type_hash;
    assert_eq!(type_hash("A{x:[u8; 4],}", 4, &[1]), type_hash("A { x : [ u8 ;4 ] , }", 4, &[1]));
    assert_ne!(type_hash("A{x:[u8;4],}", 4, &[1]), type_hash("A{y:[u8;4],}", 4, &[1]));
    // Past one 1 KiB chunk of text: every byte still counts.
    let long = "f".repeat(3000);
    let longer = format!("{long}g");
    let spaced: String = long.chars().flat_map(|c| [c, ' ']).collect();
    assert_ne!(type_hash(&long, 8, &[]), type_hash(&longer, 8, &[]));
    assert_eq!(type_hash(&long, 8, &[]), type_hash(&spaced, 8, &[]));
}

#[test]
fn roots_check_derived_types() -> Result<(), Error> {
    let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
    let mut tx = heap.write()?;
    let name = tx.str("ann")?;
    let ann = tx.alloc(&derived::Account { id: 7, tag: *b"customer", name, next: Off::NULL })?;
    tx.set_root("ann", &ann)?;
    tx.set_root("pair", &Pair { a: 1u8, b: 2u8 })?;
    tx.commit()?;

    let snap = heap.read()?;
    let ann = snap.root::<Off<derived::Account>>("ann")?.unwrap();
    let account = snap.get(ann)?;
    assert_eq!(
        (account.id, &account.tag, snap.str(account.name)?.as_str()),
        (7, b"customer", "ann")
    );
    // persist!'s twin has the same hash: the same type as far as the file can tell.
    assert!(snap.root::<Off<declared::Account>>("ann")?.is_some());
    assert!(matches!(snap.root::<Off<retyped::Account>>("ann"), Err(Error::TypeMismatch { .. })));
    assert!(matches!(snap.root::<Pair<i8>>("pair"), Err(Error::TypeMismatch { .. })));
    assert_eq!(snap.root::<Pair<u8>>("pair")?.map(|p| (p.a, p.b)), Some((1, 2)));
    Ok(())
}

/// A shape as plain data: name, size, and each field's name, offset and shape (printed).
fn fields_of(shape: &mmf_heap::Shape) -> (String, usize, Vec<(String, usize, String)>) {
    let mmf_heap::Shape::Struct { name, size, fields } = shape else {
        panic!("not a struct's shape: {shape:?}");
    };
    let fields = fields.iter().map(|f| (f.name.to_owned(), f.offset, describe((f.shape)())));
    (name.to_string(), *size, fields.collect())
}

/// A field's shape, one level of pointers and arrays followed (their shapes are function
/// pointers, different for each type).
fn describe(shape: &mmf_heap::Shape) -> String {
    match shape {
        mmf_heap::Shape::Off(to) => format!("Off<{}>", name_or_debug(to())),
        mmf_heap::Shape::Array(of, n) => format!("[{}; {n}]", name_or_debug(of())),
        other => format!("{other:?}"),
    }
}

fn name_or_debug(shape: &mmf_heap::Shape) -> String {
    match shape {
        mmf_heap::Shape::Struct { name, .. } => name.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn the_derive_gives_the_same_field_shape_as_persist() {
    let derived = fields_of(<derived::Account as Persist>::SHAPE);
    assert_eq!(derived, fields_of(<declared::Account as Persist>::SHAPE));
    let names: Vec<_> = derived.2.iter().map(|(n, o, s)| (n.as_str(), *o, s.as_str())).collect();
    assert_eq!(
        names,
        [
            ("id", 0, "Unsigned(8)"),
            ("tag", 8, "[Unsigned(1); 8]"),
            ("name", 16, "Str"),
            ("next", 32, "Off<Account>")
        ]
    );
    // Tuple structs name their fields by position.
    let tuple = fields_of(<Meters as Persist>::SHAPE);
    assert_eq!((tuple.0.as_str(), tuple.2[0].0.as_str(), tuple.2[0].1), ("Meters", "0", 0));
}

/// A tuple struct.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(transparent)]
struct Meters(u64);

#[test]
fn a_derived_struct_dumps_by_field() -> Result<(), Error> {
    use mmf_heap::dump::{Limits, Value};
    let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
    let mut tx = heap.write()?;
    let name = tx.str("ann")?;
    tx.set_root("ann", &derived::Account { id: 7, tag: *b"customer", name, next: Off::NULL })?;
    tx.commit()?;
    let dump = heap.read()?.dump("ann", Limits::default())?.unwrap();
    let Value::Struct { name, fields } = dump.value else {
        panic!("shown as {:?}, not by field", dump.value);
    };
    assert_eq!(name, "Account");
    let shown: Vec<_> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(shown, ["id", "tag", "name", "next"]);
    assert_eq!(fields[0].1, Value::Unsigned(7));
    assert!(matches!(&fields[2].1, Value::Str { text, .. } if text == "ann"), "{:?}", fields[2]);
    Ok(())
}
