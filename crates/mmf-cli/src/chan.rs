//! `mmf chan ...`: message channels (`mmf::channel`) from a shell, so that
//! `producer | mmf chan send q` and `mmf chan recv q | consumer` connect two shells.

use std::io::{BufRead, Read, Write};

use clap::Subcommand;
use mmf::CreationMode;
use mmf::channel::{self, ChannelOptions, Kind, RecvError, SendError};
use mmf::named::NameOptions;

use crate::size;

#[derive(Subcommand, Debug)]
pub enum Chan {
    /// Create a named channel.
    ///
    /// Without --hold, on Linux the channel stays until `mmf shm rm NAME`; Windows removes
    /// a name with its last handle, so there it needs --hold (or a sender or receiver that
    /// creates it).
    #[command(
        after_help = "Examples:\n  mmf chan create q\n  mmf chan create jobs --mpmc --capacity 16MiB --max-message 1MiB"
    )]
    Create {
        /// The name (A-Z a-z 0-9 . _ -, up to 200 characters).
        name: String,
        /// The ring's size: a power of two, 64 bytes to 1 TiB (default 1MiB).
        #[arg(long, default_value = "1MiB", value_parser = size::parse_nonzero)]
        capacity: u64,
        /// The largest message (default: capacity / 8; at most capacity / 2 - 8 and 4 GiB - 8).
        #[arg(long, value_parser = size::parse_nonzero)]
        max_message: Option<u64>,
        /// Any number of senders and receivers (default: one of each at a time).
        #[arg(long)]
        mpmc: bool,
        /// Hold the channel until interrupted instead of keeping it until `rm`.
        #[arg(long)]
        hold: bool,
    },
    /// Send stdin: one message per line (without its newline), or --raw chunks.
    #[command(
        after_help = "Examples:\n  producer | mmf chan send q\n  mmf chan send q --raw < image.png"
    )]
    Send {
        /// The channel (created if it does not exist, with the defaults; then this waits
        /// at the end of input until a receiver holds the channel or has taken everything).
        name: String,
        /// Send stdin as it comes, in chunks of at most the maximum message size.
        #[arg(long)]
        raw: bool,
    },
    /// Print messages to stdout, one per line (or --raw bytes), until the channel is empty
    /// and its senders have gone (closed or died): those running when this started or
    /// started since, and those whose messages it found queued. With none, it waits for one.
    #[command(after_help = "Examples:\n  mmf chan recv q | consumer\n  mmf chan recv q --count 1")]
    Recv {
        /// The channel (created if it does not exist, with the defaults).
        name: String,
        /// Write the messages' bytes as they are, without newlines.
        #[arg(long)]
        raw: bool,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Kind, capacity, what is queued, senders and receivers alive.
    #[command(after_help = "Examples:\n  mmf chan info q\n  mmf chan info q --json")]
    Info {
        /// The channel.
        name: String,
        /// One JSON object: {"name", "kind", "capacity", "max_message", "queued_bytes",
        /// "senders", "receivers", "sleeping_senders", "sleeping_receivers"}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: Chan) -> Result<(), String> {
    match command {
        Chan::Create { name, capacity, max_message, mpmc, hold } => {
            create(&name, capacity, max_message, mpmc, hold)
        }
        Chan::Send { name, raw } => send(&name, raw),
        Chan::Recv { name, raw, count } => recv(&name, raw, count),
        Chan::Info { name, json } => info(&name, json),
    }
}

fn create(
    name: &str,
    capacity: u64,
    max: Option<u64>,
    mpmc: bool,
    hold: bool,
) -> Result<(), String> {
    if !hold && cfg!(windows) {
        return Err(format!(
            "Windows removes a name with its last handle, so {name} would vanish when this \
             command exits: use `mmf chan create {name} --hold`"
        ));
    }
    let mut options = ChannelOptions::new();
    options.capacity(capacity).kind(if mpmc { Kind::Mpmc } else { Kind::Spsc });
    if let Some(max) = max {
        let max = u32::try_from(max).map_err(|_| format!("--max-message {max} is too large"))?;
        options.max_message(max);
    }
    let mut name_options = NameOptions::new();
    name_options.creation(CreationMode::CreateNew).keep(!hold);
    options.name_options(name_options);
    let ch = channel::create(name, &options)
        .map_err(|e| format!("cannot create {name}: {}", crate::said(&e)))?;
    let what = format!(
        "created {name} ({}, capacity {}, messages up to {} bytes)",
        if mpmc { "MPMC" } else { "SPSC" },
        ch.capacity(),
        ch.max_message()
    );
    if hold {
        outln!("{what}; holding it until interrupted (Ctrl-C)");
        let _keep = ch;
        crate::hold_until_interrupted()
    }
    let dashes = if name.starts_with('-') { "-- " } else { "" };
    outln!("{what}; it stays until `mmf shm rm {dashes}{name}`");
    Ok(())
}

/// Opens the channel, creating it with the defaults if there is none (either end of a
/// pipeline may start first); whether this call created it. A channel made here goes with
/// its last holder, so that a name nobody created with `mmf chan create` leaves nothing
/// behind; a sender that made it waits for a receiver at the end ([`wait_for_a_holder`]).
fn open(name: &str) -> Result<(channel::Channel, bool), String> {
    let mut options = ChannelOptions::new();
    options.creation(CreationMode::OpenOrCreate);
    match channel::open(name) {
        Err(mmf::Error::NotFound { .. }) => channel::create(name, &options).map(|ch| (ch, true)),
        other => other.map(|ch| (ch, false)),
    }
    .map_err(|e| format!("cannot open {name}: {}", crate::said(&e)))
}

/// A channel goes with its last holder: a sender that made it waits at the end until a
/// receiver holds it or has taken every message, as a writer of a FIFO waits for its
/// reader, rather than take its queued messages with it (they were gone, status 0).
fn wait_for_a_holder(ch: &channel::Channel, name: &str, created: bool) -> Result<(), String> {
    if !created {
        return Ok(());
    }
    let mut told = false;
    loop {
        let i = ch.info().map_err(|e| format!("cannot look at {name}: {}", crate::said(&e)))?;
        if i.receivers > 0 || i.queued_bytes == 0 {
            return Ok(());
        }
        if !told {
            // Not `eprintln!`: it panics on a hung-up terminal.
            let _ = writeln!(
                std::io::stderr(),
                "mmf: waiting for a receiver of {name}: {} bytes queued, which go with the \
                 channel if this ends first (Ctrl-C drops them)",
                i.queued_bytes
            );
            told = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Sends `bytes`, waiting for room; the first time the ring is full while no receiver
/// runs, says on stderr that it waits for one, and what Ctrl-C would do to what is
/// queued: it stays in a kept channel, and goes with one this command made (`created`).
fn send_one<'a>(
    tx: &mut channel::Sender,
    ch: &channel::Channel,
    (name, created): (&str, bool),
    bytes: &'a [u8],
    told: &mut bool,
) -> Result<(), SendError<&'a [u8]>> {
    match tx.try_send(bytes) {
        Err(SendError::Full(bytes)) => {
            if !*told && ch.info().is_ok_and(|i| i.receivers == 0) {
                let fate = if created {
                    "drops what is queued: the channel goes with this command"
                } else {
                    "stops; what was sent stays queued"
                };
                let _ = writeln!(
                    std::io::stderr(),
                    "mmf: {name} is full and no receiver runs: waiting for one (Ctrl-C {fate})"
                );
                *told = true;
            }
            tx.send(bytes)
        }
        other => other,
    }
}

fn send(name: &str, raw: bool) -> Result<(), String> {
    let (ch, created) = open(name)?;
    let mut told = false;
    let mut tx = ch.sender().map_err(|e| format!("cannot send to {name}: {}", crate::said(&e)))?;
    let max = tx.max_message() as usize;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let failed = |e: SendError<&[u8]>| match e {
        SendError::Disconnected(_) => {
            format!("{name}: the receiver has gone (closed or died)")
        }
        other => format!("cannot send to {name}: {other}"),
    };
    if raw {
        let mut buf = vec![0u8; max];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => return wait_for_a_holder(&ch, name, created),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("cannot read stdin: {e}")),
            };
            send_one(&mut tx, &ch, (name, created), &buf[..n], &mut told).map_err(failed)?;
        }
    }
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let n =
            input.read_until(b'\n', &mut line).map_err(|e| format!("cannot read stdin: {e}"))?;
        if n == 0 {
            return wait_for_a_holder(&ch, name, created);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.len() > max {
            return Err(format!(
                "line {number} is {} bytes, more than {name}'s maximum message of {max}: \
                 use --raw, or a channel with a larger --max-message",
                line.len()
            ));
        }
        send_one(&mut tx, &ch, (name, created), line.as_slice(), &mut told).map_err(failed)?;
    }
    Ok(())
}

