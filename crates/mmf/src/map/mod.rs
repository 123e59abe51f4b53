//! The mapping layer: file-mapping objects ([`Mapping`]), views ([`View`], [`ViewMut`]),
//! copies in and out of them, typed shared access, advice, residency and the page cache.
//!
//! Platform-free: every OS call goes through `crate::sys`.

mod accessor;
pub mod cache;
pub mod file;
mod flush;
mod grow;
mod mapping;
mod residency;
mod shared;
mod span;
mod stream;
mod view;
mod view_options;
mod view_os;
mod write_through;

pub use crate::sys::map::{Access, Advice, Advised, FileKind};
pub use accessor::Number;
pub use flush::Flushed;
pub use grow::{GrowView, GrowViewMut};
pub use mapping::{Mapping, MappingOptions};

pub use residency::Residency;
pub use shared::{LoadOnly, Shared};
pub use stream::Stream;
pub use view::{View, ViewMut};
pub use view_options::ViewOptions;
