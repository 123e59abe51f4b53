//! The inventory example (`examples/inventory.rs`): its commands across runs, and two
//! processes adding to one file at once — every movement of both is there afterwards.

#[path = "../examples/inventory.rs"]
#[allow(dead_code, reason = "main() is the example's, not the test's")]
mod inventory;

use mmf_testkit::{Peer, role, tell};

fn run(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    inventory::run(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn commands_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stock.heap");
    let f = file.to_str().unwrap();
    assert_eq!(
        run(&[f, "add", "bolts", "40", "from", "supplier", "A"]),
        "bolts: 1 movement, 40 in stock\n"
    );
    assert_eq!(run(&[f, "add", "bolts", "-3", "sold"]), "bolts: 2 movements, 37 in stock\n");
    assert_eq!(run(&[f, "add", "nuts", "100"]), "nuts: 1 movement, 100 in stock\n");
    assert_eq!(
        run(&[f, "list"]),
        "bolts: 2 movements, 37 in stock\nnuts: 1 movement, 100 in stock\n"
    );
    let bolts = run(&[f, "list", "bolts"]);
    let lines: Vec<&str> = bolts.lines().collect();
    assert!(lines[0].starts_with("+40 at ") && lines[0].ends_with(" from supplier A"), "{bolts}");
    assert!(lines[1].starts_with("-3 at ") && lines[1].ends_with(" sold"), "{bolts}");
    assert_eq!(run(&[f, "remove", "bolts"]), "bolts: removed\n");
    assert_eq!(run(&[f, "list"]), "nuts: 1 movement, 100 in stock\n");
    let args: Vec<String> = [f, "list", "bolts"].iter().map(|s| s.to_string()).collect();
    assert!(inventory::run(&args).unwrap_err().to_string().contains("no item named"));
    assert!(inventory::run(&[f.to_owned(), "sell".into()]).is_err(), "a bad command is an error");
}

const TWO: &str = "two_processes_add_at_once";

#[test]
fn two_processes_add_at_once() {
    if let Some((who, file)) = role() {
        tell("ready");
        for i in 0..40 {
            let name = ["bolts", "nuts", "washers"][i % 3];
            run(&[&file, "add", name, "1", &who, &i.to_string()]);
        }
        tell("done");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.heap");
    let f = file.to_str().unwrap();
    run(&[f, "add", "bolts", "0", "start"]);
    let mut peers: Vec<Peer> = ["a", "b"].iter().map(|who| Peer::spawn(TWO, who, f)).collect();
    for p in &mut peers {
        p.expect("ready");
    }
    for p in &mut peers {
        p.expect("done");
    }
    // 2 × 40 movements of 1 unit: 14 + 14 bolts (and the start), 13 + 13 nuts, 13 + 13
    // washers — none lost to the other writer.
    assert_eq!(
        run(&[f, "list"]),
        "bolts: 29 movements, 28 in stock\nnuts: 26 movements, 26 in stock\nwashers: 26 movements, 26 in stock\n"
    );
    let nuts = run(&[f, "list", "nuts"]);
    assert_eq!(nuts.lines().filter(|l| l.contains(" a ")).count(), 13, "{nuts}");
}
