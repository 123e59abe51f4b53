//! Message channels between processes over a named shared mapping: messages of any size
//! up to a maximum, copied or written and read in place, blocking without burning a core,
//! and honest about dead peers.
//!
//! ```
//! use mmf::channel::{self, ChannelOptions, Kind, RecvError};
//!
//! # let name = format!("doc-channel-{}", std::process::id());
//! // The receiving process creates it (or the sender; either may come first).
//! let ch = channel::create(&name, ChannelOptions::new().kind(Kind::Spsc).capacity(1 << 20))?;
//! let mut rx = ch.receiver()?;
//!
//! // The sending process opens it by name.
//! let mut tx = channel::open(&name)?.sender()?;
//! tx.send(b"first")?;
//! tx.send(vec![7u8; 1000])?;
//! drop(tx); // an orderly close (a SIGKILL is seen the same way)
//!
//! assert_eq!(rx.recv()?.to_vec()?, b"first");
//! assert_eq!(rx.recv()?.len(), 1000);
//! assert!(matches!(rx.recv(), Err(RecvError::Disconnected))); // after every message
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//!
//! - **One named mapping**, allocated whole at creation: a full `/dev/shm` is
//!   [`Error::NoSpace`](crate::Error::NoSpace) then, never a `SIGBUS` later. Its format
//!   (`layout.rs`, `docs/channel-format.md`) is versioned; every field a peer wrote is
//!   checked before use, and a position or record that cannot be is
//!   [`Error::Corrupted`](crate::Error::Corrupted), never a panic or a wild read.
//! - **A ring of variable-size records** (Agrona's): 8-byte header, payload 8-aligned, a
//!   pad record where the next would cross the end (no double mapping). A message is
//!   published by the store of its own header after its bytes (the 8 bytes after it zeroed
//!   first), so a sender killed mid-message leaves nothing half-written visible; a
//!   successor starts at the stored `tail` and steps over a record committed past it.
//! - **Blocking**: spin, then declare a sleeper, look again, sleep on a futex (Linux) or
//!   a named semaphore of wake-ups (Windows); a side makes a wake-up system call only when
//!   the other sleeps (`ring.rs`). Sleepers look at the peers at least every 50 ms, and on
//!   Windows an SPSC sleeper also wakes when the peer's process ends.
//! - **Peers** are participants of a sync area embedded in the channel ([`crate::sync`]),
//!   whose liveness the kernel keeps however a process ends. A receiver sees
//!   [`RecvError::Disconnected`] once every message committed has been received and the
//!   senders it had are gone (closed or killed); a sender sees [`SendError::Disconnected`]
//!   once the receivers it had are. An endpoint's peers are those alive when it attached
//!   or attaching later, and for a receiver the senders whose messages it found queued: a
//!   session that ended before it came does not count, so on a kept channel a sender with
//!   no receiver yet queues (and waits when the ring is full), and a receiver of an empty
//!   channel waits for a sender, as a FIFO's ends wait for each other. Both are "for now":
//!   a restarted peer may attach again.
//! - **SPSC** holds each side's robust lock for the endpoint's life (one sender, one
//!   receiver; a killed one's successor takes over). **MPMC** takes the side's lock per
//!   operation: any number of senders and receivers, each side one at a time, with the
//!   same death handling (a sender killed holding the lock leaves nothing published; a
//!   receiver killed holding a message leaves it to the next receiver).
//!
//! # Delivery after a kill
//!
//! A message is delivered exactly once unless a receiver is killed while it holds the
//! message: it was not released, so the next receiver gets it again (at least once). A
//! sender killed before its commit's store sent nothing; after it, the message is there.

mod layout;
mod ring;
mod wait;

#[cfg(not(mmf_loom))]
mod errors;
#[cfg(not(mmf_loom))]
mod open;
#[cfg(not(mmf_loom))]
mod peers;
#[cfg(not(mmf_loom))]
mod receiver;
#[cfg(not(mmf_loom))]
mod sender;
#[cfg(not(mmf_loom))]
mod shared;

#[cfg(not(mmf_loom))]
pub use errors::{RecvError, SendError};
pub use layout::Kind;
#[cfg(not(mmf_loom))]
pub use open::{ChannelInfo, ChannelOptions, create, open};
#[cfg(not(mmf_loom))]
pub use receiver::{Message, Receiver};
#[cfg(not(mmf_loom))]
pub use sender::{Reservation, Sender};

#[cfg(not(mmf_loom))]
use std::sync::Arc;

#[cfg(not(mmf_loom))]
use crate::error::Result;

/// A channel, created or opened by name: makes [`Sender`]s and [`Receiver`]s, and tells
/// what is queued. The mapping lives while this or any endpoint made from it does.
#[cfg(not(mmf_loom))]
#[derive(Debug, Clone)]
pub struct Channel {
    inner: shared::Shared,
}

#[cfg(not(mmf_loom))]
impl Channel {
    /// Attaches a sender.
    ///
    /// # Errors
    /// [`Error::Channel`](crate::Error::Channel) if the channel is SPSC and a live sender
    /// is attached (in any process), or every endpoint entry is taken;
    /// [`Error::Corrupted`](crate::Error::Corrupted) if the ring's positions cannot be.
    pub fn sender(&self) -> Result<Sender> {
        Sender::new(Arc::clone(&self.inner))
    }

    /// Attaches a receiver. On an SPSC channel, one that replaces a killed receiver starts
    /// at the message the dead one held.
    ///
    /// # Errors
    /// As [`sender`](Self::sender).
    pub fn receiver(&self) -> Result<Receiver> {
        Receiver::new(Arc::clone(&self.inner))
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// SPSC or MPMC.
    pub fn kind(&self) -> Kind {
        self.inner.params.kind
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> u64 {
        self.inner.params.capacity
    }

    /// The largest message, in bytes.
    pub fn max_message(&self) -> u32 {
        self.inner.params.max_message
    }
}

/// How many times a blocked endpoint polls before it sleeps, by default (PERF-NOTES e):
/// 20,000 polls, tens of microseconds where a `pause` is short and 0.5–0.8 ms on the AMD
/// EPYC guests here (26 ns a `pause`); none on one CPU, where the peer cannot run while
/// this side polls.
#[cfg(not(mmf_loom))]
pub(crate) fn default_spins() -> u32 {
    match std::thread::available_parallelism() {
        Ok(n) if n.get() > 1 => 20_000,
        _ => 0,
    }
}

#[cfg(all(test, mmf_loom))]
mod loom_tests;
