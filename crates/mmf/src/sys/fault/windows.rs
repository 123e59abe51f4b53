//! Windows x86-64: the vectored exception handler of the exception table (`x86_64.rs`).
//!
//! Windows refuses to truncate a mapped file or section, but a page can still fail to come
//! in: `EXCEPTION_IN_PAGE_ERROR` (a failing disk or network share, or no space on a sparse
//! file, with the NTSTATUS in the exception's third parameter). Under Wine, a file that a
//! Linux process truncates under a Windows view raises `EXCEPTION_ACCESS_VIOLATION` at the
//! access. Both are claimed when the faulting instruction is one of the guarded accesses;
//! every other exception continues the search, as if mmf had installed nothing.

use std::sync::Once;

use windows_sys::Win32::Foundation::{
    STATUS_ACCESS_VIOLATION, STATUS_DISK_FULL, STATUS_IN_PAGE_ERROR,
};
use windows_sys::Win32::System::Diagnostics::Debug::{
    AddVectoredExceptionHandler, EXCEPTION_CONTINUE_EXECUTION, EXCEPTION_CONTINUE_SEARCH,
    EXCEPTION_POINTERS,
};

use super::x86_64::{self, CODE_IO, CODE_NO_SPACE, CODE_UNKNOWN};

/// Installs the handler, once per process (first in the chain of vectored handlers).
pub(crate) fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: registers a handler that only reads the exception record and, for its own
        // faults, changes two registers and the instruction pointer of the context.
        unsafe { AddVectoredExceptionHandler(1, Some(handler)) };
    });
}

unsafe extern "system" fn handler(info: *mut EXCEPTION_POINTERS) -> i32 {
    // SAFETY: Windows passes valid exception and context records for this thread.
    let (record, context) = unsafe { (&*(*info).ExceptionRecord, &mut *(*info).ContextRecord) };
    let code = record.ExceptionCode;
    if (code != STATUS_IN_PAGE_ERROR && code != STATUS_ACCESS_VIOLATION)
        || record.NumberParameters < 2
        || !x86_64::claims(context.Rip as usize)
    {
        return EXCEPTION_CONTINUE_SEARCH;
    }
    let cause = if code != STATUS_IN_PAGE_ERROR {
        CODE_UNKNOWN
    } else if record.NumberParameters >= 3
        && record.ExceptionInformation[2] as i32 == STATUS_DISK_FULL
    {
        CODE_NO_SPACE
    } else {
        CODE_IO
    };
    context.Rax = record.ExceptionInformation[1].max(1) as u64;
    context.Rdx = (cause | x86_64::LOAD_FAULTED) as u64;
    context.Rip = x86_64::fixup() as u64;
    EXCEPTION_CONTINUE_EXECUTION
}
