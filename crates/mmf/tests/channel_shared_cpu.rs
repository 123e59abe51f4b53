//! Two processes pinned to one CPU, both spinning without end (`set_spins(u32::MAX)`),
//! still play ping-pong briskly: a waiter spinning past a time slice yields its CPU when
//! its peer last ran on that CPU. Without the yield each half of a round trip waits until
//! the scheduler preempts the spinner (a time slice, milliseconds: 8 ms a round trip
//! measured). The waiter does *not* yield to a peer on another CPU, nor with a budget that
//! ends in a sleep soon (unit tests `a_waiter_yields_only_to_a_peer_that_last_ran_on_its_cpu_or_an_unknown_one`
//! and `only_a_spin_longer_than_a_time_slice_yields_and_only_now_and_then`; the channel
//! benchmark's tail latency, design notes).
//!
//! Linux only: the processes pin themselves with `sched_setaffinity`.
//! Knob: `MMF_SHARED_CPU_ROUNDS` (default 2,000 round trips).
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use mmf::channel::{self, ChannelOptions};
use mmf_testkit::{Peer, hear, role, tell, unique_name};

const TEST: &str = "two_spinning_processes_on_one_cpu_take_turns_without_waiting_for_preemption";

fn rounds() -> u64 {
    std::env::var("MMF_SHARED_CPU_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

/// The first CPU this process may run on.
fn allowed_cpu() -> usize {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the size and pointer describe `set`.
    let r = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(r, 0, "sched_getaffinity: {}", std::io::Error::last_os_error());
    // SAFETY: CPU_ISSET reads the set; the index is below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).find(|&c| unsafe { libc::CPU_ISSET(c, &set) }).unwrap()
}

/// Pins this process (its one thread that matters: the caller) to `cpu`.
fn pin(cpu: usize) {
    // SAFETY: as above.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes the set; the index is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is this thread; the size and pointer describe `set`.
    let r = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(r, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
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
            let start = Instant::now();
            for i in 0..n {
                tx.send(i.to_le_bytes()).unwrap();
                let m = rx.recv().unwrap().to_vec().unwrap();
                assert_eq!(m, i.to_le_bytes(), "round {i}");
            }
            tell(&format!("done {}", start.elapsed().as_micros()));
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
    let (cpu, n) = (allowed_cpu(), rounds());
    let mut echo = Peer::spawn(TEST, "echo", &format!("{a},{b},{cpu},{n}"));
    echo.expect("ready");
    let mut ping = Peer::spawn(TEST, "ping", &format!("{a},{b},{cpu},{n}"));
    ping.expect("ready");
    ping.say("go");
    let took = Duration::from_micros(ping.expect("done").parse().unwrap());
    ping.wait_success();
    echo.wait_success();
    let each = took / u32::try_from(n).unwrap();
    eprintln!("{n} round trips on CPU {cpu} in {took:?}, {each:?} each");
    // A yield to the peer costs the first 4,096 polls (tens of microseconds) and a switch,
    // more where other programs share the CPU (~380 µs a round trip while another build
    // kept both CPUs busy); waiting to be preempted costs a time slice, 0.75–6 ms, twice a
    // round trip (8 ms a round trip with the yield's CPU test off by one).
    assert!(
        each < Duration::from_millis(2),
        "{each:?} a round trip: the spinners waited to be preempted instead of yielding"
    );
}
