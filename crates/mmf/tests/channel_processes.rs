//! Channels between real processes: streams of random sizes (SPSC, and MPMC with two
//! producers and two consumers) delivered exactly once; producers killed mid-stream
//! (SIGKILL / `TerminateProcess`) many times, the consumer getting every committed message
//! and then `Disconnected`; a consumer killed while holding a message or while asleep,
//! the producer never stalled and a successor getting the held message; an idle receiver
//! that costs no CPU, also after its sender was killed and replaced; a full `/dev/shm` at
//! creation.
//!
//! Knobs: `MMF_CHANNEL_MESSAGES` (per stream, default 100,000; the run is
//! 1,000,000), `MMF_CHANNEL_KILLS` (default 200 on Linux, 40 under Windows).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mmf::channel::{self, ChannelOptions, Kind, RecvError, SendError};
use mmf::{Access, Mapping, ViewMut};
use mmf_testkit::{Peer, hear, role, tell, unique_name};

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

const MAX: u32 = 1000;

/// Message `seq` of stream `stream`: 16 bytes naming it, then a pattern of a length that
/// follows from both.
fn message(stream: u64, seq: u64) -> Vec<u8> {
    let h = mix(stream.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seq ^ 0x5555);
    let len = 16 + (h % u64::from(MAX - 15)) as usize;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&stream.to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend((16..len).map(|i| (h >> (i % 56)) as u8 ^ i as u8));
    m
}

/// Checks a received message and returns `(stream, seq)`; panics on a torn one.
fn check(bytes: &[u8]) -> (u64, u64) {
    assert!(bytes.len() >= 16, "a message of {} bytes", bytes.len());
    let stream = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let seq = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    assert!(bytes == message(stream, seq).as_slice(), "message {stream}/{seq} is torn");
    (stream, seq)
}

fn options(kind: Kind) -> ChannelOptions {
    ChannelOptions::new().kind(kind).capacity(64 << 10).max_message(MAX).clone()
}

/// A file of counters the producers update after each commit (what they know was sent).
fn counters() -> (tempfile::TempDir, String, ViewMut) {
    let (dir, path, file) = mmf_testkit::file_with(4096, |_| 0);
    let view = Mapping::from_file(&file, Access::ReadWrite).unwrap().view_mut(..).unwrap();
    (dir, path.to_str().unwrap().to_owned(), view)
}

fn open_counters(path: &str) -> ViewMut {
    let file = mmf_testkit::open_rw(std::path::Path::new(path));
    Mapping::from_file(&file, Access::ReadWrite).unwrap().view_mut(..).unwrap()
}

/// The roles the peers play; `arg` is `name` or `name|extra`.
fn play(role: &str, arg: &str) {
    let (name, extra) = arg.split_once('|').unwrap_or((arg, ""));
    let ch = channel::open(name).unwrap();
    match role {
        // Sends `n` messages of stream `id` once told to go.
        "produce" => {
            let (id, n) = extra.split_once(',').unwrap();
            let (id, n): (u64, u64) = (id.parse().unwrap(), n.parse().unwrap());
            let mut tx = ch.sender().unwrap();
            tell("attached");
            hear();
            for seq in 0..n {
                tx.send(message(id, seq)).unwrap();
            }
        }
        // Receives until Disconnected; reports count, sum of seqs, and a hash sum.
        "consume" => {
            let mut rx = ch.receiver().unwrap();
            tell("attached");
            let (mut count, mut sum, mut hash) = (0u64, 0u64, 0u64);
            let mut last = std::collections::HashMap::new();
            loop {
                let m = match rx.recv() {
                    Ok(m) => m,
                    Err(RecvError::Disconnected) => break,
                    Err(e) => panic!("{e}"),
                };
                let (stream, seq) = check(&m.to_vec().unwrap());
                drop(m);
                if let Some(prev) = last.insert(stream, seq) {
                    assert!(prev < seq, "stream {stream}: {seq} after {prev}");
                }
                count += 1;
                sum += seq;
                hash = hash.wrapping_add(mix(stream << 40 ^ seq));
            }
            tell(&format!("done {count} {sum} {hash}"));
        }
        // Streams (trial, seq) forever, recording in the counter file how many it
        // committed, until killed.
        "stream" => {
            let (trial, path) = extra.split_once(',').unwrap();
            let trial: u64 = trial.parse().unwrap();
            let counters = open_counters(path);
            let committed: &AtomicU64 = counters.get(0).unwrap();
            let mut tx = ch.sender().unwrap();
            tx.set_spins(100);
            tell("ready");
            for seq in 0.. {
                tx.send(message(trial, seq)).unwrap();
                committed.store(seq + 1, Ordering::SeqCst);
            }
        }
        // Takes one message and holds it until killed; or sleeps in recv until killed.
        "hold" | "sleep" => {
            let mut rx = ch.receiver().unwrap();
            if role == "sleep" {
                tell("sleeping");
                let _ = rx.recv();
                return;
            }
            let m = rx.recv().unwrap();
            tell(&format!("holding {}", check(&m.to_vec().unwrap()).1));
            hear();
        }
        // Attaches a sender and closes it again, keeping the channel (and its place among
        // the channel's processes) until killed.
        "squat" => {
            drop(ch.sender().unwrap());
            tell("detached");
            hear();
        }
        // Attaches a sender; sends `wake` each time it is told to.
        "attach" => {
            let mut tx = ch.sender().unwrap();
            tell("attached");
            while hear().is_some() {
                tx.send(b"wake").unwrap();
                tell("sent");
            }
        }
        // Receives everything there is, reports the seqs in order.
        "drain" => {
            let mut rx = ch.receiver().unwrap();
            let mut seqs = Vec::new();
            while let Ok(m) = rx.recv_timeout(Duration::from_millis(200)) {
                seqs.push(check(&m.to_vec().unwrap()).1);
            }
            tell(&format!("seqs {seqs:?}"));
        }
        other => panic!("unknown role {other}"),
    }
}

