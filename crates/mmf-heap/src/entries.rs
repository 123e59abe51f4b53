//! Nodes of sorted entries — an ordered map's leaves and branches — laid out for search:
//! after the header, an array of `ord` words (big-endian: a key's first 8 bytes, or a
//! hash) that a search scans without touching anything else; an array of `aux` words (a
//! short key's bytes, or where a long key lies in the node's key heap); the values; and
//! the key heap, growing down from the node's end. A hash map's buckets use the same
//! arrays as slots with gaps (`phash::slots`).

use zerocopy::FromBytes;
use zerocopy::byteorder::{BigEndian, U64};

use crate::error::{Error, Result};
use crate::key::{Key, MAX_KEY};
use crate::node::{self, HDR, WHAT};
use crate::persist::Persist;
use crate::search::lower_bound;
pub use crate::search::search_words;

/// Key-heap bytes a node with variable keys keeps free of arrays: room for 4 of the
/// longest keys, so that either half of a split can take one more.
pub const HEAP_RESERVE: usize = 4 * (MAX_KEY + 1);
/// The fewest entries a node holds.
const MIN_CAP: usize = 4;
/// An entry as raw iterators yield it: key bytes, value bytes, the node's offset.
pub type RawEntry<'r> = (&'r [u8], &'r [u8], u64);

/// A raw entry as the typed pair a map's iterator yields: the key decoded, the value
/// referenced in place; bytes that are not a `K` or a `V` are the node's corruption.
pub fn typed<'r, K: Key, V: Persist>((key, val, off): RawEntry<'r>) -> Result<(K::Ref<'r>, &'r V)> {
    let bad = || Error::corrupted(WHAT, off);
    let key = K::decode(key).ok_or_else(bad)?;
    V::ref_from_bytes(val).map(|v| (key, v)).map_err(|_| bad())
}

/// Where an entry's key bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// In the `ord` word (keys of at most 8 bytes, ordered maps).
    InOrd(usize),
    /// In the `aux` word (keys of at most 8 bytes, hash maps).
    InAux(usize),
    /// In the key heap; `aux` holds its offset (low 32 bits) and length (high 32).
    Heap,
}

impl KeyMode {
    /// How an ordered map (`ordered`) or a hash map keeps keys of encoded width `width`
    /// (0: variable).
    pub const fn for_width(width: usize, ordered: bool) -> KeyMode {
        match width {
            1..=8 if ordered => KeyMode::InOrd(width),
            1..=8 => KeyMode::InAux(width),
            _ => KeyMode::Heap,
        }
    }
}

/// The layout of a node: its size, capacity and where its arrays lie, side by side (each
/// field of all entries together: a search reads the `ord` words alone, a few cache lines
/// from the node's first, and then one `aux` word and one value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Node bytes: a multiple of 4 KiB, the smallest that holds [`MIN_CAP`] entries.
    pub size: usize,
    /// Most entries.
    pub cap: usize,
    /// Where keys are.
    pub mode: KeyMode,
    /// Bytes of one value.
    pub vsize: usize,
    /// Where entry 0's `aux` and value are (`ord` words start at [`HDR`]).
    aux_at: usize,
    val_at: usize,
    heap_min: usize,
}

impl Layout {
    /// The side-by-side layout for keys kept as `mode` and values of `vsize` bytes, in
    /// nodes of at least `min_size` bytes.
    pub const fn new(mode: KeyMode, vsize: usize, min_size: usize) -> Layout {
        let aux = if matches!(mode, KeyMode::InOrd(_)) { 0 } else { 8 };
        let per = 8 + aux + vsize;
        let (size, cap) = Self::fit(mode, per, min_size);
        let aux_at = HDR + 8 * cap;
        let val_at = (aux_at + aux * cap).next_multiple_of(16);
        let heap_min = val_at + vsize * cap;
        Layout { size, cap, mode, vsize, aux_at, val_at, heap_min }
    }

    /// The node size and capacity for entries of `per` bytes.
    const fn fit(mode: KeyMode, per: usize, min_size: usize) -> (usize, usize) {
        let reserve = if matches!(mode, KeyMode::Heap) { HEAP_RESERVE } else { 0 };
        let mut size = if min_size > 4096 { min_size } else { 4096 };
        while (size - HDR - 16 - reserve) / per < MIN_CAP {
            size += 4096;
        }
        (size, (size - HDR - 16 - reserve) / per)
    }

