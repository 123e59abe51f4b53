//! `mmf`: memory-mapped files from a shell. `mmf hello` runs the seed's example.
#![forbid(unsafe_code)]

mod dump;
mod hello;
mod hexdump;
mod size;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Memory-mapped files the Windows way (CreateFileMapping / MapViewOfFile), from a shell.
#[derive(Parser, Debug)]
#[command(name = "mmf", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The seed's example: a 20 MiB file holding "HELLO, WORLD!" in UTF-16LE, then zeros.
    ///
    /// Creates the file (replacing it), maps 20 MiB of it read-write, writes the string at
    /// offset 0 through the view, flushes it durably, unmaps, closes, and prints the file's
    /// size and a hex dump of its first bytes.
    #[command(after_help = "Examples:\n  mmf hello\n  mmf hello --path /tmp/mm.file")]
    Hello {
        /// Where to create the file.
        #[arg(long, default_value = "mm.file")]
        path: PathBuf,
    },
    /// Print a range of a file as a hex dump, in the layout of `hexdump -C`.
    #[command(
        after_help = "Examples:\n  mmf dump mm.file --len 64\n  mmf dump big.bin --offset 1GiB --len 0x100"
    )]
    Dump {
        /// The file to read (through a read-only mapping).
        path: PathBuf,
        /// First byte to show: 4096, 0x1000, 64KiB, 1G ...
        #[arg(long, default_value = "0", value_parser = size::parse)]
        offset: u64,
        /// How many bytes to show (default: to the end of the file).
        #[arg(long, value_parser = size::parse)]
        len: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hello { path } => hello::run(&path),
        Command::Dump { path, offset, len } => dump::run(&path, offset, len),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mmf: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Writing to stdout: a closed pipe (`mmf dump big | head`) ends the output quietly.
fn stdout_result(result: std::io::Result<()>) -> Result<(), String> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| format!("cannot write the output: {e}")),
    }
}
