//! A hash bucket's slots (heap format 3): the side-by-side arrays of a [`Layout`] (`ord`
//! words, `aux` words, values) with gaps. Slot `i` holds an entry when its `ord` word is
//! not 0: the entry's hash with its lowest bit set ([`tag`]). An entry's *home* is the
//! slot its hash places it at in proportion ([`home`]): a look-up asks for the home's
//! hash, key and value at once, before it has read anything, and finds the entry there
//! or a slot or two away. Entries are in hash order, and every slot between an entry and
//! its home holds an entry: a look-up walks from the home and stops at a gap. Inserting
//! moves the entries up to the nearest gap (a few), where a sorted bucket moved half of
//! its entries; a bucket is full when no slot is free.

use crate::entries::{Entries, KeyMode, Layout};
use crate::error::{Error, Result};
pub(crate) use crate::fast::prefetch_line;
use crate::key::MAX_KEY;
use crate::node::{self, HDR, WHAT};

/// The `ord` word of an entry of hash `h`: never 0, the mark of a free slot.
#[inline(always)]
pub fn tag(h: u64) -> u64 {
    h | 1
}

/// The home slot of `ord` in a bucket of `cap` slots whose entries share their first
/// `used` hash bits: the bits after them, scaled to the slots.
#[inline(always)]
pub fn home(ord: u64, used: u32, cap: usize) -> usize {
    let frac = ord.checked_shl(used).unwrap_or(0);
    ((frac as u128 * cap as u128) >> 64) as usize
}

/// Asks for the lines a look-up of `ord` reads (the hashes and keys around its home, the
/// values of the home and the slots on either side) with the bucket's header, before any
/// of them is needed: one wait for memory instead of two for the three in four entries
/// that lie within a slot of their home (1M keys).
#[inline(always)]
pub fn touch(b: &[u8], l: &Layout, ord: u64, used: u32) {
    let i = home(ord, used, l.cap);
    let at = |pos: usize| b.get(pos).copied().unwrap_or(0);
    let (below, above) = (i.saturating_sub(1), (i + 1).min(l.cap - 1));
    let acc = at(0)
        ^ at(l.ord_pos(i))
        ^ at(l.aux_pos(i))
        ^ at(l.val_pos(below))
        ^ at(l.val_pos(i))
        ^ at(l.val_pos(above));
    std::hint::black_box(acc);
}

/// [`touch`]'s lines, asked for with prefetch instructions from the bucket's address
/// `at` alone, before any byte of the bucket is checked or read (a prefetch reads
/// nothing the program sees and faults on nothing, wherever it points).
#[inline(always)]
pub fn prefetch(at: *const u8, l: &Layout, ord: u64, used: u32) {
    let i = home(ord, used, l.cap);
    let (below, above) = (i.saturating_sub(1), (i + 1).min(l.cap - 1));
    for pos in [0, l.ord_pos(i), l.aux_pos(i), l.val_pos(below), l.val_pos(i), l.val_pos(above)] {
        prefetch_line(at.wrapping_add(pos));
    }
}

/// [`prefetch`] for a write: the lines of the slots from `BELOW` under the home to
/// `ABOVE` over it in each array, which an insert that moves entries to the nearest gap
/// reads and writes, asked for together instead of one miss after another inside the move.
#[inline(always)]
pub fn prefetch_write(at: *const u8, l: &Layout, ord: u64, used: u32) {
    const BELOW: usize = 2;
    const ABOVE: usize = 5;
    let i = home(ord, used, l.cap);
    let (lo, hi) = (i.saturating_sub(BELOW), (i + ABOVE).min(l.cap - 1));
    prefetch_line(at);
    for (start, end) in [
        (l.ord_pos(lo), l.ord_pos(hi) + 7),
        (l.aux_pos(lo), l.aux_pos(hi) + 7),
        (l.val_pos(lo), l.val_pos(hi) + l.vsize.max(1) - 1),
    ] {
        let mut line = start & !63;
        while line <= end {
            prefetch_line(at.wrapping_add(line));
            line += 64;
        }
    }
}