    /// Where the key heap may begin.
    #[inline(always)]
    pub fn heap_min(&self) -> usize {
        self.heap_min
    }

    /// Where entry (or slot) `i`'s `ord` word is.
    #[inline(always)]
    pub fn ord_pos(&self, i: usize) -> usize {
        HDR + 8 * i
    }

    /// Where entry `i`'s `aux` word is.
    #[inline(always)]
    pub fn aux_pos(&self, i: usize) -> usize {
        self.aux_at + 8 * i
    }

    /// Where entry `i`'s value is.
    #[inline(always)]
    pub fn val_pos(&self, i: usize) -> usize {
        self.val_at + self.vsize * i
    }

    /// Where the `aux` array begins.
    pub fn aux_at(&self) -> usize {
        self.aux_at
    }

    /// Where the value array begins.
    pub fn val_at(&self) -> usize {
        self.val_at
    }
}

/// A node's entries, read.
#[derive(Clone, Copy)]
pub struct Entries<'a> {
    b: &'a [u8],
    l: Layout,
    n: usize,
    /// The node's offset in the file, for errors.
    pub off: u64,
}

impl<'a> Entries<'a> {
    /// The entries of node bytes `b` (header checked by [`node::read`]) at `off`.
    ///
    /// # Errors
    /// [`Error::Corrupted`]: more entries than fit, a key heap over the arrays.
    #[inline(always)]
    pub fn new(b: &'a [u8], l: Layout, off: u64) -> Result<Self> {
        let [_, size_count, heap_width] = node::words(b);
        let n = (size_count >> 32) as usize;
        if n > l.cap
            || (heap_width as u32 as usize) < l.heap_min
            || (heap_width >> 32) as usize != l.vsize
        {
            return Err(Error::corrupted(WHAT, off));
        }
        Ok(Entries { b, l, n, off })
    }

    /// The slots of a hash bucket's bytes `b` (header checked by [`node::read`]) at
    /// `off`: all `cap` of them, taken or free (`phash::slots`), with [`new`](Self::new)'s
    /// checks.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    #[inline(always)]
    pub fn slots(b: &'a [u8], l: Layout, off: u64) -> Result<Self> {
        Self::new(b, l, off).map(|e| Entries { n: l.cap, ..e })
    }

    /// Its layout.
    pub fn layout(&self) -> Layout {
        self.l
    }

    /// Number of entries (of slots, for [`slots`](Self::slots)).
    #[inline]
    pub fn len(&self) -> usize {
        self.n
    }

    /// Entry `i`'s `ord` word.
    #[inline(always)]
    pub fn ord(&self, i: usize) -> u64 {
        u64::from_be_bytes(self.b[self.l.ord_pos(i)..][..8].try_into().unwrap_or_default())
    }

