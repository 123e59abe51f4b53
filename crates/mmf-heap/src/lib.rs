//! A persistent, crash-safe heap of typed data in a file, on [`mmf`].
//!
//! Keep your data structures in a file, change them in transactions, and find them after
//! a crash exactly as the last commit left them:
//!
//! ```
//! use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//! use mmf_heap::{Heap, HeapOptions, Off, PStr, Persist};
//!
//! // zerocopy proves the layout (no padding, any bytes valid); Persist adds a type hash
//! // that named roots check. No direct zerocopy dependency needed.
//! #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
//! #[zerocopy(crate = "mmf_heap::zerocopy")]
//! #[repr(C)]
//! struct Account {
//!     id: u64,
//!     balance: i64,
//!     name: PStr,
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = tempfile::tempdir()?;
//!     let path = dir.path().join("bank.heap");
//!     // SAFETY: only mmf-heap writes this file while it is open.
//!     let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true))? };
//!
//!     let mut tx = heap.write()?;
//!     let name = tx.str("ann")?;
//!     let ann = tx.alloc(&Account { id: 7, balance: 100, name })?;
//!     tx.set_root("ann", &ann)?;
//!     tx.commit()?; // durable when it returns: one fdatasync
//!
//!     let snap = heap.read()?; // sees that commit, whatever comes later
//!     let ann: Off<Account> = snap.root("ann")?.unwrap();
//!     let account = snap.get(ann)?;
//!     assert_eq!((account.balance, snap.str(account.name)?.as_str()), (100, "ann"));
//!     // The wrong type is an error, never a reinterpretation.
//!     assert!(snap.root::<Off<u64>>("ann").is_err());
//!     Ok(())
//! }
//! ```
//!
//! # How it works
//!
//! Copy-on-write with two commit slots (LMDB, redb): a transaction never changes a
//! committed byte; its new blocks, a manifest of their checksums and a commit slot are
//! written with the file's own writes (`pwrite` / `WriteFile`, never stores through the
//! mapping), then one `fdatasync` ([`Durability`]). Opening takes the newest slot whose
//! checksum, manifest and blocks check out, else the one before: a crash at any point
//! leaves the last acknowledged commit. A full disk is [`Error::StorageFull`], never a
//! `SIGBUS`. The format is in `docs/heap-format.md`.
//!
//! # Several processes
//!
//! Any number of processes (of one user, up to 128 at once) may open one heap file.
//! Writers take turns through a robust mutex in a small shared mapping named after the
//! file's identity (its lock area): a writer killed mid-transaction loses only that
//! transaction, and the next one is told and goes on from the last commit, with nothing
//! on disk to repair. Snapshots in any process see the newest commit of any process and
//! pin it in a reader table there, so that no writer reuses what they read; a reader
//! that dies holds nothing back. Details: `docs/heap-format.md`, "Lock area". A new heap
//! file gets `0o666` less the umask; `HeapOptions::mode` (Unix) sets other bits (`0o600`: one
//! user's heap, whose lock area no other user can name in advance).
//!
//! **`fork`** (Linux): a child may open heaps, its parent's among them, whatever other
//! threads of the parent were doing at the fork, and may use a `Heap` it inherited: it
//! takes part as a process of its own (its own reader row and writer turn). Snapshots and
//! transactions do not cross: a child's copies of its parent's snapshots are not
//! protected in it (drop them; take new ones), and a `Heap` in which another thread of the
//! parent was inside a call at the fork (a write transaction, say) may wait for ever in
//! the child, as any Rust `Mutex` would: open the heap again in the child instead. A heap
//! read without its lock area (another user's file, read-only) must be opened again in
//! the child.
//!
//! # Collections
//!
//! [`PVec`], [`PMap`] (ordered: a copy-on-write B+tree) and [`PHashMap`] (extendible
//! hashing) live in the file as they are, nest (a `PMap<PStr, PVec<Record>>` whose
//! records hold [`PStr`]s), and are read in place: `get`, `iter` and `range` through a
//! [`Snapshot`] return `&V`, `&str`, `&[u8]` borrowed from the mapped file for as long as
//! the snapshot lives. A change in a [`WriteTxn`] copies the path from the root to one
//! node the first time the transaction touches it and keeps the copies in memory until
//! the commit (one `fdatasync` for any number of changes); when it ends, that memory is
//! kept for the process's next transactions (up to [`SPARE_MAX`]; [`trim_memory`] gives it
//! back). Every node a read touches is
//! bounds-, alignment- and structure-checked; `verify` also checks every node's checksum.
//! `examples/inventory.rs` keeps a nested structure across runs and processes.
//!
//! Why a `&T` into the mapping is sound: the snapshot pins its commit, and no writer in
//! any process rewrites a block a pinned commit reaches (a freed block is reused only
//! once no snapshot can see it); the file is written only by `pwrite` / `WriteFile` to
//! unreferenced blocks, never through the mapping; and a growth maps the file anew while
//! the old view stays mapped for the snapshots that use it. What the heap cannot rule
//! out is [`Heap::open`]'s `# Safety` promise: no other program writes or truncates the
//! file while it is open (a truncated file makes a read through a reference fault:
//! `SIGBUS`, or an in-page error on Windows).
//!
//! # Status (issue #16, steps 1 to 3)
//!
//! Here: the format, the commit protocol, named roots with type checks, [`Off`],
//! [`PBytes`] / [`PStr`], the collections, reads in place, `#[derive(Persist)]`, snapshots,
//! growth, writers and readers in several processes; `mmf heap check`, `stat` and `dump`
//! in mmf-cli (dump walks a root by the [`Shape`] stored with it); fuzzed
//! (`scripts/fuzz-heap.sh`). A generic derived struct has no shape (it dumps as bytes).

