//! Windows helpers: `BOOL` conversion, error-code tests, 64-bit splits, wide strings, the
//! system's page sizes, and the owner-only security descriptor every named object gets.

use std::io;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{CloseHandle, GENERIC_ALL, HANDLE};
use windows_sys::Win32::Security::{
    ACCESS_ALLOWED_ACE, ACL, ACL_REVISION, AddAccessAllowedAce, GetLengthSid, GetTokenInformation,
    InitializeAcl, InitializeSecurityDescriptor, SECURITY_ATTRIBUTES, SECURITY_DESCRIPTOR,
    SetSecurityDescriptorDacl, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
use windows_sys::Win32::System::SystemServices::SECURITY_DESCRIPTOR_REVISION;
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use crate::error::{Error, Result};

/// A Win32 `BOOL` result: `FALSE` → the thread's last error (`GetLastError`).
pub(crate) fn cvt(ok: i32) -> io::Result<()> {
    if ok == 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Whether `err` is the Win32 error `code`.
pub(crate) fn is(err: &io::Error, code: u32) -> bool {
    err.raw_os_error() == Some(code as i32)
}

/// A 64-bit size or offset as the (high, low) `DWORD` pair Win32 takes.
pub(crate) fn split(n: u64) -> (u32, u32) {
    ((n >> 32) as u32, n as u32)
}

/// A NUL-terminated UTF-16 string for the `W` functions.
pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

/// `GetSystemInfo`, asked once: (page size, allocation granularity).
fn system_info() -> (usize, usize) {
    static INFO: OnceLock<(usize, usize)> = OnceLock::new();
    *INFO.get_or_init(|| {
        // SAFETY: SYSTEM_INFO is plain data; GetSystemInfo fills it and cannot fail.
        let info = unsafe {
            let mut info: SYSTEM_INFO = std::mem::zeroed();
            GetSystemInfo(&mut info);
            info
        };
        (info.dwPageSize as usize, info.dwAllocationGranularity as usize)
    })
}

/// `dwPageSize`.
pub(crate) fn page_size() -> usize {
    system_info().0
}

/// `dwAllocationGranularity` (64 KiB): views start at multiples of it.
pub(crate) fn allocation_granularity() -> usize {
    system_info().1
}

/// An owner-only security descriptor: a DACL with one ACE granting the current user all
/// access (never a NULL DACL, which would grant everyone everything). Every named object
/// mmf creates on Windows gets one.
pub(crate) struct OwnerOnly {
    sd: Box<SECURITY_DESCRIPTOR>,
    _acl: Vec<u64>,
    _user: Vec<u64>,
}

impl OwnerOnly {
    /// Reads the current user's SID from the process token and builds the descriptor.
    pub(crate) fn new() -> Result<OwnerOnly> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: the current-process pseudo-handle and an out-pointer to a local.
        cvt(unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) })
            .map_err(Error::os("OpenProcessToken"))?;
        let mut len = 0u32;
        // SAFETY: asks for the size only (the call fails with ERROR_INSUFFICIENT_BUFFER).
        unsafe { GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut len) };
        let mut user = vec![0u64; (len as usize).div_ceil(8)];
        // SAFETY: `user` has at least `len` bytes, 8-aligned for TOKEN_USER.
        let got = cvt(unsafe {
            GetTokenInformation(token, TokenUser, user.as_mut_ptr().cast(), len, &mut len)
        });
        // SAFETY: the token handle is ours and closed once.
        unsafe { CloseHandle(token) };
        got.map_err(Error::os("GetTokenInformation(TokenUser)"))?;
        // SAFETY: GetTokenInformation(TokenUser) filled `user` with a TOKEN_USER whose SID
        // points into the same buffer, which lives as long as `self`.
        let sid = unsafe { (*user.as_ptr().cast::<TOKEN_USER>()).User.Sid };
        // SAFETY: `sid` is a valid SID (above).
        let sid_len = unsafe { GetLengthSid(sid) } as usize;
        let acl_len = size_of::<ACL>() + size_of::<ACCESS_ALLOWED_ACE>() + sid_len;
        let mut acl = vec![0u64; acl_len.div_ceil(8)];
        let acl_ptr = acl.as_mut_ptr().cast::<ACL>();
        // SAFETY: `acl` has `acl_len` writable bytes, 8-aligned.
        cvt(unsafe { InitializeAcl(acl_ptr, acl_len as u32, ACL_REVISION) })
            .map_err(Error::os("InitializeAcl"))?;
        // SAFETY: the ACL was initialised with room for one ACE with this SID.
        cvt(unsafe { AddAccessAllowedAce(acl_ptr, ACL_REVISION, GENERIC_ALL, sid) })
            .map_err(Error::os("AddAccessAllowedAce"))?;
        // SAFETY: SECURITY_DESCRIPTOR is plain data that the call initialises.
        let mut sd: Box<SECURITY_DESCRIPTOR> = Box::new(unsafe { std::mem::zeroed() });
        let sd_ptr = (&raw mut *sd).cast();
        // SAFETY: `sd` is a writable SECURITY_DESCRIPTOR.
        cvt(unsafe { InitializeSecurityDescriptor(sd_ptr, SECURITY_DESCRIPTOR_REVISION) })
            .map_err(Error::os("InitializeSecurityDescriptor"))?;
        // SAFETY: `acl` outlives the descriptor (both are owned by the returned value).
        cvt(unsafe { SetSecurityDescriptorDacl(sd_ptr, 1, acl_ptr, 0) })
            .map_err(Error::os("SetSecurityDescriptorDacl"))?;
        Ok(OwnerOnly { sd, _acl: acl, _user: user })
    }

    /// Security attributes for a `Create*W` call: this descriptor, handle not inheritable.
    /// They point into `self`, which must outlive the call.
    pub(crate) fn attributes(&mut self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: (&raw mut *self.sd).cast(),
            bInheritHandle: 0,
        }
    }

    /// The current user's SID, as read from the token.
    #[cfg(test)]
    pub(crate) fn user_sid(&self) -> windows_sys::Win32::Security::PSID {
        // SAFETY: `user` holds the TOKEN_USER that `new` read; its SID points into it.
        unsafe { (*self._user.as_ptr().cast::<TOKEN_USER>()).User.Sid }
    }
}

/// The processor the calling thread runs on now, within its processor group
/// (`GetCurrentProcessorNumber`). A hint: the thread may move at once.
#[inline]
#[cfg_attr(mmf_loom, allow(dead_code))]
pub(crate) fn current_cpu() -> Option<u32> {
    // SAFETY: GetCurrentProcessorNumber takes no arguments and cannot fail.
    Some(unsafe { windows_sys::Win32::System::Threading::GetCurrentProcessorNumber() })
}