fn stream(test: &str, kind: Kind, producers: u64, consumers: usize) {
    let name = unique_name("chan-proc");
    let ch = channel::create(&name, &options(kind)).unwrap();
    let n = knob("MMF_CHANNEL_MESSAGES", 100_000) / producers;
    let start = Instant::now();
    let mut readers: Vec<Peer> =
        (0..consumers).map(|_| Peer::spawn(test, "consume", &name)).collect();
    readers.iter_mut().for_each(|p| drop(p.expect("attached")));
    let mut writers: Vec<Peer> = (0..producers)
        .map(|id| Peer::spawn(test, "produce", &format!("{name}|{id},{n}")))
        .collect();
    // Every producer attached before any finishes: the consumers end only when all have.
    writers.iter_mut().for_each(|p| drop(p.expect("attached")));
    writers.iter_mut().for_each(|p| p.say("go"));
    let (mut count, mut sum, mut hash) = (0u64, 0u64, 0u64);
    for mut r in readers {
        let done = r.expect("done");
        let v: Vec<u64> = done.split(' ').map(|x| x.parse().unwrap()).collect();
        (count, sum, hash) = (count + v[0], sum + v[1], hash.wrapping_add(v[2]));
        eprintln!("a consumer got {} messages", v[0]);
        r.wait_success();
    }
    writers.into_iter().for_each(Peer::wait_success);
    let want_hash = (0..producers)
        .flat_map(|p| (0..n).map(move |s| mix(p << 40 ^ s)))
        .fold(0u64, u64::wrapping_add);
    assert_eq!(count, producers * n, "every message once");
    assert_eq!(sum, producers * (n * (n - 1) / 2));
    assert_eq!(hash, want_hash, "the same messages");
    eprintln!("{} messages in {:?}", producers * n, start.elapsed());
    drop(ch);
}

#[test]
fn spsc_two_processes_random_sizes_exactly_once() {
    const TEST: &str = "spsc_two_processes_random_sizes_exactly_once";
    if let Some((role, arg)) = role() {
        return play(&role, &arg);
    }
    stream(TEST, Kind::Spsc, 1, 1);
}

#[test]
fn mpmc_two_producers_two_consumers_exactly_once() {
    const TEST: &str = "mpmc_two_producers_two_consumers_exactly_once";
    if let Some((role, arg)) = role() {
        return play(&role, &arg);
    }
    stream(TEST, Kind::Mpmc, 2, 2);
}

/// Receives until `Disconnected` (which must come), checking order; returns the seqs.
fn receive_to_the_end(rx: &mut channel::Receiver, trial: u64, from: u64) -> u64 {
    let mut next = from;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(m) => {
                let (t, seq) = check(&m.to_vec().unwrap());
                assert_eq!((t, seq), (trial, next), "trial {trial}: out of order or lost");
                next += 1;
            }
            Err(RecvError::Disconnected) => return next,
            Err(RecvError::Timeout) => assert!(Instant::now() < deadline, "no Disconnected"),
            Err(e) => panic!("trial {trial}: {e}"),
        }
    }
}

