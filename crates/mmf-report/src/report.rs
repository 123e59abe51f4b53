//! `BENCHMARKS.md`: the machine, the commands, every comparison as a chart and a table
//! with its ratio and goal, latency percentiles, and cost against size.

use std::collections::BTreeSet;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::criterion::{self, Bench, Throughput};
use crate::machine;
use crate::plot::{self, Bar};

/// What to read and where to write.
pub struct Args {
    /// criterion's output directory.
    pub criterion: PathBuf,
    /// The comparisons and goals (`goals.json`).
    pub goals: PathBuf,
    /// Where `BENCHMARKS.md` and `benchmarks/` go.
    pub out: PathBuf,
    /// The commands that made the run, one per line.
    pub commands: Option<PathBuf>,
    /// The harness check: say so at the top.
    pub quick: bool,
}

#[derive(Deserialize)]
struct Goals {
    groups: Vec<GroupSpec>,
}

#[derive(Deserialize)]
struct GroupSpec {
    group: String,
    bench: String,
    title: String,
    ratios: Vec<RatioSpec>,
}

#[derive(Deserialize)]
struct RatioSpec {
    mmf: String,
    alt: String,
    goal: Option<f64>,
    kind: Kind,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    /// The alternative's time / mmf's: higher is better.
    Speedup,
    /// mmf's time / the alternative's: lower is better.
    Slowdown,
}

/// One computed ratio.
struct Ratio<'a> {
    spec: &'a RatioSpec,
    value: f64,
    met: Option<bool>,
}

impl Ratio<'_> {
    fn goal_text(&self) -> String {
        match (self.spec.goal, self.spec.kind) {
            (None, _) => "-".into(),
            (Some(g), Kind::Speedup) => format!("≥ {g:.3}x"),
            (Some(g), Kind::Slowdown) => format!("≤ {g:.3}x"),
        }
    }

    fn mark(&self) -> &'static str {
        match self.met {
            None => "",
            Some(true) => " ✓",
            Some(false) => " ✗",
        }
    }
}

/// A median time for a table: `1.23 ms`.
pub fn time(ns: f64) -> String {
    let (div, unit) = plot::unit(ns);
    format!("{:.3} {unit}", ns / div)
}

/// The median of `name` in `benches`, or of `group/name` in another group under `root`.
fn median_of(root: &Path, benches: &[Bench], name: &str) -> Option<f64> {
    match name.split_once('/') {
        Some((group, function)) => criterion::group(root, group)
            .into_iter()
            .find(|b| b.function == function && b.param.is_none())
            .map(|b| b.median_ns),
        None => {
            benches.iter().find(|b| b.function == name && b.param.is_none()).map(|b| b.median_ns)
        }
    }
}

fn ratios<'a>(root: &Path, spec: &'a GroupSpec, benches: &[Bench]) -> Vec<Ratio<'a>> {
    spec.ratios
        .iter()
        .filter_map(|r| {
            let ours = median_of(root, benches, &r.mmf)?;
            let theirs = median_of(root, benches, &r.alt)?;
            let value = match r.kind {
                Kind::Speedup => theirs / ours,
                Kind::Slowdown => ours / theirs,
            };
            let met = r.goal.map(|g| match r.kind {
                Kind::Speedup => value >= g,
                Kind::Slowdown => value <= g,
            });
            Some(Ratio { spec: r, value, met })
        })
        .collect()
}

