//! Named mappings on Windows: `CreateFileMappingW` / `OpenFileMappingW` with the name
//! `Local\NAME` (or `Global\NAME`). Windows keeps a named section exactly as long as a
//! handle or a view of it exists, in any process, so nothing here manages lifetime.
//! Created objects get an explicit owner-only DACL; handles are not inheritable.

use std::fs::File;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::sync::Arc;

use windows_sys::Win32::Foundation::{
    ERROR_ALREADY_EXISTS, ERROR_FILE_NOT_FOUND, GetLastError, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP, FILE_MAP_READ, FILE_MAP_WRITE, OpenFileMappingW, SEC_FILE,
    SECTION_QUERY,
};

use super::{CreationMode, NamedInfo, NamedSpec, Opened, check_size};
use crate::error::{Error, Result};
use crate::sys::map::{Access, Memory, Section, protection};
use crate::sys::pal::{OwnerOnly, split, wide};

/// A duplicate of the section handle, kept by the mapping and by every view. Windows
/// removes a name when the last *handle* closes, even while views remain; holding a handle
/// as long as a view exists gives the lifetime mmf promises on every platform: the name
/// lives while anyone holds a mapping or a view.
#[derive(Debug)]
pub(crate) struct Hold {
    _handle: Section,
}

impl Hold {
    /// A non-inheritable duplicate of the section's handle (`DuplicateHandle`).
    fn of(section: &Section) -> Result<Hold> {
        Ok(Hold { _handle: section.try_clone()? })
    }
}

/// `Local\NAME` or `Global\NAME`, as UTF-16.
fn wide_name(spec: &NamedSpec<'_>) -> Vec<u16> {
    let namespace = if spec.global { "Global" } else { "Local" };
    wide(&format!("{namespace}\\{}", spec.name))
}

/// `SECTION_BASIC_INFORMATION`, which `windows-sys` does not carry.
#[repr(C)]
struct SectionBasicInformation {
    base_address: *mut core::ffi::c_void,
    allocation_attributes: u32,
    maximum_size: i64,
}

// `NtQuerySection` is documented for drivers only, and `windows-sys` does not carry it.
// Declared with SIZE_T / PSIZE_T for the length and the returned length, as Wine, ReactOS
// and phnt declare it.
windows_link::link!("ntdll.dll" "system" fn NtQuerySection(
    section: HANDLE,
    class: i32,
    info: *mut core::ffi::c_void,
    len: usize,
    returned: *mut usize,
) -> i32);

/// The size of a section: `NtQuerySection(SectionBasicInformation)`.
/// The section's maximum size, and whether a file backs it (`SEC_FILE`).
fn section_info(section: &Section) -> Result<(u64, Memory)> {
    let mut info = SectionBasicInformation {
        base_address: std::ptr::null_mut(),
        allocation_attributes: 0,
        maximum_size: 0,
    };
    // SAFETY: class 0 (SectionBasicInformation) fills a buffer of exactly this layout and
    // size; the handle is open.
    let status = unsafe {
        NtQuerySection(
            section.handle(),
            0,
            (&raw mut info).cast(),
            size_of::<SectionBasicInformation>(),
            std::ptr::null_mut(),
        )
    };
    if status < 0 {
        let source = io::Error::other(format!("NTSTATUS {status:#x}"));
        return Err(Error::Os { op: "NtQuerySection", source });
    }
    let memory =
        if info.allocation_attributes & SEC_FILE != 0 { Memory::File } else { Memory::Shared };
    Ok((info.maximum_size as u64, memory))
}

/// `CreateFileMappingW` with a name and an owner-only DACL.
pub(crate) fn create(spec: &NamedSpec<'_>, file: Option<(&Arc<File>, u64)>) -> Result<Opened> {
    let size = spec.size.ok_or(Error::ZeroSize)?;
    if spec.keep {
        return Err(Error::Unsupported {
            what: "keeping a named mapping without a holder: Windows removes a name with its \
                   last handle, so keep a process that holds the mapping open",
        });
    }
    let protect = protection(spec.access);
    let mut security = OwnerOnly::new()?;
    let attributes = security.attributes();
    let source = file.map_or(INVALID_HANDLE_VALUE, |(f, _)| f.as_raw_handle() as HANDLE);
    let (high, low) = split(size);
    let name = wide_name(spec);
    // SAFETY: an open file handle or INVALID_HANDLE_VALUE, security attributes that live
    // through the call, and a NUL-terminated UTF-16 name.
    let handle =
        unsafe { CreateFileMappingW(source, &attributes, protect, high, low, name.as_ptr()) };
    // SAFETY: read at once, before any other call can change it.
    let last = unsafe { GetLastError() };
    if handle.is_null() {
        return Err(Error::Os {
            op: "CreateFileMappingW",
            source: io::Error::from_raw_os_error(last as i32),
        });
    }
    let memory = if file.is_some() { Memory::File } else { Memory::Shared };
    // SAFETY: a new section handle that nothing else owns.
    let section = unsafe { Section::from_raw(handle, memory) };
    if last == ERROR_ALREADY_EXISTS {
        if spec.creation == CreationMode::CreateNew {
            return Err(Error::AlreadyExists { name: spec.name.into() });
        }
        // The existing section is what it is, whatever this call passed: a file's section
        // (flushed to its file) or pagefile-backed memory.
        let (size, memory) = section_info(&section)?;
        let section = section.with_memory(memory);
        check_size(spec, size)?;
        let hold = Hold::of(&section)?;
        return Ok(Opened { section, size, file: None, hold, created: false });
    }
    let file = file.map(|(f, _)| Arc::clone(f));
    let hold = Hold::of(&section)?;
    Ok(Opened { section, size, file, hold, created: true })
}

