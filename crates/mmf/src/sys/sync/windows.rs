//! Windows: liveness by process handle, sleeping on named semaphores.
//!
//! A participant slot records pid and creation time; a process is alive while
//! `OpenProcess` finds a process with that pid *and* that creation time (a later process
//! reusing the pid has another) that has not exited (`WaitForSingleObject(h, 0)`, the
//! LMDB way). Access denied is [`Liveness::Unknown`]: never steal on doubt.
//!
//! `WaitOnAddress` and keyed events wake threads of the calling process only, so each
//! object gets a named semaphore, `<namespace>\mmf-sync-<area id>-<mapping>-<object>`,
//! created by its first sleeper with an owner-only DACL. It carries wake-up tokens only:
//! all state is in the mapping, so a semaphore that vanishes with its last handle loses
//! nothing. A mutex waiter also waits on its owner's process handle, so it learns of the
//! owner's death at once.
//!
//! `<mapping>` names the memory the area lives in, as every process that shares it can
//! name it: the named object's name (hashed) for a named mapping — a process that opened a
//! file's named mapping by name has no handle to the file — else the file's volume serial
//! number and file index, else nothing (a pagefile section shared by handle). The area id
//! alone would make the copy of an area's file (same id) share the original's semaphores.
//! `<namespace>` is `Global\` for an area in a `Global\` named mapping (its peers may sit
//! in other sessions; creating a semaphore there needs no privilege, unlike a section),
//! `Local\` otherwise. Two processes that name one mapping differently (one maps the file,
//! the other opens it by name) get different semaphores: their wake-ups do not reach each
//! other, and their waits end by the sync layer's 50 ms polling instead. So does a waiter
//! refused another user's semaphore (access denied): it polls.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::Instant;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_INVALID_PARAMETER,
    ERROR_TOO_MANY_POSTS, FILETIME, HANDLE, WAIT_FAILED, WAIT_OBJECT_0,
};
use windows_sys::Win32::System::Threading::{
    CreateSemaphoreW, GetCurrentProcess, GetCurrentProcessId, GetProcessTimes, INFINITE,
    OpenProcess, OpenSemaphoreW, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE,
    ReleaseSemaphore, SEMAPHORE_MODIFY_STATE, WaitForMultipleObjects, WaitForSingleObject,
};

use super::{AreaKey, Liveness, ProcessIdent};
use crate::sys::pal::{OwnerOnly, cvt, is, wide};

/// No `fork` on Windows: memberships are always this process's.
#[inline]
pub(crate) fn fork_generation() -> u64 {
    0
}

/// No `fork` on Windows: the gate is always open.
pub(crate) struct ForkGate(());

/// No `fork` on Windows: the gate is always open.
#[inline]
pub(crate) fn fork_gate() -> ForkGate {
    ForkGate(())
}

/// Windows has no cross-process barrier (`FlushProcessWriteBuffers` covers the calling
/// process's threads only): areas formatted here are symmetric, and a process never takes
/// part in an asymmetric one's plain unlocks.
pub(crate) fn barrier_registered() -> bool {
    false
}

/// Never called on Windows (see [`barrier_registered`]).
pub(crate) fn process_barrier() -> bool {
    false
}

/// The OS call named in a failed park's error.
pub(crate) const PARK_CALL: &str = "WaitForMultipleObjects";
/// The OS call named in a failed unpark's error.
pub(crate) const UNPARK_CALL: &str = "ReleaseSemaphore";

/// Nothing to hold on Windows: the slot's pid and creation time are the claim, and the
/// sync layer's compare-and-swap on the slot arbitrates between claimants.
#[derive(Debug)]
pub(crate) struct Membership;

impl Membership {
    pub(crate) fn new(_probe: Option<&std::fs::File>) -> io::Result<Membership> {
        Ok(Membership)
    }

    pub(crate) fn try_claim(&mut self, _key: AreaKey, _slot: u32) -> io::Result<bool> {
        Ok(true)
    }

