//! `aisec scan`: model artifacts in, findings out.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aisec_scan::{Config, ScanOptions, Scanner};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::output::OutputArgs;

/// Arguments of `aisec scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or directories to scan (directories recursively); `-` reads standard input; hf://ORG/NAME[@REV], s3://BUCKET/PREFIX and https:// URLs are read remotely.
    #[arg(required_unless_present = "from_list", value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Configuration file (TOML) with pickle allowlist changes and limits.
    #[arg(long, short = 'c', value_name = "FILE", env = "AISEC_CONFIG")]
    pub config: Option<PathBuf>,

    /// Allow an extra pickle global (`module.name` or `module.*`); repeatable.
    #[arg(long, value_name = "GLOBAL")]
    pub allow: Vec<String>,

    /// Enable an opt-in allowlist profile (e.g. `sklearn`); repeatable.
    #[arg(long, value_name = "NAME")]
    pub profile: Vec<String>,

    /// How many containers deep to follow (zip in zip...).
    #[arg(long, value_name = "N")]
    pub max_depth: Option<u32>,

    /// Follow symbolic links inside directories.
    #[arg(long)]
    pub follow_links: bool,

    /// Files scanned at once, -j/--jobs as in probe (default: one per core).
    #[arg(long, short = 'j', visible_alias = "jobs", value_name = "N")]
    pub threads: Option<usize>,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    /// Also verify OpenSSF model-signing signatures with this public key (PEM, P-256): every folder given that carries a model.sig is checked against it (see `aisec provenance verify`).
    #[arg(long, value_name = "PUBLIC_KEY", conflicts_with_all = ["verify_certificate_chain", "verify_trust_root"])]
    pub verify_signatures: Option<PathBuf>,

    /// Verify certificate-based signatures (`model_signing sign certificate`) instead: the bundle's chain must end at a root in these PEM files. Repeatable.
    #[arg(long, value_name = "PEM", conflicts_with = "verify_trust_root")]
    pub verify_certificate_chain: Vec<PathBuf>,

    /// Verify Sigstore keyless signatures instead, offline, against this trust root (trusted_root.json or model-signing's --trust_config JSON); needs --verify-identity and --verify-identity-provider.
    #[arg(long, value_name = "JSON")]
    pub verify_trust_root: Option<PathBuf>,

    /// The signer a keyless signature must name (e-mail or URI in its certificate).
    #[arg(long, value_name = "ID", requires = "verify_trust_root")]
    pub verify_identity: Option<String>,

    /// The OIDC issuer a keyless signature's certificate must name.
    #[arg(long, value_name = "URL", requires = "verify_trust_root")]
    pub verify_identity_provider: Option<String>,

    #[command(flatten)]
    pub remote: crate::cmd::remote::RemoteArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// The signature options of `aisec scan`, as its errors name them.
const SIGNATURE_FLAGS: crate::cmd::provenance::TrustFlags = crate::cmd::provenance::TrustFlags {
    public_key: "--verify-signatures",
    certificate_chain: "--verify-certificate-chain",
    trust_root: "--verify-trust-root",
    identity: "--verify-identity",
    identity_provider: "--verify-identity-provider",
};

/// Builds the scan options from the config file and flags.
pub fn options(args: &ScanArgs) -> anyhow::Result<ScanOptions> {
    let mut opts = ScanOptions::default();
    if let Some(path) = &args.config {
        let cfg = Config::load(path)?;
        cfg.apply(&mut opts, &path.display().to_string())?;
    }
    for p in &args.profile {
        opts.policy = std::mem::take(&mut opts.policy)
            .with_profile(p)
            .with_context(|| format!("--profile {p}"))?;
    }
    for a in &args.allow {
        opts.policy.allow(a);
    }
    if let Some(d) = args.max_depth {
        opts.max_depth = d;
    }
    opts.follow_links |= args.follow_links;
    Ok(opts)
}

