use mmf_heap::zerocopy::{FromBytes, Immutable, KnownLayout};
use mmf_heap::Persist;

#[derive(Clone, Copy, FromBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
union Either {
    a: u64,
    b: f64,
}

fn main() {}
