//! [`Event`]: a manual-reset or auto-reset event across processes, as `CreateEvent`.

use std::fmt;
use std::time::{Duration, Instant};

use super::area::SyncArea;
use super::layout::{Kind, Object};
use super::protocol;
use crate::error::Result;

/// How an [`Event`] goes back to unsignalled (`bManualReset` of `CreateEvent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResetMode {
    /// Stays set until [`Event::reset`]; a set releases every waiter.
    Manual,
    /// A set releases one waiter, and the event resets as that waiter returns; set with
    /// nobody waiting, it stays set until one comes.
    Auto,
}

/// An event that lives in a [`SyncArea`], with Windows' semantics: [`set`](Self::set)
/// (`SetEvent`), [`reset`](Self::reset) (`ResetEvent`), [`wait`](Self::wait)
/// (`WaitForSingleObject`). There is no `PulseEvent` (documented unreliable by Microsoft).
///
/// A manual-reset event's set releases every thread that was waiting at that moment, even
/// if the event is reset before they run. Events have no owner: a process that dies leaves
/// the event as it was.
///
/// ```
/// use std::time::Duration;
///
/// use mmf::Mapping;
/// use mmf::sync::{ResetMode, SyncArea, SyncAreaOptions};
///
/// let mapping = Mapping::anonymous(4096)?;
/// let view = mapping.view_mut(..)?;
/// let area = SyncArea::init(&view, 0, &SyncAreaOptions::new())?;
/// let ready = area.event(1, ResetMode::Auto, false)?;
/// assert!(!ready.wait_timeout(Duration::from_millis(1))?);
/// ready.set()?;
/// assert!(ready.wait_timeout(Duration::ZERO)?); // takes the set
/// assert!(!ready.is_set()); // and reset it
/// # Ok::<(), mmf::Error>(())
/// ```
///
/// # Platform-specific behaviour
///
/// Linux: waiters sleep on a shared futex. Windows: on a named semaphore that carries only
/// wake-ups (`Local\mmf-sync-…`); the event's state is in the mapping.
///
/// # References
/// [`CreateEventW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-createeventw),
/// [`SetEvent`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-setevent)
#[doc(alias = "CreateEvent")]
#[doc(alias = "CreateEventW")]
#[derive(Clone, Copy)]
pub struct Event<'a> {
    area: &'a SyncArea<'a>,
    object: &'a Object,
    index: u32,
    manual: bool,
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("index", &self.index)
            .field("manual", &self.manual)
            .field("set", &self.is_set())
            .finish()
    }
}

impl SyncArea<'_> {
    /// The event at object `index`: made an event of `mode`, set if `initially_set`, if the
    /// object is unused; otherwise the existing event (`initially_set` is then ignored, as
    /// `CreateEvent` ignores it for an event that exists).
    ///
    /// # Errors
    /// [`Error::SyncArea`](crate::Error::SyncArea) if `index` is past the area's objects
    /// or the object is something else (a mutex, a semaphore, the other reset mode).
    #[doc(alias = "OpenEvent")]
    pub fn event(&self, index: u32, mode: ResetMode, initially_set: bool) -> Result<Event<'_>> {
        let kind = match mode {
            ResetMode::Manual => Kind::ManualResetEvent,
            ResetMode::Auto => Kind::AutoResetEvent,
        };
        let (object, new) = self.object(index, kind, 0)?;
        let event = Event { area: self, object, index, manual: mode == ResetMode::Manual };
        if new && initially_set {
            event.set()?;
        }
        Ok(event)
    }
}

impl<'a> Event<'a> {
    /// The event of an object found before (the named forms resolve theirs once).
    pub(super) fn from_parts(
        area: &'a SyncArea<'a>,
        object: &'a Object,
        index: u32,
        mode: ResetMode,
    ) -> Self {
        Event { area, object, index, manual: mode == ResetMode::Manual }
    }

    /// The object's words.
    pub(super) fn object(&self) -> &'a Object {
        self.object
    }
}

impl Event<'_> {
    /// Sets the event (`SetEvent`): wakes every waiter (manual reset) or one (auto reset).
    /// Setting a set event does nothing.
    ///
    /// Setting takes no participant slot: it wakes the waiters even from a process that
    /// could not join (the table full).
    ///
    /// # Errors
    /// [`Error::Os`](crate::Error::Os) if waking failed.
    #[doc(alias = "SetEvent")]
    pub fn set(&self) -> Result<()> {
        protocol::event_set(self.object, self.index, self.area, self.manual)
    }

    /// Resets the event to unsignalled (`ResetEvent`).
    #[doc(alias = "ResetEvent")]
    pub fn reset(&self) {
        protocol::event_reset(self.object);
    }

    /// Whether the event is set now (a snapshot).
    pub fn is_set(&self) -> bool {
        protocol::event_is_set(self.object)
    }

    /// Waits until the event is set (`WaitForSingleObject(e, INFINITE)`). An auto-reset
    /// event is reset by the waiter it releases.
    ///
    /// # Errors
    /// [`Error::Os`](crate::Error::Os) if sleeping failed, or
    /// [`Error::SyncArea`](crate::Error::SyncArea) if this process cannot join the area.
    #[doc(alias = "WaitForSingleObject")]
    pub fn wait(&self) -> Result<()> {
        protocol::event_wait(self.object, self.index, self.area, None, self.manual).map(drop)
    }

    /// Waits at most `timeout` (monotonic clock): `true` if the event was set, `false` on
    /// timeout (`WAIT_TIMEOUT`). `Duration::ZERO` only looks.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        protocol::event_wait(self.object, self.index, self.area, deadline, self.manual)
    }

    /// The reset mode.
    pub fn mode(&self) -> ResetMode {
        if self.manual { ResetMode::Manual } else { ResetMode::Auto }
    }
}