/// Runs the scan and prints the report.
pub fn run(args: ScanArgs) -> anyhow::Result<i32> {
    // A wrong key or trust root is said before the scan, not after it.
    let given = crate::cmd::provenance::TrustInput {
        public_key: args.verify_signatures.as_deref(),
        certificate_chain: &args.verify_certificate_chain,
        trust_root: args.verify_trust_root.as_deref(),
        identity: args.verify_identity.as_deref(),
        identity_provider: args.verify_identity_provider.as_deref(),
    };
    let trust = given.load(&SIGNATURE_FLAGS)?;
    if args.remote.active(&args.paths) {
        anyhow::ensure!(
            trust.is_none(),
            "scan verifies signatures of local folders only: for hf:// or s3:// sources run \
             `aisec provenance verify SOURCE` with the same key or trust root"
        );
        return crate::cmd::remote::run(args);
    }
    let opts = options(&args)?;
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .context("cannot start worker threads")?;
    }
    let scanner = Scanner::new(opts);
    let progress = if crate::run::show_progress(args.no_progress) {
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {pos} files, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(Duration::from_millis(120));
        Some(pb)
    } else {
        None
    };
    // --format jsonl: each file's findings as soon as the file is done.
    let stream = crate::output::JsonlStream::start(&args.output)?;
    let partial = Arc::new(Partial::default());
    let watcher = partial.watch(args.output.clone());
    let bytes = AtomicU64::new(0);
    let report = scanner.scan_paths(&args.paths, &|r| {
        if let Some(s) = &stream {
            s.findings(&r.findings);
        }
        partial.add(r);
        let total = bytes.fetch_add(r.bytes, Ordering::Relaxed) + r.bytes;
        if let Some(pb) = &progress {
            pb.inc(1);
            pb.set_message(format!("{:.1} MB", total as f64 / 1e6));
        }
    });
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    partial.done(watcher);
    let mut report = report;
    if let Some(trust) = &trust {
        crate::cmd::provenance::verify_for_scan(&mut report, &args.paths, trust);
        // The signature findings count in the summary the tail prints.
        report.finish();
    }
    let unreadable = !report.errors.is_empty();
    let scanned = report.data.get("scanned").and_then(|v| v.as_u64());
    // Nothing aisec can read was found: not a clean result.
    if scanned == Some(0) && report.findings.is_empty() && !unreadable {
        let n = report.summary.items;
        report
            .data
            .insert("failed".into(), serde_json::Value::Bool(true));
        report
            .data
            .insert("outcome".into(), serde_json::json!("nothing-scannable"));
        report.error(
            "scan",
            format!(
                "nothing scannable: none of the {n} file(s) is a model format aisec reads (see skipped)"
            ),
        );
    }
    let tail = file_summary(&report);
    let code = crate::run::finish_with_tail(report, &args.output, &tail)?;
    // Inputs that could not be read make the run an error (2) unless
    // findings already fail it.
    if code == 0 && unreadable {
        return Ok(crate::run::FAILED);
    }
    Ok(code)
}

/// A finished file: its path, findings and read error.
type DoneFile = (String, Vec<aisec_core::Finding>, Option<String>);

/// What a scan has done so far, for the partial report Ctrl-C writes
/// (`aisec_scan` runs its files to the end; the CLI does not wait for
/// them): the findings and errors of every finished file.
#[derive(Default)]
struct Partial {
    files: Mutex<Vec<DoneFile>>,
    /// Set by whichever of the scan (finished) and the watcher (Ctrl-C)
    /// writes the report first.
    claimed: AtomicBool,
}

impl Partial {
    fn add(&self, r: &aisec_scan::FileResult) {
        self.files.lock().unwrap_or_else(|e| e.into_inner()).push((
            r.path.clone(),
            r.findings.clone(),
            r.error.clone(),
        ));
    }

