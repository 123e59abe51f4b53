//! A simulated disk (SQLite's crash VFS, redb's crash backend): it keeps the writes since
//! the last sync apart from what the device holds, and at a simulated power loss keeps an
//! arbitrary part of them — whole, dropped, or torn sector by sector, with garbage in the
//! sectors being written. It also injects I/O errors at the Nth write or sync, once or
//! forever, and forgets the writes a failed sync was for (Linux's behaviour after an
//! `fsync` error).

use std::io;
use std::sync::{Arc, Mutex};

use mmf_heap::{Backend, Error, Result};

/// The sector size at which unsynced writes tear.
pub const SECTOR: u64 = 512;

/// Where to inject a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The Nth write (from 1).
    Write(u64),
    /// The Nth sync or grow (from 1).
    Sync(u64),
}

/// What happens at the fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Power is lost: this and every later operation fails; [`SimDisk::after_power_loss`]
    /// gives what the device kept.
    PowerLoss,
    /// The process dies: as a power loss, but the page cache survives (every completed
    /// write is kept): [`SimDisk::after_kill`].
    Kill,
    /// An I/O error, once.
    ErrorOnce,
    /// An I/O error at this and every later operation.
    ErrorForever,
}

#[derive(Default)]
struct State {
    /// What the device holds.
    durable: Vec<u8>,
    /// What reads see (the page cache).
    cache: Vec<u8>,
    /// Writes since the last sync, in order.
    pending: Vec<(u64, Vec<u8>)>,
    writes: u64,
    syncs: u64,
    fault: Option<(Op, Fault)>,
    /// Set once a power loss, a kill or a permanent error has happened.
    dead: bool,
}

/// The shared disk; [`SimBackend`] is a heap's handle to it.
#[derive(Clone, Default)]
pub struct SimDisk(Arc<Mutex<State>>);

/// A heap's [`Backend`] on a [`SimDisk`].
pub struct SimBackend(pub SimDisk);

/// A small deterministic random number generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

impl SimDisk {
    /// A disk holding `image`, durable.
    pub fn with_image(image: Vec<u8>) -> Self {
        let state = State { durable: image.clone(), cache: image, ..State::default() };
        SimDisk(Arc::new(Mutex::new(state)))
    }

    pub fn backend(&self) -> SimBackend {
        SimBackend(self.clone())
    }

    /// Injects `fault` at `op`.
    pub fn inject(&self, op: Op, fault: Fault) {
        self.0.lock().unwrap().fault = Some((op, fault));
    }

    /// Operations so far: (writes, syncs).
    pub fn counts(&self) -> (u64, u64) {
        let s = self.0.lock().unwrap();
        (s.writes, s.syncs)
    }

    /// What the device holds after a power loss now: the durable bytes, then each pending
    /// write's sectors kept, dropped or (rarely) garbage, as `rng` decides — per `mode`:
    /// 0 drops all, 1 keeps all, 2 decides per write, 3 per sector.
    pub fn after_power_loss(&self, rng: &mut Rng, mode: u64) -> Vec<u8> {
        let s = self.0.lock().unwrap();
        let mut image = s.durable.clone();
        if s.cache.len() > image.len() && mode != 0 && rng.below(2) == 0 {
            image.resize(s.cache.len(), 0); // a growth whose sync did not finish, kept
        }
        for (off, data) in &s.pending {
            let keep_write = rng.below(2) == 0;
            let mut at = 0u64;
            while at < data.len() as u64 {
                let sector_end = ((off + at) / SECTOR + 1) * SECTOR - off;
                let end = sector_end.min(data.len() as u64);
                let keep = match mode {
                    0 => false,
                    1 => true,
                    2 => keep_write,
                    _ => rng.below(2) == 0,
                };
                let (start, stop) = ((off + at) as usize, (off + end) as usize);
                if stop > image.len() {
                    image.resize(stop, 0); // the device kept a length it was not told to
                }
                if keep {
                    image[start..stop].copy_from_slice(&data[at as usize..end as usize]);
                } else if mode == 3 && rng.below(16) == 0 {
                    // A sector caught mid-write: garbage, only where the write was going.
                    for b in &mut image[start..stop] {
                        *b = rng.next() as u8;
                    }
                }
                at = end;
            }
        }
        image
    }

    /// What a reopen sees after the process died: every completed write.
    pub fn after_kill(&self) -> Vec<u8> {
        self.0.lock().unwrap().cache.clone()
    }

    /// The durable bytes only.
    pub fn durable(&self) -> Vec<u8> {
        self.0.lock().unwrap().durable.clone()
    }
}

fn injected(what: &str) -> Error {
    Error::io("simulated", io::Error::other(format!("injected fault at {what}")))
}

impl State {
    /// Counts an operation and says whether it fails.
    fn check(&mut self, op: Op) -> Result<()> {
        if self.dead {
            return Err(injected("a dead disk"));
        }
        match self.fault {
            Some((at, fault)) if at == op => {
                match fault {
                    Fault::ErrorOnce => self.fault = None,
                    _ => self.dead = true,
                }
                Err(injected(&format!("{op:?}")))
            }
            Some((Op::Write(n), Fault::ErrorForever)) if matches!(op, Op::Write(m) if m > n) => {
                Err(injected("a broken disk"))
            }
            Some((Op::Sync(n), Fault::ErrorForever)) if matches!(op, Op::Sync(m) if m > n) => {
                Err(injected("a broken disk"))
            }
            _ => Ok(()),
        }
    }

    fn make_durable(&mut self) {
        for (off, data) in std::mem::take(&mut self.pending) {
            let end = off as usize + data.len();
            if end > self.durable.len() {
                self.durable.resize(end, 0);
            }
            self.durable[off as usize..end].copy_from_slice(&data);
        }
        self.durable.resize(self.cache.len(), 0);
    }
}

impl Backend for SimBackend {
    fn len(&self) -> Result<u64> {
        Ok(self.0.0.lock().unwrap().cache.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let s = self.0.0.lock().unwrap();
        let start = offset as usize;
        let src =
            s.cache.get(start..start + buf.len()).ok_or_else(|| injected("a read past the end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        let mut s = self.0.0.lock().unwrap();
        s.writes += 1;
        let n = s.writes;
        s.check(Op::Write(n))?;
        let start = offset as usize;
        let dst = s
            .cache
            .get_mut(start..start + data.len())
            .ok_or_else(|| injected("a write past the end"))?;
        dst.copy_from_slice(data);
        s.pending.push((offset, data.to_vec()));
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let mut s = self.0.0.lock().unwrap();
        s.syncs += 1;
        let n = s.syncs;
        if let Err(e) = s.check(Op::Sync(n)) {
            if !s.dead {
                // A failed fsync: the kernel marks the pages clean; they never reach the
                // device unless written again.
                s.pending.clear();
            }
            return Err(e);
        }
        s.make_durable();
        Ok(())
    }

    fn grow(&self, len: u64) -> Result<()> {
        let mut s = self.0.0.lock().unwrap();
        s.syncs += 1;
        let n = s.syncs;
        if (len as usize) > s.cache.len() {
            s.cache.resize(len as usize, 0);
        }
        s.check(Op::Sync(n))?;
        s.make_durable();
        Ok(())
    }
}
