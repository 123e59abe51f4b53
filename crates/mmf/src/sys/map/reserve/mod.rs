//! Contract: address space reserved for a view that grows in place (growable views).
//!
//! Every platform provides:
//!
//! - `Reserved::new(section, kind, map_offset, capacity, initial)`: `capacity` bytes of
//!   address space that nothing else will be placed in, with the section's bytes from the
//!   granularity-aligned `map_offset` mapped over the first `initial` of them;
//! - `Reserved::extend(old, new, to)`: the section's bytes mapped over the first `to`
//!   bytes of the reservation (`to` ≤ capacity), at the same address; `new` is the
//!   section that covers them (the same as `old` where sections grow with their object).
//!   On failure the reservation maps what it mapped before, or reports that it mapped
//!   nothing any more (`mapped() == 0`); it never maps over anything outside itself;
//! - `grow_object(section, file, access, (old_len, new_len), allocate) -> Option<Section>`:
//!   the object behind the section grown from `old_len` to `new_len` bytes, its blocks
//!   allocated where the file system can if `allocate` (a full disk is an error now, not a
//!   fault at a later write), and a new section where the old one cannot cover it; it
//!   never shrinks the object (another holder may have grown it meanwhile), so a failure
//!   leaves whatever size it could give it;
//! - `current_section(section, file, access, len)`: a section covering `len` bytes of an
//!   object another holder grew.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{Reserved, current_section, grow_object};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{Reserved, current_section, grow_object};

// SAFETY: a reservation is address space owned by one growable view; the OS calls made on
// it are thread-safe, and the pointer is only handed out as the view's base.
unsafe impl Send for Reserved {}
// SAFETY: `&Reserved` only reads the base, capacity and mapped length.
unsafe impl Sync for Reserved {}