fn recv(name: &str, raw: bool, count: Option<u64>) -> Result<(), String> {
    // Not `std::io::stdout()`: it takes a write to a closed output for a success, and each
    // message printed is released. Unbuffered: every message is written before it leaves.
    let mut out = crate::stdout_file()?;
    let (ch, _) = open(name)?;
    let mut rx =
        ch.receiver().map_err(|e| format!("cannot receive from {name}: {}", crate::said(&e)))?;
    let mpmc = ch.kind() == Kind::Mpmc;
    let mut buf = Vec::new();
    let mut received = 0;
    while count.is_none_or(|c| received < c) {
        let m = match rx.recv() {
            Ok(m) => m,
            Err(RecvError::Disconnected) => break,
            Err(e) => return Err(format!("cannot receive from {name}: {e}")),
        };
        buf.resize(m.len(), 0);
        if let Err(e) = m.read_at(0, &mut buf) {
            // Not released: it was not printed.
            std::mem::forget(m);
            return Err(format!("cannot read a message of {name}: {e}"));
        }
        if !raw {
            buf.push(b'\n');
        }
        // SPSC: out of this process before the message leaves the ring, so that a kill
        // loses none (a buffer of printed messages died with the process; the one written
        // but not released comes again to the next receiver). MPMC: released first, since
        // a held message holds the receive lock, and a slow reader of this output would
        // stall every other receiver; a kill between the two loses that one message.
        let held = if mpmc { None } else { Some(m) };
        let written = out.write_all(&buf);
        if written.is_err() {
            // Not released (SPSC): the next receiver gets this message.
            std::mem::forget(held);
            return crate::stdout_result(written);
        }
        drop(held);
        received += 1;
    }
    Ok(())
}

