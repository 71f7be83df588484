//! Running the `aisec` binary from tests: a small builder (after ripgrep's
//! `tests/util.rs`) that sets a quiet, colourless environment, feeds stdin
//! when asked, and returns the exit code, both streams and the parsed JSON.

use std::io::Write;
use std::process::{Command, Stdio};

/// A fixture of `aisec-model` (the committed ONNX models and data).
pub fn fixture(name: &str) -> String {
    format!(
        "{}/../aisec-model/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A file of the bundled 8x8 digits data set (`x.npy`, `y.npy`).
pub fn digits(name: &str) -> String {
    fixture(&format!("digits/{name}"))
}

/// An `aisec` invocation being built.
pub struct Aisec {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

/// `aisec ARGS…`, with `NO_COLOR=1` and no inherited `AISEC_LOG`.
pub fn aisec<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Aisec {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aisec"));
    cmd.args(args).env("NO_COLOR", "1").env_remove("AISEC_LOG");
    Aisec { cmd, stdin: None }
}

impl Aisec {
    /// More arguments.
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: &[S]) -> Self {
        self.cmd.args(args);
        self
    }

    /// One more argument (a path, for example).
    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    /// An environment variable for the process.
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    /// Bytes to feed on standard input.
    pub fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// Starts the process (for tests that signal it) with piped output.
    pub fn spawn(mut self) -> std::process::Child {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start aisec")
    }

    /// Runs to the end; the raw process output.
    pub fn output(mut self) -> std::process::Output {
        self.cmd.stdin(Stdio::null()).output().expect("run aisec")
    }

    /// Runs to the end.
    pub fn run(mut self) -> Run {
        let out = match self.stdin.take() {
            None => self.cmd.stdin(Stdio::null()).output().expect("run aisec"),
            Some(bytes) => {
                let mut child = self
                    .cmd
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start aisec");
                let mut stdin = child.stdin.take().expect("stdin");
                let writer = std::thread::spawn(move || {
                    let _ = stdin.write_all(&bytes);
                });
                let out = child.wait_with_output().expect("run aisec");
                let _ = writer.join();
                out
            }
        };
        Run::from(out)
    }
}

/// What a finished `aisec` run gave.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Self {
        Self {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Standard output parsed as JSON; panics with both streams when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// Standard output parsed as JSON, or `Null` when it is not.
    pub fn json_or_null(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// Asserts the exit code, showing stderr when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code; stderr: {}\nstdout: {}",
            self.stderr,
            self.stdout
        );
        self
    }
}
