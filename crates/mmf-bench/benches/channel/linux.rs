//! The benchmarks themselves (Linux: the alternatives are futexes, pipes and sockets).

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Bencher, BenchmarkId, Criterion, Throughput};

use crate::turns::{rtt_group, write_percentiles};
use mmf::channel::{self, ChannelOptions, Receiver, Sender};
use mmf::{Access, Mapping, ViewMut};

const PEER: &str = "MMF_BENCH_CHANNEL";
/// Polls before sleeping: "never" for the spinning contestants, PERF-NOTES' 20k for hybrids.
const SPIN_FOREVER: u32 = u32::MAX;
const HYBRID: u32 = 20_000;

fn tmp(tag: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mmf-chan-bench-{tag}-{}", std::process::id()))
}

pub(crate) fn spawn(mode: &str, arg: &str, stdin: Stdio) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(PEER, format!("{mode}:{arg}"))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

// ---- raw shared-page anchors ----

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT reads the word in our shared mapping; no timeout.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, 0usize);
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only looks the word's address up.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
    }
}

/// A word and its sleep flag, on separate cache lines of a shared page.
struct RawSide<'a> {
    word: &'a AtomicU32,
    sleeping: &'a AtomicU32,
}

impl RawSide<'_> {
    /// Waits for the word to move from `seen`: `spins` polls, then the sleep flag, a
    /// second look, and the futex.
    fn wait(&self, seen: u32, spins: u32) -> u32 {
        for _ in 0..spins {
            let v = self.word.load(Ordering::Acquire);
            if v != seen {
                return v;
            }
            std::hint::spin_loop();
        }
        loop {
            self.sleeping.store(1, Ordering::SeqCst);
            let v = self.word.load(Ordering::SeqCst);
            if v != seen {
                self.sleeping.store(0, Ordering::Relaxed);
                return v;
            }
            futex_wait(self.word, seen);
        }
    }

    /// Stores `v` and wakes the other side only if it sleeps.
    fn post(&self, v: u32) {
        self.word.store(v, Ordering::SeqCst);
        if self.sleeping.swap(0, Ordering::SeqCst) == 1 {
            futex_wake(self.word);
        }
    }
}

pub(crate) fn raw_view(path: &std::path::Path) -> ViewMut {
    raw_view_of(path, 4096)
}

fn raw_view_of(path: &std::path::Path, size: u64) -> ViewMut {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    if file.metadata().unwrap().len() < size {
        file.set_len(size).unwrap();
    }
    Mapping::from_file(&file, Access::ReadWrite).unwrap().view_mut(..).unwrap()
}

fn sides(view: &ViewMut) -> (RawSide<'_>, RawSide<'_>) {
    let at = |o| view.get::<AtomicU32>(o).unwrap();
    (RawSide { word: at(0), sleeping: at(64) }, RawSide { word: at(128), sleeping: at(192) })
}

// ---- the floor of a 64-byte message ring ----

/// Record stride of the raw ring: an 8-byte header word and 64 bytes of payload.
const RECORD: usize = 72;
/// Its data: a multiple of the record (no wrap-around padding to handle).
const RING: usize = RECORD * 910;

/// A ring of 72-byte records, each committed by its header word (written last, the next
/// one zeroed first), the payload copied in and out as eight words: what any ring that
/// copies 64-byte messages and commits them by a header costs on this host, two cache lines
/// a message, without the checks, liveness and sleeping that mmf adds.
struct RawRing<'a> {
    words: Vec<&'a AtomicU64>,
    pos: usize,
}