fn info(name: &str, json: bool) -> Result<(), String> {
    let ch = channel::open(name).map_err(|e| format!("cannot open {name}: {}", crate::said(&e)))?;
    let i = ch.info().map_err(|e| format!("cannot look at {name}: {}", crate::said(&e)))?;
    let kind = match i.kind {
        Kind::Spsc => "spsc",
        Kind::Mpmc => "mpmc",
    };
    // A side killed asleep stays counted in the shared sleeper count (it only costs a
    // waker a look); no more sleep than are alive.
    let sleeping = (i.sleepers.0.min(i.senders), i.sleepers.1.min(i.receivers));
    if json {
        let value = serde_json::json!({
            "name": name,
            "kind": kind,
            "capacity": i.capacity,
            "max_message": i.max_message,
            "queued_bytes": i.queued_bytes,
            "senders": i.senders,
            "receivers": i.receivers,
            "sleeping_senders": sleeping.0,
            "sleeping_receivers": sleeping.1,
        });
        outln!("{value}");
        return Ok(());
    }
    outln!(
        "{name}: {} channel, capacity {} bytes, messages up to {} bytes",
        kind.to_uppercase(),
        i.capacity,
        i.max_message
    );
    outln!(
        "queued: {} bytes ({:.1}% full)",
        i.queued_bytes,
        i.queued_bytes as f64 * 100.0 / i.capacity as f64
    );
    outln!("senders alive: {} ({} asleep)", i.senders, sleeping.0);
    outln!("receivers alive: {} ({} asleep)", i.receivers, sleeping.1);
    Ok(())
}