/// Where a look-up ended: the entry's slot, or where it would go (the first slot of the
/// run around its home whose `ord` is above it, or past the run).
pub type Found = std::result::Result<usize, usize>;

/// Finds `key` of tag `ord` in the slots `e` (built by [`Entries::slots`]) of a bucket
/// whose entries share `used` hash bits.
///
/// # Errors
/// [`Error::Corrupted`] for a bad key in the node.
#[inline(always)]
pub fn find(e: &Entries<'_>, key: &[u8], ord: u64, used: u32) -> Result<Found> {
    let cap = e.len();
    let home = home(ord, used, cap);
    let at = e.ord(home);
    if at == 0 {
        return Ok(Err(home));
    }
    // The first slot of the run whose ord is not below `ord`.
    let mut i = home;
    if at < ord {
        i += 1;
        while i < cap && e.ord(i) != 0 && e.ord(i) < ord {
            i += 1;
        }
    } else {
        while i > 0 && e.ord(i - 1) != 0 && e.ord(i - 1) >= ord {
            i -= 1;
        }
    }
    while i < cap && e.ord(i) == ord {
        if e.key(i)? == key {
            return Ok(Ok(i));
        }
        i += 1;
    }
    Ok(Err(i))
}

/// The slots of the occupied entries of `e`, in order.
pub fn occupied<'a>(e: &'a Entries<'_>) -> impl Iterator<Item = usize> + 'a {
    (0..e.len()).filter(|&i| e.ord(i) != 0)
}

fn count(b: &[u8]) -> usize {
    (node::words(b)[1] >> 32) as usize
}

fn set_count(b: &mut [u8], n: usize) {
    node::header_mut(b).count = n as u32;
}

fn ord_at(b: &[u8], l: &Layout, i: usize) -> u64 {
    u64::from_be_bytes(b[l.ord_pos(i)..][..8].try_into().unwrap_or_default())
}

/// Moves slot `from`'s entry to the free slot `to`, and frees `from`.
fn move_slot(b: &mut [u8], l: &Layout, from: usize, to: usize) {
    b.copy_within(l.ord_pos(from)..l.ord_pos(from) + 8, l.ord_pos(to));
    b.copy_within(l.aux_pos(from)..l.aux_pos(from) + 8, l.aux_pos(to));
    b.copy_within(l.val_pos(from)..l.val_pos(from) + l.vsize, l.val_pos(to));
    clear_slot(b, l, from);
}

fn clear_slot(b: &mut [u8], l: &Layout, i: usize) {
    b[l.ord_pos(i)..][..8].fill(0);
    b[l.aux_pos(i)..][..8].fill(0);
    b[l.val_pos(i)..][..l.vsize].fill(0);
}

/// Moves the entries of slots `range` by one slot, up (`up`) or down, into the free slot
/// next to it (as one copy of each array's run); the slot it leaves at the other end is
/// for the caller to fill.
fn shift(b: &mut [u8], l: &Layout, range: std::ops::Range<usize>, up: bool) {
    let (start, end) = (range.start, range.end);
    let mv = |b: &mut [u8], at: usize, width: usize| {
        let (from, to) = (at + width * start..at + width * end, at + width * start);
        if up { b.copy_within(from, to + width) } else { b.copy_within(from, to - width) }
    };
    mv(b, HDR, 8);
    mv(b, l.aux_at(), 8);
    mv(b, l.val_at(), l.vsize);
}

/// Writes an entry into the free slot `i`.
fn put(b: &mut [u8], l: &Layout, i: usize, ord: u64, key: &[u8], val: &[u8]) {
    b[l.ord_pos(i)..][..8].copy_from_slice(&ord.to_be_bytes());
    let aux = match l.mode {
        KeyMode::InAux(w) | KeyMode::InOrd(w) => {
            let mut a = [0u8; 8];
            a[..w].copy_from_slice(key);
            u64::from_le_bytes(a)
        }
        KeyMode::Heap => {
            let heap = node::header(b).map_or(l.size, |h| h.heap as usize) - key.len();
            b[heap..heap + key.len()].copy_from_slice(key);
            node::header_mut(b).heap = heap as u32;
            heap as u64 | (key.len() as u64) << 32
        }
    };
    b[l.aux_pos(i)..][..8].copy_from_slice(&aux.to_le_bytes());
    b[l.val_pos(i)..][..l.vsize].copy_from_slice(val);
}