impl<'a> RawRing<'a> {
    fn new(view: &'a ViewMut, at: usize) -> RawRing<'a> {
        RawRing { words: (0..RING / 8).map(|i| view.get(at + i * 8).unwrap()).collect(), pos: 0 }
    }

    fn send(&mut self, msg: &[u64; 8]) {
        let w = self.pos / 8;
        for (i, &v) in msg.iter().enumerate() {
            self.words[w + 1 + i].store(v, Ordering::Relaxed);
        }
        self.words[(w + RECORD / 8) % (RING / 8)].store(0, Ordering::Relaxed);
        self.words[w].store(64, Ordering::SeqCst);
        self.pos = (self.pos + RECORD) % RING;
    }

    fn recv(&mut self, out: &mut [u64; 8]) {
        let w = self.pos / 8;
        while self.words[w].load(Ordering::Acquire) == 0 {
            std::hint::spin_loop();
        }
        for (i, v) in out.iter_mut().enumerate() {
            *v = self.words[w + 1 + i].load(Ordering::Relaxed);
        }
        self.pos = (self.pos + RECORD) % RING;
    }
}

struct RawRingPair {
    ping: RawRing<'static>,
    pong: RawRing<'static>,
    path: PathBuf,
    buf: [u64; 8],
    child: Child,
}

fn raw_ring_pair() -> Box<dyn RoundTrip> {
    let path = tmp("raw-ring");
    let _ = std::fs::remove_file(&path);
    // Leaked: the rings borrow it for the run (one small mapping per pair made: the
    // criterion run's and one per turn).
    let view: &'static ViewMut = Box::leak(Box::new(raw_view_of(&path, 2 * RING as u64)));
    let child = spawn("raw-ring-echo", &path.display().to_string(), Stdio::null());
    let (ping, pong) = (RawRing::new(view, 0), RawRing::new(view, RING));
    Box::new(RawRingPair { ping, pong, path, buf: [7; 8], child })
}

impl RoundTrip for RawRingPair {
    fn round_trip(&mut self) {
        self.ping.send(&self.buf);
        self.pong.recv(&mut self.buf);
    }
    fn stop(mut self: Box<Self>) {
        self.ping.send(&[u64::MAX; 8]);
        self.child.wait().unwrap();
        let _ = std::fs::remove_file(&self.path);
    }
}

// ---- the peers ----

/// The child processes: `MMF_BENCH_CHANNEL=mode:arg`.
pub fn peer_role() -> bool {
    let Ok(value) = std::env::var(PEER) else { return false };
    let (mode, arg) = value.split_once(':').unwrap();
    let args: Vec<&str> = arg.split('|').collect();
    match mode {
        "mmf-echo" => {
            let mut rx = channel::open(args[0]).unwrap().receiver().unwrap();
            let mut tx = channel::open(args[1]).unwrap().sender().unwrap();
            let spins = args[2].parse().unwrap();
            rx.set_spins(spins);
            tx.set_spins(spins);
            let mut buf = [0u8; 64];
            loop {
                let m = rx.recv().unwrap();
                if m.is_empty() {
                    return true;
                }
                m.read_at(0, &mut buf).unwrap();
                drop(m);
                tx.send(buf).unwrap();
            }
        }
        "raw-echo" => {
            crate::nudge::install();
            let view = raw_view(std::path::Path::new(args[0]));
            let (ping, pong) = sides(&view);
            let spins = args[1].parse().unwrap();
            let mut seen = 0;
            loop {
                seen = ping.wait(seen, spins);
                if seen == u32::MAX {
                    return true;
                }
                pong.post(seen);
            }
        }
        "mmf-sink" => {
            let mut rx = channel::open(args[0]).unwrap().receiver().unwrap();
            let mut ack = channel::open(args[1]).unwrap().sender().unwrap();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let m = rx.recv().unwrap();
                if m.is_empty() {
                    return true;
                }
                // The consumer copies the message out into its buffer, as a pipe's reader
                // reads into one.
                let out = &mut buf[..m.len()];
                m.read_at(0, out).unwrap();
                drop(m);
                if black_box(out[0]) == 1 {
                    ack.send([1u8]).unwrap();
                }
            }
        }
        "raw-ring-echo" => {
            let view = raw_view(std::path::Path::new(args[0]));
            let (mut ping, mut pong) = (RawRing::new(&view, 0), RawRing::new(&view, RING));
            let mut buf = [0u64; 8];
            loop {
                ping.recv(&mut buf);
                if buf[0] == u64::MAX {
                    return true;
                }
                pong.send(&buf);
            }
        }
        #[cfg(feature = "iceoryx2")]
        "ice-echo" => {
            crate::ice::echo(args[0], args[1], args[2] == "true");
            true
        }
        "stream-sink" => {
            let size: usize = args[0].parse().unwrap();
            let mut input = std::io::stdin().lock();
            let mut out = std::io::stdout().lock();
            let mut buf = vec![0u8; size];
            loop {
                input.read_exact(&mut buf).unwrap();
                match buf[0] {
                    1 => {
                        out.write_all(&[1]).unwrap();
                        out.flush().unwrap();
                    }
                    2 => return true,
                    _ => {}
                }
            }
        }
        other => panic!("unknown peer mode {other}"),
    }
}

// ---- round trips ----

pub(crate) trait RoundTrip {
    fn round_trip(&mut self);
    fn stop(self: Box<Self>);
}

