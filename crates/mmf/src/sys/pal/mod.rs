//! Helpers every feature of `sys` shares on one platform: return-code conversion,
//! descriptor and handle calls, and (Windows) the owner-only security descriptor.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
