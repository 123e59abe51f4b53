//! Typed accessors: every primitive in both byte orders, structs and slices through
//! zerocopy's layout proofs, and bad offsets (misaligned, past the end, overflowing) that
//! are errors and write nothing. Runs on both legs.

use mmf::zerocopy::byteorder::{BigEndian, LittleEndian, U32, U64};
use mmf::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf::{Error, Mapping, MappingOptions, Number, ViewMut};

fn view(len: u64) -> (Mapping, ViewMut) {
    let mapping = Mapping::anonymous(len).unwrap();
    let view = mapping.view_mut(..).unwrap();
    (mapping, view)
}

/// Writes `value` in both byte orders at an odd offset, checks the bytes against std's
/// `to_le_bytes`/`to_be_bytes`, and reads it back.
fn both_orders<T: Number + PartialEq + std::fmt::Debug>(value: T, le: &[u8], be: &[u8]) {
    let (_m, view) = view(4096);
    let size = le.len();
    view.write_le(3, value).unwrap();
    let mut got = vec![0; size];
    view.read_at(3, &mut got).unwrap();
    assert_eq!(got, le, "little-endian bytes of {value:?}");
    assert_eq!(view.read_le::<T>(3).unwrap(), value);
    view.write_be(101, value).unwrap();
    view.read_at(101, &mut got).unwrap();
    assert_eq!(got, be, "big-endian bytes of {value:?}");
    assert_eq!(view.read_be::<T>(101).unwrap(), value);
    // Past the end, by one byte: an error, nothing written.
    let at = 4096 - size + 1;
    assert!(matches!(view.write_le(at, value), Err(Error::OutOfRange { .. })));
    assert!(matches!(view.read_be::<T>(at), Err(Error::OutOfRange { .. })));
    assert!(matches!(view.read_le::<T>(usize::MAX), Err(Error::Overflow { .. })));
}

#[test]
fn every_primitive_in_both_byte_orders() {
    macro_rules! check {
        ($($t:ty = $v:expr),*) => {$(
            let v: $t = $v;
            both_orders(v, &v.to_le_bytes(), &v.to_be_bytes());
        )*};
    }
    check!(
        u8 = 0xa5,
        u16 = 0x1234,
        u32 = 0x1234_5678,
        u64 = 0x0102_0304_0506_0708,
        u128 = 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
        i8 = -2,
        i16 = -12_345,
        i32 = -123_456_789,
        i64 = i64::MIN + 7,
        i128 = -(1 << 100),
        f32 = -1.5e-3,
        f64 = std::f64::consts::PI
    );
    // A known layout, spelled out.
    let (_m, view) = view(64);
    view.write_be(0, 0x0102_0304u32).unwrap();
    assert_eq!(view.read_le::<u32>(0).unwrap(), 0x0403_0201);
}

#[test]
fn native_order_values_of_every_primitive_round_trip_at_aligned_offsets() {
    let (_m, view) = view(4096);
    macro_rules! check {
        ($($t:ty = $v:expr),*) => {$(
            let v: $t = $v;
            let at = 2 * size_of::<$t>();
            view.write(at, &v).unwrap();
            assert_eq!(view.read::<$t>(at).unwrap(), v);
            assert_eq!(view.read_le::<$t>(at).unwrap(), <$t>::from_le_bytes(v.to_ne_bytes()));
        )*};
    }
    check!(
        u8 = 1,
        u16 = 2,
        u32 = 3,
        u64 = 4,
        u128 = 5,
        i8 = -1,
        i16 = -2,
        i32 = -3,
        i64 = -4,
        i128 = -5,
        f32 = 6.5,
        f64 = -7.25
    );
}

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Debug, PartialEq, Clone, Copy)]
#[repr(C)]
struct Record {
    id: u64,
    flags: u32,
    len: u32,
    name: [u8; 16],
}

/// A packed on-disk header: fields at any offset through align-1 byte-order types.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Debug, PartialEq)]
#[repr(C, packed)]
struct Header {
    magic: [u8; 4],
    version: U32<LittleEndian>,
    size: U64<BigEndian>,
}

