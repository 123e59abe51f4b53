//! Named forms: [`NamedMutex`], [`NamedEvent`], [`NamedSemaphore`] — `CreateMutex` /
//! `OpenMutex` and friends. Each is a small named mapping (the named layer's lifetime and
//! security rules) holding a sync area with one object, so two programs need nothing but
//! a name.

use std::ptr::NonNull;
use std::time::{Duration, Instant};

use super::area::{SyncArea, SyncAreaOptions};
use super::event::{Event, ResetMode};
use super::layout::{self, Kind, Object};
use super::mutex::{LockError, Mutex, MutexGuard};
use super::semaphore::Semaphore;
use crate::error::{Error, Result};
use crate::named::NameOptions;
use crate::{Access, CreationMode, Mapping, MappingOptions, ViewMut};

/// The participants a named object's area has room for.
const PARTICIPANTS: u32 = 64;

/// A named mapping holding an area with one object, created or opened.
#[derive(Debug)]
struct NamedArea {
    area: SyncArea<'static>,
    mapping: Mapping,
}

/// The area's object 0, found (and its kind checked) once, when the name was created or
/// opened: the handles' accessors never look at the object's kind again, so bytes a peer
/// writes later cannot make them fail or panic (the state machines cope with any value).
#[derive(Debug)]
struct ObjectRef(NonNull<Object>);

// SAFETY: an `Object` is made of atomics only (`Sync`); the pointer is only read through
// `&`, and points into the memory of the view that the same `Named*` owns.
unsafe impl Send for ObjectRef {}
// SAFETY: as above.
unsafe impl Sync for ObjectRef {}

impl ObjectRef {
    fn new(object: &Object) -> ObjectRef {
        ObjectRef(NonNull::from(object))
    }

    /// The object, for as long as `inner` (which owns its view) is borrowed.
    fn get<'a>(&self, _inner: &'a NamedArea) -> &'a Object {
        // SAFETY: the object lies in the view that `inner.area` owns (`ViewRef::Owned`):
        // its memory is the mapping's, which does not move when `inner` does and stays
        // mapped while `inner` lives; `ObjectRef` and `inner` are fields of the same value.
        unsafe { self.0.as_ref() }
    }
}

impl NamedArea {
    fn create(name: &str, options: &NameOptions) -> Result<NamedArea> {
        let area_options = SyncAreaOptions::new().participants(PARTICIPANTS).objects(1).clone();
        let size = area_options.size().next_multiple_of(4096) as u64;
        let mapping = MappingOptions::new()
            .access(Access::ReadWrite)
            .size(size)
            .name(name)
            .name_options(options.clone())
            .map_anonymous()?;
        if !mapping.created() {
            // The name existed: open what is there, never format it (it may be a data
            // mapping of someone else's whose first bytes happen to be zero).
            return Self::attach(name, mapping);
        }
        let mut view = mapping.view_mut(..)?;
        let lost_pages = guard(name, &mut view)?;
        let mut area = SyncArea::open_or_init_owned(view, 0, &area_options)?;
        area.set_lost_pages(lost_pages);
        Ok(NamedArea { area, mapping })
    }

    /// Opens the name's area, never formatting (the object may be someone else's): a
    /// creator that has made the mapping but not formatted it yet is given up to 1 s.
    fn open(name: &str) -> Result<NamedArea> {
        Self::attach(name, Mapping::open(name, Access::ReadWrite)?)
    }