    pub(crate) fn release(&mut self, _key: AreaKey, _slot: u32) {}
}

fn filetime(t: FILETIME) -> u64 {
    (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)
}

/// `GetProcessTimes(h).lpCreationTime`.
fn creation_time(process: HANDLE) -> io::Result<u64> {
    let zero = FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: a process handle with query access and four FILETIMEs to fill.
    cvt(unsafe { GetProcessTimes(process, &mut created, &mut exited, &mut kernel, &mut user) })?;
    Ok(filetime(created))
}

/// A handle to the process `ident` names, if it is that process (pid and creation time):
/// `Ok(None)` if no such process exists any more.
fn open_process(ident: ProcessIdent) -> io::Result<Option<OwnedHandle>> {
    // SAFETY: OpenProcess has no memory preconditions; a null result is an error.
    let h = unsafe {
        OpenProcess(PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, 0, ident.pid)
    };
    if h.is_null() {
        let e = io::Error::last_os_error();
        return if is(&e, ERROR_INVALID_PARAMETER) { Ok(None) } else { Err(e) };
    }
    let h = OwnedHandle(h);
    if ident.start_time != 0 && creation_time(h.0)? != ident.start_time {
        return Ok(None); // the pid was reused by a later process
    }
    Ok(Some(h))
}

/// Whether the process recorded as `ident` runs (`OpenProcess`, `GetProcessTimes`,
/// `WaitForSingleObject(h, 0)`).
pub(crate) fn alive(
    _probe: Option<&std::fs::File>,
    _key: AreaKey,
    _slot: u32,
    ident: ProcessIdent,
) -> io::Result<Liveness> {
    match open_process(ident) {
        Ok(None) => Ok(Liveness::Dead),
        Ok(Some(h)) => {
            // SAFETY: a process handle with SYNCHRONIZE access; a zero timeout only looks.
            let exited = unsafe { WaitForSingleObject(h.0, 0) } == WAIT_OBJECT_0;
            Ok(if exited { Liveness::Dead } else { Liveness::Alive })
        }
        Err(e) if is(&e, ERROR_ACCESS_DENIED) => Ok(Liveness::Unknown),
        Err(e) => Err(e),
    }
}

/// The file behind a mapping: `[volume serial number, file index]`
/// (`GetFileInformationByHandle`), `[0, 0]` without a file (a pagefile-backed mapping) or
/// if the call fails.
pub(crate) fn file_identity(probe: Option<&std::fs::File>) -> [u64; 2] {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{
        BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle,
    };
    let Some(file) = probe else { return [0, 0] };
    // SAFETY: plain data that the call fills.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: an open file handle and a pointer to the structure to fill.
    if unsafe { GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) } == 0 {
        return [0, 0];
    }
    [
        u64::from(info.dwVolumeSerialNumber),
        (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
    ]
}

/// This process's pid and creation time.
pub(crate) fn process_ident() -> ProcessIdent {
    // SAFETY: no preconditions.
    let pid = unsafe { GetCurrentProcessId() };
    // SAFETY: the current-process pseudo-handle has every access.
    let start_time = creation_time(unsafe { GetCurrentProcess() }).unwrap_or(0);
    ProcessIdent { pid, start_time }
}

/// A handle closed on drop.
#[derive(Debug)]
struct OwnedHandle(HANDLE);

// SAFETY: kernel object handles may be used and closed from any thread.
unsafe impl Send for OwnedHandle {}
// SAFETY: as above; the calls made through `&OwnedHandle` are thread-safe.
unsafe impl Sync for OwnedHandle {}

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and closed once. Nothing to do about a failure.
        unsafe { CloseHandle(self.0) };
    }
}

/// The most wake-up tokens a semaphore holds. Tokens pile up when a sleeper was killed
/// while asleep (the object's sleeper count stays one too high until a wake that finds
/// tokens left over makes the sync layer take the dead sleeper's count back), or a
/// sleeper left between a wake and taking its token; the cap bounds the spurious wake-ups
/// that a later sleeper goes through, once. More threads than this asleep on one object at
/// once would not all be woken by one `set` of a manual-reset event.
const MAX_TOKENS: i32 = 1 << 16;