fn comparison(
    root: &Path,
    out: &Path,
    md: &mut String,
    spec: &GroupSpec,
    benches: &[Bench],
    missed: &mut Vec<String>,
) -> Result<(), Box<dyn Error>> {
    let ratios = ratios(root, spec, benches);
    let ours: BTreeSet<&str> = spec.ratios.iter().map(|r| r.mmf.as_str()).collect();
    let plain: Vec<&Bench> = benches.iter().filter(|b| b.param.is_none()).collect();
    let bars: Vec<Bar> = plain
        .iter()
        .map(|b| {
            let notes: Vec<String> = ratios
                .iter()
                .filter(|r| r.spec.mmf == b.function)
                .map(|r| format!("{:.2}x vs {}{}", r.value, r.spec.alt, r.mark()))
                .collect();
            let note = if notes.is_empty() {
                time(b.median_ns)
            } else {
                format!("{}  ({})", time(b.median_ns), notes.join(", "))
            };
            Bar {
                name: b.function.clone(),
                ns: b.median_ns,
                ours: ours.contains(b.function.as_str()),
                note,
            }
        })
        .collect();
    let goals: Vec<(usize, f64)> = ratios
        .iter()
        .filter_map(|r| {
            let g = r.spec.goal?;
            let alt = median_of(root, benches, &r.spec.alt)?;
            let at = match r.spec.kind {
                Kind::Speedup => alt / g,
                Kind::Slowdown => alt * g,
            };
            Some((plain.iter().position(|b| b.function == r.spec.mmf)?, at))
        })
        .collect();
    let svg = format!("benchmarks/{}.svg", spec.group);
    plot::bars(&out.join(&svg), &spec.title, &bars, &goals)?;
    let _ = writeln!(md, "### {}\n\n`{}` ![{}]({svg})\n", spec.title, spec.group, spec.group);
    md.push_str("| mmf | alternative | ratio | goal |\n|---|---|---|---|\n");
    for r in &ratios {
        let median = |f: &str| median_of(root, benches, f).unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| {} {} | {} {} | {:.3}x{} | {} |",
            r.spec.mmf,
            time(median(&r.spec.mmf)),
            r.spec.alt,
            time(median(&r.spec.alt)),
            r.value,
            r.mark(),
            r.goal_text()
        );
        if r.met == Some(false) {
            missed.push(format!(
                "{} (`{}`): {} vs {} {:.3}x, goal {}",
                spec.title,
                spec.group,
                r.spec.mmf,
                r.spec.alt,
                r.value,
                r.goal_text()
            ));
        }
    }
    md.push('\n');
    Ok(())
}

fn scaling(
    out: &Path,
    md: &mut String,
    group: &str,
    benches: &[Bench],
) -> Result<(), Box<dyn Error>> {
    let mut series: Vec<plot::Series> = Vec::new();
    let mut axis = ("parameter", "median time (ns)");
    for b in benches.iter().filter(|b| b.param.is_some()) {
        let x = criterion::param_value(b);
        let y = match b.throughput {
            Some(Throughput::Bytes(n)) => {
                axis = ("size (bytes)", "throughput (GiB/s)");
                n as f64 / b.median_ns * 1e9 / (1u64 << 30) as f64
            }
            Some(Throughput::Elements(n)) => {
                axis = ("count", "million operations per second");
                n as f64 / b.median_ns * 1e3
            }
            None => b.median_ns,
        };
        match series.iter_mut().find(|s| s.0 == b.function) {
            Some(s) => s.2.push((x, y)),
            None => series.push((b.function.clone(), b.function.starts_with("mmf"), vec![(x, y)])),
        }
    }
    if group.ends_with("_vs_keys") {
        axis.0 = "keys in the map";
    } else if group.starts_with("channel_") {
        axis.0 = "message size (bytes)";
    }
    let svg = format!("benchmarks/{group}.svg");
    plot::scaling(&out.join(&svg), group, axis, &series)?;
    let _ = writeln!(md, "### `{group}`\n\n![{group}]({svg})\n");
    // A group without throughput plots the median itself: no fourth column to repeat it.
    let rate = benches.iter().any(|b| b.throughput.is_some());
    let _ = if rate {
        writeln!(md, "| contestant | parameter | median | {} |\n|---|---|---|---|", axis.1)
    } else {
        writeln!(md, "| contestant | parameter | median |\n|---|---|---|")
    };
    for b in benches.iter().filter(|b| b.param.is_some()) {
        let y = series
            .iter()
            .find(|s| s.0 == b.function)
            .and_then(|s| s.2.iter().find(|p| p.0 == criterion::param_value(b)).map(|p| p.1));
        let (name, param) = (&b.function, b.param.as_deref().unwrap_or(""));
        let _ = if rate {
            writeln!(md, "| {name} | {param} | {} | {:.3} |", time(b.median_ns), y.unwrap_or(0.0))
        } else {
            writeln!(md, "| {name} | {param} | {} |", time(b.median_ns))
        };
    }
    md.push('\n');
    Ok(())
}

