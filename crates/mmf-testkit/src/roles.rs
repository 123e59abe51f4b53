//! Multi-process tests re-run the test binary: the parent runs one test with `MMF_ROLE`
//! set, and that test, seeing the variable, plays the role instead of the test.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The environment variable that names a child's role: `ROLE:ARG`.
pub const ROLE: &str = "MMF_ROLE";

/// The role this process plays, if it is a child: `(role, argument)`.
pub fn role() -> Option<(String, String)> {
    let value = std::env::var(ROLE).ok()?;
    let (role, arg) = value.split_once(':').unwrap_or((&value, ""));
    Some((role.to_owned(), arg.to_owned()))
}

/// A child process playing `role` in the test `test`, talking over its stdin/stdout.
pub struct Peer {
    /// The child process.
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    /// Runs the test `test` of this binary as a child with `MMF_ROLE=role:arg`.
    pub fn spawn(test: &str, role: &str, arg: &str) -> Peer {
        Self::spawn_with(test, role, arg, |_| {})
    }

    /// [`spawn`](Self::spawn), with `setup` changing the command first (environment,
    /// user, ...).
    pub fn spawn_with(test: &str, role: &str, arg: &str, setup: impl FnOnce(&mut Command)) -> Peer {
        Self::spawn_under(&[], test, role, arg, setup)
    }

    /// [`spawn_with`](Self::spawn_with), the test binary run by a wrapper command
    /// (`["unshare", "-Urm", "--"]`, `["setpriv", "--reuid=65534", ...]`).
    pub fn spawn_under(
        wrapper: &[&str],
        test: &str,
        role: &str,
        arg: &str,
        setup: impl FnOnce(&mut Command),
    ) -> Peer {
        let exe = std::env::current_exe().unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        command
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE, format!("{role}:{arg}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        setup(&mut command);
        let mut child = crate::spawn(&mut command).expect("spawn the test binary as a peer");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer { child, stdin, stdout }
    }

    /// Waits for the peer to [`tell`] a line starting with `prefix`; returns the rest.
    pub fn expect(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "peer ended before saying {prefix:?}");
            if let Some(rest) =
                line.trim_end().strip_prefix(MARK).and_then(|l| l.strip_prefix(prefix))
            {
                return rest.trim().to_owned();
            }
        }
    }

    /// Sends a line to the peer, which reads it with [`hear`].
    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL / `TerminateProcess`, and reaps the child.
    pub fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL / TerminateProcess
        self.child.wait().unwrap();
    }

    /// Closes the peer's stdin and waits for it to exit successfully.
    pub fn wait_success(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "peer failed: {status}");
    }
}

/// Marks the lines a child means for its parent, apart from the test harness's output.
const MARK: &str = "@mmf ";

/// In a child: say a line to the parent.
pub fn tell(line: &str) {
    // On a line of its own: the harness has printed "test NAME ... " without a newline.
    println!("\n{MARK}{line}");
    std::io::stdout().flush().unwrap();
}

/// In a child: wait for a line from the parent (`None` when the parent closed stdin).
pub fn hear() -> Option<String> {
    let mut line = String::new();
    let n = std::io::stdin().read_line(&mut line).unwrap();
    (n > 0).then(|| line.trim_end().to_owned())
}

/// Runs the test `test` of this binary alone in a new process playing `role` (no argument),
/// and panics with its output unless it passed: for a test about what a fresh process does
/// (the binary's other tests, threads of this process, may have changed its state).
pub fn run_alone(test: &str, role: &str) {
    let out = crate::output(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE, format!("{role}:")),
    )
    .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} as {role}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this process plays `role` (see [`run_alone`]).
pub fn plays(role: &str) -> bool {
    self::role().is_some_and(|(r, _)| r == role)
}