    /// The `ord` words of entries `start..` (`start` at most [`len`](Self::len)).
    #[inline(always)]
    fn ords(&self, start: usize) -> &'a [U64<BigEndian>] {
        let words = self.b.get(self.l.ord_pos(start)..self.l.ord_pos(self.n)).unwrap_or_default();
        <[U64<BigEndian>]>::ref_from_bytes(words).unwrap_or_default()
    }

    /// Entry `i`'s `aux` word.
    #[inline(always)]
    pub fn aux(&self, i: usize) -> u64 {
        u64::from_le_bytes(self.b[self.l.aux_pos(i)..][..8].try_into().unwrap_or_default())
    }

    /// Entry `i`'s key bytes.
    ///
    /// # Errors
    /// [`Error::Corrupted`] for a key outside the node's key heap.
    #[inline(always)]
    pub fn key(&self, i: usize) -> Result<&'a [u8]> {
        match self.l.mode {
            KeyMode::InOrd(w) => Ok(&self.b[self.l.ord_pos(i)..][..w]),
            KeyMode::InAux(w) => Ok(&self.b[self.l.aux_pos(i)..][..w]),
            KeyMode::Heap => {
                let aux = self.aux(i);
                let (at, len) = ((aux & 0xffff_ffff) as usize, (aux >> 32) as usize);
                if at < self.l.heap_min || len > MAX_KEY {
                    return Err(Error::corrupted(WHAT, self.off));
                }
                self.b.get(at..at + len).ok_or_else(|| Error::corrupted(WHAT, self.off))
            }
        }
    }

    /// Entry `i`'s value bytes.
    #[inline(always)]
    pub fn val(&self, i: usize) -> &'a [u8] {
        &self.b[self.l.val_pos(i)..][..self.l.vsize]
    }

    /// Entry `i`'s value as a u64 (a branch's child).
    #[inline]
    pub fn child(&self, i: usize) -> u64 {
        u64::from_le_bytes(self.val(i)[..8].try_into().unwrap_or_default())
    }

    /// Ordered search for `key` (whose prefix is `p`): `Ok(i)` where it is, `Err(i)` where
    /// it would go.
    ///
    /// # Errors
    /// [`Error::Corrupted`] for a bad key in the node.
    #[inline]
    pub fn search(&self, key: &[u8], p: u64) -> Result<std::result::Result<usize, usize>> {
        self.search_from(key, p, 0)
    }

    /// A branch's child for `key`: the last entry whose key is at most `key`, or the
    /// first entry. (The first entry's key is not compared: it is only a lower bound,
    /// and keys smaller than it go to the first child too.)
    ///
    /// # Errors
    /// [`Error::Corrupted`] for a bad key in the node.
    #[inline]
    pub fn child_for(&self, key: &[u8], p: u64) -> Result<usize> {
        Ok(match self.search_from(key, p, 1.min(self.n))? {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        })
    }

    /// [`search`](Self::search) among the entries from `start` on: the prefix search
    /// inline (for keys of at most 8 bytes, the whole search), the comparison of longer
    /// keys out of line.
    #[inline(always)]
    fn search_from(
        &self,
        key: &[u8],
        p: u64,
        start: usize,
    ) -> Result<std::result::Result<usize, usize>> {
        let start = start.min(self.n);
        let lo = start + lower_bound(self.ords(start), p);
        if matches!(self.l.mode, KeyMode::InOrd(_)) {
            return Ok(if lo < self.n && self.ord(lo) == p { Ok(lo) } else { Err(lo) });
        }
        self.search_keys(key, p, lo)
    }

    /// The rest of [`search_from`](Self::search_from) for keys kept whole elsewhere:
    /// among the entries from `lo` on whose prefix is `p`.
    #[inline(never)]
    pub(crate) fn search_keys(
        &self,
        key: &[u8],
        p: u64,
        mut lo: usize,
    ) -> Result<std::result::Result<usize, usize>> {
        while lo < self.n && self.ord(lo) == p {
            match self.key(lo)?.cmp(key) {
                std::cmp::Ordering::Less => lo += 1,
                std::cmp::Ordering::Equal => return Ok(Ok(lo)),
                std::cmp::Ordering::Greater => break,
            }
        }
        Ok(Err(lo))
    }

    /// The node's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.b
    }

    /// Bytes of the key heap in use.
    pub fn heap_used(&self) -> usize {
        if self.l.mode != KeyMode::Heap {
            return 0;
        }
        (0..self.n).map(|i| (self.aux(i) >> 32) as usize).sum()
    }
}

/// Reads one byte of each cache line of a node's `ord` array (for all `cap` entries,
/// before its header says how many are used): the loads go out together, and with the
/// header's, so that the search that follows waits for one miss instead of one per probe.
/// (Where the reader has an address to prefetch from, the look-up does that instead,
/// before the node's checks.)
#[inline]
pub fn touch_ords(b: &[u8], l: &Layout) {
    let mut acc = 0u8;
    let end = (HDR + 8 * l.cap).min(b.len());
    let mut at = HDR;
    while at < end {
        acc ^= b[at];
        at += 64;
    }
    std::hint::black_box(acc);
}

/// Sets a new node's entry count to 0 and its key heap to empty.
pub fn clear(b: &mut [u8], l: &Layout) {
    let h = node::header_mut(b);
    h.count = 0;
    h.heap = l.size as u32;
}

fn count(b: &[u8]) -> usize {
    node::header(b).map_or(0, |h| h.count as usize)
}

