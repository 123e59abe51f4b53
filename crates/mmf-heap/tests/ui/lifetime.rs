use mmf_heap::zerocopy::{Immutable, KnownLayout};
use mmf_heap::Persist;

#[derive(Clone, Copy, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
struct Borrowed<'a> {
    name: &'a [u8; 4],
}

fn main() {}
