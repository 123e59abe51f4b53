//! `mmf-bench-report`: turns the criterion run `scripts/bench-report.sh` just made into
//! `BENCHMARKS.md` and SVG plots (issue #18).
//!
//! ```text
//! mmf-bench-report [--criterion DIR] [--goals FILE] [--out DIR] [--commands FILE] [--quick]
//! ```
//!
//! - `--criterion`: criterion's output (default `target/criterion`);
//! - `--goals`: the comparisons and their goals (default `crates/mmf-bench/goals.json`,
//!   which `scripts/bench-ratios.py` reads too);
//! - `--out`: where `BENCHMARKS.md` and `benchmarks/*.svg` go (default `.`);
//! - `--commands`: a file listing the commands that produced the run, quoted in the report;
//! - `--quick`: the harness check CI runs (small memory-bandwidth probe); its figures mean
//!   nothing.

mod criterion;
mod machine;
mod plot;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = report::Args {
        criterion: PathBuf::from("target/criterion"),
        goals: PathBuf::from("crates/mmf-bench/goals.json"),
        out: PathBuf::from("."),
        commands: None,
        quick: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next().map(PathBuf::from).ok_or_else(|| format!("{name} needs a value"))
        };
        let parsed = match arg.as_str() {
            "--criterion" => value("--criterion").map(|v| args.criterion = v),
            "--goals" => value("--goals").map(|v| args.goals = v),
            "--out" => value("--out").map(|v| args.out = v),
            "--commands" => value("--commands").map(|v| args.commands = Some(v)),
            "--quick" => {
                args.quick = true;
                Ok(())
            }
            "-h" | "--help" => {
                println!(
                    "mmf-bench-report [--criterion DIR] [--goals FILE] [--out DIR] \
                     [--commands FILE] [--quick]\nwrites BENCHMARKS.md and benchmarks/*.svg \
                     from a criterion run (scripts/bench-report.sh runs the benches first)"
                );
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other:?} (try --help)")),
        };
        if let Err(e) = parsed {
            eprintln!("mmf-bench-report: {e}");
            return ExitCode::from(2);
        }
    }
    match report::write(&args) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mmf-bench-report: {e}");
            ExitCode::FAILURE
        }
    }
}