/// Whether an entry with a key of `key_len` bytes fits in the node `b` (at `off`, for
/// errors), after compacting its key heap if need be (which this does).
///
/// # Errors
/// [`Error::Corrupted`] for a node whose key heap holds a key outside it (the node
/// unchanged).
pub fn make_room(b: &mut [u8], l: &Layout, key_len: usize, off: u64) -> Result<bool> {
    let n = count(b);
    if n >= l.cap {
        return Ok(false);
    }
    if l.mode != KeyMode::Heap {
        return Ok(true);
    }
    let heap = node::header(b).map_or(0, |h| h.heap as usize);
    if heap >= l.heap_min + key_len {
        return Ok(true);
    }
    let used = Entries::new(b, *l, off)?.heap_used();
    if used.saturating_add(key_len) > l.size - l.heap_min {
        return Ok(false);
    }
    compact(b, l, off)?;
    Ok(true)
}

/// Rewrites the key heap without the bytes of removed keys. Every key is read before a
/// byte changes: one outside the heap is an error, and the node stays as it was (a damaged
/// key was once rewritten as an empty one).
fn compact(b: &mut [u8], l: &Layout, off: u64) -> Result<()> {
    let copy = b.to_vec();
    let old = Entries::new(&copy, *l, off)?;
    let keys = (0..old.len()).map(|i| old.key(i)).collect::<Result<Vec<_>>>()?;
    let mut heap = l.size;
    for (i, key) in keys.into_iter().enumerate() {
        heap -= key.len();
        b[heap..heap + key.len()].copy_from_slice(key);
        set_aux(b, l, i, heap as u64 | (key.len() as u64) << 32);
    }
    node::header_mut(b).heap = heap as u32;
    Ok(())
}

fn set_aux(b: &mut [u8], l: &Layout, i: usize, v: u64) {
    b[l.aux_pos(i)..][..8].copy_from_slice(&v.to_le_bytes());
}

/// Inserts an entry at `i` (the caller has made room with [`make_room`]).
pub fn insert(b: &mut [u8], l: &Layout, i: usize, ord: u64, key: &[u8], val: &[u8]) {
    let n = count(b);
    debug_assert!(n < l.cap && i <= n);
    // Entries i.. move up by one.
    let shift = |b: &mut [u8], at: usize, width: usize| {
        b.copy_within(at + width * i..at + width * n, at + width * (i + 1));
    };
    shift(b, HDR, 8);
    if !matches!(l.mode, KeyMode::InOrd(_)) {
        shift(b, l.aux_at, 8);
    }
    shift(b, l.val_at, l.vsize);
    b[l.ord_pos(i)..][..8].copy_from_slice(&ord.to_be_bytes());
    match l.mode {
        KeyMode::InOrd(_) => {}
        KeyMode::InAux(w) => {
            let at = l.aux_pos(i);
            b[at..at + 8].fill(0);
            b[at..at + w].copy_from_slice(key);
        }
        KeyMode::Heap => {
            let heap = node::header(b).map_or(l.size, |h| h.heap as usize) - key.len();
            b[heap..heap + key.len()].copy_from_slice(key);
            set_aux(b, l, i, heap as u64 | (key.len() as u64) << 32);
            node::header_mut(b).heap = heap as u32;
        }
    }
    b[l.val_pos(i)..][..l.vsize].copy_from_slice(val);
    node::header_mut(b).count = (n + 1) as u32;
}

/// Removes entry `i` (its key bytes stay in the heap until it is compacted).
pub fn remove(b: &mut [u8], l: &Layout, i: usize) {
    let n = count(b);
    // Entries i + 1.. move down by one.
    let shift = |b: &mut [u8], at: usize, width: usize| {
        b.copy_within(at + width * (i + 1)..at + width * n, at + width * i);
    };
    shift(b, HDR, 8);
    if !matches!(l.mode, KeyMode::InOrd(_)) {
        shift(b, l.aux_at, 8);
    }
    shift(b, l.val_at, l.vsize);
    node::header_mut(b).count = (n - 1) as u32;
    if n == 1 {
        node::header_mut(b).heap = l.size as u32;
    }
}

/// Replaces entry `i`'s value.
pub fn set_val(b: &mut [u8], l: &Layout, i: usize, val: &[u8]) {
    b[l.val_pos(i)..][..l.vsize].copy_from_slice(val);
}

