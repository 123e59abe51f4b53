//! The root directory: named values, each with its type hash, that a commit points to.
//! The format keeps it in one block, rewritten (copy-on-write) by a transaction that
//! changes a root; entries are sorted by name.

use std::collections::BTreeMap;

use zerocopy::{FromBytes, IntoBytes};

use crate::error::{Error, Result};
use crate::format::RootHeader;

/// The longest root name, in bytes.
pub const MAX_NAME: usize = 255;
/// The largest value a root holds, in bytes (store larger values in a block and keep an
/// [`Off`](crate::Off) in the root).
pub const MAX_VALUE: usize = 1024;

/// The root that holds the shape registry (`docs/heap-format.md`, "Shapes").
pub const SHAPES_ROOT: &str = "\0shapes";

/// Whether a root is the heap's own (its name starts with NUL), not listed.
pub fn is_hidden(name: &str) -> bool {
    name.starts_with('\0')
}

/// A root's value: its type hash and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootValue {
    /// The type hash.
    pub type_hash: u64,
    /// The value's bytes.
    pub bytes: Vec<u8>,
}

/// Named roots, sorted by name.
pub type RootDir = BTreeMap<String, RootValue>;

fn pad8(n: usize) -> usize {
    n.next_multiple_of(8)
}

/// Checks a name and a value length before they go in.
///
/// # Errors
/// [`Error::InvalidArgument`]: an empty or too long name, a too large value.
pub fn check(name: &str, value_len: usize) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Error::InvalidArgument { what: "a root name is 1 to 255 bytes" });
    }
    if is_hidden(name) {
        return Err(Error::InvalidArgument { what: "root names starting with NUL are the heap's" });
    }
    if value_len > MAX_VALUE {
        return Err(Error::InvalidArgument {
            what: "a root value is at most 1024 bytes: store it in a block, keep an Off",
        });
    }
    Ok(())
}

/// The root-directory block's payload.
pub fn encode(dir: &RootDir) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in dir {
        let header = RootHeader {
            type_hash: value.type_hash,
            name_len: name.len() as u32,
            value_len: value.bytes.len() as u32,
        };
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.resize(pad8(out.len()), 0);
        out.extend_from_slice(&value.bytes);
        out.resize(pad8(out.len()), 0);
    }
    out
}

/// Reads a root-directory payload (from the block at file offset `at`).
///
/// # Errors
/// [`Error::Corrupted`] naming the root directory: a torn entry, a name that is not
/// UTF-8 or out of order, a length out of range.
pub fn decode(payload: &[u8], at: u64) -> Result<RootDir> {
    let bad = || Error::corrupted("root directory", at);
    let mut dir = RootDir::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let (header, tail) = RootHeader::read_from_prefix(rest).map_err(|_| bad())?;
        let (name_len, value_len) = (header.name_len as usize, header.value_len as usize);
        if name_len == 0 || name_len > MAX_NAME || value_len > MAX_VALUE {
            return Err(bad());
        }
        let name_end = pad8(name_len);
        let end = name_end + pad8(value_len);
        if tail.len() < end {
            return Err(bad());
        }
        let name = std::str::from_utf8(&tail[..name_len]).map_err(|_| bad())?;
        if dir.last_key_value().is_some_and(|(last, _)| last.as_str() >= name) {
            return Err(bad());
        }
        let bytes = tail[name_end..name_end + value_len].to_vec();
        dir.insert(name.to_owned(), RootValue { type_hash: header.type_hash, bytes });
        rest = &tail[end..];
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RootDir {
        let mut dir = RootDir::new();
        dir.insert("b".into(), RootValue { type_hash: 2, bytes: vec![1, 2, 3] });
        dir.insert("a-longer-name".into(), RootValue { type_hash: 1, bytes: vec![9; 16] });
        dir
    }

    #[test]
    fn the_directory_round_trips() {
        let dir = sample();
        assert_eq!(decode(&encode(&dir), 0).unwrap(), dir);
        assert_eq!(decode(&[], 0).unwrap(), RootDir::new());
    }

    #[test]
    fn every_truncation_and_bad_field_is_corrupted() {
        let bytes = encode(&sample());
        // The first entry ("a-longer-name") ends at byte 48: a cut there is a valid,
        // shorter directory. Every other cut tears an entry.
        for cut in (1..bytes.len()).filter(|&cut| cut != 48) {
            assert!(decode(&bytes[..cut], 7).is_err(), "cut at {cut}");
        }
        let mut bad_utf8 = bytes.clone();
        bad_utf8[16] = 0xff;
        assert!(matches!(decode(&bad_utf8, 7), Err(Error::Corrupted { offset: 7, .. })));
        let mut long_value = bytes.clone();
        long_value[12..16].copy_from_slice(&5000u32.to_le_bytes());
        assert!(decode(&long_value, 7).is_err());
    }

    #[test]
    fn names_and_values_are_checked_going_in() {
        assert!(check("", 0).is_err());
        assert!(check(&"x".repeat(256), 0).is_err());
        assert!(check("x", MAX_VALUE + 1).is_err());
        check(&"x".repeat(255), MAX_VALUE).unwrap();
    }
}
