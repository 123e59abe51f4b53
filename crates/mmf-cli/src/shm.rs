//! `mmf shm ...`: named shared-memory objects from a shell, with the library's lifetime and
//! security rules.

use std::io::{BufWriter, Write};
use std::ops::Range;

use clap::Subcommand;
use mmf::named::{Backing, NamedInfo};
use mmf::{Access, CreationMode, Mapping, MappingOptions};

use crate::dump::DumpError;
use crate::input::Input;
use crate::open::{self, WINDOW, take};
use crate::size;

#[derive(Subcommand, Debug)]
pub enum Shm {
    /// Create a named object of SIZE zero bytes.
    ///
    /// Without --hold, on Linux the object stays until `mmf shm rm`; Windows removes a name
    /// with its last handle, so there it needs --hold. With --hold the object lives until
    /// this command is interrupted (and no one else holds it).
    #[command(
        after_help = "Examples:\n  mmf shm create demo --size 1MiB\n  mmf shm create demo --size 64k --hold"
    )]
    Create {
        /// The name (A-Z a-z 0-9 . _ -, up to 200 characters).
        name: String,
        /// Its size: 4096, 0x1000, 64KiB, 1G ...
        #[arg(long, value_parser = size::parse_nonzero)]
        size: u64,
        /// Hold the object until interrupted instead of keeping it until `rm`.
        #[arg(long)]
        hold: bool,
        /// Linux permission bits (octal), default 600: owner only.
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
    },
    /// Write bytes into a named object (which must exist).
    #[command(
        after_help = "Examples:\n  mmf shm write demo --text hello\n  mmf shm write demo --offset 0x100 --hex 'de ad be ef'"
    )]
    Write {
        /// The name.
        name: String,
        /// Where to write.
        #[arg(long, default_value = "0", value_parser = size::parse)]
        offset: u64,
        #[command(flatten)]
        input: Input,
    },
    /// Hex dump of a named object (the `hexdump -C` layout).
    #[command(after_help = "Examples:\n  mmf shm dump demo --len 64\n  mmf shm dump demo --json")]
    Dump {
        /// The name.
        name: String,
        /// First byte to show.
        #[arg(long, default_value = "0", value_parser = size::parse)]
        offset: u64,
        /// How many bytes (default: to the end).
        #[arg(long, value_parser = size::parse)]
        len: Option<u64>,
        /// One JSON object on stdout: {"name", "offset", "length", "hex"}.
        #[arg(long)]
        json: bool,
    },
    /// List the named objects mmf created that exist now.
    #[command(after_help = "Examples:\n  mmf shm list\n  mmf shm list --json")]
    List {
        /// A JSON array on stdout: [{"name", "size", "owner", "kept", "backing", "path"}].
        #[arg(long)]
        json: bool,
    },
    /// Look inside a sync area (mmf::sync) in a named object: its participants (pid,
    /// alive or dead), who holds each mutex, who waits. Named mutexes, events and
    /// semaphores keep theirs at offset 0.
    #[command(
        after_help = "Examples:\n  mmf shm info my-mutex\n  mmf shm info jobs --offset 4096 --json\n  sudo mmf shm info their-mutex --allow-foreign-owner"
    )]
    Info {
        /// The name.
        name: String,
        /// Where the area starts in the object.
        #[arg(long, default_value = "0", value_parser = size::parse)]
        offset: u64,
        /// One JSON object on stdout: {"name", "offset", "slots", "asymmetric",
        /// "participants": [{"slot", "pid", "alive", "corrupt"}], "objects": [{"index",
        /// "kind", "holder", "holder_pid", "holder_alive", "inconsistent", "value",
        /// "maximum", "sleepers", "stale_sleepers", "corrupt"}]}; "corrupt" lists what
        /// cannot be (empty if nothing).
        #[arg(long)]
        json: bool,
        /// Inspect an object that another user owns (read-only; Linux: mmf refuses to open
        /// another user's object unless told, as the library's allow_foreign_owner).
        #[arg(long)]
        allow_foreign_owner: bool,
    },
    /// Remove a name now (holders keep their mappings).
    #[command(after_help = "Examples:\n  mmf shm rm demo")]
    Rm {
        /// The name.
        name: String,
    },
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| m & !0o666 == 0 && *m != 0)
        .ok_or_else(|| format!("invalid mode '{text}': give octal read/write bits like 600 or 660"))
}

pub fn run(command: Shm) -> Result<(), String> {
    match command {
        Shm::Create { name, size, hold, mode } => create(&name, size, hold, mode),
        Shm::Write { name, offset, input } => write(&name, offset, &input.bytes()?),
        Shm::Dump { name, offset, len, json } => dump(&name, offset, len, json),
        Shm::List { json } => list(json),
        Shm::Info { name, offset, json, allow_foreign_owner } => {
            crate::shm_info::info(&name, offset, json, allow_foreign_owner)
        }
        Shm::Rm { name } => {
            mmf::named::remove(&name)
                .map_err(|e| format!("cannot remove {name}: {}", crate::said(&e)))?;
            outln!("removed {name}");
            Ok(())
        }
    }
}

