use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::Persist;

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C, align(64))]
struct CacheLine {
    bytes: [u8; 64],
}

fn main() {}