/// Appends entry `i` of `src` to the node `b` (building a node from another's entries).
///
/// # Errors
/// [`Error::Corrupted`] for a bad key in `src`.
pub fn append(b: &mut [u8], l: &Layout, src: &Entries<'_>, i: usize) -> Result<()> {
    let key = src.key(i)?;
    if !make_room(b, l, key.len(), src.off)? {
        return Err(Error::corrupted(WHAT, src.off));
    }
    insert(b, l, count(b), src.ord(i), key, src.val(i));
    Ok(())
}

/// Appends entries `range` of `src` to the node `b`, in order (building nodes from
/// another's entries: a split's halves, a merge). Keys of a fixed size are copied as whole
/// runs of each array; keys in the key heap one entry at a time.
///
/// # Errors
/// [`Error::Corrupted`] when the entries do not fit in `b` or lie outside `src` (a node
/// whose count lies), or for a bad key in `src`.
pub fn append_range(
    b: &mut [u8],
    l: &Layout,
    src: &Entries<'_>,
    range: std::ops::Range<usize>,
) -> Result<()> {
    if l.mode == KeyMode::Heap || src.l != *l {
        for i in range {
            append(b, l, src, i)?;
        }
        return Ok(());
    }
    let (n, k) = (count(b), range.len());
    if range.end > src.n || n + k > l.cap {
        return Err(Error::corrupted(WHAT, src.off));
    }
    let run = |b: &mut [u8], at: usize, width: usize| -> Option<()> {
        let from = src.b.get(at + width * range.start..at + width * range.end)?;
        b.get_mut(at + width * n..at + width * (n + k))?.copy_from_slice(from);
        Some(())
    };
    let copied = run(b, HDR, 8)
        .and_then(|()| match l.mode {
            KeyMode::InOrd(_) => Some(()),
            _ => run(b, l.aux_at, 8),
        })
        .and_then(|()| run(b, l.val_at, l.vsize));
    copied.ok_or_else(|| Error::corrupted(WHAT, src.off))?;
    node::header_mut(b).count = (n + k) as u32;
    Ok(())
}