fn create(name: &str, size: u64, hold: bool, mode: u32) -> Result<(), String> {
    mmf::named::validate_name(name)
        .map_err(|e| format!("cannot create {name}: {}", crate::said(&e)))?;
    if !hold && cfg!(windows) {
        return Err(format!(
            "Windows removes a name with its last handle, so {name} would vanish when this \
             command exits: use `mmf shm create {name} --size {size} --hold`"
        ));
    }
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(size)
        .name(name)
        .creation(CreationMode::CreateNew)
        .permissions(mode)
        .keep(!hold)
        .map_anonymous()
        .map_err(|e| format!("cannot create {name}: {}", crate::said(&e)))?;
    if hold {
        outln!("created {name} ({size} bytes); holding it until interrupted (Ctrl-C)");
        let _keep = mapping;
        crate::hold_until_interrupted()
    } else {
        outln!("created {name} ({size} bytes); it stays until `mmf shm rm {name}`");
        Ok(())
    }
}

fn write(name: &str, offset: u64, data: &[u8]) -> Result<(), String> {
    if data.is_empty() {
        return Err("nothing to write: the input is empty".into());
    }
    let mapping = Mapping::open(name, Access::ReadWrite)
        .map_err(|e| format!("cannot open {name}: {}", crate::said(&e)))?;
    let end = offset.saturating_add(data.len() as u64);
    if end > mapping.size() {
        return Err(format!(
            "{} bytes at offset {offset} end past {name} ({} bytes): write at most {} bytes there",
            data.len(),
            mapping.size(),
            mapping.size().saturating_sub(offset)
        ));
    }
    crate::files::write_view(&mapping, offset, data)
        .map_err(|e| format!("cannot write {name}: {e}"))?;
    outln!("wrote {} bytes at offset {offset} of {name}", data.len());
    Ok(())
}

fn dump(name: &str, offset: u64, len: Option<u64>, json: bool) -> Result<(), String> {
    let mapping = Mapping::open(name, Access::ReadOnly)
        .map_err(|e| format!("cannot open {name}: {}", crate::said(&e)))?;
    let size = mapping.size();
    if offset >= size {
        return Err(format!(
            "offset {offset} is past the end of {name} ({size} bytes): give an offset below {size}"
        ));
    }
    let end = len.map_or(size, |l| offset.saturating_add(l).min(size));
    let result = if json {
        json_to_stdout(&mapping, name, offset..end)
    } else {
        crate::dump::mapped_to_stdout(&mapping, offset..end)
    };
    match result {
        Ok(()) => Ok(()),
        Err(DumpError::Read(e)) => Err(format!("cannot read {name}: {e}")),
        Err(DumpError::Write(e)) => crate::stdout_result(Err(e)),
    }
}

/// `{"hex", "length", "name", "offset"}` on one line, as `serde_json` prints the object
/// (keys sorted), but with the hex digits streamed one window at a time: the object is
/// never held in memory whole.
fn json_to_stdout(mapping: &Mapping, name: &str, range: Range<u64>) -> Result<(), DumpError> {
    const CHUNK: usize = 1 << 20;
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (offset, length) = (range.start, range.end - range.start);
    out.write_all(b"{\"hex\":\"").map_err(DumpError::Write)?;
    let mut buf = vec![0; take(length, CHUNK)];
    let mut hex = Vec::with_capacity(2 * buf.len());
    for window in open::windows(range, WINDOW) {
        let view = mapping.view(window).map_err(DumpError::Read)?;
        for at in (0..view.len()).step_by(CHUNK) {
            let n = CHUNK.min(view.len() - at);
            view.read_at(at, &mut buf[..n]).map_err(DumpError::Read)?;
            hex.clear();
            hex.extend(
                buf[..n]
                    .iter()
                    .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]),
            );
            out.write_all(&hex).map_err(DumpError::Write)?;
        }
    }
    let name = serde_json::Value::from(name);
    writeln!(out, "\",\"length\":{length},\"name\":{name},\"offset\":{offset}}}")
        .and_then(|()| out.flush())
        .map_err(DumpError::Write)
}

fn list(json: bool) -> Result<(), String> {
    let objects = mmf::named::list().map_err(|e| format!("cannot list named objects: {e}"))?;
    if json {
        let items: Vec<_> = objects.iter().map(json_item).collect();
        outln!("{}", serde_json::Value::Array(items));
        return Ok(());
    }
    outln!("{:<32} {:>14} {:>6} {:<7} BACKING", "NAME", "SIZE", "OWNER", "KEPT");
    for o in &objects {
        let owner = o.owner.map_or("-".into(), |u| u.to_string());
        let kept = if o.kept { "kept" } else { "held" };
        outln!("{:<32} {:>14} {:>6} {kept:<7} {}", o.name, o.size, owner, backing(&o.backing));
    }
    Ok(())
}

fn backing(b: &Backing) -> String {
    match b {
        Backing::Pagefile => "shared memory".into(),
        Backing::File(path) => format!("file {}", path.display()),
    }
}

fn json_item(o: &NamedInfo) -> serde_json::Value {
    let (kind, path) = match &o.backing {
        Backing::Pagefile => ("pagefile", None),
        Backing::File(p) => ("file", Some(p.display().to_string())),
    };
    serde_json::json!({
        "name": o.name, "size": o.size, "owner": o.owner, "kept": o.kept,
        "backing": kind, "path": path,
    })
}