    /// On Ctrl-C: writes the report of the files finished so far, marked
    /// incomplete, and exits 130 (see [`crate::run`]).
    fn watch(self: &Arc<Self>, out: crate::output::OutputArgs) -> std::thread::JoinHandle<()> {
        let cancel = crate::run::cancel();
        let me = self.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(50));
            if me.claimed.load(Ordering::SeqCst) {
                return;
            }
            if !cancel.is_cancelled() || me.claimed.swap(true, Ordering::SeqCst) {
                continue;
            }
            let mut report = aisec_core::Report::new("scan");
            report.add_rules(&aisec_scan::all_rules());
            for (path, findings, error) in
                me.files.lock().unwrap_or_else(|e| e.into_inner()).drain(..)
            {
                report.summary.items += 1;
                if let Some(e) = error {
                    report.error(path, e);
                }
                report.extend(findings);
            }
            let code = crate::run::finish(report, &out).unwrap_or(crate::run::INTERRUPTED);
            std::process::exit(code);
        })
    }

    /// The scan finished: unless Ctrl-C's report is being written (the
    /// process then ends there), the scan's own report follows.
    fn done(&self, watcher: std::thread::JoinHandle<()>) {
        if self.claimed.swap(true, Ordering::SeqCst) {
            let _ = watcher.join();
            // The watcher exits the process; never reached.
            std::process::exit(crate::run::INTERRUPTED);
        }
        let _ = watcher.join();
    }
}

/// The end-of-run summary in text output: files scanned (by format),
/// files skipped (named, the first 20), findings by severity.
fn file_summary(report: &aisec_core::Report) -> String {
    let scanned = report
        .data
        .get("scanned")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let skipped = report.data.get("skipped");
    let n_skipped = skipped.and_then(|s| s["count"].as_u64()).unwrap_or(0);
    let mut formats: Vec<String> = report
        .data
        .get("formats")
        .and_then(|f| f.as_object())
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.as_str() != "unknown")
                .map(|(k, v)| format!("{} {k}", v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    formats.sort();
    let mut s = format!("Files: {scanned} scanned");
    if !formats.is_empty() {
        s.push_str(&format!(" ({})", formats.join(", ")));
    }
    s.push_str(&format!(
        ", {n_skipped} skipped, {} unreadable\n",
        report.errors.iter().filter(|e| e.subject != "scan").count()
    ));
    if let Some(files) = skipped.and_then(|s| s["files"].as_array()) {
        for f in files.iter().take(20).filter_map(|f| f.as_str()) {
            s.push_str(&format!("  skipped {f} (not a model format aisec reads)\n"));
        }
        if n_skipped > 20 {
            s.push_str(&format!(
                "  ... and {} more (all named in --format json)\n",
                n_skipped - 20
            ));
        }
    }
    if let Some(checked) = report.data.get("provenance").and_then(|p| p.as_array()) {
        s.push_str(&signature_summary(checked));
    }
    let sev: Vec<String> = report
        .summary
        .by_severity
        .iter()
        .rev()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    s.push_str(&format!(
        "Findings: {}\n",
        if sev.is_empty() {
            "none".to_string()
        } else {
            sev.join(", ")
        }
    ));
    s
}

/// The signature lines of the text summary (`--verify-signatures` and
/// friends): per folder checked, whether the signature held, how many files
/// it covers and who signed when a certificate names them.
fn signature_summary(checked: &[serde_json::Value]) -> String {
    if checked.is_empty() {
        return "Signatures: no folder given carries a model.sig\n".to_string();
    }
    let mut s = String::new();
    for c in checked {
        let folder = c["folder"].as_str().unwrap_or("?");
        let signer = &c["signer"];
        let by = signer["identity"]
            .as_str()
            .or_else(|| signer["subject"].as_str())
            .map(|who| format!(", signed by {who}"))
            .unwrap_or_default();
        let n = c["findings"].as_u64().unwrap_or(0);
        s.push_str(&if c["signature_valid"].as_bool() == Some(true) {
            format!(
                "Signature: {folder}: valid, {} signed file(s){by}, {n} finding(s)\n",
                c["signed_files"].as_u64().unwrap_or(0)
            )
        } else {
            format!("Signature: {folder}: NOT valid ({n} finding(s))\n")
        });
    }
    s
}
