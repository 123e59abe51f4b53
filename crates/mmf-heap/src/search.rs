//! The search of a node's sorted `ord` words, shared by the checked path
//! ([`Entries::search`](crate::entries::Entries::search)) and a look-up's hot path
//! ([`search_words`]): in rounds of compares that go out together, not one probe after
//! another.

use zerocopy::FromBytes;
use zerocopy::byteorder::{BigEndian, U64};

use crate::entries::{Entries, KeyMode, Layout};
use crate::node;

/// The hot path's ordered search in a node's bytes `b`, whose header's words
/// (`node::words`) are `w`, laid out as `l`: among the entries from `start` on,
/// [`Entries::search`]'s answer, or `None` where [`Entries::new`] would err or a long key
/// does not check out. Made of the words the caller has already read, without building
/// an [`Entries`] (which copies the layout: loads that wait on those copies' stores were
/// a tenth of a look-up's time).
#[inline(always)]
pub fn search_words(
    b: &[u8],
    w: node::Words,
    l: &Layout,
    key: &[u8],
    p: u64,
    start: usize,
) -> Option<std::result::Result<usize, usize>> {
    let n = (w[1] >> 32) as usize;
    if n > l.cap || (w[2] as u32 as usize) < l.heap_min() || (w[2] >> 32) as usize != l.vsize {
        return None;
    }
    let start = start.min(n);
    let ords = <[U64<BigEndian>]>::ref_from_bytes(b.get(l.ord_pos(start)..l.ord_pos(n))?).ok()?;
    let below = lower_bound(ords, p);
    if matches!(l.mode, KeyMode::InOrd(_)) {
        let hit = ords.get(below).is_some_and(|o| o.get() == p);
        return Some(if hit { Ok(start + below) } else { Err(start + below) });
    }
    Entries::new(b, *l, 0).ok()?.search_keys(key, p, start + below).ok()
}

/// How many of the sorted `ords` are below `p`: the first entry whose prefix is at least
/// `p` (damaged, unsorted words give some index in `0..=len`). A binary search waits for
/// each load before it knows the next (8 in a row in a branch of 180 entries, and with a
/// branch, a mispredicted jump half the time); this compares 7 evenly spaced words at once
/// and goes on in the eighth of the range they point to, then counts the last 16 or fewer
/// (loads that go out together): 2 rounds and a count in such a branch.
#[inline(always)]
pub(crate) fn lower_bound(ords: &[U64<BigEndian>], p: u64) -> usize {
    const WAYS: usize = 8;
    const LINEAR: usize = 16;
    let (mut lo, mut len) = (0, ords.len());
    while len > LINEAR {
        // Pivot j is the last of the j-th of 8 runs of `step` (the 8th run takes the rest).
        let step = len / WAYS;
        let mut below = 0;
        for j in 1..WAYS {
            below += usize::from(ords[lo + j * step - 1].get() < p);
        }
        lo += below * step;
        len = if below == WAYS - 1 { len - below * step } else { step };
    }
    lo + ords[lo..lo + len].iter().filter(|o| o.get() < p).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search in rounds finds what a binary search finds, for every length up to past
    /// the most entries a node holds (504, zero-sized values) and every probe between, on
    /// and around the words; unsorted words give an index in range, never a panic.
    #[test]
    fn lower_bound_is_a_binary_search() {
        let words = |v: &[u64]| v.iter().map(|&w| U64::<BigEndian>::new(w)).collect::<Vec<_>>();
        for n in 0..520u64 {
            let ords = words(&(0..n).map(|i| 10 * i + 5).collect::<Vec<_>>());
            for p in (0..10 * n + 10).step_by(5) {
                assert_eq!(
                    lower_bound(&ords, p),
                    ords.partition_point(|o| o.get() < p),
                    "n {n} p {p}"
                );
            }
            // Runs of equal words (a variable key's shared prefixes).
            let ords = words(&(0..n).map(|i| i / 7).collect::<Vec<_>>());
            for p in 0..n / 7 + 2 {
                assert_eq!(lower_bound(&ords, p), ords.partition_point(|o| o.get() < p));
            }
            let ords =
                words(&(0..n).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect::<Vec<_>>());
            for p in [0, 1, u64::MAX / 3, u64::MAX] {
                assert!(lower_bound(&ords, p) <= n as usize);
            }
        }
    }
}