#[test]
fn a_killed_producer_is_disconnected_after_every_committed_message() {
    const TEST: &str = "a_killed_producer_is_disconnected_after_every_committed_message";
    if let Some((role, arg)) = role() {
        return play(&role, &arg);
    }
    let name = unique_name("chan-kill");
    let ch = channel::create(&name, &options(Kind::Spsc)).unwrap();
    let (_dir, path, counters) = counters();
    let committed: &AtomicU64 = counters.get(0).unwrap();
    let mut rx = ch.receiver().unwrap();
    let kills = knob("MMF_CHANNEL_KILLS", if cfg!(windows) { 40 } else { 200 });
    let mut total = 0;
    for trial in 0..kills {
        committed.store(0, Ordering::SeqCst);
        let mut peer = Peer::spawn(TEST, "stream", &format!("{name}|{trial},{path}"));
        peer.expect("ready");
        // A different moment each time: after 0 to ~3000 messages received.
        let mut next = 0;
        for _ in 0..mix(trial + 1) % 3000 {
            let m = rx.recv().unwrap();
            assert_eq!(check(&m.to_vec().unwrap()), (trial, next));
            next += 1;
        }
        if trial % 3 == 0 {
            std::thread::sleep(Duration::from_millis(2)); // the ring fills: killed asleep
        }
        peer.kill();
        let got = receive_to_the_end(&mut rx, trial, next);
        let known = committed.load(Ordering::SeqCst);
        // Every message the producer knew it had committed arrived; at most one more
        // (committed, then killed before it could count it).
        assert!(got == known || got == known + 1, "trial {trial}: got {got}, committed {known}");
        total += got;
    }
    eprintln!("{kills} kills, {total} messages, none lost or torn");
}

#[test]
fn a_killed_consumer_never_stalls_the_producer_and_its_message_is_not_lost() {
    const TEST: &str = "a_killed_consumer_never_stalls_the_producer_and_its_message_is_not_lost";
    if let Some((role, arg)) = role() {
        return play(&role, &arg);
    }
    for holder in ["hold", "sleep"] {
        let name = unique_name("chan-holder");
        let ch = channel::create(&name, &options(Kind::Spsc)).unwrap();
        let mut tx = ch.sender().unwrap();
        let mut peer = Peer::spawn(TEST, holder, &name);
        let mut sent = 0;
        if holder == "hold" {
            tx.send(message(0, 0)).unwrap();
            assert_eq!(peer.expect("holding"), "0");
            sent = 1;
            // The ring full behind the held message: the producer waits on the consumer.
            while tx.try_send(message(0, sent)).is_ok() {
                sent += 1;
            }
        } else {
            peer.expect("sleeping");
            std::thread::sleep(Duration::from_millis(50)); // into the futex / semaphore
        }
        peer.kill();
        let start = Instant::now();
        let end = tx.send(message(0, sent)).unwrap_err();
        assert!(matches!(end, SendError::Disconnected(_)), "{holder}: {end}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{holder}: stalled {:?}",
            start.elapsed()
        );
        // A successor gets what the dead one held, and everything after it.
        let mut next = Peer::spawn(TEST, "drain", &name);
        let seqs = next.expect("seqs");
        let want: Vec<u64> = (0..sent).collect();
        assert_eq!(seqs, format!("{want:?}"), "{holder}");
        next.wait_success();
        // And the sender sees a receiver again.
        let _rx = ch.receiver().unwrap();
        tx.try_send(message(0, sent)).map_err(|e| e.to_string()).unwrap();
    }
}

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `timespec` is plain data that clock_gettime fills.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: a valid clock id and a pointer to a timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::FILETIME;
        use windows_sys::Win32::System::Threading::{GetCurrentThread, GetThreadTimes};
        let zero = FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 };
        let (mut a, mut b, mut kernel, mut user) = (zero, zero, zero, zero);
        // SAFETY: the current-thread pseudo-handle and four FILETIMEs to fill.
        unsafe { GetThreadTimes(GetCurrentThread(), &mut a, &mut b, &mut kernel, &mut user) };
        let t = |f: FILETIME| u64::from(f.dwHighDateTime) << 32 | u64::from(f.dwLowDateTime);
        Duration::from_nanos((t(kernel) + t(user)) * 100)
    }
}