/// Whether an entry with a key of `key_len` bytes fits in the bucket `b` (at `off`): a
/// free slot, and room in the key heap (after compacting it if need be, which this does).
///
/// # Errors
/// [`Error::Corrupted`] for a bucket whose key heap holds a key outside it (the bucket
/// unchanged).
pub fn make_room(b: &mut [u8], l: &Layout, key_len: usize, off: u64) -> Result<bool> {
    if count(b) >= l.cap {
        return Ok(false);
    }
    if l.mode != KeyMode::Heap {
        return Ok(true);
    }
    let heap = node::header(b).map_or(0, |h| h.heap as usize);
    if heap >= l.heap_min() + key_len {
        return Ok(true);
    }
    let used = Entries::slots(b, *l, off)?;
    if heap_used(&used).saturating_add(key_len) > l.size - l.heap_min() {
        return Ok(false);
    }
    compact(b, l, off)?;
    Ok(true)
}

/// Bytes of the key heap the entries use.
pub fn heap_used(e: &Entries<'_>) -> usize {
    if e.layout().mode != KeyMode::Heap {
        return 0;
    }
    occupied(e).map(|i| (e.aux(i) >> 32) as usize).sum()
}

/// Rewrites the key heap without the bytes of removed keys. Every key is read before a
/// byte changes: one outside the heap is an error, and the bucket stays as it was (a
/// damaged key was once rewritten as an empty one, a key the map then never found).
fn compact(b: &mut [u8], l: &Layout, off: u64) -> Result<()> {
    let copy = b.to_vec();
    let old = Entries::slots(&copy, *l, off)?;
    let keys = occupied(&old).map(|i| Ok((i, old.key(i)?))).collect::<Result<Vec<_>>>()?;
    let mut heap = l.size;
    for (i, key) in keys {
        heap -= key.len();
        b[heap..heap + key.len()].copy_from_slice(key);
        b[l.aux_pos(i)..][..8]
            .copy_from_slice(&(heap as u64 | (key.len() as u64) << 32).to_le_bytes());
    }
    node::header_mut(b).heap = heap as u32;
    Ok(())
}

/// Inserts an entry where [`find`] said it goes (`Err(at)`), into a bucket that has room
/// ([`make_room`]): into `at` if it is free, else moving the entries between `at` and the
/// nearest free slot one slot towards it. False, with nothing changed, if no slot is free
/// after all: a header whose count is below its entries (the node's corruption).
#[must_use]
pub fn insert(b: &mut [u8], l: &Layout, at: usize, ord: u64, key: &[u8], val: &[u8]) -> bool {
    let cap = l.cap;
    let n = count(b);
    let free = |i: usize| ord_at(b, l, i) == 0;
    let i = if at < cap && free(at) {
        at
    } else {
        let up = (at..cap).find(|&i| free(i));
        // A free slot below only if it is nearer.
        let reach = up.map_or(at, |u| (u - at).min(at));
        let down = (at - reach..at).rev().find(|&i| free(i));
        match (up, down) {
            (Some(u), Some(d)) if u - at <= at - d => {
                shift(b, l, at..u, true);
                at
            }
            (Some(u), None) => {
                shift(b, l, at..u, true);
                at
            }
            (_, Some(d)) => {
                shift(b, l, d + 1..at, false);
                at - 1
            }
            (None, None) => return false,
        }
    };
    put(b, l, i, ord, key, val);
    set_count(b, n + 1);
    true
}

