//! Running a command-line binary as a user would, and checking how it fails.
//!
//! ```text
//! const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));
//! let out = MMF.ok(&["info", "f.bin"], dir.path());
//! ```

use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary under test, by path (`env!("CARGO_BIN_EXE_NAME")` in the binary's crate).
#[derive(Clone, Copy, Debug)]
pub struct Tool(pub &'static str);

impl Tool {
    /// Runs it with `args` in `cwd` and collects its output.
    pub fn run(self, args: &[&str], cwd: &Path) -> Output {
        crate::output(Command::new(self.0).args(args).current_dir(cwd).stdin(Stdio::null()))
            .expect("run the binary")
    }

    /// A run that must succeed; its stdout.
    pub fn ok(self, args: &[&str], cwd: &Path) -> String {
        let out = self.run(args, cwd);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        stdout(&out)
    }

    /// Runs it like [`run`](Self::run), but kills it and fails the test if it has not
    /// exited within `limit`: for inputs that once made it hang.
    pub fn run_within(self, args: &[&str], cwd: &Path, limit: Duration) -> Output {
        let mut command = Command::new(self.0);
        command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = crate::spawn(&mut command).expect("run the binary");
        finish_within(child, limit, &format!("{args:?}"))
    }

    /// Runs it under `/usr/bin/time` (Debian package `time`) and returns its output and
    /// its peak resident set size in KiB (`ru_maxrss`: the process's high-water mark,
    /// file pages mapped into it included).
    #[cfg(target_os = "linux")]
    pub fn run_measured(self, args: &[&str], cwd: &Path) -> (Output, u64) {
        let report = tempfile::NamedTempFile::new().expect("a temporary file");
        let report_path = report.path().to_str().expect("a UTF-8 temp path");
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o", report_path, self.0])
            .args(args)
            .current_dir(cwd)
            .output()
            .expect("/usr/bin/time (Debian package time) must be installed: .ci/run installs it");
        let text = std::fs::read_to_string(report.path()).expect("read the time report");
        let kib = text.lines().last().and_then(|l| l.trim().parse().ok());
        (out, kib.unwrap_or_else(|| panic!("no peak RSS in {text:?}")))
    }

    /// Runs it, and as soon as it has `file` mapped (the file shows in `/proc/PID/maps`)
    /// stops it (`SIGSTOP`), calls `meanwhile`, lets it go on (`SIGCONT`) and collects its
    /// output. `None` if it exited before it was seen with the file mapped: a test that
    /// changes a file under a running command tries again.
    #[cfg(target_os = "linux")]
    pub fn run_paused_when_mapped(
        self,
        args: &[&str],
        cwd: &Path,
        file: &Path,
        meanwhile: impl FnOnce(),
    ) -> Option<Output> {
        let needle = std::fs::canonicalize(file).expect("the file exists");
        let needle = needle.to_str().expect("a UTF-8 path");
        let mut command = Command::new(self.0);
        command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = crate::spawn(&mut command).expect("run the binary");
        let maps = format!("/proc/{}/maps", child.id());
        let pid = child.id().to_string();
        let signal = |name: &str| {
            let status = Command::new("kill").args([name, &pid]).status().expect("kill (procps)");
            assert!(status.success(), "kill {name} {pid}");
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if child.try_wait().expect("wait for the child").is_some() {
                finish_within(child, Duration::from_secs(60), "the command");
                return None;
            }
            if std::fs::read_to_string(&maps).is_ok_and(|m| m.contains(needle)) {
                break;
            }
            assert!(Instant::now() < deadline, "{args:?} never mapped {needle}");
            std::thread::yield_now();
        }
        signal("-STOP");
        meanwhile();
        signal("-CONT");
        Some(finish_within(child, Duration::from_secs(60), &format!("{args:?}")))
    }

    /// A long-running command (a lock, a holder) and the first line it prints.
    pub fn spawn(self, args: &[&str], cwd: &Path) -> (Child, String) {
        let mut command = Command::new(self.0);
        command.args(args).current_dir(cwd).stdout(Stdio::piped());
        let mut child = crate::spawn(&mut command).expect("run the binary");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        (child, line)
    }
}

/// Waits for `child` (stdout and stderr piped) and collects its output; kills it and
/// panics, naming `what`, if it has not exited within `limit`.
pub fn finish_within(mut child: Child, limit: Duration, what: &str) -> Output {
    // Drained on threads of their own, so that a full pipe cannot stall the child.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
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
