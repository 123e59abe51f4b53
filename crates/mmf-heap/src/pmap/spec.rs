//! [`MapSpec`]: the layout of a map's nodes as runtime values (constants for the typed
//! API, built from a stored shape by `mmf heap dump`), and the check of a whole tree.

use crate::entries::{Entries, KeyMode, Layout};
use crate::error::{Error, Result};
use crate::key::prefix;
use crate::node::{self, kind};
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
        let h = node::header(b)?;
        match (h.kind, h.level) {
            (kind::MAP_LEAF, 0) | (kind::MAP_BRANCH, 1..) => Ok((b, h.kind, h.level)),
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
