//! A heap opened read-only from arbitrary bytes and walked: the superblock, both commit
//! slots, the manifest and every range it lists, the root directory, the free list,
//! every root's value tried as pointers and byte strings. See `mmf_heap::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mmf_heap::fuzzing::open_and_walk(data));
