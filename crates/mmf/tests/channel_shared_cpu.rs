//! Two processes pinned to one CPU, both spinning without end (`set_spins(u32::MAX)`),
//! still play ping-pong briskly: a spinning waiter yields its CPU when its peer last ran
//! on that CPU. Without the yield each half of a round trip waits until the scheduler
//! preempts the spinner (a time slice, milliseconds: 8 ms a round trip measured). The
//! waiter does *not* yield to a peer on another CPU (unit tests in `channel/wait.rs`; the
//! channel benchmark's tail latency, design notes). And the hint it reads: each side
//! records 1 + its CPU in its own line (offsets 648 and 712 of the channel's file) at its
//! first operation and every 64th after, SPSC and MPMC alike.
//!
//! Linux only: the processes pin themselves with `sched_setaffinity`, and the hint is read
//! from the file in `/dev/shm`.
//! Knob: `MMF_SHARED_CPU_ROUNDS` (default 2,000 round trips).
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use mmf::channel::{self, ChannelOptions, Kind};
use mmf_testkit::{Peer, hear, role, tell, unique_name};

const TEST: &str = "two_spinning_processes_on_one_cpu_take_turns_without_waiting_for_preemption";

fn rounds() -> u64 {
    std::env::var("MMF_SHARED_CPU_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

/// The CPUs this thread may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the size and pointer describe `set`.
    let r = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(r, 0, "sched_getaffinity: {}", std::io::Error::last_os_error());
    // SAFETY: CPU_ISSET reads the set; the index is below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Pins the calling thread to `cpu`, and waits until it runs there.
fn pin(cpu: usize) {
    // SAFETY: as above.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes the set; the index is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is this thread; the size and pointer describe `set`.
    let r = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(r, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
    // SAFETY: sched_getcpu takes no arguments.
    while usize::try_from(unsafe { libc::sched_getcpu() }).ok() != Some(cpu) {
        std::thread::yield_now();
    }
}

/// The two peers, killed if the test fails before they are done (a pinned echo left
/// spinning would hold the test's output and its CPU).
struct Peers(Vec<Peer>);

impl Drop for Peers {
    fn drop(&mut self) {
        for peer in &mut self.0 {
            if peer.child.try_wait().ok().flatten().is_none() {
                peer.kill();
            }
        }
    }
}

fn play(role: &str, arg: &str) {
    let mut args = arg.split(',');
    let (there, back) = (args.next().unwrap(), args.next().unwrap());
    let cpu: usize = args.next().unwrap().parse().unwrap();
    let n: u64 = args.next().unwrap().parse().unwrap();
    pin(cpu);
    let (there, back) = (channel::open(there).unwrap(), channel::open(back).unwrap());
    match role {
        // Answers each message on `there` with the same bytes on `back`.
        "echo" => {
            let mut rx = there.receiver().unwrap();
            let mut tx = back.sender().unwrap();
            rx.set_spins(u32::MAX);
            tx.set_spins(u32::MAX);
            tell("ready");
            for _ in 0..n {
                let m = rx.recv().unwrap().to_vec().unwrap();
                tx.send(m).unwrap();
            }
        }
        // Sends `n` messages on `there`, each after the answer to the one before.
        "ping" => {
            let mut tx = there.sender().unwrap();
            let mut rx = back.receiver().unwrap();
            tx.set_spins(u32::MAX);
            rx.set_spins(u32::MAX);
            tell("ready");
            hear();
            let mut times = Vec::with_capacity(usize::try_from(n).unwrap());
            for i in 0..n {
                let start = Instant::now();
                tx.send(i.to_le_bytes()).unwrap();
                let m = rx.recv().unwrap().to_vec().unwrap();
                times.push(start.elapsed().as_micros());
                assert_eq!(m, i.to_le_bytes(), "round {i}");
            }
            times.sort_unstable();
            let total: u128 = times.iter().sum();
            tell(&format!(
                "done {} {} {total}",
                times[times.len() / 2],
                times[times.len() * 9 / 10]
            ));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn two_spinning_processes_on_one_cpu_take_turns_without_waiting_for_preemption() {
    if let Some((role, arg)) = role() {
        return play(&role, &arg);
    }
    let (a, b) = (unique_name("chan-cpu-a"), unique_name("chan-cpu-b"));
    let opts = ChannelOptions::new().capacity(4096).max_message(64).clone();
    let (_a, _b) = (channel::create(&a, &opts).unwrap(), channel::create(&b, &opts).unwrap());
    // The last CPU allowed: CPU 0 usually takes more of the interrupts.
    let (cpu, n) = (*allowed_cpus().last().unwrap(), rounds());
    let arg = format!("{a},{b},{cpu},{n}");
    let mut peers = Peers(vec![Peer::spawn(TEST, "echo", &arg)]);
    peers.0[0].expect("ready");
    peers.0.push(Peer::spawn(TEST, "ping", &arg));
    let ping = &mut peers.0[1];
    ping.expect("ready");
    ping.say("go");
    let done = ping.expect("done");
    let us: Vec<u64> = done.split(' ').map(|v| v.parse().unwrap()).collect();
    let [median, p90, total] = us[..] else { panic!("ping said {done:?}") };
    // Ping first: if it failed, echo is still in the guard and is killed.
    while let Some(peer) = peers.0.pop() {
        peer.wait_success();
    }
    let (median, p90) = (Duration::from_micros(median), Duration::from_micros(p90));
    eprintln!(
        "{n} round trips on CPU {cpu} in {:?}: median {median:?}, p90 {p90:?}",
        Duration::from_micros(total)
    );
    // A yield to a peer on this CPU comes after 4,096 polls (~110 µs) and a switch: 0.2–0.5
    // ms a round trip on a quiet host. The yield every 65,536 polls regardless (for a
    // stale hint) makes ~3.3 ms; waiting to be preempted, a time slice twice a round trip
    // (8 ms). The median keeps a busy moment of the host from failing the test.
    assert!(
        median < Duration::from_millis(1),
        "median {median:?} a round trip (p90 {p90:?}): the spinners did not yield to each \
         other at the hint (or other programs keep CPU {cpu} busy: run the test again on a \
         quieter machine)"
    );
}

/// The channel's CPU words (sender at 648, receiver at 712), read from its file.
fn cpu_words(name: &str) -> (u32, u32) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(format!("/dev/shm/{name}")).unwrap();
    let mut words = [0u8; 8];
    file.read_exact_at(&mut words[..4], 648).unwrap();
    file.read_exact_at(&mut words[4..], 712).unwrap();
    let word = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap());
    (word(&words[..4]), word(&words[4..]))
}

#[test]
fn each_side_records_its_cpu_at_its_first_operation_and_every_64th() {
    let cpus = allowed_cpus();
    let (a, b) = (cpus[0], *cpus.last().unwrap());
    let hint = |cpu: usize| u32::try_from(cpu).unwrap() + 1;
    // Pinned while the test runs; a thread of its own, so the harness's is left alone.
    std::thread::spawn(move || {
        for kind in [Kind::Spsc, Kind::Mpmc] {
            let name = unique_name("chan-cpu-words");
            let opts = ChannelOptions::new().kind(kind).capacity(4096).max_message(64).clone();
            let ch = channel::create(&name, &opts).unwrap();
            assert_eq!(cpu_words(&name), (0, 0), "{kind:?}: a new channel's hints");
            let (mut tx, mut rx) = (ch.sender().unwrap(), ch.receiver().unwrap());
            let mut round = || {
                tx.send([1u8; 8]).unwrap();
                drop(rx.recv().unwrap());
            };
            pin(a);
            round();
            assert_eq!(cpu_words(&name), (hint(a), hint(a)), "{kind:?}: after the first");
            pin(b);
            for i in 1..64 {
                round();
                assert_eq!(cpu_words(&name), (hint(a), hint(a)), "{kind:?}: after {i}");
            }
            round();
            assert_eq!(cpu_words(&name), (hint(b), hint(b)), "{kind:?}: after the 64th");
        }
    })
    .join()
    .unwrap();
}
