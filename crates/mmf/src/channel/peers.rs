//! An endpoint's view of the other side: who its peers are, whether they have all gone,
//! and how often it looks (a look costs system calls; an answer from the cache, none).

use std::time::{Duration, Instant};

use super::shared::{AreaPark, Inner, Role};
use crate::error::Result;
use crate::primitive::sync::atomic::Ordering::Acquire;

/// How often an endpoint looks at the other side's liveness (a few `F_OFD_GETLK`s, or
/// `OpenProcess` on Windows) when nothing else made it look: an orderly close is seen at
/// once (the epoch word changes); a killed peer within this long of operations or of
/// waiting (a sleeper wakes at least every 50 ms)...
const LOOK_EVERY: Duration = Duration::from_millis(10);
/// ...the clock being read every this many operations or polls: a look per message would
/// cost system calls, and a clock read per message ~20 ns.
const CALLS_PER_CLOCK: u32 = 256;

// What makes an endpoint look at the peers' liveness (LOOK_EVERY is the period of `Op`
// and `Wake`, the clock read every CALLS_PER_CLOCK `Op`s).
pub(crate) use super::ring::Look;

/// An endpoint's cached view of whether the other side is there.
#[derive(Debug)]
pub(crate) struct PeerWatch {
    role: Role,
    epoch: u32,
    calls: u32,
    looked: Option<Instant>,
    gone: bool,
    /// How many endpoints of `role` had attached when this endpoint attached: one counted
    /// after is a peer of this endpoint's session.
    base: u32,
    /// Whether this endpoint had a peer from the start: one alive when it attached, or
    /// (for a receiver) messages queued by senders that had gone.
    seen: bool,
    /// A live peer's token (Windows sleepers watch its process).
    pub token: Option<u32>,
}

impl PeerWatch {
    /// Watches the endpoints of `role` for an endpoint that has just attached: its peers
    /// are the endpoints of `role` alive now or attaching later, and, if `queued()` says
    /// so (a receiver that finds messages queued), the senders that queued them.
    ///
    /// The count is read before the scan, as in [`gone`](Self::gone): a peer attaching
    /// meanwhile is either in the scan or counted after the base. `queued` is asked after
    /// the scan: a sender that closed before the scan had committed its messages by then
    /// (asked before, a sender that sent its last message and closed in between was in
    /// neither, and the receiver waited forever after that message: review 45).
    pub(crate) fn attached(
        inner: &Inner,
        role: Role,
        queued: impl FnOnce() -> Result<bool>,
    ) -> Result<PeerWatch> {
        let base = inner.attaches(role)?;
        let seen = inner.live(role)?.is_some() || queued()?;
        Ok(PeerWatch {
            role,
            epoch: 0,
            calls: 0,
            looked: None,
            gone: false,
            base,
            seen,
            token: None,
        })
    }

    /// The fast path's look: `true` if the other side was not gone at the last look and
    /// nothing since says to look again (the epoch unchanged, the clock not due for a
    /// read), counting the call as [`gone`](Self::gone) with [`Look::Op`] would.
    /// `false`: the general path looks (and counts the call).
    #[inline(always)]
    pub(crate) fn quiet(&mut self, inner: &Inner) -> bool {
        if self.gone
            || self.looked.is_none()
            || self.calls + 1 >= CALLS_PER_CLOCK
            || inner.epoch().load(Acquire) != self.epoch
        {
            return false;
        }
        self.calls += 1;
        true
    }

    /// Whether the other side has gone: this endpoint had a peer (see
    /// [`attached`](Self::attached)), and no endpoint of the other side is attached and
    /// alive now. A peer of an earlier session does not count: a sender started after
    /// the last receiver left queues for the next one, as a FIFO's writer waits for a
    /// reader. Looks at the endpoint table when the epoch changed or
    /// `look` says it is time; otherwise answers from the cache.
    #[inline]
    pub(crate) fn gone(&mut self, inner: &Inner, look: Look) -> Result<bool> {
        let epoch = inner.epoch().load(Acquire);
        let due = epoch != self.epoch
            || self.looked.is_none()
            || match look {
                Look::Op => {
                    self.calls += 1;
                    self.calls >= CALLS_PER_CLOCK && self.time_to_look()
                }
                Look::Wake => self.time_to_look(),
                Look::Now => true,
            };
        if !due {
            return Ok(self.gone);
        }
        self.epoch = epoch;
        self.looked = Some(Instant::now());
        // The count first, the entries after: an attach writes its entry before it counts
        // itself, so a count seen here has its entry in the scan below (unless it closed
        // since). Counted after the scan, a peer attaching in between was taken for one
        // that had gone (a sender's first send failing while the receivers attached).
        let had_peer = self.seen || inner.attaches(self.role)? != self.base;
        self.token = inner.live(self.role)?;
        // A table that reads as zeros because a peer cut the channel short is not a peer
        // that left: the cut is the error.
        inner.intact()?;
        self.gone = self.token.is_none() && had_peer;
        Ok(self.gone)
    }
}

impl PeerWatch {
    /// [`gone`](Self::gone) for a wait's attempt, which then has `park` watch the live
    /// peer of this look while asleep (SPSC; an MPMC waiter watches no process): not the
    /// one the wait began with, which may have died and been replaced.
    #[inline]
    pub(crate) fn gone_while_waiting(
        &mut self,
        inner: &Inner,
        look: Look,
        park: &AreaPark<'_>,
        mpmc: bool,
    ) -> Result<bool> {
        let gone = self.gone(inner, look)?;
        if !gone && !mpmc {
            park.watch(self.token);
        }
        Ok(gone)
    }

    /// Whether [`LOOK_EVERY`] has passed since the last look (or there was none).
    #[cold]
    fn time_to_look(&mut self) -> bool {
        self.calls = 0;
        self.looked.is_none_or(|t| t.elapsed() >= LOOK_EVERY)
    }
}