/// `OpenFileMappingW`.
pub(crate) fn open(spec: &NamedSpec<'_>) -> Result<Opened> {
    // SECTION_QUERY too, so that NtQuerySection can tell the size.
    let access: FILE_MAP = SECTION_QUERY
        | match spec.access {
            Access::ReadWrite => FILE_MAP_READ | FILE_MAP_WRITE,
            Access::ReadOnly | Access::CopyOnWrite => FILE_MAP_READ,
        };
    let name = wide_name(spec);
    // SAFETY: a NUL-terminated UTF-16 name; the handle is not inheritable.
    let handle = unsafe { OpenFileMappingW(access, 0, name.as_ptr()) };
    if handle.is_null() {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(ERROR_FILE_NOT_FOUND as i32) {
            return Err(Error::NotFound { name: spec.name.into() });
        }
        return Err(Error::Os { op: "OpenFileMappingW", source: err });
    }
    // SAFETY: a new section handle that nothing else owns.
    let section = unsafe { Section::from_raw(handle, Memory::Shared) };
    let (size, memory) = section_info(&section)?;
    // A file's section opened by name: its pages are written back to that file.
    let section = section.with_memory(memory);
    check_size(spec, size)?;
    let hold = Hold::of(&section)?;
    Ok(Opened { section, size, file: None, hold, created: false })
}

/// Win32 cannot enumerate named sections.
pub(crate) fn list(_accept: impl Fn(&str) -> bool) -> Result<Vec<NamedInfo>> {
    Err(Error::Unsupported {
        what: "listing named mappings: Win32 has no call that enumerates named section objects",
    })
}

/// A name lives exactly as long as its handles and views.
pub(crate) fn remove(_name: &str) -> Result<()> {
    Err(Error::Unsupported {
        what: "removing a name: on Windows a name lives exactly as long as its handles and views",
    })
}

#[cfg(test)]
mod tests {
    use windows_sys::Win32::Foundation::{GetHandleInformation, HANDLE_FLAG_INHERIT, LocalFree};
    use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_KERNEL_OBJECT};
    use windows_sys::Win32::Security::{
        ACCESS_ALLOWED_ACE, ACL, DACL_SECURITY_INFORMATION, EqualSid, GetAce, PSID,
    };

    use super::*;
    use crate::sys::pal::cvt;

    /// The DACL Windows reports for a new named object: exactly one ACE, allowing the
    /// current user; and the handles are not inheritable.
    #[test]
    fn new_objects_get_an_owner_only_dacl_and_private_handles() {
        let name = format!("mmf-dacl-{}", std::process::id());
        let spec = NamedSpec {
            name: &name,
            creation: CreationMode::CreateNew,
            access: Access::ReadWrite,
            size: Some(4096),
            permissions: 0o600,
            foreign_owner: false,
            global: false,
            keep: false,
        };
        let opened = create(&spec, None).unwrap();
        let mut dacl: *mut ACL = std::ptr::null_mut();
        let mut descriptor = std::ptr::null_mut();
        // SAFETY: an open section handle and out-pointers; the descriptor is freed below.
        let rc = unsafe {
            GetSecurityInfo(
                opened.section.handle(),
                SE_KERNEL_OBJECT,
                DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut dacl,
                std::ptr::null_mut(),
                &mut descriptor,
            )
        };
        assert_eq!(rc, 0, "GetSecurityInfo");
        assert!(!dacl.is_null(), "never a NULL DACL (which would allow everyone)");
        // SAFETY: `dacl` points into the descriptor GetSecurityInfo returned.
        assert_eq!(unsafe { (*dacl).AceCount }, 1);
        let mut ace = std::ptr::null_mut();
        // SAFETY: index 0 exists (AceCount is 1).
        cvt(unsafe { GetAce(dacl, 0, &mut ace) }).unwrap();
        let ace = ace.cast::<ACCESS_ALLOWED_ACE>();
        // SAFETY: an ACCESS_ALLOWED_ACE (type 0) whose SID starts at `SidStart`.
        let (kind, sid) = unsafe { ((*ace).Header.AceType, (&raw const (*ace).SidStart) as PSID) };
        assert_eq!(kind, 0, "ACCESS_ALLOWED_ACE_TYPE");
        let me = OwnerOnly::new().unwrap();
        let my_sid = me.user_sid();
        // SAFETY: two valid SIDs.
        assert_ne!(unsafe { EqualSid(sid, my_sid) }, 0, "the ACE is for the current user");
        // SAFETY: the descriptor GetSecurityInfo allocated, freed once.
        unsafe { LocalFree(descriptor) };
        for handle in [opened.section.handle(), opened.hold._handle.handle()] {
            let mut flags = 0u32;
            // SAFETY: an open handle and an out-pointer.
            cvt(unsafe { GetHandleInformation(handle, &mut flags) }).unwrap();
            assert_eq!(flags & HANDLE_FLAG_INHERIT, 0, "handles are not inheritable");
        }
    }
}