/// Writes the report and its plots; returns a one-paragraph summary (goals met / missed).
pub fn write(args: &Args) -> Result<String, Box<dyn Error>> {
    let text = std::fs::read_to_string(&args.goals)
        .map_err(|e| format!("cannot read the goals file {}: {e}", args.goals.display()))?;
    let goals: Goals = serde_json::from_str(&text)
        .map_err(|e| format!("the goals file {} is not valid: {e}", args.goals.display()))?;
    if !args.criterion.is_dir() {
        return Err(format!(
            "no criterion output at {} (run scripts/bench-report.sh, which runs the benches first)",
            args.criterion.display()
        )
        .into());
    }
    std::fs::create_dir_all(args.out.join("benchmarks"))?;
    let m = machine::describe(&args.criterion, args.quick);
    let mut md = String::from("# mmf benchmarks\n\n");
    if args.quick {
        md.push_str("**Quick mode: tiny sizes, one short sample each. These figures only show that the harness runs; they mean nothing about speed.**\n\n");
    }
    let _ = writeln!(
        md,
        "Generated by `scripts/bench-report.sh` on {} at commit `{}`. Every ratio compares two \
         medians of the same run (the host's speed drifts between runs; compare only within \
         one). A ratio above 1 for \"speedup\" and below 1 for \"slowdown\" is mmf ahead.\n",
        m.date, m.commit
    );
    let _ = writeln!(
        md,
        "| machine | |\n|---|---|\n| CPU | {} ({} logical CPUs) |\n| memory | {:.1} GiB; one core reads {:.1} GB/s (sum of u64 over {}), copies {:.1} GB/s ({}), best of {}, measured when the report was written |\n| kernel | {} |\n| files | {} (criterion's directory) |\n",
        m.cpu,
        m.cores,
        m.memory_gib,
        m.read_gbps,
        if args.quick { "64 MiB" } else { "1 GiB" },
        m.copy_gbps,
        if args.quick { "64 MiB" } else { "256 MiB" },
        if args.quick { 2 } else { 5 },
        m.kernel,
        m.filesystem
    );
    if let Some(path) = &args.commands {
        let commands = std::fs::read_to_string(path).unwrap_or_default();
        let _ = writeln!(md, "Commands of this run:\n\n```text\n{}\n```\n", commands.trim_end());
    }
    let mut body = String::new();
    let mut missed = Vec::new();
    let (mut shown, mut met, mut with_goal) = (0, 0, 0);
    let mut area = String::new();
    for spec in &goals.groups {
        let benches = criterion::group(&args.criterion, &spec.group);
        if benches.is_empty() {
            continue;
        }
        if spec.bench != area {
            area.clone_from(&spec.bench);
            let _ = writeln!(body, "## {area} (`cargo bench -p mmf-bench --bench {area}`)\n");
        }
        for r in ratios(&args.criterion, spec, &benches) {
            with_goal += usize::from(r.met.is_some());
            met += usize::from(r.met == Some(true));
        }
        comparison(&args.criterion, &args.out, &mut body, spec, &benches, &mut missed)?;
        shown += 1;
    }
    let percentiles = criterion::percentiles(&args.criterion);
    if !percentiles.is_empty() {
        body.push_str("## Latency distributions\n\n");
    }
    for (stem, p) in &percentiles {
        let rows: Vec<(String, [f64; 3])> =
            p.rows.iter().map(|r| (r.name.clone(), [r.p50_ns, r.p99_ns, r.p999_ns])).collect();
        let svg = format!("benchmarks/percentiles-{stem}.svg");
        plot::percentiles(&args.out.join(&svg), &p.title, &rows)?;
        let _ = writeln!(body, "### {}\n\n![{stem}]({svg})\n", p.title);
        body.push_str("| contestant | p50 | p99 | p99.9 |\n|---|---|---|---|\n");
        for r in &p.rows {
            let _ = writeln!(
                body,
                "| {} | {} | {} | {} |",
                r.name,
                time(r.p50_ns),
                time(r.p99_ns),
                time(r.p999_ns)
            );
        }
        body.push('\n');
    }
    let scaling_groups = criterion::scaling_groups(&args.criterion);
    if !scaling_groups.is_empty() {
        body.push_str("## Cost against size\n\n");
    }
    for group in &scaling_groups {
        scaling(&args.out, &mut body, group, &criterion::group(&args.criterion, group))?;
    }
    let _ = writeln!(md, "**{met} of {with_goal} goals met** in {shown} comparisons.\n");
    if !missed.is_empty() {
        md.push_str("Goals missed in this run:\n\n");
        for m in &missed {
            let _ = writeln!(md, "- {m}");
        }
        md.push('\n');
    }
    md.push_str(&body);
    std::fs::write(args.out.join("BENCHMARKS.md"), md)?;
    Ok(format!(
        "wrote {}: {met} of {with_goal} goals met, {} missed; {shown} comparisons, {} percentile charts, {} scaling charts",
        args.out.join("BENCHMARKS.md").display(),
        missed.len(),
        percentiles.len(),
        scaling_groups.len()
    ))
}
