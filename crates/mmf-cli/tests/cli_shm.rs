//! `mmf shm` through the real binary: one process creates, another dumps; listing, JSON,
//! removal, and `--hold` lifetimes.

use std::path::Path;

use mmf_testkit::cli::{Tool, assert_fails};

/// The `mmf` binary of this crate.
const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

fn name(tag: &str) -> String {
    format!("mmf-cli-test-{tag}-{}", std::process::id())
}

fn here() -> &'static Path {
    Path::new(".")
}

#[test]
#[cfg(unix)]
fn create_in_one_process_dump_in_another_then_rm() {
    let n = name("kept");
    let out = MMF.ok(&["shm", "create", &n, "--size", "64KiB"], here());
    assert!(out.contains("stays until"), "{out}");
    MMF.ok(&["shm", "write", &n, "--offset", "16", "--text", "hello shm"], here());
    let dump = MMF.ok(&["shm", "dump", &n, "--len", "32"], here());
    assert_eq!(
        dump,
        "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n\
         00000010  68 65 6c 6c 6f 20 73 68  6d 00 00 00 00 00 00 00  |hello shm.......|\n\
         00000020\n"
    );
    let json: serde_json::Value = serde_json::from_str(
        &MMF.ok(&["shm", "dump", &n, "--offset", "16", "--len", "9", "--json"], here()),
    )
    .unwrap();
    let expected =
        serde_json::json!({"name": n, "offset": 16, "length": 9, "hex": "68656c6c6f2073686d"});
    assert_eq!(json, expected);
    // Streamed, but the same line serde_json prints for the whole object (keys sorted).
    let raw = MMF.ok(&["shm", "dump", &n, "--offset", "16", "--len", "9", "--json"], here());
    assert_eq!(raw, format!("{expected}\n"));
    let whole: serde_json::Value =
        serde_json::from_str(&MMF.ok(&["shm", "dump", &n, "--json"], here())).unwrap();
    let hex = whole["hex"].as_str().unwrap();
    assert_eq!((hex.len(), whole["length"].as_u64()), (2 * 65536, Some(65536)));
    assert_eq!(&hex[32..50], "68656c6c6f2073686d");
    let list: serde_json::Value =
        serde_json::from_str(&MMF.ok(&["shm", "list", "--json"], here())).unwrap();
    let entry = list.as_array().unwrap().iter().find(|o| o["name"] == n.as_str()).expect("listed");
    assert_eq!(entry["size"], 65536);
    assert_eq!(entry["kept"], true);
    assert_eq!(entry["backing"], "pagefile");
    assert!(MMF.ok(&["shm", "list"], here()).contains(&n));
    MMF.ok(&["shm", "rm", &n], here());
    assert_fails(&MMF.run(&["shm", "dump", &n], here()), 1, "no named object");
    let list = MMF.ok(&["shm", "list", "--json"], here());
    assert!(!list.contains(&n), "{list}");
}

#[test]
fn a_held_object_lives_as_long_as_its_holder() {
    let n = name("held");
    let (mut holder, line) = MMF.spawn(&["shm", "create", &n, "--size", "4096", "--hold"], here());
    assert!(line.contains("holding it until interrupted"), "{line}");
    MMF.ok(&["shm", "write", &n, "--utf16", "HELLO"], here());
    let dump = MMF.ok(&["shm", "dump", &n, "--len", "10"], here());
    assert!(dump.contains("|H.E.L.L.O.|"), "{dump}");
    #[cfg(unix)]
    assert!(MMF.ok(&["shm", "list"], here()).contains(&n));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let start = std::time::Instant::now();
    while MMF.run(&["shm", "dump", &n], here()).status.success() {
        assert!(start.elapsed().as_secs() < 10, "{n} outlived its holder");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_fails(&MMF.run(&["shm", "dump", &n], here()), 1, "no named object");
}

#[test]
fn shm_refuses_bad_input() {
    let n = name("bad");
    assert_fails(
        &MMF.run(&["shm", "create", "bad/name", "--size", "1k"], here()),
        1,
        "invalid name",
    );
    assert_fails(&MMF.run(&["shm", "create", &n, "--size", "0"], here()), 2, "at least 1 byte");
    assert_fails(
        &MMF.run(&["shm", "create", &n, "--size", "1k", "--mode", "777"], here()),
        2,
        "invalid mode",
    );
    assert_fails(&MMF.run(&["shm", "dump", &n], here()), 1, "no named object");
    assert_fails(&MMF.run(&["shm", "write", &n, "--text", "x"], here()), 1, "no named object");
    assert_fails(&MMF.run(&["shm", "write", &n, "--hex", "zz"], here()), 2, "invalid hex");
    // Once a panic: "byte index 2 is not a char boundary".
    assert_fails(&MMF.run(&["shm", "write", &n, "--hex", "1é1"], here()), 2, "invalid hex");
    #[cfg(unix)]
    {
        assert_fails(&MMF.run(&["shm", "rm", &n], here()), 1, "no named object");
        MMF.ok(&["shm", "create", &n, "--size", "100"], here());
        assert_fails(
            &MMF.run(&["shm", "create", &n, "--size", "100"], here()),
            1,
            "already exists",
        );
        assert_fails(
            &MMF.run(&["shm", "write", &n, "--offset", "98", "--text", "xyz"], here()),
            1,
            "end past",
        );
        assert_fails(&MMF.run(&["shm", "dump", &n, "--offset", "100"], here()), 1, "past the end");
        MMF.ok(&["shm", "rm", &n], here());
    }
    #[cfg(windows)]
    assert_fails(&MMF.run(&["shm", "create", &n, "--size", "100"], here()), 1, "--hold");
}

/// An object of 0 bytes (made by another program) is "empty", not "ask for at most 0 bytes".
#[test]
#[cfg(target_os = "linux")]
fn an_empty_object_is_called_empty() {
    use std::os::unix::fs::OpenOptionsExt;
    let n = name("empty");
    let path = Path::new("/dev/shm").join(&n);
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
    let out = MMF.run(&["shm", "dump", &n], here());
    std::fs::remove_file(&path).unwrap();
    assert_fails(&out, 1, &format!("the object \"{n}\" is empty (0 bytes)"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("at most 0"));
}
