//! A heap opened read-write from arbitrary bytes, walked, changed by two transactions
//! (allocations, frees, roots), each checked to read back. See `mmf_heap::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mmf_heap::fuzzing::open_and_commit(data));
