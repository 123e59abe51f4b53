use super::*;

#[test]
fn structures_have_the_documented_sizes() {
    assert_eq!(size_of::<Superblock>(), 72);
    assert_eq!(size_of::<Slot>(), 128);
    assert_eq!(size_of::<BlockHeader>(), 32);
    assert_eq!(size_of::<ManifestEntry>(), 24);
    assert_eq!(size_of::<FreeEntry>(), 24);
    assert_eq!(size_of::<RootHeader>(), 16);
    // The slots lie in sectors of their own, past the superblock.
    assert!(SLOT_OFFSETS[0] >= 512 && SLOT_OFFSETS[1] - SLOT_OFFSETS[0] >= 512);
}

#[test]
fn the_superblock_round_trips_and_every_flipped_bit_is_caught() {
    let sb = Superblock::new([7; 16], 42, 1_000);
    let bytes = sb.as_bytes().to_vec();
    let parsed = Superblock::parse(&bytes).unwrap();
    assert_eq!((parsed.hash_seed, parsed.file_id), (42, [7; 16]));
    for bit in 0..bytes.len() * 8 {
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = Superblock::parse(&bad).unwrap_err();
        let in_magic = bit / 8 < 16;
        assert!(
            matches!(
                (in_magic, &err),
                (true, Error::NotAHeap)
                    | (false, Error::Corrupted { what: "superblock", offset: 0 })
            ),
            "bit {bit}: {err:?}"
        );
    }
    assert!(matches!(Superblock::parse(&bytes[..40]), Err(Error::NotAHeap)));
}

/// A newer format, and formats 1 and 2 (whose hash buckets interleaved or packed their
/// entries: read as format 3 they would give wrong answers), are refused with what the
/// file has.
#[test]
fn another_format_is_unsupported_not_corrupted() {
    for found in [1, 2, 4] {
        let mut sb = Superblock::new([0; 16], 0, 0);
        sb.format = found;
        sb.hash = xxh3_64(&sb.as_bytes()[..size_of::<Superblock>() - 8]);
        let err = Superblock::parse(sb.as_bytes()).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedFormat { found: f, supported: 3 } if f == found),
            "{err:?}"
        );
        if found < 3 {
            assert!(err.to_string().contains("older mmf-heap"), "{err}");
        }
    }
}

fn slot() -> Slot {
    Slot {
        txn_id: 5,
        file_len: 1 << 20,
        alloc_end: 8192,
        roots: Extent { off: 4096, len: 100 },
        free: Extent { off: 4208, len: 56 },
        manifest: Extent { off: 4272, len: 80 },
        ..Slot::default()
    }
    .seal()
}

#[test]
fn a_slot_round_trips_and_every_flipped_bit_is_caught() {
    let bytes = slot().as_bytes().to_vec();
    assert_eq!(Slot::parse(&bytes, 512).unwrap(), slot());
    for bit in 0..bytes.len() * 8 {
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(
            matches!(
                Slot::parse(&bad, 512),
                Err(Error::Corrupted { what: "commit slot", offset: 512 })
            ),
            "bit {bit}"
        );
    }
}

#[test]
fn a_slot_whose_blocks_leave_its_area_is_corrupted_even_with_a_good_hash() {
    let cases = [
        Slot { alloc_end: 100, ..slot() }, // below the data area
        Slot { file_len: 4096, ..slot() }, // area past the file
        Slot { roots: Extent { off: 8000, len: 500 }, ..slot() }, // block past the area
        Slot { free: Extent { off: 4100, len: 16 }, ..slot() }, // misaligned
        Slot { manifest: Extent { off: u64::MAX - 8, len: 32 }, ..slot() }, // overflow
        Slot { manifest: Extent { off: 16, len: 32 }, ..slot() }, // inside the header page
        Slot { txn_id: 0, ..slot() },
    ];
    for (i, case) in cases.into_iter().enumerate() {
        assert!(Slot::parse(case.seal().as_bytes(), 1024).is_err(), "case {i}");
    }
}

#[test]
fn system_blocks_check_magic_length_and_hash() {
    let block = seal_block(FREE_MAGIC, 3, b"payload!");
    assert_eq!(open_block(&block, FREE_MAGIC, "free list", 0).unwrap(), b"payload!");
    assert!(open_block(&block, ROOTS_MAGIC, "root directory", 0).is_err());
    assert!(open_block(&block[..block.len() - 1], FREE_MAGIC, "free list", 0).is_err());
    let mut bad = block.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(matches!(
        open_block(&bad, FREE_MAGIC, "free list", 99),
        Err(Error::Corrupted { what: "free list", offset: 99 })
    ));
}
