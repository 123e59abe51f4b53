//! What a criterion run left under `target/criterion`: each benchmark's median and
//! throughput (`<group>/<function>[/<parameter>]/new/{estimates,benchmark}.json`), and the
//! latency percentiles some benches write next to it (`percentiles/<name>.json`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One benchmark of a group: a contestant, at one parameter for the scaling groups.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The contestant (criterion's function id): `mmf_view`, `memmap2`, ...
    pub function: String,
    /// The parameter of a scaling group (criterion's value string: a size, a count).
    pub param: Option<String>,
    /// The median time of one iteration, in nanoseconds.
    pub median_ns: f64,
    /// Bytes or elements one iteration handles, if the bench declared it.
    pub throughput: Option<Throughput>,
}

/// How much work one iteration does.
#[derive(Debug, Clone, Copy, Deserialize)]
pub enum Throughput {
    /// Bytes per iteration.
    Bytes(u64),
    /// Elements (messages, keys) per iteration.
    Elements(u64),
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

#[derive(Deserialize)]
struct BenchmarkJson {
    function_id: Option<String>,
    value_str: Option<String>,
    throughput: Option<Throughput>,
}

/// Every benchmark of `group` found under `root` (empty if the group did not run), sorted
/// by function then by parameter (numerically where the parameters are numbers).
pub fn group(root: &Path, group: &str) -> Vec<Bench> {
    let mut found = Vec::new();
    let mut dirs = vec![root.join(group)];
    // Two levels: <function>/new and <function>/<param>/new.
    for _ in 0..2 {
        let mut next = Vec::new();
        for dir in dirs {
            for entry in read_dir(&dir) {
                if entry.ends_with("report") {
                    continue;
                }
                if let Some(bench) = read_bench(&entry) {
                    found.push(bench);
                } else {
                    next.push(entry);
                }
            }
        }
        dirs = next;
    }
    found.sort_by(|a, b| {
        a.function.cmp(&b.function).then_with(|| {
            let (x, y) = (param_value(a), param_value(b));
            x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    found
}

/// The numeric value of a benchmark's parameter (`1048576`, `4KiB` = 4096), if any.
pub fn param_value(bench: &Bench) -> f64 {
    let Some(p) = &bench.param else { return 0.0 };
    let digits: String = p.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let unit = match &p[digits.len()..] {
        "KiB" | "k" | "K" => 1024.0,
        "MiB" | "M" => 1024.0 * 1024.0,
        "GiB" | "G" => 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    };
    digits.parse::<f64>().map_or(0.0, |v| v * unit)
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> =
        entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    paths.sort();
    paths
}

fn read_bench(dir: &Path) -> Option<Bench> {
    let new = dir.join("new");
    let estimates: Estimates =
        serde_json::from_str(&std::fs::read_to_string(new.join("estimates.json")).ok()?).ok()?;
    let meta: BenchmarkJson =
        serde_json::from_str(&std::fs::read_to_string(new.join("benchmark.json")).ok()?).ok()?;
    let function =
        meta.function_id.unwrap_or_else(|| dir.file_name().unwrap().to_string_lossy().into());
    Some(Bench {
        function,
        param: meta.value_str,
        median_ns: estimates.median.point_estimate,
        throughput: meta.throughput,
    })
}

/// Latency percentiles one bench measured itself (criterion keeps only means of samples):
/// `target/criterion/percentiles/<name>.json`.
#[derive(Debug, Deserialize)]
pub struct Percentiles {
    /// What was timed, for the chart's title.
    pub title: String,
    /// One row per contestant.
    pub rows: Vec<PercentileRow>,
}

/// p50, p99 and p99.9 of one contestant, in nanoseconds.
#[derive(Debug, Deserialize)]
pub struct PercentileRow {
    /// `group/function`.
    pub name: String,
    /// Median.
    pub p50_ns: f64,
    /// 99th percentile.
    pub p99_ns: f64,
    /// 99.9th percentile.
    pub p999_ns: f64,
}

/// Every percentile file under `root/percentiles`, with its file stem.
pub fn percentiles(root: &Path) -> Vec<(String, Percentiles)> {
    let Ok(entries) = std::fs::read_dir(root.join("percentiles")) else { return Vec::new() };
    let mut all: Vec<(String, Percentiles)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let parsed = serde_json::from_str(&text).ok()?;
            Some((p.file_stem()?.to_string_lossy().into_owned(), parsed))
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Every group directory under `root` whose benchmarks have parameters: the scaling
/// groups (cost against size).
pub fn scaling_groups(root: &Path) -> Vec<String> {
    let mut groups = Vec::new();
    for dir in read_dir(root) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name == "percentiles" || name == "report" {
            continue;
        }
        let benches = group(root, &name);
        if benches.iter().any(|b| b.param.is_some()) {
            groups.push(name);
        }
    }
    groups
}
