//! An inventory kept in a heap file across runs and processes: for each item name, the
//! list of stock movements (quantity, time, note). Any number of these programs may run
//! at once on one file: writers take turns, readers see whole commits.
//!
//! ```text
//! cargo run -p mmf-heap --example inventory -- stock.heap add bolts 40 "from supplier A"
//! cargo run -p mmf-heap --example inventory -- stock.heap add bolts -3 "sold"
//! cargo run -p mmf-heap --example inventory -- stock.heap list
//! cargo run -p mmf-heap --example inventory -- stock.heap list bolts
//! cargo run -p mmf-heap --example inventory -- stock.heap remove bolts
//! mmf heap dump stock.heap inventory
//! ```
//!
//! The data structure is what a Rust program would keep in memory — a map from names to
//! vectors of records that hold strings — stored in the file as it is: `PMap<PStr,
//! PVec<Movement>>`. Each command is one transaction: it reads the map, changes it,
//! stores the new handle in the root and commits (one `fdatasync`); a crash at any point
//! leaves the file at the last commit.

use std::error::Error;
use std::path::Path;

use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::{Heap, HeapOptions, PMap, PStr, PVec};

/// One stock movement: what came in (positive) or went out (negative), when, and why.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
pub struct Movement {
    /// Units in (> 0) or out (< 0).
    pub qty: i64,
    /// When, in nanoseconds since the Unix epoch.
    pub at_ns: u64,
    /// A note.
    pub note: PStr,
}
mmf_heap::persist!(Movement { qty: i64, at_ns: u64, note: PStr });

/// The inventory: item name → its movements, oldest first.
pub type Inventory = PMap<PStr, PVec<Movement>>;

/// The root the inventory lives under.
const ROOT: &str = "inventory";

const USAGE: &str = "usage: inventory FILE (add NAME QTY [NOTE] | list [NAME] | remove NAME)";

fn open(path: &Path) -> Result<Heap, Box<dyn Error>> {
    // SAFETY: only mmf-heap (this program, in any number of processes) writes the file.
    Ok(unsafe { Heap::open(path, HeapOptions::new().create(true)) }?)
}

/// Runs one command (`args` without the program name); returns what it prints.
///
/// # Errors
/// A bad command line, or what the heap returns.
pub fn run(args: &[String]) -> Result<String, Box<dyn Error>> {
    let (path, command) = match args {
        [path, command, ..] => (Path::new(path), command.as_str()),
        _ => return Err(USAGE.into()),
    };
    let heap = open(path)?;
    match (command, &args[2..]) {
        ("add", [name, qty, note @ ..]) => {
            let qty: i64 = qty.parse().map_err(|_| format!("not a quantity: {qty}"))?;
            let mut tx = heap.write()?;
            let mut inventory: Inventory = tx.root(ROOT)?.unwrap_or_default();
            let mut moves = inventory.get(&tx, name)?.copied().unwrap_or_default();
            let note = tx.str(&note.join(" "))?;
            let at_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            moves.push(&mut tx, &Movement { qty, at_ns, note })?;
            inventory.insert(&mut tx, name, &moves)?;
            tx.set_root(ROOT, &inventory)?;
            let stock = stock(&tx, &moves)?;
            tx.commit()?;
            let plural = if moves.len() == 1 { "" } else { "s" };
            Ok(format!("{name}: {} movement{plural}, {stock} in stock\n", moves.len()))
        }
        ("list", []) => {
            let snap = heap.read()?;
            let inventory: Inventory = snap.root(ROOT)?.unwrap_or_default();
            let mut out = String::new();
            for entry in inventory.iter(&snap) {
                let (name, moves) = entry?;
                let plural = if moves.len() == 1 { "" } else { "s" };
                out += &format!(
                    "{name}: {} movement{plural}, {} in stock\n",
                    moves.len(),
                    stock(&snap, moves)?
                );
            }
            Ok(out)
        }
        ("list", [name]) => {
            let snap = heap.read()?;
            let inventory: Inventory = snap.root(ROOT)?.unwrap_or_default();
            let Some(moves) = inventory.get(&snap, name)? else {
                return Err(format!("no item named {name:?}").into());
            };
            let mut out = String::new();
            for m in moves.iter(&snap) {
                let m = m?;
                // The note, read in place from the mapped file.
                out += &format!("{:+} at {} {}\n", m.qty, m.at_ns, snap.str_ref(m.note)?);
            }
            Ok(out)
        }
        ("remove", [name]) => {
            let mut tx = heap.write()?;
            let mut inventory: Inventory = tx.root(ROOT)?.unwrap_or_default();
            let Some(mut moves) = inventory.remove(&mut tx, name)? else {
                return Err(format!("no item named {name:?}").into());
            };
            // The map does not own what its values point to: free the notes, then the
            // vector's nodes.
            for m in moves
                .iter(&tx)
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .copied()
                .collect::<Vec<_>>()
            {
                tx.free_str(m.note)?;
            }
            moves.clear(&mut tx)?;
            tx.set_root(ROOT, &inventory)?;
            tx.commit()?;
            Ok(format!("{name}: removed\n"))
        }
        _ => Err(USAGE.into()),
    }
}

/// The stock of an item: the sum of its movements.
fn stock(r: &impl mmf_heap::Reader, moves: &PVec<Movement>) -> Result<i64, mmf_heap::Error> {
    moves.iter(r).map(|m| m.map(|m| m.qty)).sum()
}

#[allow(dead_code, reason = "the tests include this file and call run()")]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("inventory: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
