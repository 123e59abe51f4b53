use mmf_heap::zerocopy::{Immutable, IntoBytes, KnownLayout};
use mmf_heap::Persist;

#[derive(Clone, Copy, Immutable, IntoBytes, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(u8)]
enum Color {
    Red,
    Green,
}

fn main() {}