/// Removes the entry of slot `i` of a bucket of `used` hash bits, then closes the gap it
/// leaves where an entry's way to its home crossed it (its key bytes stay in the heap
/// until it is compacted).
pub fn remove(b: &mut [u8], l: &Layout, i: usize, used: u32) {
    let cap = l.cap;
    clear_slot(b, l, i);
    let n = count(b).saturating_sub(1);
    set_count(b, n);
    if n == 0 {
        node::header_mut(b).heap = l.size as u32;
    }
    // Entries above their home just past the gap move down into it, one after another.
    let mut gap = i;
    while gap + 1 < cap {
        let o = ord_at(b, l, gap + 1);
        if o == 0 || home(o, used, cap) > gap {
            break;
        }
        move_slot(b, l, gap + 1, gap);
        gap += 1;
    }
    if gap != i {
        return;
    }
    // Else entries below their home just before the gap move up into it.
    while gap > 0 {
        let o = ord_at(b, l, gap - 1);
        if o == 0 || home(o, used, cap) < gap {
            break;
        }
        move_slot(b, l, gap - 1, gap);
        gap -= 1;
    }
}

/// Replaces slot `i`'s value.
pub fn set_val(b: &mut [u8], l: &Layout, i: usize, val: &[u8]) {
    b[l.val_pos(i)..][..l.vsize].copy_from_slice(val);
}

