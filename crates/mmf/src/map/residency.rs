//! Which pages of a view are in memory: [`Residency`].

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
