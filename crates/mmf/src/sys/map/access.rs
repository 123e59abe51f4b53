//! [`Access`]: the protection of a mapping object. In a file of its own, importing nothing
//! of the crate, because `crate::error` names it too.

use std::fmt;

/// The protection of a mapping object, and so which views it allows
/// (`PAGE_READONLY`, `PAGE_READWRITE`, `PAGE_WRITECOPY` on Windows).
///
/// | mapping | read-only view | read-write view | copy-on-write view |
/// |---|---|---|---|
/// | `ReadOnly` | yes | no | yes |
/// | `ReadWrite` | yes | yes | yes |
/// | `CopyOnWrite` | yes | no | yes |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Access {
    /// Views may read the file; writing needs a copy-on-write view.
    #[default]
    ReadOnly,
    /// Views may read and write the file; the file must be open for reading and writing.
    /// Only this access grows a file to the mapping's size.
    ReadWrite,
    /// Views read the file and write private copies of its pages; the file never changes.
    CopyOnWrite,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::ReadOnly => "read-only",
            Access::ReadWrite => "read-write",
            Access::CopyOnWrite => "copy-on-write",
        })
    }
}
