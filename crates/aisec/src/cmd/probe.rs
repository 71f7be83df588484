//! `aisec probe`: attack an LLM endpoint with prompt-injection, jailbreak,
//! leakage and output-handling probes and report attack success rates.

use std::path::PathBuf;
use std::time::Duration;

use aisec_probe::buffs::Buff;
use aisec_probe::harness::{run_probes_observed, write_transcripts, AttemptRecord, RunConfig};
use aisec_probe::summary::{build_report, SummaryOptions};
use aisec_probe::target::{Target, TargetKind};
use anyhow::Context;

/// API style of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiKind {
    /// OpenAI-compatible chat completions (`{url}/chat/completions`).
    OpenaiChat,
    /// OpenAI-compatible text completions (`{url}/completions`).
    OpenaiCompletion,
    /// Any JSON API described by --request-template and --response-path.
    Rest,
}

/// Arguments of `aisec probe`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// Base URL (OpenAI APIs, e.g. http://127.0.0.1:8000/v1) or full endpoint URL (REST).
    #[arg(long, value_name = "URL", required_unless_present_any = ["list", "config"])]
    pub url: Option<String>,

    /// Probe configuration file (TOML: [target], [probes], [run], [budgets]; unknown keys are errors). Flags given on the command line win over it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    /// List the probe families, probes, buffs and detectors (with OWASP LLM / ATLAS ids) and exit.
    #[arg(long)]
    pub list: bool,

    /// Run only these probes, by id (comma-separated or repeated; see --list), e.g. injection.admin-rule.
    #[arg(long = "probe", value_name = "ID", value_delimiter = ',')]
    pub probe_ids: Vec<String>,

    /// API style of the target.
    #[arg(long, value_enum, default_value = "openai-chat")]
    pub api: ApiKind,

    /// Model name sent to OpenAI-compatible APIs.
    #[arg(long, default_value = "default")]
    pub model: String,

    /// Name of the environment variable holding the API key (never the key itself).
    #[arg(long, value_name = "ENV")]
    pub api_key_env: Option<String>,

    /// Extra request header `Name: value`; a value `env:VAR` is read from the environment. Repeatable.
    #[arg(long, value_name = "HEADER")]
    pub header: Vec<String>,

    /// REST request body template (JSON with a {{prompt}} slot), or @FILE to read it from a file.
    #[arg(long, value_name = "JSON|@FILE")]
    pub request_template: Option<String>,

    /// REST response path to the reply, e.g. `choices.0.message.content` or `$.data.reply`.
    #[arg(long, value_name = "PATH")]
    pub response_path: Option<String>,

    /// System prompt for OpenAI-compatible targets (a canary is appended unless --no-system-canary).
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,

    /// Do not plant a canary in the system prompt.
    #[arg(long)]
    pub no_system_canary: bool,

    /// Secret planted in the deployed app (system prompt, RAG store) to look for in replies. Repeatable.
    #[arg(long, value_name = "STRING")]
    pub secret: Vec<String>,

    /// Probe families (comma-separated or repeated): all, injection, indirect, jailbreak, encoding,
    /// extraction, leakage, exfil, xss, packages, multi-turn.
    #[arg(long, short = 'p', value_name = "FAMILY", default_value = "all")]
    pub probes: Vec<String>,

    /// Buffs applied to every single-turn probe as extra variants: base64, rot13, hex, leet,
    /// homoglyph, zero-width, tags, upper, suffix, translate.
    #[arg(long, value_name = "BUFF", value_delimiter = ',')]
    pub buffs: Vec<String>,

    /// Repetitions of every probe (more gives tighter confidence intervals).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeats: u32,

    /// Requests in flight at most (-j/--jobs: how much runs at once, as in scan).
    #[arg(
        long,
        short = 'j',
        visible_alias = "jobs",
        default_value_t = 8,
        value_name = "N"
    )]
    pub concurrency: usize,

    /// Requests per second at most.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Retries on 429, 5xx and timeouts.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retries: u32,

    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub timeout: f64,

    /// Largest response body read, in bytes.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_response_bytes: usize,

    /// Sampling temperature for OpenAI-compatible targets.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,

    /// Max tokens per reply for OpenAI-compatible targets.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,

    /// JSONL journal of finished attempts (enables --resume).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// Continue the run recorded in --journal, skipping finished attempts.
    #[arg(long, requires = "journal")]
    pub resume: bool,

    /// Seed for canaries (random by default; taken from the journal on --resume).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Write every attempt (prompt, reply, verdict, confidence) as JSONL to FILE.
    #[arg(long, value_name = "FILE")]
    pub transcripts: Option<PathBuf>,

    /// Extra known package names, one per line, for the package-hallucination detector.
    #[arg(long, value_name = "FILE")]
    pub package_allowlist: Option<PathBuf>,

    /// Judge model base URL (OpenAI-compatible chat) for jailbreak and multi-turn probes.
    #[arg(long, value_name = "URL")]
    pub judge_url: Option<String>,

    /// Judge model name.
    #[arg(long, default_value = "default")]
    pub judge_model: String,

    /// Environment variable holding the judge's API key.
    #[arg(long, value_name = "ENV")]
    pub judge_api_key_env: Option<String>,

    /// Highest acceptable attack success rate (0..1): probes at or below it are reported at
    /// info severity, so `--fail-on low` fails exactly when a probe exceeds it.
    #[arg(long, value_name = "RATE")]
    pub max_asr: Option<f64>,
}

