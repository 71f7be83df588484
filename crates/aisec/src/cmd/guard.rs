//! `aisec guard`: run the runtime gateway in front of a model server.
//!
//! Loads and validates a TOML policy (or builds a default one for
//! `--upstream`), serves until Ctrl-C or SIGTERM, then shuts down
//! gracefully, letting in-flight requests finish. SIGHUP (and, unless
//! `--watch-ms 0`, a change of the policy file) reloads the policy; an
//! invalid new policy is logged and the old one stays. The audit log is
//! JSON on stderr, and so are the start and shutdown lines.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aisec_guard::audit::{AuditLevel, AuditLog};
use aisec_guard::{Policy, StartOptions};

/// Arguments of `aisec guard`.
#[derive(Debug, clap::Args)]
pub struct GuardArgs {
    /// Policy file (TOML); see crates/aisec-guard/policy.example.toml.
    #[arg(long, short = 'p', value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Model server base URL (e.g. http://127.0.0.1:8000); overrides the policy's server.upstream.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,

    /// Address to listen on; overrides the policy's server.listen.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Validate the policy (and load the classifier file it names and the second stage, built in and on unless the policy turns it off), print the result and exit (2: invalid).
    #[arg(long)]
    pub check: bool,

    /// Poll the policy file for changes every this many milliseconds (0: reload on SIGHUP only).
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub watch_ms: u64,
}

/// Runs `aisec guard`. Returns the process exit code (2 for an invalid policy).
pub fn run(args: GuardArgs) -> anyhow::Result<i32> {
    let invalid = |e: aisec_guard::PolicyError| {
        eprintln!(
            "aisec guard: invalid policy: {}",
            aisec_core::render::escape_terminal(&e.to_string())
        );
        Ok(2)
    };
    let mut policy = match (&args.policy, &args.upstream) {
        (Some(path), _) => match Policy::load(path) {
            Ok(p) => p,
            Err(e) => return invalid(e),
        },
        (None, Some(up)) => Policy::default_for(up),
        (None, None) => anyhow::bail!("give --policy FILE or --upstream URL"),
    };
    if let Some(up) = &args.upstream {
        // the override is checked like the file's own value (a bad URL would
        // otherwise start a guard that answers every request 502)
        policy.server.upstream = up.clone();
        if let Err(e) = policy.validate() {
            return invalid(e);
        }
    }
    if args.check {
        let loaded = policy.input.injection.loaded_model.as_ref();
        match &policy.input.injection.model {
            Some(m) => println!(
                "policy OK (upstream {}; classifier {}{})",
                policy.server.upstream,
                aisec_core::render::escape_terminal(&m.display().to_string()),
                loaded.map_or(String::new(), |l| format!(": {}", l.classifier.describe()))
            ),
            None => println!("policy OK (upstream {})", policy.server.upstream),
        }
        // The second stage loads when the guard starts, and a guard whose
        // stage fails to load runs without it: --check says which.
        let st = &policy.input.second_stage;
        if let Some(loaded) = st.load() {
            let encoder = st.model_dir.as_ref().map_or_else(
                || "built in".to_string(),
                |d| aisec_core::render::escape_terminal(&d.display().to_string()).to_string(),
            );
            match loaded {
                Ok(s) => {
                    let h = s.head();
                    println!(
                        "second stage OK (encoder {encoder}{}; band [{}, {}), threshold {}{}{}{})",
                        h.encoder_top.as_deref().map_or(String::new(), |t| format!(
                            " with fine-tuned weights {}",
                            aisec_core::render::escape_terminal(t)
                        )),
                        h.band_low,
                        h.band_high,
                        h.threshold,
                        if h.fast_weight != 0.0 {
                            format!(" with the fast score weighed in ({:.2})", h.fast_weight)
                        } else {
                            String::new()
                        },
                        if s.has_indirect() {
                            "; indirect head for tool content"
                        } else {
                            ""
                        },
                        h.script_route.as_ref().map_or(String::new(), |r| format!(
                            "; texts at least {:.0} % outside the Latin script routed to the encoder{}, blocked from {}",
                            r.min_share * 100.0,
                            if r.weights.is_some() { " (a head of its own)" } else { "" },
                            r.threshold
                        ))
                    );
                    if let (aisec_guard::policy::Scope::All, Some(a)) = (st.scope, &h.all_texts) {
                        println!(
                            "second stage scope all: every request text read by the encoder, blocked from {} \
                             (an encoder pass per request text)",
                            a.threshold
                        );
                    }
                }
                Err(e) => {
                    eprintln!(
                        "aisec guard: the second stage does not load (the guard would run without it): {}",
                        aisec_core::render::escape_terminal(&e.to_string())
                    );
                    return Ok(2);
                }
            }
        } else {
            println!("second stage off (input.second_stage.enabled = false): fast classifier and rules only");
        }
        return Ok(0);
    }
    aisec_guard::init_json_logging();
    let opts = StartOptions {
        listen: args.listen,
        policy_path: args.policy.clone(),
        watch: (args.watch_ms > 0 && args.policy.is_some())
            .then(|| Duration::from_millis(args.watch_ms)),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let guard = aisec_guard::start(policy, opts).await?;
        // The handlers are in place before "listening" is said: a Ctrl-C
        // sent the moment a supervisor reads that line is a clean shutdown,
        // not the default action of the signal (exit by SIGINT).
        let stop = ShutdownSignal::install();
        // In the audit log's own line format: stderr is its default sink,
        // and it stays JSON lines from the first line to the last.
        let say = AuditLog::stderr(AuditLevel::All);
        say.write(
            "listening",
            serde_json::json!({ "url": format!("http://{}", guard.addr) }),
        );
        stop.recv().await;
        say.write(
            "shutdown",
            serde_json::json!({ "message": "finishing in-flight requests" }),
        );
        guard.shutdown().await?;
        Ok::<i32, anyhow::Error>(0)
    })
}

/// SIGINT (Ctrl-C) or SIGTERM, registered when made (`tokio::signal::ctrl_c`
/// only registers when first polled, which would leave a window after start-up
/// in which Ctrl-C kills the process instead of stopping it).
struct ShutdownSignal {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignal {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            Self { signals }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn recv(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