    /// The area of a named mapping this call did not create: waits up to 1 s for a creator
    /// that has made the mapping but not formatted it yet, then refuses anything that is
    /// not a sync area (a plain data mapping of that name).
    fn attach(name: &str, mapping: Mapping) -> Result<NamedArea> {
        let start = Instant::now();
        loop {
            let mut view = mapping.view_mut(..)?;
            let lost_pages = guard(name, &mut view)?;
            let magic = view.atomic_u64(0)?.load(std::sync::atomic::Ordering::Acquire);
            let unformatted = magic == 0 || magic == layout::MAGIC_INIT;
            if unformatted && start.elapsed() < Duration::from_secs(1) {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            let area = SyncArea::open_owned(view, 0).map_err(|e| match e {
                Error::SyncArea { offset, reason } => Error::SyncArea {
                    offset,
                    reason: format!(
                        "the name {name:?} holds a mapping that is not a named mutex, event or \
                         semaphore ({reason})"
                    ),
                },
                e => e,
            })?;
            let mut area = area;
            area.set_lost_pages(lost_pages);
            return Ok(NamedArea { area, mapping });
        }
    }

    /// The kind of the object, waiting up to 1 s for a creator that has made the mapping
    /// but not the object yet.
    fn kind(&self, name: &str) -> Result<Kind> {
        let start = Instant::now();
        loop {
            if let Some((kind, _)) = self.area.object_desc(0)? {
                return Ok(kind);
            }
            if start.elapsed() > Duration::from_secs(1) {
                return Err(Error::SyncArea {
                    offset: 0,
                    reason: format!("the named object {name:?} holds no mutex, event or semaphore"),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Registers a named object's `view` for zero pages in place of pages a peer truncates away
/// (`sys::fault::zero_fill`): its atomics then never die of `SIGBUS`, and every operation
/// reports the truncation instead (`Host::intact`). Before the first access.
fn guard(name: &str, view: &mut ViewMut) -> Result<&'static std::sync::atomic::AtomicBool> {
    view.zero_fill_lost_pages().ok_or_else(|| Error::SyncArea {
        offset: 0,
        reason: format!(
            "cannot open {name:?}: this process has {} named objects and channels open, the \
             most it can guard against a peer truncating their memory; close some",
            crate::sys::fault::zero_fill::SLOTS
        ),
    })
}

fn options_for(creation: CreationMode) -> NameOptions {
    let mut options = NameOptions::new();
    options.creation(creation);
    options
}

/// A [`Mutex`] known by name across processes (`CreateMutex(NULL, FALSE, name)` /
/// `OpenMutex`): the object lives while any process holds it, as a named mapping does
/// (see [`crate::named`]).
///
/// ```
/// use mmf::sync::NamedMutex;
///
/// # let name = format!("doc-mutex-{}", std::process::id());
/// let mutex = NamedMutex::create(&name)?;
/// let other = NamedMutex::open(&name)?; // normally in another process
/// let guard = other.lock().expect("free");
/// assert!(mutex.try_lock().is_err()); // held (by this process, another thread would wait)
/// drop(guard);
/// # Ok::<(), mmf::Error>(())
/// ```
///
/// # References
/// [`CreateMutexW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-createmutexw),
/// [`OpenMutexW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-openmutexw)
#[doc(alias = "CreateMutex")]
#[doc(alias = "OpenMutex")]
#[derive(Debug)]
pub struct NamedMutex {
    inner: NamedArea,
    object: ObjectRef,
}

impl NamedMutex {
    /// Opens the named mutex, creating it if it does not exist (what `CreateMutex` does).
    ///
    /// # Errors
    /// As [`MappingOptions::map_anonymous`] for the name; [`Error::SyncArea`] if the name
    /// holds something other than a mutex (another sync object, or a plain mapping: an
    /// existing mapping is never formatted, only the one this call creates).
    pub fn create(name: &str) -> Result<NamedMutex> {
        Self::create_with(name, &options_for(CreationMode::OpenOrCreate))
    }

    /// [`create`](Self::create) with the named layer's options (creation mode, permissions,
    /// namespace, lifetime).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_with(name: &str, options: &NameOptions) -> Result<NamedMutex> {
        let inner = NamedArea::create(name, options)?;
        let object = ObjectRef::new(inner.area.mutex(0)?.object());
        Ok(NamedMutex { inner, object })
    }

    /// Opens an existing named mutex (`OpenMutex`).
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is none; [`Error::SyncArea`] if the name holds
    /// something else.
    pub fn open(name: &str) -> Result<NamedMutex> {
        let inner = NamedArea::open(name)?;
        match inner.kind(name)? {
            Kind::Mutex => {
                let object = ObjectRef::new(inner.area.mutex(0)?.object());
                Ok(NamedMutex { inner, object })
            }
            other => Err(wrong_kind(name, other, "a mutex")),
        }
    }

    /// The mutex, for every method of [`Mutex`].
    pub fn mutex(&self) -> Mutex<'_> {
        Mutex::from_parts(&self.inner.area, self.object.get(&self.inner), 0)
    }

    /// [`Mutex::lock`].
    ///
    /// # Errors
    /// As [`Mutex::lock`].
    pub fn lock(&self) -> Result<MutexGuard<'_>, LockError<'_>> {
        self.mutex().lock()
    }

    /// [`Mutex::lock_timeout`].
    ///
    /// # Errors
    /// As [`Mutex::lock_timeout`].
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_>, LockError<'_>> {
        self.mutex().lock_timeout(timeout)
    }

    /// [`Mutex::try_lock`].
    ///
    /// # Errors
    /// As [`Mutex::try_lock`].
    pub fn try_lock(&self) -> Result<MutexGuard<'_>, LockError<'_>> {
        self.mutex().try_lock()
    }

    /// The name's mapping (its name, size).
    pub fn mapping(&self) -> &Mapping {
        &self.inner.mapping
    }
}

fn wrong_kind(name: &str, found: Kind, wanted: &str) -> Error {
    Error::SyncArea {
        offset: 0,
        reason: format!("the named object {name:?} is a {}, not {wanted}", found.name()),
    }
}

/// An [`Event`] known by name across processes (`CreateEvent` / `OpenEvent`).
///
/// ```
/// use mmf::sync::{NamedEvent, ResetMode};
///
/// # let name = format!("doc-event-{}", std::process::id());
/// let ready = NamedEvent::create(&name, ResetMode::Manual, false)?;
/// let seen = NamedEvent::open(&name)?; // normally in another process
/// ready.event().set()?;
/// assert!(seen.event().wait_timeout(std::time::Duration::ZERO)?);
/// # Ok::<(), mmf::Error>(())
/// ```
///
/// # References
/// [`CreateEventW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-createeventw),
/// [`OpenEventW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-openeventw)
#[doc(alias = "CreateEvent")]
#[doc(alias = "OpenEvent")]
#[derive(Debug)]
pub struct NamedEvent {
    inner: NamedArea,
    object: ObjectRef,
    mode: ResetMode,
}

impl NamedEvent {
    /// Opens the named event, creating it with `mode` and `initially_set` if it does not
    /// exist (`CreateEvent`; for an existing event both are ignored... but a different
    /// mode is an error).
    ///
    /// # Errors
    /// As [`NamedMutex::create`].
    pub fn create(name: &str, mode: ResetMode, initially_set: bool) -> Result<NamedEvent> {
        Self::create_with(name, mode, initially_set, &options_for(CreationMode::OpenOrCreate))
    }

    /// [`create`](Self::create) with the named layer's options.
    ///
    /// # Errors
    /// As [`NamedMutex::create`].
    pub fn create_with(
        name: &str,
        mode: ResetMode,
        initially_set: bool,
        options: &NameOptions,
    ) -> Result<NamedEvent> {
        let inner = NamedArea::create(name, options)?;
        let object = ObjectRef::new(inner.area.event(0, mode, initially_set)?.object());
        Ok(NamedEvent { inner, object, mode })
    }

    /// Opens an existing named event (`OpenEvent`), of whichever reset mode.
    ///
    /// # Errors
    /// As [`NamedMutex::open`].
    pub fn open(name: &str) -> Result<NamedEvent> {
        let inner = NamedArea::open(name)?;
        let mode = match inner.kind(name)? {
            Kind::ManualResetEvent => ResetMode::Manual,
            Kind::AutoResetEvent => ResetMode::Auto,
            other => return Err(wrong_kind(name, other, "an event")),
        };
        let object = ObjectRef::new(inner.area.event(0, mode, false)?.object());
        Ok(NamedEvent { inner, object, mode })
    }

    /// The event, for every method of [`Event`].
    pub fn event(&self) -> Event<'_> {
        Event::from_parts(&self.inner.area, self.object.get(&self.inner), 0, self.mode)
    }

    /// The name's mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.inner.mapping
    }
}

/// A [`Semaphore`] known by name across processes (`CreateSemaphore` / `OpenSemaphore`).
///
/// ```
/// use mmf::sync::NamedSemaphore;
///
/// # let name = format!("doc-sem-{}", std::process::id());
/// let slots = NamedSemaphore::create(&name, 2, 2)?;
/// let other = NamedSemaphore::open(&name)?; // normally in another process
/// other.semaphore().acquire()?;
/// assert_eq!(slots.semaphore().count(), 1);
/// # Ok::<(), mmf::Error>(())
/// ```
///
/// # References
/// [`CreateSemaphoreW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-createsemaphorew),
/// [`OpenSemaphoreW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-opensemaphorew)
#[doc(alias = "CreateSemaphore")]
#[doc(alias = "OpenSemaphore")]
#[derive(Debug)]
pub struct NamedSemaphore {
    inner: NamedArea,
    object: ObjectRef,
    maximum: u32,
}

impl NamedSemaphore {
    /// Opens the named semaphore, creating it with count `initial` and maximum `maximum`
    /// if it does not exist (`CreateSemaphore`; ignored for an existing one).
    ///
    /// # Errors
    /// As [`NamedMutex::create`]; [`Error::SyncArea`] for a maximum of 0 or an initial
    /// count past it.
    pub fn create(name: &str, initial: u32, maximum: u32) -> Result<NamedSemaphore> {
        Self::create_with(name, initial, maximum, &options_for(CreationMode::OpenOrCreate))
    }

