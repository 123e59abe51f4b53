//! Running a command-line binary as a user would, and checking how it fails.
//!
//! ```text
//! const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));
//! let out = MMF.ok(&["info", "f.bin"], dir.path());
//! ```

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// A binary under test, by path (`env!("CARGO_BIN_EXE_NAME")` in the binary's crate).
#[derive(Clone, Copy, Debug)]
pub struct Tool(pub &'static str);

impl Tool {
    /// Runs it with `args` in `cwd` and collects its output.
    pub fn run(self, args: &[&str], cwd: &Path) -> Output {
        Command::new(self.0).args(args).current_dir(cwd).output().expect("run the binary")
    }

    /// A run that must succeed; its stdout.
    pub fn ok(self, args: &[&str], cwd: &Path) -> String {
        let out = self.run(args, cwd);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        stdout(&out)
    }

    /// A long-running command (a lock, a holder) and the first line it prints.
    pub fn spawn(self, args: &[&str], cwd: &Path) -> (Child, String) {
        let mut child = Command::new(self.0)
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the binary");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        (child, line)
    }
}

/// The run's stdout as UTF-8.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A failed run: the given exit status, `needle` on stderr, no panic or backtrace; a
/// failure (status 1) prints exactly one line on stderr and nothing on stdout.
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

/// `path` as a string argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}
