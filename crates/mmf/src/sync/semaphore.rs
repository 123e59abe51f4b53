//! [`Semaphore`]: a counting semaphore across processes, as `CreateSemaphore`.

use std::fmt;
use std::time::{Duration, Instant};

use super::area::SyncArea;
use super::layout::{Kind, Object};
use super::protocol;
use crate::error::{Error, Result};
use crate::primitive::sync::atomic::Ordering::Acquire;

/// A counting semaphore that lives in a [`SyncArea`], with Windows' semantics: a count
/// between 0 and a maximum; [`acquire`](Self::acquire) waits for the count to be positive
/// and takes one (`WaitForSingleObject`); [`release`](Self::release) adds `n` and refuses to
/// pass the maximum (`ReleaseSemaphore`, `ERROR_TOO_MANY_POSTS`). No owner: a process
/// that dies holding units does not give them back.
///
/// ```
/// use std::time::Duration;
///
/// use mmf::Mapping;
/// use mmf::sync::{SyncArea, SyncAreaOptions};
///
/// let mapping = Mapping::anonymous(4096)?;
/// let view = mapping.view_mut(..)?;
/// let area = SyncArea::init(&view, 0, &SyncAreaOptions::new())?;
/// let slots = area.semaphore(2, 1, 2)?; // count 1, at most 2
/// slots.acquire()?;
/// assert!(!slots.acquire_timeout(Duration::from_millis(1))?);
/// assert_eq!(slots.release(2)?, 0); // the previous count
/// assert!(slots.release(1).is_err()); // past the maximum
/// # Ok::<(), mmf::Error>(())
/// ```
///
/// # Platform-specific behaviour
///
/// As [`Event`](super::Event).
///
/// # References
/// [`CreateSemaphoreW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-createsemaphorew),
/// [`ReleaseSemaphore`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-releasesemaphore),
/// [`sem_overview(7)`](https://man7.org/linux/man-pages/man7/sem_overview.7.html)
#[doc(alias = "CreateSemaphore")]
#[doc(alias = "CreateSemaphoreW")]
#[doc(alias = "sem_t")]
#[derive(Clone, Copy)]
pub struct Semaphore<'a> {
    area: &'a SyncArea<'a>,
    object: &'a Object,
    index: u32,
    max: u32,
}

impl fmt::Debug for Semaphore<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("index", &self.index)
            .field("count", &self.count())
            .field("max", &self.max)
            .finish()
    }
}

impl SyncArea<'_> {
    /// The semaphore at object `index`: made a semaphore with count `initial` and maximum
    /// `maximum` if the object is unused; otherwise the existing one (whose maximum stays;
    /// `initial` is ignored, as `CreateSemaphore` does for a semaphore that exists).
    ///
    /// # Errors
    /// [`Error::SyncArea`] if `index` is past the area's objects, the object is something
    /// else, `maximum` is 0 or `initial` exceeds it.
    #[doc(alias = "OpenSemaphore")]
    pub fn semaphore(&self, index: u32, initial: u32, maximum: u32) -> Result<Semaphore<'_>> {
        if maximum == 0 || initial > maximum {
            return Err(Error::SyncArea {
                offset: 0,
                reason: format!(
                    "a semaphore with count {initial} and maximum {maximum}: the maximum must \
                     be at least 1 and the count at most the maximum"
                ),
            });
        }
        let (object, new) = self.object(index, Kind::Semaphore, maximum)?;
        let max = (object.desc.load(Acquire) & 0xffff_ffff) as u32;
        let sem = Semaphore { area: self, object, index, max };
        if new && initial > 0 {
            sem.release(initial)?;
        }
        Ok(sem)
    }
}

impl<'a> Semaphore<'a> {
    /// The semaphore of an object found before (the named forms resolve theirs once).
    pub(super) fn from_parts(
        area: &'a SyncArea<'a>,
        object: &'a Object,
        index: u32,
        max: u32,
    ) -> Self {
        Semaphore { area, object, index, max }
    }

    /// The object's words.
    pub(super) fn object(&self) -> &'a Object {
        self.object
    }
}

impl Semaphore<'_> {
    /// Adds `n` to the count and wakes up to `n` waiters (`ReleaseSemaphore`); returns
    /// the previous count.
    ///
    /// # Errors
    /// [`Error::SemaphoreFull`] (the count is unchanged) if the count would pass the
    /// maximum; [`Error::Os`] if waking failed.
    #[doc(alias = "ReleaseSemaphore")]
    #[doc(alias = "sem_post")]
    pub fn release(&self, n: u32) -> Result<u32> {
        match protocol::semaphore_release(self.object, self.index, self.area, n, self.max)? {
            Some(previous) => Ok(previous),
            None => Err(Error::SemaphoreFull { count: self.count(), n, max: self.max }),
        }
    }

    /// Waits until the count is positive and takes one (`WaitForSingleObject(s,
    /// INFINITE)`, `sem_wait`).
    ///
    /// # Errors
    /// [`Error::Os`] if sleeping failed; [`Error::SyncArea`] if this process cannot join
    /// the area.
    #[doc(alias = "sem_wait")]
    pub fn acquire(&self) -> Result<()> {
        protocol::semaphore_acquire(self.object, self.index, self.area, None).map(drop)
    }

    /// Waits at most `timeout` (monotonic clock): `true` if a unit was taken, `false` on
    /// timeout. `Duration::ZERO` takes one only if available now (`sem_trywait`).
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    #[doc(alias = "sem_timedwait")]
    #[doc(alias = "sem_trywait")]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        protocol::semaphore_acquire(self.object, self.index, self.area, deadline)
    }

    /// The count now (a snapshot).
    pub fn count(&self) -> u32 {
        self.object.state.load(Acquire)
    }

    /// The maximum count.
    pub fn maximum(&self) -> u32 {
        self.max
    }
}