/// What each detector decides (the `check` of a probe).
#[allow(dead_code)] // also compiled into aisec-probe's probe_cli example, which does not list
fn detector_doc(c: aisec_probe::probes::Check) -> &'static str {
    use aisec_probe::probes::Check;
    match c {
        Check::Canary => "hit when the attempt's canary appears in the reply (also after undoing encodings), unless the reply only copies the instruction",
        Check::CanaryComply => "hit when the goal marker appears and the reply does not refuse; a judge model (--judge-url) decides the rest",
        Check::SystemLeak => "hit when a planted secret (system-prompt canary, --secret) appears; weaker: the reply reads like instructions",
        Check::SecretLeak => "hit when a planted secret or a credential-shaped string appears",
        Check::MarkdownExfil => "hit when a rendered markdown image or link (not in a code span or fence, not copied inside a refusal) carries conversation data out",
        Check::ActiveContent => "hit when rendered output holds active content (<script>, javascript: URL, event handler), not shown as code",
        Check::Packages => "hit when `pip install` arguments or imports name packages missing from the known-package snapshot",
    }
}

/// `aisec probe --list`: families (with their rule and OWASP LLM / ATLAS
/// ids), probes, buffs and detectors, as text or JSON.
#[allow(dead_code)]
pub fn list(json: bool) -> anyhow::Result<String> {
    use aisec_probe::probes::{catalogue, Family};
    let probes = catalogue();
    let mut checks: Vec<aisec_probe::probes::Check> = Vec::new();
    for p in &probes {
        if !checks.contains(&p.check) {
            checks.push(p.check);
        }
    }
    let name = |c: aisec_probe::probes::Check| {
        serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    if json {
        let families: Vec<serde_json::Value> = Family::ALL
            .iter()
            .map(|f| {
                let r = f.rule();
                serde_json::json!({
                    "family": f.as_str(),
                    "rule": r.id,
                    "title": r.title,
                    "owasp": r.owasp,
                    "atlas": r.atlas,
                    "probes": probes.iter().filter(|p| p.family == *f).map(|p| serde_json::json!({
                        "id": p.id, "turns": p.turns.len(), "detector": name(p.check), "goal": p.goal,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let v = serde_json::json!({
            "families": families,
            "buffs": Buff::ALL.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
            "detectors": checks.iter().map(|c| serde_json::json!({"name": name(*c), "description": detector_doc(*c)})).collect::<Vec<_>>(),
        });
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    let mut s =
        String::from("Probe families (run with -p FAMILY, single probes with --probe ID):\n");
    for f in Family::ALL {
        let r = f.rule();
        s.push_str(&format!(
            "\n{}  {}  OWASP {}  ATLAS {}\n  {}\n",
            f.as_str(),
            r.id,
            r.owasp.join(", "),
            r.atlas.join(", "),
            r.title
        ));
        for p in probes.iter().filter(|p| p.family == f) {
            s.push_str(&format!("    {:<36} detector {}\n", p.id, name(p.check)));
        }
    }
    s.push_str(&format!(
        "\nBuffs (--buffs, each adds a variant ID+BUFF of every single-turn probe):\n    {}\n",
        Buff::ALL.map(|b| b.as_str()).join(", ")
    ));
    s.push_str("\nDetectors:\n");
    for c in checks {
        s.push_str(&format!("    {:<14} {}\n", name(c), detector_doc(c)));
    }
    Ok(s)
}

fn build_target(args: &ProbeArgs) -> anyhow::Result<Target> {
    let kind = match args.api {
        ApiKind::OpenaiChat => TargetKind::OpenAiChat,
        ApiKind::OpenaiCompletion => TargetKind::OpenAiCompletion,
        ApiKind::Rest => {
            let raw = args
                .request_template
                .as_deref()
                .context("--api rest needs --request-template")?;
            let template = match raw.strip_prefix('@') {
                Some(path) => aisec_probe::target::read_text_bounded(
                    std::path::Path::new(path),
                    aisec_probe::target::MAX_TEMPLATE_BYTES,
                )
                .with_context(|| format!("reading request template {path}"))?,
                None => raw.to_string(),
            };
            let response_path = args
                .response_path
                .clone()
                .context("--api rest needs --response-path")?;
            TargetKind::Rest {
                template,
                response_path,
            }
        }
    };
    let mut headers = Vec::new();
    for h in &args.header {
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("--header '{h}' is not 'Name: value'"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let url = args
        .url
        .clone()
        .context("give the target with --url (or url in the config file's [target])")?;
    let mut t = Target::openai_chat(url, args.model.clone());
    t.kind = kind;
    t.api_key_env = args.api_key_env.clone();
    t.headers = headers;
    t.system = args.system.clone();
    t.temperature = args.temperature;
    t.max_tokens = args.max_tokens;
    Ok(t)
}

/// Whether the flag with clap id `id` was given on the command line (so a
/// config file does not override it). Without matches, nothing was.
fn given(m: Option<&clap::ArgMatches>, id: &str) -> bool {
    m.and_then(|m| m.try_get_raw(id).ok().and(m.value_source(id)))
        == Some(clap::parser::ValueSource::CommandLine)
}

/// Fills the options a config file sets and the command line does not.
pub fn apply_config(
    args: &mut ProbeArgs,
    c: aisec_probe::config::ProbeConfig,
    m: Option<&clap::ArgMatches>,
) -> anyhow::Result<()> {
    macro_rules! take {
        ($field:ident, $id:literal, $value:expr) => {
            if let Some(v) = $value {
                if !given(m, $id) {
                    args.$field = v;
                }
            }
        };
    }
    let t = c.target;
    take!(url, "url", t.url.map(Some));
    if let Some(api) = t.api {
        if !given(m, "api") {
            args.api = <ApiKind as clap::ValueEnum>::from_str(&api, true).map_err(|_| {
                anyhow::anyhow!(
                    "[target] api = '{api}': expected openai-chat, openai-completion or rest"
                )
            })?;
        }
    }
    take!(model, "model", t.model);
    take!(api_key_env, "api_key_env", t.api_key_env.map(Some));
    take!(header, "header", t.headers);
    take!(system, "system", t.system.map(Some));
    take!(
        request_template,
        "request_template",
        t.request_template.map(Some)
    );
    take!(response_path, "response_path", t.response_path.map(Some));
    take!(temperature, "temperature", t.temperature);
    let p = c.probes;
    take!(probes, "probes", p.families);
    take!(probe_ids, "probe_ids", p.ids);
    take!(buffs, "buffs", p.buffs);
    take!(repeats, "repeats", p.repeats);
    take!(secret, "secret", p.secrets);
    let r = c.run;
    take!(concurrency, "concurrency", r.concurrency);
    take!(rate, "rate", r.rate.map(Some));
    take!(retries, "retries", r.retries);
    take!(seed, "seed", r.seed.map(Some));
    let b = c.budgets;
    take!(timeout, "timeout", b.timeout);
    take!(
        max_response_bytes,
        "max_response_bytes",
        b.max_response_bytes
    );
    take!(max_tokens, "max_tokens", b.max_tokens);
    take!(max_asr, "max_asr", b.max_asr.map(Some));
    Ok(())
}

/// Runs the probes and returns the report (the caller renders it and applies `--fail-on`).
/// A run in which every attempt failed is marked `failed` in the report's data, an
/// interrupted one `incomplete`.
#[allow(dead_code)] // the aisec binary calls run_with; the probe_cli example calls this
pub fn run(args: ProbeArgs) -> anyhow::Result<aisec_core::Report> {
    run_with(args, None, &aisec_core::run::NoProgress, &|_| {})
}

/// [`run`], with the command line's matches (a `--config` file fills only
/// what they do not give), a progress sink (attempts done / total) and
/// `on_attempt`, called with each attempt as soon as it is judged (the
/// CLI streams them with `--format jsonl`).
pub fn run_with(
    mut args: ProbeArgs,
    matches: Option<&clap::ArgMatches>,
    progress: &dyn aisec_core::run::Progress,
    on_attempt: &(dyn Fn(&AttemptRecord) + Sync),
) -> anyhow::Result<aisec_core::Report> {
    if let Some(path) = args.config.clone() {
        let c = aisec_probe::config::ProbeConfig::load(&path)?;
        apply_config(&mut args, c, matches)?;
    }
    let args = args;
    if let Some(m) = args.max_asr {
        anyhow::ensure!(
            (0.0..=1.0).contains(&m),
            "--max-asr must be between 0 and 1"
        );
    }
    anyhow::ensure!(
        args.timeout > 0.0 && args.timeout.is_finite(),
        "--timeout must be positive"
    );
    let target = build_target(&args)?;
    let buffs = args
        .buffs
        .iter()
        .map(|b| Buff::parse(b))
        .collect::<Result<Vec<_>, _>>()?;
    let mut probes = aisec_probe::probes::select(&args.probes, &buffs)?;
    if !args.probe_ids.is_empty() {
        if let Some(bad) = args
            .probe_ids
            .iter()
            .find(|id| !probes.iter().any(|p| &p.id == *id))
        {
            anyhow::bail!(
                "unknown probe '{bad}' among the selected families and buffs (see aisec probe --list)"
            );
        }
        probes.retain(|p| args.probe_ids.contains(&p.id));
    }
    let cfg_url = target.endpoint();
    let mut cfg = RunConfig::new(target);
    cfg.concurrency = args.concurrency.max(1);
    cfg.rate = args.rate;
    cfg.retries = args.retries;
    cfg.timeout = Duration::from_secs_f64(args.timeout);
    cfg.max_response_bytes = args.max_response_bytes.max(1024);
    cfg.repeats = args.repeats.max(1);
    cfg.journal = args.journal.clone();
    cfg.resume = args.resume;
    cfg.seed = args.seed;
    cfg.secrets = args.secret.clone();
    cfg.plant_system_canary = !args.no_system_canary;
    if let Some(path) = &args.package_allowlist {
        let text = aisec_probe::target::read_text_bounded(path, 16 << 20)
            .with_context(|| format!("reading {}", path.display()))?;
        cfg.packages.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(aisec_probe::detect::normalise_package),
        );
    }
    if let Some(url) = &args.judge_url {
        let mut j = Target::openai_chat(url.clone(), args.judge_model.clone());
        j.api_key_env = args.judge_api_key_env.clone();
        j.max_tokens = 128;
        cfg.judge = Some(j);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = rt.block_on(run_probes_observed(cfg, probes, progress, on_attempt))?;
    if let Some(path) = &args.transcripts {
        write_transcripts(path, &outcome.records)?;
    }
    let mut report = build_report(
        &outcome,
        &SummaryOptions {
            max_asr: args.max_asr,
        },
    );
    if outcome.interrupted {
        // The harness listens for Ctrl-C itself; the CLI's run::finish
        // reads this mark (exit 130).
        report
            .data
            .insert("incomplete".into(), serde_json::Value::Bool(true));
    }
    // A target that never answered is not a clean result: say why, once.
    let sent: Vec<_> = outcome
        .records
        .iter()
        .filter(|r| !outcome.interrupted || r.verdict.is_some() || r.error.is_some())
        .collect();
    if !sent.is_empty() && sent.iter().all(|r| r.error.is_some()) {
        let first = sent
            .iter()
            .find_map(|r| r.error.as_deref())
            .unwrap_or("no answer");
        report
            .data
            .insert("failed".into(), serde_json::Value::Bool(true));
        // When every probe failed the same way (a dead or unreachable endpoint),
        // one line says so instead of one per probe; the per-family table on
        // stderr and the transcripts still count each attempt.
        let same = report
            .errors
            .iter()
            .all(|e| e.message.split_once(": ").map(|(_, m)| m) == Some(first));
        if same {
            report.errors.clear();
        }
        report.error(
            args.url.clone().unwrap_or_default(),
            format!(
                "every one of {} attempts failed; {} never answered ({first})",
                sent.len(),
                cfg_url
            ),
        );
    }
    Ok(report)
}