#[test]
fn an_idle_receiver_sleeps_and_wakes_for_a_message() {
    let name = unique_name("chan-idle");
    let ch = channel::create(&name, &ChannelOptions::new()).unwrap();
    let mut tx = ch.sender().unwrap();
    let mut rx = ch.receiver().unwrap();
    let sent_at = std::sync::OnceLock::new();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let cpu = thread_cpu();
            let m = rx.recv().unwrap();
            (m.to_vec().unwrap(), Instant::now(), thread_cpu() - cpu)
        });
        std::thread::sleep(Duration::from_secs(1));
        sent_at.set(Instant::now()).unwrap();
        tx.send(b"wake").unwrap();
        let (got, at, cpu) = waiter.join().unwrap();
        assert_eq!(got, b"wake");
        let latency = at - *sent_at.get().unwrap();
        eprintln!("woke {latency:?} after the send; receiver CPU {cpu:?} in ~1 s");
        assert!(latency < Duration::from_millis(40), "woke after {latency:?}");
        assert!(cpu < Duration::from_millis(60), "the idle receiver burned {cpu:?}");
    });
}

/// A receiver whose sender was killed and replaced while it was not waiting (it had looked
/// at its peers before, with the dead one attached) sleeps in its next `recv` until the
/// new sender sends. Windows: a sleeper also waits on the sender's process handle, and
/// one that watched the dead sender's (signalled for good) spun until a message came.
/// The replacement must not take the dead sender's place among the channel's processes
/// (a new process takes the first place that is free or whose process died), or the dead
/// one's token names the live replacement: a third process holds an earlier place, then
/// dies too.
#[test]
fn a_receiver_sleeps_when_its_sender_was_killed_and_replaced() {
    const TEST: &str = "a_receiver_sleeps_when_its_sender_was_killed_and_replaced";
    if let Some((role, arg)) = role() {
        return play(&role, &arg);
    }
    let name = unique_name("chan-replaced");
    let ch = channel::create(&name, &options(Kind::Spsc)).unwrap();
    let mut rx = ch.receiver().unwrap();
    let mut squatter = Peer::spawn(TEST, "squat", &name);
    squatter.expect("detached");
    let mut first = Peer::spawn(TEST, "attach", &name);
    first.expect("attached");
    // A look at the peers, which finds the first sender alive.
    assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
    squatter.kill();
    first.kill();
    // Takes the squatter's place, not the first sender's.
    let mut second = Peer::spawn(TEST, "attach", &name);
    second.expect("attached");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let cpu = thread_cpu();
            let m = rx.recv().unwrap();
            (m.to_vec().unwrap(), thread_cpu() - cpu)
        });
        std::thread::sleep(Duration::from_secs(1));
        second.say("send");
        second.expect("sent");
        let (got, cpu) = waiter.join().unwrap();
        assert_eq!(got, b"wake");
        eprintln!("receiver CPU {cpu:?} in ~1 s of waiting");
        assert!(cpu < Duration::from_millis(150), "the waiting receiver burned {cpu:?}");
    });
    second.kill();
}

/// A full `/dev/shm` is an error at creation (a 1 MiB tmpfs mounted in a private user and
/// mount namespace), never a SIGBUS at a later send.
#[cfg(target_os = "linux")]
#[test]
fn creation_on_a_full_dev_shm_fails_cleanly() {
    const TEST: &str = "creation_on_a_full_dev_shm_fails_cleanly";
    if let Some((role, _)) = role() {
        assert_eq!(role, "small-shm");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", "/dev/shm"])
            .status()
            .unwrap();
        assert!(mounted.success(), "mount a small tmpfs");
        let big = ChannelOptions::new().capacity(4 << 20).clone();
        let err = channel::create("mmf-test-chan-nospace", &big).unwrap_err();
        tell(&format!("big {}", matches!(err, mmf::Error::NoSpace { .. })));
        tell(&format!("message {err}"));
        let ch = channel::create("mmf-test-chan-fits", ChannelOptions::new().capacity(512 << 10))
            .unwrap();
        let (mut tx, mut rx) = (ch.sender().unwrap(), ch.receiver().unwrap());
        for _ in 0..10_000 {
            tx.send([7u8; 60]).unwrap();
            drop(rx.recv().unwrap());
        }
        tell("small ok");
        return;
    }
    let mut child = Peer::spawn_under(&["unshare", "-Urm", "--"], TEST, "small-shm", "", |_| {});
    assert_eq!(child.expect("big"), "true");
    let message = child.expect("message");
    assert!(message.contains("no space in /dev/shm"), "{message}");
    child.expect("small ok");
    child.wait_success();
}