/// Where to split a full node's entries: an index in `1..n` that halves the entries, or
/// for keys in the heap, the heap bytes.
pub fn split_point(e: &Entries<'_>) -> usize {
    let n = e.len();
    if e.l.mode != KeyMode::Heap {
        return n / 2;
    }
    let total = e.heap_used();
    let mut sum = 0;
    for i in 0..n {
        sum += (e.aux(i) >> 32) as usize;
        if 2 * sum >= total {
            return (i + 1).clamp(1, n - 1);
        }
    }
    n / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::prefix;

    fn node(l: &Layout) -> Vec<u8> {
        let mut b = vec![0u8; l.size + 16];
        let start = b.as_ptr().align_offset(16);
        let mut b = b.split_off(start);
        b.truncate(l.size);
        let h = node::header_mut(&mut b);
        h.magic = node::NODE_MAGIC;
        h.size = l.size as u32;
        h.width = l.vsize as u32;
        clear(&mut b, l);
        b
    }

    #[test]
    fn layouts_fit_their_node() {
        for mode in [KeyMode::InOrd(8), KeyMode::InAux(4), KeyMode::Heap] {
            for vsize in [0, 8, 64, 1000, 5000] {
                let l = Layout::new(mode, vsize, 0);
                assert!(l.cap >= MIN_CAP && l.heap_min <= l.size, "{l:?}");
                assert_eq!(l.val_at % 16, 0);
                if mode == KeyMode::Heap {
                    assert!(l.size - l.heap_min >= HEAP_RESERVE);
                }
            }
        }
        assert_eq!(Layout::new(KeyMode::InAux(8), 64, 0).cap, 50);
    }

    /// A run copied at once is the same node as its entries appended one by one, in
    /// every layout; a run that does not fit, or lies past the source's entries, is an
    /// error, not a panic.
    #[test]
    fn append_range_is_append_one_by_one() {
        for l in [
            Layout::new(KeyMode::InAux(8), 24, 0),
            Layout::new(KeyMode::InAux(8), 40, 0),
            Layout::new(KeyMode::InOrd(8), 24, 0),
            Layout::new(KeyMode::Heap, 24, 0),
        ] {
            let mut src = node(&l);
            for i in 0..l.cap {
                let key = (i as u64 * 3 + 1).to_be_bytes();
                insert(&mut src, &l, i, i as u64 * 3 + 1, &key, &vec![i as u8; l.vsize]);
            }
            let e = Entries::new(&src, l, 0).unwrap();
            let (a, z) = (l.cap / 3, l.cap - 2);
            let (mut one, mut run) = (node(&l), node(&l));
            for (i, b) in [(0usize, &mut one), (0, &mut run)] {
                insert(b, &l, i, 0, &0u64.to_be_bytes(), &vec![0xee; l.vsize]);
            }
            for i in a..z {
                append(&mut one, &l, &e, i).unwrap();
            }
            append_range(&mut run, &l, &e, a..z).unwrap();
            let (eo, er) = (Entries::new(&one, l, 0).unwrap(), Entries::new(&run, l, 0).unwrap());
            assert_eq!(er.len(), 1 + z - a, "{l:?}");
            for i in 0..eo.len() {
                assert_eq!(
                    (er.ord(i), er.key(i).unwrap(), er.val(i)),
                    (eo.ord(i), eo.key(i).unwrap(), eo.val(i)),
                    "{l:?} entry {i}"
                );
            }
            assert!(append_range(&mut run, &l, &e, 0..l.cap).is_err(), "{l:?}: over the capacity");
            let mut empty = node(&l);
            assert!(
                append_range(&mut empty, &l, &e, 1..l.cap + 1).is_err(),
                "{l:?}: past the source"
            );
        }
    }

    #[test]
    fn heap_keys_insert_search_remove_and_compact() {
        let l = Layout::new(KeyMode::Heap, 8, 0);
        let mut b = node(&l);
        let keys: Vec<String> = (0..l.cap).map(|i| format!("key-{:03}", (i * 7) % l.cap)).collect();
        for k in &keys {
            let e = Entries::new(&b, l, 0).unwrap();
            let i = e.search(k.as_bytes(), prefix(k.as_bytes())).unwrap().unwrap_err();
            assert!(make_room(&mut b, &l, k.len(), 0).unwrap());
            insert(&mut b, &l, i, prefix(k.as_bytes()), k.as_bytes(), &[1; 8]);
        }
        assert!(!make_room(&mut b, &l, 3, 0).unwrap(), "full by count");
        let e = Entries::new(&b, l, 0).unwrap();
        let mut sorted = keys.clone();
        sorted.sort();
        for (i, k) in sorted.iter().enumerate() {
            assert_eq!(e.key(i).unwrap(), k.as_bytes());
            assert_eq!(e.search(k.as_bytes(), prefix(k.as_bytes())).unwrap(), Ok(i));
        }
        for _ in 0..l.cap / 2 {
            remove(&mut b, &l, 0);
        }
        compact(&mut b, &l, 0).unwrap();
        let e = Entries::new(&b, l, 0).unwrap();
        for (i, k) in sorted[l.cap / 2..].iter().enumerate() {
            assert_eq!(e.key(i).unwrap(), k.as_bytes());
        }
    }

    /// A key heap that needs compacting, one key pointing outside the node: `make_room`
    /// errs and leaves the node as it was (the key was once rewritten as an empty one).
    #[test]
    fn compacting_a_damaged_key_heap_errs_and_changes_nothing() {
        let l = Layout::new(KeyMode::Heap, 8, 0);
        let mut b = node(&l);
        let mut n = 0;
        loop {
            let k = format!("{n:0>300}");
            if !make_room(&mut b, &l, k.len(), 0).unwrap() {
                break;
            }
            insert(&mut b, &l, n, prefix(k.as_bytes()), k.as_bytes(), &[1; 8]);
            n += 1;
        }
        for _ in 0..n / 2 {
            remove(&mut b, &l, 0);
        }
        set_aux(&mut b, &l, 0, (l.size as u64 + 64) | 300 << 32);
        let before = b.clone();
        let got = make_room(&mut b, &l, 300, 0x7000);
        assert!(matches!(got, Err(Error::Corrupted { offset: 0x7000, .. })), "{got:?}");
        assert!(b == before, "the node changed");
    }
}
