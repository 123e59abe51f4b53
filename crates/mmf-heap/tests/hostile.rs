//! What the fuzzer found (`scripts/fuzz-heap.sh`), one test per fix: values read from a
//! file are hostile until checked. The inputs themselves are replayed by
//! `fuzz_corpus.rs` from `fuzz/regressions/`.

use mmf_heap::zerocopy::{FromBytes, IntoBytes};
use mmf_heap::{Error, Heap, MemoryBackend, PBytes, PStr};

/// A byte string as a file may hold it: any offset, any length.
fn hostile(off: u64, len: u64) -> PBytes {
    PBytes::read_from_bytes([off, len].as_bytes()).unwrap()
}

/// Found by the `commit` target: `WriteTxn::read_bytes` made its buffer before checking
/// the length against the heap, so a length from the file asked for terabytes (an abort,
/// or a panic on capacity overflow).
#[test]
fn a_transaction_checks_a_byte_string_length_before_making_a_buffer() {
    let heap = Heap::create_with(MemoryBackend::new(), &Default::default()).unwrap();
    let mut tx = heap.write().unwrap();
    let real = tx.bytes(b"twelve bytes").unwrap();
    assert_eq!(tx.read_bytes(real).unwrap(), b"twelve bytes");
    for len in [1 << 40, u64::MAX >> 1, u64::MAX] {
        let bytes = hostile(4096, len);
        assert!(matches!(tx.read_bytes(bytes), Err(Error::Corrupted { .. })), "{len:#x}");
        let s = PStr::read_from_bytes(bytes.as_bytes()).unwrap();
        assert!(matches!(tx.read_str(s), Err(Error::Corrupted { .. })), "{len:#x}");
    }
    tx.commit().unwrap();
    let snap = heap.read().unwrap();
    for len in [1 << 40, u64::MAX >> 1, u64::MAX] {
        assert!(matches!(snap.bytes(hostile(4096, len)), Err(Error::Corrupted { .. })));
    }
}