#[test]
fn structs_and_slices_round_trip() {
    let (_m, view) = view(8192);
    let record = Record { id: 9, flags: 0xff, len: 3, name: *b"sixteen bytes!!\0" };
    view.write(128, &record).unwrap();
    assert_eq!(view.read::<Record>(128).unwrap(), record);
    let records: Vec<Record> = (0..10).map(|i| Record { id: i, ..record }).collect();
    view.write_slice(1024, &records).unwrap();
    let mut back = [Record { id: 0, flags: 0, len: 0, name: [0; 16] }; 10];
    view.read_slice(1024, &mut back).unwrap();
    assert_eq!(back.as_slice(), records.as_slice());
    // The packed header goes at an odd offset and keeps its byte orders.
    let header = Header { magic: *b"MMF1", version: 3.into(), size: 0x0102.into() };
    view.write(7, &header).unwrap();
    assert_eq!(view.read::<Header>(7).unwrap(), header);
    assert_eq!(view.read_le::<u32>(11).unwrap(), 3);
    assert_eq!(view.read_be::<u64>(15).unwrap(), 0x0102);
    // Unaligned variants copy at any offset.
    view.write_unaligned(4001, &0xdead_beef_u32).unwrap();
    assert_eq!(view.read_unaligned::<u32>(4001).unwrap(), 0xdead_beef);
}

#[test]
fn misaligned_offsets_are_errors_and_write_nothing() {
    let (_m, view) = view(4096);
    view.write_at(0, &[0xaa; 64]).unwrap();
    for offset in [1, 2, 3, 4, 5, 6, 7, 9] {
        let err = view.write(offset, &u64::MAX).unwrap_err();
        assert!(matches!(err, Error::Misaligned { offset: o, align: 8 } if o == offset), "{err}");
        assert!(err.to_string().contains("not a multiple of 8"), "{err}");
        assert!(matches!(view.read::<u64>(offset), Err(Error::Misaligned { .. })));
        assert!(matches!(view.write_slice(offset, &[1u64, 2]), Err(Error::Misaligned { .. })));
        assert!(matches!(view.read_slice(offset, &mut [0u64; 2]), Err(Error::Misaligned { .. })));
    }
    assert!(matches!(view.read::<u32>(2), Err(Error::Misaligned { offset: 2, align: 4 })));
    assert!(matches!(view.read::<u16>(1), Err(Error::Misaligned { offset: 1, align: 2 })));
    assert!(matches!(view.read::<Record>(4), Err(Error::Misaligned { .. })));
    let mut bytes = [0; 64];
    view.read_at(0, &mut bytes).unwrap();
    assert_eq!(bytes, [0xaa; 64], "a refused write changed nothing");
}

#[test]
fn alignment_follows_the_mapping_not_the_view() {
    // A view that starts 4 bytes into the mapping: its offset 4 is the mapping's 8.
    let mapping = Mapping::anonymous(4096).unwrap();
    let view = mmf::ViewOptions::new().offset(4).len(100).map_mut(&mapping).unwrap();
    view.write(4, &42u64).unwrap();
    assert!(matches!(view.write(0, &42u64), Err(Error::Misaligned { .. })));
    assert_eq!(mapping.view(..).unwrap().read::<u64>(8).unwrap(), 42);
}

#[test]
fn out_of_range_and_overflowing_offsets_are_errors() {
    let (_m, view) = view(4096);
    assert!(matches!(view.read::<u64>(4096), Err(Error::OutOfRange { .. })));
    assert!(matches!(view.read::<u64>(4088 + 8), Err(Error::OutOfRange { .. })));
    assert_eq!(view.read::<u64>(4088).unwrap(), 0, "the last whole u64 fits");
    assert!(matches!(view.write(4096, &1u8), Err(Error::OutOfRange { .. })));
    assert!(matches!(view.read::<u8>(usize::MAX), Err(Error::Overflow { .. })));
    assert!(matches!(view.read_unaligned::<u64>(usize::MAX - 2), Err(Error::Overflow { .. })));
    let mut big = vec![0u32; 1025];
    assert!(matches!(view.read_slice(0, &mut big), Err(Error::OutOfRange { .. })));
    assert!(matches!(view.write_slice(4, &big[..1024]), Err(Error::OutOfRange { .. })));
    // An empty view has nothing to read, but a zero-length slice fits.
    let empty = Mapping::anonymous(4096).unwrap().view(4096..).unwrap();
    assert!(matches!(empty.read::<u8>(0), Err(Error::OutOfRange { .. })));
    empty.read_slice::<u64>(0, &mut []).unwrap();
}

#[test]
fn a_read_only_view_reads_typed_values_written_through_a_file() {
    let file = tempfile::tempfile().unwrap();
    let mapping =
        MappingOptions::new().access(mmf::Access::ReadWrite).size(4096).map_file(&file).unwrap();
    mapping.view_mut(..).unwrap().write_be(16, 0xabcd_u16).unwrap();
    let reader = mmf::Mapping::from_file(&file, mmf::Access::ReadOnly).unwrap().view(..).unwrap();
    assert_eq!(reader.read_be::<u16>(16).unwrap(), 0xabcd);
    assert_eq!(reader.read::<[u8; 2]>(16).unwrap(), [0xab, 0xcd]);
}
