use mmf_heap::zerocopy::{FromBytes, Immutable, KnownLayout};
use mmf_heap::Persist;

#[derive(Clone, Copy, FromBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
struct Point {
    x: u64,
    y: u64,
}

fn main() {}