/// Fills the empty bucket `b` (of `used` hash bits) with the entries of `src` in slots
/// `from` (in hash order; the halves of a split, or two buckets merged): each at its home,
/// or just above the entry before it, or low enough that those after it still fit.
///
/// # Errors
/// [`Error::Corrupted`] when the entries do not fit (more than the slots, or keys over
/// the key heap) or are out of order, or for a bad key in `src`.
pub fn fill(b: &mut [u8], l: &Layout, used: u32, src: &[(&Entries<'_>, Vec<usize>)]) -> Result<()> {
    let cap = l.cap;
    let m: usize = src.iter().map(|(_, s)| s.len()).sum();
    let bad = |e: &Entries<'_>| Error::corrupted(WHAT, e.off);
    let mut next = 0usize;
    let mut last = 0u64;
    let mut done = 0usize;
    for (e, slots) in src {
        if m > cap {
            return Err(bad(e));
        }
        for &s in slots {
            let o = e.ord(s);
            let key = e.key(s)?;
            if o < last || o == 0 || key.len() > MAX_KEY {
                return Err(bad(e));
            }
            if l.mode == KeyMode::Heap {
                let heap = node::header(b).map_or(0, |h| h.heap as usize);
                if heap < l.heap_min() + key.len() {
                    return Err(bad(e));
                }
            }
            let i = home(o, used, cap).max(next).min(cap - (m - done));
            put(b, l, i, o, key, e.val(s));
            (next, last, done) = (i + 1, o, done + 1);
        }
    }
    set_count(b, m);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn bucket(l: &Layout) -> Vec<u8> {
        let mut b = vec![0u8; l.size];
        let h = node::header_mut(&mut b);
        (h.size, h.heap, h.width) = (l.size as u32, l.size as u32, l.vsize as u32);
        b
    }

    /// The invariant a look-up relies on: entries in hash order, each joined to its home
    /// by taken slots; the count; and every entry of the model found with its value (keys
    /// are the tags themselves).
    fn check(b: &[u8], l: &Layout, used: u32, model: &BTreeMap<u64, u64>, find_all: bool) {
        let e = Entries::slots(b, *l, 0).unwrap();
        let slots: Vec<usize> = occupied(&e).collect();
        assert_eq!((slots.len(), count(b)), (model.len(), model.len()));
        let ords: Vec<u64> = slots.iter().map(|&i| e.ord(i)).collect();
        assert!(ords.windows(2).all(|w| w[0] < w[1]), "hash order");
        for &i in &slots {
            let h = home(e.ord(i), used, l.cap);
            let (lo, hi) = (i.min(h), i.max(h));
            assert!((lo..=hi).all(|s| e.ord(s) != 0), "slot {i} is joined to its home {h}");
        }
        for (&o, &v) in model.iter().filter(|_| find_all) {
            let i = find(&e, &o.to_le_bytes(), o, used).unwrap().expect("found");
            assert_eq!(e.val(i), v.to_le_bytes());
        }
    }

    /// Random inserts, updates and removals of 400 keys (more than the 168 slots: the
    /// bucket is often full), their hashes spread evenly or crowded at the start, the
    /// middle or the end of the bucket (entries then sit below their homes), with 0, 3
    /// or 17 hash bits taken by the directories; then the entries refilled into a new
    /// bucket as a split or a merge does.
    #[test]
    fn inserts_and_removes_keep_every_entry_joined_to_its_home() {
        let l = Layout::new(KeyMode::InAux(8), 8, 0);
        assert_eq!(l.cap, 168);
        for used in [0u32, 3, 17] {
            for crowd in 0..4u64 {
                for seed in 1..=3u64 {
                    let mut x = (seed * 4 + crowd).wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
                    let mut rand = move || {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x
                    };
                    let span = u64::MAX >> used;
                    let tags: Vec<u64> = (0..400)
                        .map(|_| {
                            let r = rand();
                            tag(match crowd {
                                0 => r >> used,
                                1 => r % 5000,
                                2 => span / 2 + r % 5000,
                                _ => span - r % 5000,
                            })
                        })
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    let (mut b, mut model) = (bucket(&l), BTreeMap::new());
                    for step in 0..1500u64 {
                        let r = rand();
                        let o = tags[(r % tags.len() as u64) as usize];
                        let e = Entries::slots(&b, l, 0).unwrap();
                        match find(&e, &o.to_le_bytes(), o, used).unwrap() {
                            Ok(i) if r >> 60 < 6 => {
                                remove(&mut b, &l, i, used);
                                model.remove(&o);
                            }
                            Ok(i) => {
                                set_val(&mut b, &l, i, &step.to_le_bytes());
                                model.insert(o, step);
                            }
                            Err(at) if make_room(&mut b, &l, 8, 0).unwrap() => {
                                assert!(insert(
                                    &mut b,
                                    &l,
                                    at,
                                    o,
                                    &o.to_le_bytes(),
                                    &step.to_le_bytes()
                                ));
                                model.insert(o, step);
                            }
                            Err(_) => assert_eq!(model.len(), l.cap, "refused only when full"),
                        }
                        check(&b, &l, used, &model, step % 16 == 0);
                    }
                    let e = Entries::slots(&b, l, 0).unwrap();
                    let mut refilled = bucket(&l);
                    fill(&mut refilled, &l, used, &[(&e, occupied(&e).collect())]).unwrap();
                    check(&b, &l, used, &model, true);
                    check(&refilled, &l, used, &model, true);
                }
            }
        }
    }

    /// A key heap that must be compacted for a new key, with one entry's key pointing
    /// outside the node: `make_room` errs and leaves the bucket as it was (it used to
    /// rewrite the damaged key as an empty one and let the insert go on).
    #[test]
    fn compacting_a_damaged_key_heap_errs_and_changes_nothing() {
        let l = Layout::new(KeyMode::Heap, 8, 0);
        let mut b = bucket(&l);
        let mut placed = Vec::new();
        // Long keys until the heap has no room, then half of them removed: room only
        // after compacting.
        for k in 0u64.. {
            let key = format!("{k:0>200}");
            let o = tag(k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            if !make_room(&mut b, &l, key.len(), 0).unwrap() {
                break;
            }
            let e = Entries::slots(&b, l, 0).unwrap();
            let at = find(&e, key.as_bytes(), o, 0).unwrap().unwrap_err();
            assert!(insert(&mut b, &l, at, o, key.as_bytes(), &k.to_le_bytes()));
            placed.push((o, key));
        }
        for (o, key) in placed.iter().step_by(2) {
            let e = Entries::slots(&b, l, 0).unwrap();
            let i = find(&e, key.as_bytes(), *o, 0).unwrap().unwrap();
            remove(&mut b, &l, i, 0);
        }
        let e = Entries::slots(&b, l, 0).unwrap();
        let victim = occupied(&e).next().unwrap();
        let far = (l.size as u64 + 64) | 200 << 32;
        b[l.aux_pos(victim)..][..8].copy_from_slice(&far.to_le_bytes());
        let before = b.clone();
        let got = make_room(&mut b, &l, 200, 0x5000);
        assert!(
            matches!(got, Err(Error::Corrupted { offset: 0x5000, .. })),
            "a key outside the node: {got:?}"
        );
        assert!(b == before, "the bucket changed");
    }
}
