use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::Persist;

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[persist(krate = "mmf_heap")]
#[repr(C)]
struct Point {
    x: u64,
}

fn main() {}
