//! [`MapSpec`]: the layout of a map's nodes as runtime values (constants for the typed
//! API, built from a stored shape by `mmf heap dump`), and the check of a whole tree.

use crate::entries::{self, Entries, KeyMode, Layout};
use crate::error::{Error, Result};
use crate::fast::{Nodes, prefetch_range};
use crate::key::prefix;
use crate::node::{self, HDR, kind};
use crate::read::private::Source;

use super::Handle;

/// How an ordered map with keys of encoded width `key_width` (0: variable) and values of
/// `vsize` bytes is laid out: what the typed [`PMap`](super::PMap) uses as a constant, and `mmf heap
/// dump` builds from a shape read from the file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MapSpec {
    pub leaf: Layout,
    pub branch: Layout,
    /// Node bytes (leaves and branches alike).
    pub size: usize,
    /// Whether key bytes are a valid key (UTF-8 for strings).
    pub key_ok: fn(&[u8]) -> bool,
}

impl MapSpec {
    pub const fn new(key_width: usize, vsize: usize, key_ok: fn(&[u8]) -> bool) -> MapSpec {
        let mode = KeyMode::for_width(key_width, true);
        let leaf = Layout::new(mode, vsize, Layout::new(mode, 8, 0).size);
        let branch = Layout::new(mode, 8, leaf.size);
        MapSpec { leaf, branch, size: leaf.size, key_ok }
    }

    /// The node at `off`, checked, with its header.
    pub(crate) fn node<'r>(
        &self,
        r: &'r (impl Source + ?Sized),
        off: u64,
    ) -> Result<(&'r [u8], u8, u8)> {
        let b = node::read(r, off, self.size)?;
        let (k, level) = Self::kind_level(b, off)?;
        Ok((b, k, level))
    }

    /// The kind and level of the node bytes `b` at `off` (which `node::read` or a copy on
    /// write checked), if they are a map's.
    pub(crate) fn kind_level(b: &[u8], off: u64) -> Result<(u8, u8)> {
        let h = node::header(b).map_err(|_| Error::corrupted(node::WHAT, off))?;
        match (h.kind, h.level) {
            (kind::MAP_LEAF, 0) | (kind::MAP_BRANCH, 1..) => Ok((h.kind, h.level)),
            _ => Err(Error::corrupted(node::WHAT, off)),
        }
    }

    pub(crate) fn entries<'r>(&self, b: &'r [u8], k: u8, off: u64) -> Result<Entries<'r>> {
        let l = if k == kind::MAP_LEAF { self.leaf } else { self.branch };
        let e = Entries::new(b, l, off)?;
        if e.len() == 0 && k == kind::MAP_BRANCH {
            return Err(Error::corrupted(node::WHAT, off));
        }
        Ok(e)
    }

    /// The value bytes of `key` (encoded; `p` its prefix) in the tree at `root`, through
    /// a look-up's hot path: `Some(None)` where the map has no such key, `None` where
    /// anything on the way does not check out (the checked path, `PMap::get`, then says
    /// what). The same checks as [`node`](Self::node) and [`entries`](Self::entries)
    /// make, on the header's words, with no error to build; a leaf's header and `ord`
    /// lines are asked for from its address before any of its bytes is checked (a
    /// branch's are mostly cached: a map of 1M keys has ~150).
    #[inline(always)]
    pub(crate) fn get_fast<'r>(
        &self,
        r: impl Nodes<'r>,
        root: u64,
        key: &[u8],
        p: u64,
    ) -> Option<Option<&'r [u8]>> {
        let mut off = root;
        let mut level = None;
        loop {
            let at = if level == Some(0) { r.address(off) } else { None };
            if let Some(at) = at {
                prefetch_range(at, HDR + 8 * self.leaf.cap);
            }
            let (b, w) = node::read_words(r, off, self.size)?;
            if level == Some(0) && at.is_none() {
                entries::touch_ords(b, &self.leaf);
            }
            let lv = (w[0] >> 40) as u8;
            let (k, l) = match lv {
                0 => (kind::MAP_LEAF, &self.leaf),
                _ => (kind::MAP_BRANCH, &self.branch),
            };
            // Kind and level, the size, and the key heap within it (`node::read`); the
            // rest (count, key heap, width) is `search_words`'s.
            if w[0] & node::WORD0_MASK != node::word0(k, lv)
                || level.is_some_and(|l| l != lv)
                || w[1] as u32 as usize != self.size
                || w[2] as u32 as usize > self.size
            {
                return None;
            }
            if lv == 0 {
                return match entries::search_words(b, w, l, key, p, 0)? {
                    Ok(i) => Some(Some(b.get(l.val_pos(i)..)?.get(..l.vsize)?)),
                    Err(_) => Some(None),
                };
            }
            // A branch's child: as `Entries::child_for`.
            if w[1] >> 32 == 0 {
                return None;
            }
            let i = match entries::search_words(b, w, l, key, p, 1)? {
                Ok(i) => i,
                Err(i) => i - 1,
            };
            let child = b.get(l.val_pos(i)..)?.first_chunk::<8>()?;
            off = u64::from_le_bytes(*child);
            level = Some(lv - 1);
        }
    }

    /// Checks every node of the map `handle`.
    pub fn verify(&self, r: &(impl Source + ?Sized), handle: Handle) -> Result<()> {
        let mut count = 0;
        if handle.root != 0 {
            let mut last = None;
            self.verify_node(r, handle.root, None, None, None, &mut count, &mut last)?;
        }
        if count != handle.len {
            return Err(Error::corrupted("collection length", handle.root));
        }
        Ok(())
    }

    /// Checks the subtree at `off`, whose keys must lie in `lo..hi` (as its parent
    /// routes them).
    #[allow(clippy::too_many_arguments)]
    fn verify_node<'r>(
        &self,
        r: &'r (impl Source + ?Sized),
        off: u64,
        level: Option<u8>,
        lo: Option<&'r [u8]>,
        hi: Option<&'r [u8]>,
        count: &mut u64,
        last: &mut Option<&'r [u8]>,
    ) -> Result<()> {
        let (b, k, lv) = self.node(r, off)?;
        if level.is_some_and(|l| l != lv) {
            return Err(Error::corrupted(node::WHAT, off));
        }
        node::verify(r, b, off)?;
        let e = self.entries(b, k, off)?;
        let outside = |key: &[u8]| lo.is_some_and(|lo| key < lo) || hi.is_some_and(|hi| key >= hi);
        if k == kind::MAP_BRANCH {
            for i in 0..e.len() {
                // Entry i routes keys from its key (entry 0: from the parent's bound) to
                // the next entry's.
                let from = if i == 0 { lo } else { Some(e.key(i)?) };
                let to = if i + 1 < e.len() { Some(e.key(i + 1)?) } else { hi };
                if from.is_some_and(outside) || matches!((from, to), (Some(f), Some(t)) if f >= t) {
                    return Err(Error::corrupted(node::WHAT, off));
                }
                self.verify_node(r, e.child(i), Some(lv - 1), from, to, count, last)?;
            }
            return Ok(());
        }
        if e.len() == 0 {
            return Err(Error::corrupted(node::WHAT, off));
        }
        for i in 0..e.len() {
            let key = e.key(i)?;
            if last.is_some_and(|l| l >= key)
                || outside(key)
                || !(self.key_ok)(key)
                || e.ord(i) != prefix(key)
            {
                return Err(Error::corrupted(node::WHAT, off));
            }
            *last = Some(key);
            *count += 1;
        }
        Ok(())
    }
}
