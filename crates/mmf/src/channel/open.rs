//! Creating and opening channels by name, and what [`Channel::info`] tells.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::Channel;
use super::layout::{
    self, AREA_AT, DATA_AT, ENDPOINTS, Header, Kind, MAGIC, MAGIC_INIT, PARTICIPANTS, Params,
    VERSION,
};
use super::shared::{self, Inner, Role};
use crate::error::{Error, Result};
use crate::named::NameOptions;
use crate::primitive::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::sync::{SyncArea, SyncAreaOptions};
use crate::{Access, CreationMode, Mapping, MappingOptions, ViewMut};

/// How to create a channel: its kind, ring capacity and maximum message size, and the
/// named layer's options (creation mode, permissions, lifetime).
///
/// ```
/// use mmf::channel::{ChannelOptions, Kind};
///
/// let options = ChannelOptions::new().kind(Kind::Mpmc).capacity(1 << 16).max_message(4096).clone();
/// assert_eq!(options.size(), 4096 + (1 << 16));
/// ```
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    kind: Kind,
    capacity: u64,
    max_message: Option<u32>,
    name: NameOptions,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        let mut name = NameOptions::new();
        name.creation(CreationMode::CreateNew);
        ChannelOptions { kind: Kind::Spsc, capacity: 1 << 20, max_message: None, name }
    }
}

impl ChannelOptions {
    /// SPSC, a 1 MiB ring, messages up to 1/8 of it, a new name that goes with its last
    /// holder.
    pub fn new() -> Self {
        Self::default()
    }

    /// SPSC (the default) or MPMC.
    pub fn kind(&mut self, kind: Kind) -> &mut Self {
        self.kind = kind;
        self
    }

    /// The ring's size in bytes: a power of two from 64 bytes to 1 TiB (default 1 MiB).
    /// Each message takes 8 bytes of header plus its length rounded up to 8, and 8 bytes
    /// always stay free (the next record's header, zeroed before each commit).
    pub fn capacity(&mut self, bytes: u64) -> &mut Self {
        self.capacity = bytes;
        self
    }

    /// The largest message in bytes, at most `capacity / 2 - 8` and 4 GiB - 8 (default
    /// `capacity / 8`, Agrona's bound, which keeps a wrap's padding small, within those).
    pub fn max_message(&mut self, bytes: u32) -> &mut Self {
        self.max_message = Some(bytes);
        self
    }

    /// [`CreationMode::CreateNew`] (the default) or [`CreationMode::OpenOrCreate`] (an
    /// existing channel must then have the same kind, capacity and maximum).
    pub fn creation(&mut self, creation: CreationMode) -> &mut Self {
        self.name.creation(creation);
        self
    }

    /// The named layer's options (permissions, `keep`, `global`, creation mode).
    pub fn name_options(&mut self, options: NameOptions) -> &mut Self {
        self.name = options;
        self
    }

    /// The bytes the channel's mapping takes: 4096 of control, then the ring.
    pub fn size(&self) -> u64 {
        layout::channel_size(self.capacity)
    }

    fn max(&self) -> u64 {
        // The default within the limit: a ring of 32 GiB or more would otherwise default to
        // 4 GiB, past a message length's 32 bits, and refuse its own default (review 55).
        let default = (self.capacity / 8).max(1).min(layout::max_message_limit(self.capacity));
        self.max_message.map_or(default, u64::from)
    }
}

/// Creates a channel named `name` (`/dev/shm/NAME` on Linux, `Local\NAME` on Windows),
/// its ring allocated whole.
///
/// # Errors
/// [`Error::Channel`] for options out of range, or an existing channel (with
/// `OpenOrCreate`) of another kind or size; [`Error::AlreadyExists`] with `CreateNew`;
/// [`Error::NoSpace`] if `/dev/shm` cannot hold it; the named layer's errors.
///
/// # References
/// [`shm_open(3)`](https://man7.org/linux/man-pages/man3/shm_open.3.html),
/// [`CreateFileMappingW`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-createfilemappingw)
pub fn create(name: &str, options: &ChannelOptions) -> Result<Channel> {
    let max = options.max();
    layout::check_params(options.capacity, max)
        .map_err(|reason| Error::Channel { name: name.to_owned(), reason })?;
    let wanted = Params { kind: options.kind, capacity: options.capacity, max_message: max as u32 };
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(options.size())
        .name(name)
        .name_options(options.name.clone())
        .map_anonymous()?;
    let mut view = mapping.view_mut(..)?;
    let lost_pages = shared::guard(name, &mut view)?;
    let header: &Header = view.get(0)?;
    if header.magic.compare_exchange(0, MAGIC_INIT, AcqRel, Acquire).is_ok() {
        format(&view, wanted)?;
        let area_options = SyncAreaOptions::new().participants(PARTICIPANTS).objects(2).clone();
        let mut area = SyncArea::open_or_init_owned(view, AREA_AT, &area_options)?;
        area.set_lost_pages(lost_pages);
        // The two side locks exist from the start (`mmf chan info` shows them).
        let inner = Inner::new(name, wanted, lost_pages, area, mapping)?;
        inner.lock_object(layout::SEND_LOCK)?;
        inner.lock_object(layout::RECV_LOCK)?;
        inner.header()?.magic.store(MAGIC, Release);
        return Ok(Channel { inner: Arc::new(inner) });
    }
    let channel = attach(name, lost_pages, mapping, view)?;
    if channel.inner.params != wanted {
        return Err(Error::Channel {
            name: name.to_owned(),
            reason: format!(
                "it exists with {:?}, capacity {}, maximum message {}; asked for {:?}, {}, {}",
                channel.inner.params.kind,
                channel.inner.params.capacity,
                channel.inner.params.max_message,
                wanted.kind,
                wanted.capacity,
                wanted.max_message
            ),
        });
    }
    Ok(channel)
}