struct MmfPair {
    tx: Sender,
    rx: Receiver,
    child: Child,
    _channels: [channel::Channel; 2],
    buf: [u8; 64],
}

fn mmf_pair(spins: u32) -> Box<dyn RoundTrip> {
    let (ping, pong) = (
        format!("bench-ping-{}", std::process::id()),
        format!("bench-pong-{}", std::process::id()),
    );
    let options = ChannelOptions::new().capacity(1 << 16).clone();
    let channels =
        [channel::create(&ping, &options).unwrap(), channel::create(&pong, &options).unwrap()];
    let mut tx = channels[0].sender().unwrap();
    let mut rx = channels[1].receiver().unwrap();
    tx.set_spins(spins);
    rx.set_spins(spins);
    let child = spawn("mmf-echo", &format!("{ping}|{pong}|{spins}"), Stdio::null());
    Box::new(MmfPair { tx, rx, child, _channels: channels, buf: [7u8; 64] })
}

impl RoundTrip for MmfPair {
    fn round_trip(&mut self) {
        self.tx.send(self.buf).unwrap();
        let m = self.rx.recv().unwrap();
        m.read_at(0, &mut self.buf).unwrap();
    }
    fn stop(mut self: Box<Self>) {
        self.tx.send([]).unwrap();
        self.child.wait().unwrap();
    }
}

struct RawPair {
    view: ViewMut,
    path: PathBuf,
    seq: u32,
    spins: u32,
    child: Child,
    /// Signals both sides if their page stands still (a lost wake-up; `nudge.rs`).
    _watchdog: crate::nudge::Watchdog,
}

fn raw_pair(spins: u32) -> Box<dyn RoundTrip> {
    let path = tmp("raw");
    let view = raw_view(&path);
    view.write_at(0, &[0u8; 256]).unwrap();
    let child = spawn("raw-echo", &format!("{}|{spins}", path.display()), Stdio::null());
    let _watchdog = crate::nudge::Watchdog::start(&path, child.id());
    Box::new(RawPair { view, path, seq: 0, spins, child, _watchdog })
}

impl RoundTrip for RawPair {
    fn round_trip(&mut self) {
        let (ping, pong) = sides(&self.view);
        let seen = self.seq;
        self.seq += 1;
        ping.post(self.seq);
        while pong.wait(seen, self.spins) != self.seq {}
    }
    fn stop(mut self: Box<Self>) {
        sides(&self.view).0.post(u32::MAX);
        self.child.wait().unwrap();
        let _ = std::fs::remove_file(&self.path);
    }
}

// ---- one-way throughput ----

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// One benchmark of a one-way group: named `name`, or `name/size` in a scaling group.
fn bench_one(g: &mut Group<'_>, name: &str, param: Option<usize>, f: impl FnMut(&mut Bencher<'_>)) {
    match param {
        Some(size) => g.bench_function(BenchmarkId::new(name, size), f),
        None => g.bench_function(name, f),
    };
}

/// `channel_oneway_64B` or `channel_oneway_4KiB`: the goals' two sizes.
fn oneway(c: &mut Criterion, size: usize) {
    let group = if size == 64 { "channel_oneway_64B" } else { "channel_oneway_4KiB" };
    let mut g = c.benchmark_group(group);
    g.measurement_time(mmf_bench::secs(5)).sample_size(20);
    oneway_in(&mut g, size, None);
    g.finish();
}

/// `channel_oneway_vs_size`: throughput against the message size, 16 B to 64 KiB.
fn oneway_vs_size(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_oneway_vs_size");
    g.measurement_time(mmf_bench::secs(2)).warm_up_time(Duration::from_millis(500));
    g.sample_size(10);
    let sizes: &[usize] =
        if mmf_bench::quick() { &[64, 4096] } else { &[16, 64, 256, 1024, 4096, 16384, 65536] };
    for &size in sizes {
        g.throughput(Throughput::Bytes(size as u64));
        oneway_in(&mut g, size, Some(size));
    }
    g.finish();
}

