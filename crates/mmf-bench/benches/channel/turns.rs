//! The round-trip groups' measurement: criterion's, then timed round trips in turns of
//! every contestant, with the same-turn ratios printed and the percentiles written.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::Criterion;

use crate::linux::RoundTrip;

/// Makes a contestant (spawns its peer) when its turn comes: a spinning peer started
/// early would take a CPU from the contestants measured before it. Called once for
/// criterion's measurement and, in a group whose peers spin, again for each turn of the
/// timed round trips.
pub(crate) type Make = Box<dyn Fn() -> Box<dyn RoundTrip>>;

/// Timed round trips per contestant for the percentiles (`MMF_BENCH_RTT_SAMPLES`).
fn samples() -> usize {
    std::env::var("MMF_BENCH_RTT_SAMPLES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// Turns the timed round trips are taken in, every contestant once a turn.
const TURNS: usize = 10;

fn timed(pair: &mut dyn RoundTrip, n: usize, times: &mut Vec<u64>) {
    for _ in 0..n {
        let t = Instant::now();
        pair.round_trip();
        times.push(t.elapsed().as_nanos() as u64);
    }
}

/// Round trips of the group's contestants: criterion's measurement one after the other,
/// then the timed ones for the percentiles, in [`TURNS`] turns of every contestant, so
/// that a change of the host over the run falls on all of them alike. On the nested guest
/// these figures come from, a pair's round trip changed up to 4x from one minute to the
/// next (the host placing the two vCPUs), and criterion's contestants, measured one after
/// the other, could each meet another placement. With `parked` (peers that sleep when
/// idle) every pair stays alive through the turns; otherwise (peers that spin, each
/// holding a CPU) a pair is made anew for each turn and stopped after it. Prints, per
/// contestant, the first contestant's median over its own in the same turn (the median
/// and range over the turns): the ratio that no placement change can skew.
pub(crate) fn rtt_group(
    c: &mut Criterion,
    group: &str,
    contestants: Vec<(&str, Make)>,
    parked: bool,
) -> Vec<(String, Vec<u64>)> {
    // MMF_BENCH_ONLY: a comma list of name prefixes (profiling one contestant).
    let only = std::env::var("MMF_BENCH_ONLY").ok();
    let contestants: Vec<(&str, Make)> = contestants
        .into_iter()
        .filter(|(name, _)| only.as_ref().is_none_or(|o| o.split(',').any(|p| name.starts_with(p))))
        .collect();
    let mut g = c.benchmark_group(group);
    g.measurement_time(Duration::from_secs(5)).sample_size(20);
    let mut alive = Vec::new();
    for (name, make) in &contestants {
        let mut pair = make();
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    pair.round_trip();
                }
                start.elapsed()
            })
        });
        if parked {
            alive.push(pair);
        } else {
            pair.stop();
        }
    }
    g.finish();
    let per_turn = samples().div_ceil(TURNS);
    // turns[contestant][turn]: that turn's round trips.
    let mut turns: Vec<Vec<Vec<u64>>> = vec![Vec::with_capacity(TURNS); contestants.len()];
    for _ in 0..TURNS {
        for (i, (_, make)) in contestants.iter().enumerate() {
            let mut times = Vec::with_capacity(per_turn);
            if parked {
                timed(&mut *alive[i], per_turn, &mut times);
            } else {
                let mut pair = make();
                timed(&mut *pair, per_turn / 10, &mut Vec::new()); // warm-up
                timed(&mut *pair, per_turn, &mut times);
                pair.stop();
            }
            turns[i].push(times);
        }
    }
    for pair in alive {
        pair.stop();
    }
    print_turn_ratios(group, &contestants, &mut turns);
    let mut done = Vec::new();
    for ((name, _), turns) in contestants.iter().zip(turns) {
        let mut times: Vec<u64> = turns.into_iter().flatten().collect();
        times.sort_unstable();
        done.push((format!("{group}/{name}"), times));
    }
    done
}

/// The first contestant's median round trip over each other's, turn by turn: the median
/// and the range of those ratios (sorts each turn's times).
fn print_turn_ratios(group: &str, contestants: &[(&str, Make)], turns: &mut [Vec<Vec<u64>>]) {
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0) as f64
    };
    let medians: Vec<Vec<f64>> =
        turns.iter_mut().map(|t| t.iter_mut().map(&median).collect()).collect();
    let sorted = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    let Some((first, rest)) = medians.split_first() else { return };
    for (i, other) in rest.iter().enumerate() {
        let ratios = sorted(&first.iter().zip(other).map(|(a, b)| a / b).collect::<Vec<_>>());
        let (Some(lo), Some(hi)) = (ratios.first(), ratios.last()) else { continue };
        println!(
            "{group}: {} / {} in the same turn: median {}x (turns {}x to {}x; \
             median round trips {:.0} ns / {:.0} ns)",
            contestants[0].0,
            contestants[i + 1].0,
            ratio(ratios[ratios.len() / 2]),
            ratio(*lo),
            ratio(*hi),
            sorted(first)[first.len() / 2],
            sorted(other)[other.len() / 2],
        );
    }
}

pub(crate) fn write_percentiles(all: &[(String, Vec<u64>)]) {
    let mut rows = all.to_vec();
    let criterion = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../criterion");
    let title = "64-byte round trips between two processes";
    mmf_bench::write_percentiles(&criterion, "channel", title, &mut rows)
        .expect("write the percentiles");
}

/// A ratio with two decimals, or two significant digits below 0.1 (mmf's spin-then-park
/// round trip over iceoryx2's blocking one is ~0.005).
fn ratio(x: f64) -> String {
    if x >= 0.1 || x == 0.0 {
        format!("{x:.2}")
    } else {
        let decimals = (1 - x.log10().floor() as i32).clamp(2, 9) as usize;
        format!("{x:.decimals$}")
    }
}