/// The impls every collection handle shares (`PVec<T>`, `PMap<K, V>`, `PHashMap<K, V>`: a
/// 16-byte `Handle` and a `PhantomData`): `Copy`, `Default` (empty), equality of handles,
/// and a `Debug` that shows the root and the length, counted in `$what`. Hand-written
/// rather than derived, so that they ask nothing of the type parameters.
macro_rules! handle_impls {
    ($name:ident<$($t:ident),+>, $what:literal) => {
        impl<$($t),+> Clone for $name<$($t),+> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<$($t),+> Copy for $name<$($t),+> {}
        impl<$($t),+> Default for $name<$($t),+> {
            fn default() -> Self {
                $name { h: $crate::pmap::Handle::default(), _t: std::marker::PhantomData }
            }
        }
        impl<$($t),+> PartialEq for $name<$($t),+> {
            fn eq(&self, other: &Self) -> bool {
                self.h == other.h
            }
        }
        impl<$($t),+> Eq for $name<$($t),+> {}
        impl<$($t),+> std::fmt::Debug for $name<$($t),+> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    concat!(stringify!($name), "(root {:#x}, {} ", $what, ")"),
                    self.h.root,
                    self.h.len
                )
            }
        }
    };
}

mod alloc;
mod arena;
mod backend;
mod commit;
mod dirty;
pub mod dump;
mod entries;
mod error;
mod fast;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
mod handoff;
mod heap;
mod key;
mod lock;
mod mem;
mod node;
mod opened;
pub mod persist;
mod phash;
mod pmap;
mod presence;
mod pvec;
mod read;
mod recover;
mod roots;
mod search;
pub mod shape;
mod snapshot;
mod spare;
mod txn;

pub use backend::{Backend, FileBackend, MemoryBackend};
pub use error::{Error, Result};
pub use heap::{Durability, Heap, HeapOptions};
pub use key::{Key, MAX_KEY};
pub use mem::Mapped;
/// `#[derive(Persist)]`: see the [`Persist`](trait@Persist) trait.
pub use mmf_heap_derive::Persist;
pub use persist::{Off, PBytes, PStr, Persist};
pub use phash::{Iter as PHashMapIter, PHashMap};
pub use pmap::{Iter as PMapIter, PMap};
pub use pvec::{Iter as PVecIter, PVec};
pub use read::Reader;
pub use roots::{MAX_NAME, MAX_VALUE};
pub use shape::Shape;
pub use snapshot::{PassedOver, RootInfo, Snapshot, Stats};
pub use spare::{SPARE_MAX, trim_memory};
pub use txn::WriteTxn;
/// zerocopy, whose derives prove a [`Persist`] type's layout
/// (`#[zerocopy(crate = "mmf_heap::zerocopy")]`).
pub use zerocopy;