fn format(view: &ViewMut, p: Params) -> Result<()> {
    let h: &Header = view.get(0)?;
    h.version.store(VERSION, Relaxed);
    h.kind.store(p.kind as u32, Relaxed);
    h.capacity.store(p.capacity, Relaxed);
    h.max_message.store(p.max_message, Relaxed);
    h.endpoints.store(ENDPOINTS as u32, Relaxed);
    h.data_offset.store(DATA_AT, Relaxed);
    h.size.store(layout::channel_size(p.capacity), Relaxed);
    Ok(())
}

/// Opens the channel named `name`, which another process (or this one) created.
///
/// # Errors
/// [`Error::NotFound`] if there is none; [`Error::Corrupted`] if the name holds something
/// that is not a channel of this format (another version, a plain mapping, damage).
pub fn open(name: &str) -> Result<Channel> {
    let mapping = Mapping::open(name, Access::ReadWrite)?;
    let mut view = mapping.view_mut(..)?;
    let lost_pages = shared::guard(name, &mut view)?;
    attach(name, lost_pages, mapping, view)
}

/// Validates the header (waiting up to 1 s for a creator still formatting) and joins.
fn attach(
    name: &str,
    lost_pages: &'static AtomicBool,
    mapping: Mapping,
    view: ViewMut,
) -> Result<Channel> {
    let start = Instant::now();
    if view.len() < size_of::<Header>() {
        let reason = format!(
            "channel {name:?}: {} bytes, shorter than a channel's header ({} bytes): not a \
             channel, or one cut short",
            view.len(),
            size_of::<Header>()
        );
        return Err(Error::Corrupted { reason });
    }
    let params = loop {
        let values = view.get::<Header>(0)?.values();
        let formatting = values.magic == 0 || values.magic == MAGIC_INIT;
        if formatting && start.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        break layout::check_header(values, view.len() as u64).map_err(|reason| {
            Error::Corrupted { reason: format!("channel {name:?}: {reason}") }
        })?;
    };
    let mut area = SyncArea::open_owned(view, AREA_AT)?;
    area.set_lost_pages(lost_pages);
    Ok(Channel { inner: Arc::new(Inner::new(name, params, lost_pages, area, mapping)?) })
}

/// A snapshot of a channel (`mmf chan info`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// SPSC or MPMC.
    pub kind: Kind,
    /// The ring's size in bytes.
    pub capacity: u64,
    /// The largest message, in bytes.
    pub max_message: u32,
    /// Bytes committed and not yet released (records with their headers and padding).
    pub queued_bytes: u64,
    /// Senders attached and alive.
    pub senders: u32,
    /// Receivers attached and alive.
    pub receivers: u32,
    /// Whether a sender or a receiver is asleep waiting for the other.
    pub sleepers: (u32, u32),
}

impl Channel {
    /// What is queued, who is attached (alive), who sleeps: a snapshot.
    ///
    /// ```
    /// # let name = format!("doc-info-{}", std::process::id());
    /// let ch = mmf::channel::create(&name, &mmf::channel::ChannelOptions::new())?;
    /// let mut tx = ch.sender()?;
    /// tx.send(b"12345")?;
    /// let info = ch.info()?;
    /// assert_eq!((info.queued_bytes, info.senders, info.receivers), (16, 1, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// An OS error asking about a peer's liveness.
    pub fn info(&self) -> Result<ChannelInfo> {
        let inner = &self.inner;
        let queued = inner.with_ring(None, |r, _| r.queued_bytes())?;
        let lines = inner.lines()?;
        Ok(ChannelInfo {
            kind: inner.params.kind,
            capacity: inner.params.capacity,
            max_message: inner.params.max_message,
            queued_bytes: queued,
            senders: inner.count_live(Role::Sender)?,
            receivers: inner.count_live(Role::Receiver)?,
            sleepers: (
                lines.not_full.sleepers.load(Relaxed),
                lines.not_empty.sleepers.load(Relaxed),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default maximum message is one every allowed capacity accepts (review 55: from
    /// 32 GiB on it was capacity / 8 = 4 GiB, which does not fit a message's length).
    #[test]
    fn the_default_maximum_message_fits_every_capacity() {
        for shift in 6..=40 {
            let capacity = 1u64 << shift;
            let max = ChannelOptions::new().capacity(capacity).max();
            assert_eq!(layout::check_params(capacity, max), Ok(()), "capacity {capacity}");
            if shift <= 34 {
                assert_eq!(max, capacity / 8, "below 32 GiB the default is capacity / 8");
            }
        }
    }
}