/// mmf SPSC, a pipe and a unix stream socket, `size`-byte messages, in group `g`.
fn oneway_in(g: &mut Group<'_>, size: usize, param: Option<usize>) {
    let mut msg = vec![0u8; size];
    // mmf
    let (data, ack) =
        (format!("bench-data-{}", std::process::id()), format!("bench-ack-{}", std::process::id()));
    let options = ChannelOptions::new().capacity(1 << 20).clone();
    let chans =
        [channel::create(&data, &options).unwrap(), channel::create(&ack, &options).unwrap()];
    let (mut tx, mut acks) = (chans[0].sender().unwrap(), chans[1].receiver().unwrap());
    let mut child = spawn("mmf-sink", &format!("{data}|{ack}"), Stdio::null());
    bench_one(g, "mmf_spsc", param, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                msg[0] = u8::from(i + 1 == iters);
                tx.send(msg.as_slice()).unwrap();
            }
            drop(acks.recv().unwrap());
            start.elapsed()
        })
    });
    tx.send([]).unwrap();
    child.wait().unwrap();
    drop((tx, acks, chans));
    // A pipe, and a unix stream socket.
    for name in ["pipe", "unix_socket"] {
        let (mut writer, stdin): (Box<dyn Write>, Stdio) = if name == "pipe" {
            let mut child = spawn("stream-sink", &size.to_string(), Stdio::piped());
            let w = child.stdin.take().unwrap();
            let out = child.stdout.take().unwrap();
            stream_bench(g, name, param, Box::new(w), out, &mut msg);
            child.wait().unwrap();
            continue;
        } else {
            let (ours, theirs) = UnixStream::pair().unwrap();
            (Box::new(ours), Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        };
        let mut child = spawn("stream-sink", &size.to_string(), stdin);
        let out = child.stdout.take().unwrap();
        stream_bench(g, name, param, Box::new(&mut writer), out, &mut msg);
        drop(writer);
        child.wait().unwrap();
    }
}

fn stream_bench(
    g: &mut Group<'_>,
    name: &str,
    param: Option<usize>,
    mut w: Box<dyn Write + '_>,
    mut acks: ChildStdout,
    msg: &mut [u8],
) {
    bench_one(g, name, param, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                msg[0] = u8::from(i + 1 == iters);
                w.write_all(msg).unwrap();
            }
            let mut one = [0u8; 1];
            acks.read_exact(&mut one).unwrap();
            start.elapsed()
        })
    });
    msg[0] = 2;
    w.write_all(msg).unwrap();
    w.flush().unwrap();
}

/// Whether the group `tag` runs: `MMF_BENCH_CHANNEL_GROUPS` (a comma list of `spin`,
/// `hybrid`, `parked`, `oneway`, `size`) picks groups, to re-run one alone; default all.
fn wanted(tag: &str) -> bool {
    std::env::var("MMF_BENCH_CHANNEL_GROUPS").map_or(true, |v| v.split(',').any(|g| g == tag))
}

pub fn benches() {
    let mut c = Criterion::default().configure_from_args();
    let mut all = Vec::new();
    if wanted("spin") {
        all.extend(rtt_group(
            &mut c,
            "channel_rtt_spin",
            vec![
                ("mmf_spsc", Box::new(|| mmf_pair(SPIN_FOREVER))),
                ("raw_spin", Box::new(|| raw_pair(SPIN_FOREVER))),
                ("raw_ring", Box::new(raw_ring_pair)),
                #[cfg(feature = "iceoryx2")]
                ("iceoryx2_busy", Box::new(|| crate::ice::pair(false))),
            ],
            false,
        ));
    }
    if wanted("hybrid") {
        all.extend(rtt_group(
            &mut c,
            "channel_rtt_hybrid",
            vec![
                ("mmf_spsc", Box::new(|| mmf_pair(HYBRID))),
                ("raw_hybrid", Box::new(|| raw_pair(HYBRID))),
                // Issue #15's second hybrid goal is against iceoryx2's blocking round trip:
                // measured here too, so that the two come from one group and one turn.
                #[cfg(feature = "iceoryx2")]
                ("iceoryx2_blocking", Box::new(|| crate::ice::pair(true))),
            ],
            false,
        ));
    }
    if wanted("parked") {
        all.extend(rtt_group(
            &mut c,
            "channel_rtt_parked",
            vec![
                ("mmf_spsc", Box::new(|| mmf_pair(0))),
                ("raw_futex", Box::new(|| raw_pair(0))),
                #[cfg(feature = "iceoryx2")]
                ("iceoryx2_blocking", Box::new(|| crate::ice::pair(true))),
            ],
            true,
        ));
    }
    if !all.is_empty() {
        write_percentiles(&all);
    }
    if wanted("oneway") {
        oneway(&mut c, 64);
        oneway(&mut c, 4096);
    }
    if wanted("size") {
        oneway_vs_size(&mut c);
    }
}
