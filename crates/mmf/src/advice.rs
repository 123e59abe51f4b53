//! Large-file tools: access advice and page residency.

/// How a view will be used, for the OS's read-ahead and paging (`madvise` advice).
///
/// ```
/// use mmf::{Advice, Mapping};
///
/// let view = Mapping::anonymous(1 << 20)?.view(..)?;
/// view.advise(Advice::Sequential)?; // Linux: applied; Windows: reported as not supported
/// # Ok::<(), mmf::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// No special treatment (undoes `Sequential` and `Random`).
    Normal,
    /// Pages will be read in order: read ahead aggressively, drop read pages early.
    Sequential,
    /// Pages will be read in no order: do not read ahead.
    Random,
    /// The pages will be needed soon: start reading them in the background.
    WillNeed,
    /// Back the view with transparent huge pages where the kernel has them.
    HugePages,
    /// Do not use transparent huge pages for the view.
    NoHugePages,
}

/// Whether advice took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Advised {
    /// The OS accepted the advice.
    Applied,
    /// This platform or kernel has no equivalent; nothing was done.
    NotSupported,
}

/// Which pages of a view are in memory, as [`View::residency`](crate::View::residency)
/// found them.
///
/// ```
/// use mmf::Mapping;
///
/// let mapping = Mapping::anonymous(64 * 1024)?;
/// let mut view = mapping.view_mut(..)?;
/// view.write_at(0, b"x")?; // touches the first page
/// let r = view.residency()?;
/// assert!(r.is_resident(0));
/// assert!(r.resident_pages() >= 1 && r.resident_pages() <= r.pages());
/// # Ok::<(), mmf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Residency {
    page_size: usize,
    lead: usize,
    pages: Vec<bool>,
}

impl Residency {
    pub(crate) fn new(page_size: usize, lead: usize, pages: Vec<bool>) -> Self {
        Residency { page_size, lead, pages }
    }

    /// Page size the counts are in.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Number of pages the view touches (its first and last page may be partial).
    pub fn pages(&self) -> usize {
        self.pages.len()
    }

    /// Number of those pages in memory.
    pub fn resident_pages(&self) -> usize {
        self.pages.iter().filter(|&&r| r).count()
    }

    /// Whether page `index` (0 = the page holding the view's first byte) is in memory.
    /// `false` past the end.
    pub fn is_resident(&self, index: usize) -> bool {
        self.pages.get(index).copied().unwrap_or(false)
    }

    /// Whether the page holding the view's byte `offset` is in memory.
    pub fn is_byte_resident(&self, offset: usize) -> bool {
        self.is_resident((self.lead + offset) / self.page_size)
    }

    /// One flag per page, in order.
    pub fn as_slice(&self) -> &[bool] {
        &self.pages
    }
}
