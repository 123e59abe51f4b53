use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::Persist;

/// Aligned to 32 by its repr; given a hash by hand, which checks nothing.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C, align(32))]
struct Wide {
    bytes: [u8; 32],
}
mmf_heap::persist!(Wide { bytes: [u8; 32] });

/// Its alignment comes from a field: refused where it is defined.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
struct Holder {
    wide: Wide,
}

fn main() {}