/// This process's wake semaphores of one area, opened or created on first use and
/// closed when the area's last handle in this process goes.
#[derive(Debug)]
pub(crate) struct Parker {
    prefix: String,
    semaphores: Mutex<HashMap<u32, std::sync::Arc<OwnedHandle>>>,
}

/// The start of the names of an area's wake semaphores (see the module's docs).
pub(crate) fn semaphore_prefix(key: AreaKey) -> String {
    let namespace = if key.global { "Global" } else { "Local" };
    let mapping = if key.name != 0 {
        format!("n{:016x}", key.name)
    } else if key.file != [0, 0] {
        format!("f{:08x}{:016x}", key.file[0], key.file[1])
    } else {
        "s".to_owned()
    };
    format!("{namespace}\\mmf-sync-{:016x}{:016x}-{mapping}-", key.id[0], key.id[1])
}

impl Parker {
    pub(crate) fn new(key: AreaKey) -> Parker {
        Parker { prefix: semaphore_prefix(key), semaphores: Mutex::new(HashMap::new()) }
    }

    /// The object's semaphore: cached, else `CreateSemaphoreW` (`create`) or
    /// `OpenSemaphoreW`; `Ok(None)` if it does not exist and `create` is false (nobody
    /// ever slept on the object), or if another user's semaphore of that name refuses
    /// this process (waits then poll, wakes reach nobody of that user).
    fn semaphore(
        &self,
        object: u32,
        create: bool,
    ) -> io::Result<Option<std::sync::Arc<OwnedHandle>>> {
        let mut cache = self.semaphores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = cache.get(&object) {
            return Ok(Some(std::sync::Arc::clone(h)));
        }
        let name = wide(&format!("{}{object}", self.prefix));
        let h = if create {
            let mut owner = OwnerOnly::new().map_err(io::Error::from)?;
            let attributes = owner.attributes();
            // SAFETY: valid security attributes (pointing into `owner`, alive here) and a
            // NUL-terminated name; an existing semaphore of that name is opened.
            unsafe { CreateSemaphoreW(&attributes, 0, MAX_TOKENS, name.as_ptr()) }
        } else {
            // SAFETY: a NUL-terminated name.
            unsafe {
                OpenSemaphoreW(SEMAPHORE_MODIFY_STATE | PROCESS_SYNCHRONIZE, 0, name.as_ptr())
            }
        };
        if h.is_null() {
            let e = io::Error::last_os_error();
            let absent = !create && is(&e, ERROR_FILE_NOT_FOUND);
            return if absent || is(&e, ERROR_ACCESS_DENIED) { Ok(None) } else { Err(e) };
        }
        let h = std::sync::Arc::new(OwnedHandle(h));
        cache.insert(object, std::sync::Arc::clone(&h));
        Ok(Some(h))
    }

    /// Creates (or opens) the object's semaphore before the caller declares itself a
    /// sleeper, so that a waker that sees the sleeper finds the semaphore.
    pub(crate) fn prepare(&self, object: u32) -> io::Result<()> {
        self.semaphore(object, true).map(drop)
    }

