//! Windows: no per-file eviction; sparse ranges are not asked for.

use std::fs::File;
use std::ops::Range;

use crate::error::{Error, Result};

/// Windows has no call that drops one file's pages from the cache.
pub(crate) fn evict(_file: &File) -> Result<()> {
    Err(Error::Unsupported { what: "evicting a file from the cache: Windows has no such call" })
}

/// The whole file, as one range (`GetFileSizeEx`).
pub(crate) fn data_ranges(file: &File) -> Result<Vec<Range<u64>>> {
    let len = file.metadata().map_err(Error::os("GetFileSizeEx"))?.len();
    Ok(std::iter::once(0..len).filter(|r| !r.is_empty()).collect())
}
