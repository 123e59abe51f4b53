//! Helpers for the tests that run the real `mmf` binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn mmf(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmf")).args(args).current_dir(cwd).output().expect("run mmf")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A failed run: the given exit status, one line on stderr, no panic or backtrace.
pub fn assert_fails(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected '{needle}' in: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    if code == 1 {
        assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// A run that must succeed; its stdout.
pub fn mmf_ok(args: &[&str], cwd: &Path) -> String {
    let out = mmf(args, cwd);
    assert!(out.status.success(), "mmf {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    stdout(&out)
}

/// A long-running `mmf` (lock, shm create --hold) and the first line it prints.
pub fn spawn_mmf(args: &[&str], cwd: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmf"))
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run mmf");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    (child, line)
}

/// `path` as a string argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}
