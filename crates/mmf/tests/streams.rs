//! Streams: random seeks, reads, writes and buffered reads through a small sliding
//! window, checked against `std::fs::File` (proptest); `io::copy`, lines, refusals, and a
//! file truncated under a stream. Runs on both legs (the truncation test is Linux-only:
//! Windows refuses to truncate a mapped file).

use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};

use mmf::{Access, Mapping, MappingOptions, Stream};
use proptest::prelude::*;

/// The smallest window a stream can have here: one allocation granule.
fn granule() -> u64 {
    mmf::allocation_granularity() as u64
}

#[derive(Clone, Debug)]
enum Op {
    Seek(SeekFrom),
    Read(usize),
    Write(Vec<u8>),
    /// `fill_buf`, compare up to this many bytes, `consume` them.
    Buffered(usize),
}

fn op(size: u64) -> impl Strategy<Value = Op> {
    let end = size as i64;
    prop_oneof![
        (0..size + 100).prop_map(|n| Op::Seek(SeekFrom::Start(n))),
        (-end - 10..end + 10).prop_map(|d| Op::Seek(SeekFrom::Current(d))),
        (-end - 10..50i64).prop_map(|d| Op::Seek(SeekFrom::End(d))),
        (0..3 * granule() as usize).prop_map(Op::Read),
        proptest::collection::vec(any::<u8>(), 0..2 * granule() as usize).prop_map(Op::Write),
        (0..200usize).prop_map(Op::Buffered),
    ]
}

/// Reads until `len` bytes or the end: `read` may return less.
fn read_fully(reader: &mut impl Read, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    let mut done = 0;
    while done < len {
        match reader.read(&mut out[done..]).unwrap() {
            0 => break,
            n => done += n,
        }
    }
    out.truncate(done);
    out
}

fn check_against_file(size: u64, seed: &[u8], ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    std::fs::write(&path, &seed[..size as usize]).unwrap();
    let mut model = File::options().read(true).write(true).open(&path).unwrap();
    let file = tempfile::tempfile().unwrap();
    file.set_len(size).unwrap();
    let mapping = MappingOptions::new().access(Access::ReadWrite).map_file(&file).unwrap();
    mapping.view_mut(..).unwrap().write_at(0, &seed[..size as usize]).unwrap();
    let mut stream = Stream::new_mut(&mapping).unwrap().with_window(granule());
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Seek(to) => {
                let (a, b) = (stream.seek(*to), model.seek(*to));
                assert_eq!(a.is_ok(), b.is_ok(), "op {i} {op:?}");
                match (a, b) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "op {i} {op:?}"),
                    // A refused seek leaves the position; re-sync the model to be sure.
                    _ => drop(model.seek(SeekFrom::Start(stream.position())).unwrap()),
                }
            }
            Op::Read(len) => {
                assert_eq!(read_fully(&mut stream, *len), read_fully(&mut model, *len), "op {i}");
            }
            Op::Write(data) => {
                // The stream does not grow: the model writes what fits before the end.
                let pos = model.stream_position().unwrap();
                let fits = size.saturating_sub(pos).min(data.len() as u64) as usize;
                model.write_all(&data[..fits]).unwrap();
                assert_eq!(stream.write(data).unwrap(), fits, "op {i} at {pos}");
            }
            Op::Buffered(len) => {
                let pos = model.stream_position().unwrap();
                let got = stream.fill_buf().unwrap().to_vec();
                let n = got.len().min(*len);
                let want = read_fully(&mut model, n);
                assert_eq!(&got[..n], &want[..], "op {i} at {pos}");
                assert_eq!(got.is_empty(), pos >= size, "fill_buf is empty only at the end");
                stream.consume(n);
            }
        }
        assert_eq!(stream.position(), model.stream_position().unwrap(), "op {i} {op:?}");
    }
    drop(stream);
    let mut all = vec![0; size as usize];
    mapping.view(..).unwrap().read_at(0, &mut all).unwrap();
    assert_eq!(all, std::fs::read(&path).unwrap(), "the bytes after all the ops");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(windows) { 24 } else { 96 }))]

    #[test]
    fn random_seeks_reads_and_writes_match_a_file(
        (size, ops) in (1..4 * granule()).prop_flat_map(|size| {
            (Just(size), proptest::collection::vec(op(size), 1..40))
        }),
        seed in proptest::collection::vec(any::<u8>(), 4 * granule() as usize),
    ) {
        check_against_file(size, &seed, &ops);
    }
}

#[test]
fn io_copy_and_lines_through_a_window_smaller_than_the_file() {
    let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    let file = tempfile::tempfile().unwrap();
    (&file).write_all(text.as_bytes()).unwrap();
    let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
    let mut copy = Vec::new();
    let copied = std::io::copy(&mut Stream::new(&mapping).with_window(1), &mut copy).unwrap();
    assert_eq!((copied, copy.as_slice()), (text.len() as u64, text.as_bytes()));
    let lines = Stream::new(&mapping).with_window(granule()).lines();
    let lines: Vec<String> = lines.map(Result::unwrap).collect();
    assert_eq!(lines.len(), 20_000);
    assert_eq!(lines[12_345], "line 12345");
    // An owned mapping works too, and comes back.
    let mut owned = Stream::new(mapping);
    owned.seek(SeekFrom::End(-11)).unwrap();
    assert_eq!(read_fully(&mut owned, 100), b"line 19999\n");
    assert_eq!(owned.into_inner().size(), text.len() as u64);
}

#[test]
fn a_read_only_stream_refuses_writes_and_a_read_only_mapping_a_writable_stream() {
    let file = tempfile::tempfile().unwrap();
    file.set_len(4096).unwrap();
    let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
    let err = Stream::new_mut(&mapping).unwrap_err();
    assert!(matches!(err, mmf::Error::AccessDenied { .. }), "{err}");
    let mut stream = Stream::new(&mapping);
    let err = stream.write(b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert_eq!(stream.position(), 0);
    let err = stream.seek(SeekFrom::Current(-1)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn writes_stop_at_the_end_and_write_all_says_so() {
    let mapping = Mapping::anonymous(10).unwrap();
    let mut stream = Stream::new_mut(&mapping).unwrap();
    stream.seek(SeekFrom::Start(8)).unwrap();
    assert_eq!(stream.write(b"abcd").unwrap(), 2);
    assert_eq!(stream.write(b"x").unwrap(), 0);
    let err = stream.write_all(b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WriteZero);
    let mut buf = [0; 2];
    mapping.view(8..).unwrap().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"ab");
}

#[test]
#[cfg(target_os = "linux")]
fn a_file_truncated_under_a_stream_is_an_error_not_a_signal() {
    let file = tempfile::tempfile().unwrap();
    file.set_len(4 * granule()).unwrap();
    let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
    let mut stream = Stream::new(&mapping).with_window(4 * granule());
    assert_eq!(read_fully(&mut stream, 10).len(), 10);
    file.set_len(granule()).unwrap();
    stream.seek(SeekFrom::Start(2 * granule())).unwrap();
    let err = stream.read(&mut [0; 100]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}
