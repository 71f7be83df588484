//! Running the `aisec` binary from tests: a small builder (after ripgrep's
//! `tests/util.rs`) that sets a quiet, colourless environment, feeds stdin
//! when asked, and returns the exit code, both streams and the parsed JSON.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a run may take before it is killed and its test fails: a command
/// that starts serving by mistake fails one test instead of hanging the suite.
const TIMEOUT: Duration = Duration::from_secs(600);

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
    timeout: Duration,
}

/// `aisec ARGS…`, with `NO_COLOR=1` and no inherited `AISEC_LOG`.
pub fn aisec<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Aisec {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aisec"));
    cmd.args(args).env("NO_COLOR", "1").env_remove("AISEC_LOG");
    Aisec {
        cmd,
        stdin: None,
        timeout: TIMEOUT,
    }
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

    /// Kills the run (and fails the test) when it takes longer than this.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
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
    pub fn output(mut self) -> Output {
        let stdin = self.stdin.take();
        run_to_end(&mut self.cmd, stdin, self.timeout)
    }

    /// Runs to the end.
    pub fn run(self) -> Run {
        Run::from(self.output())
    }
}

/// Runs `cmd` with piped output (and `stdin` fed from a thread), polling for
/// its end; past `limit` the process is killed and the calling test panics.
fn run_to_end(cmd: &mut Command, stdin: Option<Vec<u8>>, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start aisec");
    let writer = stdin.map(|bytes| {
        let mut w = child.stdin.take().expect("stdin");
        std::thread::spawn(move || {
            let _ = w.write_all(&bytes);
        })
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for aisec") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let args: Vec<_> = cmd.get_args().collect();
            panic!("aisec {args:?} still running after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
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