    /// [`create`](Self::create) with the named layer's options.
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_with(
        name: &str,
        initial: u32,
        maximum: u32,
        options: &NameOptions,
    ) -> Result<NamedSemaphore> {
        let inner = NamedArea::create(name, options)?;
        let sem = inner.area.semaphore(0, initial, maximum)?;
        let (object, maximum) = (ObjectRef::new(sem.object()), sem.maximum());
        Ok(NamedSemaphore { inner, object, maximum })
    }

    /// Opens an existing named semaphore (`OpenSemaphore`).
    ///
    /// # Errors
    /// As [`NamedMutex::open`].
    pub fn open(name: &str) -> Result<NamedSemaphore> {
        let inner = NamedArea::open(name)?;
        match inner.kind(name)? {
            Kind::Semaphore => {
                // The maximum is the one stored in the object (1 and 0 only pass the check).
                let sem = inner.area.semaphore(0, 0, 1)?;
                let (object, maximum) = (ObjectRef::new(sem.object()), sem.maximum());
                Ok(NamedSemaphore { inner, object, maximum })
            }
            other => Err(wrong_kind(name, other, "a semaphore")),
        }
    }

    /// The semaphore, for every method of [`Semaphore`].
    pub fn semaphore(&self) -> Semaphore<'_> {
        Semaphore::from_parts(&self.inner.area, self.object.get(&self.inner), 0, self.maximum)
    }

    /// The name's mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.inner.mapping
    }
}
