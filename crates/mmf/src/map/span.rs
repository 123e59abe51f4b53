//! Byte ranges: resolving what the caller asked for against a size, and placing a view at
//! the allocation granularity. Pure arithmetic, so every edge is unit-tested.

use std::ops::{Bound, RangeBounds};

use crate::MAX_SIZE;
use crate::error::{Error, Result};

/// A range as `(offset, length)`, the length `None` for "to the end".
pub(crate) fn from_range(range: impl RangeBounds<u64>) -> Result<(u64, Option<u64>)> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1).ok_or(Error::Overflow { offset: s, len: 1 })?,
        Bound::Unbounded => 0,
    };
    let len = match range.end_bound() {
        Bound::Unbounded => None,
        Bound::Excluded(&e) => {
            Some(e.checked_sub(start).ok_or(Error::ReversedRange { start, end: e })?)
        }
        Bound::Included(&e) => {
            let reversed = Error::ReversedRange { start, end: e.saturating_add(1) };
            let n = e.checked_sub(start).ok_or(reversed)?;
            Some(n.checked_add(1).ok_or(Error::Overflow { offset: start, len: n })?)
        }
    };
    Ok((start, len))
}

/// Checks `offset..offset+len` (or `offset..size`) against `size`; returns the length,
/// which may be 0 (an empty range anywhere up to the end).
pub(crate) fn check(offset: u64, len: Option<u64>, size: u64) -> Result<u64> {
    if let Some(len) = len {
        let end = offset.checked_add(len).ok_or(Error::Overflow { offset, len })?;
        if end > size {
            return Err(Error::OutOfRange { offset, len, size });
        }
    }
    if offset > size {
        return Err(Error::OutOfRange { offset, len: len.unwrap_or(0), size });
    }
    Ok(len.unwrap_or(size - offset))
}

/// Where a view of `offset..offset+len` goes: the OS maps `map_len` bytes from the aligned
/// `map_offset`, and the caller's first byte is `delta` bytes into that.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    pub map_offset: u64,
    pub map_len: usize,
    pub delta: usize,
    pub len: usize,
}

impl Placement {
    /// Nothing, nowhere: for views whose pages are mapped by someone else.
    pub(crate) fn empty() -> Placement {
        Placement { map_offset: 0, map_len: 0, delta: 0, len: 0 }
    }
}

pub(crate) fn place(
    offset: u64,
    len: Option<u64>,
    size: u64,
    granularity: usize,
) -> Result<Placement> {
    let len = check(offset, len, size)?;
    let delta = offset % granularity as u64;
    let map_len =
        len.checked_add(delta).filter(|&n| n <= MAX_SIZE).ok_or(Error::TooLarge { size: len })?;
    Ok(Placement {
        map_offset: offset - delta,
        map_len: map_len as usize,
        delta: delta as usize,
        len: len as usize,
    })
}

/// Checks a sub-range `offset..offset+len` of something `size` bytes long (a view).
#[inline]
pub(crate) fn check_sub(offset: usize, len: usize, size: usize) -> Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        Some(_) => {
            Err(Error::OutOfRange { offset: offset as u64, len: len as u64, size: size as u64 })
        }
        None => Err(Error::Overflow { offset: offset as u64, len: len as u64 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_to_offset_and_length() {
        assert_eq!(from_range(..).unwrap(), (0, None));
        assert_eq!(from_range(5..).unwrap(), (5, None));
        assert_eq!(from_range(5..9).unwrap(), (5, Some(4)));
        assert_eq!(from_range(5..=9).unwrap(), (5, Some(5)));
        assert_eq!(from_range(..=u64::MAX - 1).unwrap(), (0, Some(u64::MAX)));
        assert!(matches!(from_range(..=u64::MAX), Err(Error::Overflow { .. })));
        let (start, end) = (9, 5);
        assert!(matches!(from_range(start..end), Err(Error::ReversedRange { start: 9, end: 5 })));
        let (start, end) = (9, 5);
        assert!(matches!(from_range(start..=end), Err(Error::ReversedRange { start: 9, end: 6 })));
        let excluded = (Bound::Excluded(u64::MAX), Bound::Unbounded);
        assert!(matches!(from_range(excluded), Err(Error::Overflow { .. })));
    }

    #[test]
    fn check_refuses_what_does_not_fit() {
        assert_eq!(check(0, None, 10).unwrap(), 10);
        assert_eq!(check(9, None, 10).unwrap(), 1);
        assert_eq!(check(2, Some(8), 10).unwrap(), 8);
        assert_eq!(check(10, None, 10).unwrap(), 0, "an empty range at the end");
        assert!(matches!(check(11, None, 10), Err(Error::OutOfRange { .. })));
        assert!(matches!(check(11, Some(1), 10), Err(Error::OutOfRange { .. })));
        assert!(matches!(check(2, Some(9), 10), Err(Error::OutOfRange { .. })));
        assert!(matches!(check(1, Some(u64::MAX), 10), Err(Error::Overflow { .. })));
        assert_eq!(check(0, Some(0), 10).unwrap(), 0);
        assert_eq!(check(10, Some(0), 10).unwrap(), 0);
        assert!(matches!(check(11, Some(0), 10), Err(Error::OutOfRange { .. })));
    }

    #[test]
    fn placement_aligns_down_and_hides_the_delta() {
        let p = place(4096 * 3 + 7, Some(10), 1 << 20, 4096).unwrap();
        assert_eq!(p, Placement { map_offset: 4096 * 3, map_len: 17, delta: 7, len: 10 });
        let p = place(65536 + 4096, None, 65536 * 2, 65536).unwrap();
        assert_eq!(p, Placement { map_offset: 65536, map_len: 65536, delta: 4096, len: 61440 });
        assert!(matches!(place(0, None, u64::MAX, 4096), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn sub_ranges_of_a_view() {
        assert!(check_sub(0, 10, 10).is_ok());
        assert!(check_sub(10, 0, 10).is_ok());
        assert!(matches!(check_sub(5, 6, 10), Err(Error::OutOfRange { .. })));
        assert!(matches!(check_sub(usize::MAX, 2, 10), Err(Error::Overflow { .. })));
    }
}