    /// Waits for a token on the object's semaphore, for `owner`'s process to end, or for
    /// `deadline` (`WaitForMultipleObjects`). The word is not compared: tokens that a waker
    /// released before this call are still there. Without a semaphore (another user's
    /// refused this process), it waits for the owner or the deadline only. `Ok(true)`:
    /// `owner`'s process has ended (before the call or during it), so that the caller
    /// looks at it at once instead of sleeping on a handle that is signalled for good.
    pub(crate) fn park(
        &self,
        _word: *const u32,
        object: u32,
        _expected: u32,
        deadline: Option<Instant>,
        owner: Option<ProcessIdent>,
    ) -> io::Result<bool> {
        let semaphore = self.semaphore(object, true)?;
        let owner = match owner {
            Some(ident) => match open_process(ident) {
                Ok(Some(h)) => Some(h),
                Ok(None) => return Ok(true), // dead already: the caller looks again
                Err(_) => None,              // access denied: wait without it
            },
            None => None,
        };
        let timeout = match deadline {
            None => INFINITE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                // Rounded up, so the wait never ends before the deadline.
                u32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(INFINITE - 1)
            }
        };
        let mut handles: Vec<HANDLE> = semaphore.iter().map(|h| h.0).collect();
        // The owner's handle comes last: its index is the semaphore's count.
        let owner_at = WAIT_OBJECT_0 + handles.len() as u32;
        handles.extend(owner.as_ref().map(|h| h.0));
        if handles.is_empty() {
            // Nothing to wait on but the clock (the caller's deadline is at most 50 ms on).
            std::thread::sleep(std::time::Duration::from_millis(u64::from(timeout.min(50))));
            return Ok(false);
        }
        // SAFETY: 1 or 2 valid handles with SYNCHRONIZE access, alive for the call.
        let r =
            unsafe { WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, timeout) };
        if r == WAIT_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(owner.is_some() && r == owner_at)
    }

    /// Releases `n` tokens (`ReleaseSemaphore`); the caller has capped `n` at the number of
    /// sleepers. `Ok(true)`, "maybe nobody waits": a semaphore that does not exist (every
    /// sleeper creates it before it counts itself, so the counted ones died with its last
    /// handle), and every release too — unlike a futex wake, a semaphore does not tell
    /// whether anyone took the tokens (the caller's look for dead sleepers is rate-limited).
    pub(crate) fn unpark(&self, _word: *const u32, object: u32, n: u32) -> io::Result<bool> {
        if n == 0 {
            return Ok(false);
        }
        let Some(semaphore) = self.semaphore(object, false)? else { return Ok(true) };
        let release = |n: i32| {
            // SAFETY: a semaphore handle with SEMAPHORE_MODIFY_STATE access.
            cvt(unsafe { ReleaseSemaphore(semaphore.0, n, std::ptr::null_mut()) })
        };
        match release(n.min(MAX_TOKENS as u32) as i32) {
            // Full of tokens left over by sleepers that were killed: add what fits, one by
            // one, so that the live sleepers still find theirs.
            Err(e) if is(&e, ERROR_TOO_MANY_POSTS) => {
                for _ in 1..n.min(MAX_TOKENS as u32) {
                    if release(1).is_err() {
                        break;
                    }
                }
                Ok(true)
            }
            other => other.map(|_| true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AreaKey, semaphore_prefix};

    fn key(file: [u64; 2], name: u64, global: bool) -> AreaKey {
        AreaKey { id: [0x1234, 0x5678], offset: 0, file, name, global }
    }

    /// Two copies of an area's file hold the same area id: their wake semaphores must still
    /// differ. A process that opened a file's named mapping by name (no file handle) must
    /// find the semaphores of the one that mapped the file under that name. A `Global\`
    /// mapping's semaphores are global too.
    #[test]
    fn wake_semaphores_are_named_after_the_mapping_and_its_namespace() {
        let original = semaphore_prefix(key([7, 100], 0, false));
        let copy = semaphore_prefix(key([7, 101], 0, false));
        assert_ne!(original, copy, "a copy of the file shares the original's semaphores");
        let mapped_the_file = semaphore_prefix(key([7, 100], 42, false));
        let opened_by_name = semaphore_prefix(key([0, 0], 42, false));
        assert_eq!(mapped_the_file, opened_by_name);
        assert_ne!(opened_by_name, semaphore_prefix(key([0, 0], 43, false)));
        assert!(semaphore_prefix(key([0, 0], 42, true)).starts_with("Global\\mmf-sync-"));
        assert!(opened_by_name.starts_with("Local\\mmf-sync-"));
        assert!(semaphore_prefix(key([0, 0], 0, false)).len() < 100, "names stay short");
    }
}
