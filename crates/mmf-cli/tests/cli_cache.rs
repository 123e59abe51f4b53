//! `mmf info`, `touch`, `evict`, `lock` through the real binary, counted against
//! `fincore` (util-linux) on the same file.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::Command;

use mmf_testkit::cli::{Tool, arg, assert_fails};

/// The `mmf` binary of this crate.
const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

/// (resident pages, resident bytes) as `fincore` counts them.
fn fincore(path: &Path) -> (u64, u64) {
    let out = Command::new("fincore")
        .args(["--bytes", "--noheadings", "--raw", "--output", "PAGES,RES", arg(path)])
        .output()
        .expect("fincore (util-linux) must be installed");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut nums = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    (nums.next().unwrap(), nums.next().unwrap())
}

/// (resident pages, resident bytes, pages) as `mmf info --json` reports them.
fn info(path: &Path) -> (u64, u64, u64) {
    let out = MMF.ok(&["info", arg(path), "--json"], Path::new("/"));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {out}"));
    assert_eq!(v["path"], arg(path));
    // The system's page size, the file's size, and pages and bytes that agree with them.
    assert_eq!(n("page_size"), getconf_page_size());
    assert_eq!(n("size"), std::fs::metadata(path).unwrap().len());
    assert_eq!(n("pages"), n("size").div_ceil(n("page_size")));
    assert_eq!(n("resident_bytes"), n("resident_pages") * n("page_size"));
    assert!(n("resident_pages") <= n("pages"));
    (n("resident_pages"), n("resident_bytes"), n("pages"))
}

/// `getconf PAGESIZE` (libc's `sysconf(_SC_PAGESIZE)`, asked by another program).
fn getconf_page_size() -> u64 {
    let out = Command::new("getconf").arg("PAGESIZE").output().expect("getconf (libc-bin)");
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

/// `mmf info`'s counts equal `fincore`'s, once the page cache holds still: readahead
/// started by a read may still be completing (on a busy machine, for a while), so the
/// counts are compared between two equal `fincore` answers.
fn same_counts(path: &Path, when: &str) -> u64 {
    for _ in 0..40 {
        let before = fincore(path);
        let (pages, bytes, _) = info(path);
        if fincore(path) == before {
            assert_eq!((pages, bytes), before, "mmf info vs fincore {when}");
            return pages;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the page cache of {} never held still for a comparison {when}", path.display());
}

#[test]
fn info_agrees_with_fincore_after_touch_evict_and_half() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    std::fs::write(&path, vec![0x5a; 64 << 20]).unwrap();
    let total = info(&path).2;
    assert_eq!(total, (64 << 20) / 4096);

    let out = MMF.ok(&["evict", arg(&path)], dir.path());
    assert!(out.contains("evicted"), "{out}");
    assert_eq!(same_counts(&path, "after evict"), 0);

    let out = MMF.ok(&["touch", arg(&path)], dir.path());
    assert!(out.contains(&format!("{total} pages resident")), "{out}");
    assert_eq!(same_counts(&path, "after touch"), total);

    MMF.ok(&["evict", arg(&path)], dir.path());
    // Read the first half with plain reads (read-ahead may add a little past it).
    let half = std::fs::File::open(&path).unwrap();
    let mut buf = vec![0; 32 << 20];
    std::io::Read::read_exact(&mut &half, &mut buf).unwrap();
    let resident = same_counts(&path, "after reading half");
    assert!(resident >= total / 2 && resident < total, "{resident} of {total}");
}

#[test]
fn info_shows_a_bar_and_a_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    std::fs::write(&path, vec![1u8; 1 << 20]).unwrap();
    MMF.ok(&["touch", arg(&path)], dir.path());
    let out = MMF.ok(&["info", arg(&path)], dir.path());
    assert!(out.contains("1048576 bytes, 256 pages of 4096 bytes"), "{out}");
    assert!(out.contains("resident: 256 pages, 1048576 bytes (100.0%)"), "{out}");
    assert!(out.contains(&format!("[{}]", "#".repeat(64))), "{out}");
    let map = MMF.ok(&["info", arg(&path), "--map"], dir.path());
    assert!(map.lines().filter(|l| l.contains('|')).count() >= 4, "{map}");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(info(&empty), (0, 0, 0));
}

#[test]
fn lock_holds_the_file_in_ram_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.bin");
    std::fs::write(&path, vec![3u8; 8 << 20]).unwrap();
    MMF.ok(&["evict", arg(&path)], dir.path());
    let (mut child, line) = MMF.spawn(&["lock", arg(&path)], dir.path());
    assert!(line.contains("8388608 bytes locked in RAM"), "{line}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let locked_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(locked_kb >= 8 << 10, "VmLck {locked_kb} kB");
    // Locked pages are not evicted.
    MMF.ok(&["evict", arg(&path)], dir.path());
    assert_eq!(same_counts(&path, "while locked"), 2048);
    child.kill().unwrap(); // interrupted
    child.wait().unwrap();
}

#[test]
fn cache_commands_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for cmd in ["info", "touch", "evict", "lock"] {
        assert_fails(&MMF.run(&[cmd, "missing.bin"], d), 1, "cannot open missing.bin");
        assert_fails(&MMF.run(&[cmd, "."], d), 1, "is a directory");
        assert_fails(&MMF.run(&[cmd], d), 2, "PATH");
    }
    let empty = d.join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_fails(&MMF.run(&["lock", arg(&empty)], d), 1, "nothing to lock");
    // The same summary as for any file (it used to print nothing).
    assert_eq!(MMF.ok(&["touch", arg(&empty)], d), format!("{}: 0 pages resident\n", arg(&empty)));
}

/// The file truncated while `touch` faults it in: said so (it used to be only
/// "madvise(MADV_POPULATE) failed: Bad address").
#[test]
fn touch_of_a_file_truncated_under_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    for _ in 0..5 {
        // Holes: populating them fills the page cache with zeros, no disk needed.
        std::fs::File::create(&path).unwrap().set_len(1 << 30).unwrap();
        let truncate =
            || std::fs::File::options().write(true).open(&path).unwrap().set_len(0).unwrap();
        let Some(out) =
            MMF.run_paused_when_mapped(&["touch", arg(&path)], dir.path(), &path, truncate)
        else {
            continue; // it finished before it could be stopped: try again
        };
        if out.status.success() {
            continue; // it had faulted everything in already
        }
        assert_fails(
            &out,
            1,
            "big.bin: it was truncated while mmf touched it (1073741824 bytes when it started, 0 now)",
        );
        return;
    }
    panic!("touch always finished before it could be stopped");
}
