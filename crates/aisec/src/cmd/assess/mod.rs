//! `aisec assess`: from a system description (`aisec.toml`) to a threat
//! model (`--plan`), the checks that apply, threat statuses from their
//! measurements, and a report a security lead can hand on (`--html`), with
//! Threat Dragon export/import, an ATLAS Navigator layer, baselines for CI
//! and a resumable run state. The domain logic lives in `aisec-assess`;
//! this module runs the checks (`checks.rs`) and writes the files.

mod checks;
mod llmapp;
mod mlflow;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aisec_assess::baseline::Baseline;
use aisec_assess::html::Assessment;
use aisec_assess::state::RunState;
use aisec_assess::status::{self, AssessedThreat, CheckResult, Outcome, Status};
use aisec_assess::system::read_bounded;
use aisec_assess::threats::Level;
use aisec_assess::{CheckKind, CheckRef, SystemDescription, ThreatModel};
use aisec_core::{Location, Report, Severity};
use anyhow::{bail, Context};

use crate::output::OutputArgs;

/// Arguments of `aisec assess`.
#[derive(Debug, clap::Args)]
pub struct AssessArgs {
    /// The system description (aisec.toml; see docs/assess.md).
    #[arg(value_name = "SYSTEM.toml", required_unless_present = "import")]
    pub system: Option<PathBuf>,

    /// Print the threat model (STRIDE x ATLAS x OWASP LLM per component and flow, with the check or manual control for each) and run nothing.
    #[arg(long)]
    pub plan: bool,

    /// Write the threat model as an OWASP Threat Dragon v2 JSON model (with statuses after a run).
    #[arg(long, value_name = "FILE")]
    pub threat_dragon: Option<PathBuf>,

    /// Read a Threat Dragon v2 model and print a description skeleton (TOML) with its threats listed.
    #[arg(long, value_name = "TD.json", conflicts_with_all = ["plan", "system"])]
    pub import: Option<PathBuf>,

    /// Write the HTML report (self-contained: inline SVG/PNG, no scripts) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Write an ATLAS Navigator layer of the findings to FILE.
    #[arg(long, value_name = "FILE")]
    pub navigator: Option<PathBuf>,

    /// Run only these checks (comma-separated kinds: scan, evasion, membership, extraction, inversion, probe, guard-replay, fairness, poison-data, backdoor, explain).
    #[arg(long, value_delimiter = ',', value_name = "CHECK,...")]
    pub only: Vec<String>,

    /// Resume state: finished checks are saved here after each one and not run again (default: .aisec-assess-state.json beside the description).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Ignore (and overwrite) a saved state: run every check again.
    #[arg(long)]
    pub fresh: bool,

    /// A baseline from an earlier assessment: the report says what changed, and only findings not in it count for --fail-on.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Write this assessment's baseline to FILE (for the next run's --baseline).
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,

    /// Log every metric, parameter and the report files of the run to this MLflow tracking server (REST API).
    #[arg(long, value_name = "URL")]
    pub mlflow: Option<String>,

    /// MLflow experiment for --mlflow (created when missing).
    #[arg(long, value_name = "NAME", default_value = "aisec-assess")]
    pub mlflow_experiment: String,

    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `aisec assess`.
pub fn run(a: AssessArgs) -> anyhow::Result<i32> {
    if let Some(td) = &a.import {
        return import(td, &a.output);
    }
    let Some(path) = &a.system else {
        bail!("give a system description (SYSTEM.toml) or --import TD.json")
    };
    let text = read_bounded(path, aisec_assess::system::MAX_DESCRIPTION_BYTES)?;
    let desc = SystemDescription::parse(&text).with_context(|| path.display().to_string())?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let model = aisec_assess::plan(&desc);
    if a.plan {
        return plan(&desc, &model, &a);
    }
    let kinds = a
        .only
        .iter()
        .map(|s| parse_kind(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let wanted: Vec<CheckRef> = model
        .checks
        .iter()
        .filter(|c| kinds.is_empty() || kinds.contains(&c.kind))
        .cloned()
        .collect();
    let state_path = a
        .state
        .clone()
        .unwrap_or_else(|| base.join(".aisec-assess-state.json"));
    let state = if a.fresh {
        None
    } else {
        RunState::load(&state_path, &text)?
    }
    .unwrap_or_else(|| RunState::new(&text));
    let done: Vec<CheckResult> = state
        .results
        .iter()
        .filter(|r| wanted.contains(&r.check))
        .cloned()
        .collect();
    let pending: Vec<CheckRef> = wanted
        .iter()
        .filter(|c| !done.iter().any(|r| &r.check == *c))
        .cloned()
        .collect();
    if !done.is_empty() {
        crate::run::note(format_args!(
            "aisec assess: resuming: {} of {} checks already finished (state {}; --fresh to run them again).",
            done.len(),
            wanted.len(),
            state_path.display()
        ));
    }
    let env = checks::Env {
        desc: &desc,
        base: &base,
    };
    let ctx = crate::run::context(a.no_progress);
    ctx.progress.phase("assess", Some(pending.len() as u64));
    let results = Arc::new(Mutex::new(done));
    let state_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    {
        let state = Arc::new(Mutex::new(state));
        let record = |r: CheckResult| {
            ctx.progress.advance(1);
            if let Ok(mut s) = state.lock() {
                s.record(&r);
                if let Err(e) = s.save(&state_path) {
                    if let Ok(mut se) = state_error.lock() {
                        *se = Some(e.to_string());
                    }
                }
            }
            if let Ok(mut v) = results.lock() {
                v.push(r);
            }
        };
        let run_list = |list: Vec<CheckRef>| {
            for c in list {
                if crate::run::cancel().is_cancelled() {
                    break;
                }
                ctx.progress.message(&c.key());
                let r = checks::run(&c, &env);
                record(normalise(r, &base, &desc));
            }
        };
        // Network checks (probes, the gateway replay) wait on sockets; the
        // model checks keep the CPUs busy (and parallelise inside). The two
        // groups run side by side unless the budget asks for one job.
        let (net, cpu): (Vec<CheckRef>, Vec<CheckRef>) = pending
            .into_iter()
            .partition(|c| matches!(c.kind, CheckKind::Probe | CheckKind::GuardReplay));
        if desc.budget.jobs == 1 {
            run_list(cpu);
            run_list(net);
        } else {
            std::thread::scope(|s| {
                s.spawn(|| run_list(net));
                run_list(cpu);
            });
        }
    }
    ctx.progress.finish();
    if let Ok(Some(e)) = state_error.lock().map(|g| g.clone()) {
        crate::run::note(format_args!(
            "aisec assess: warning: cannot save the resume state: {e}"
        ));
    }
    let mut results = Arc::try_unwrap(results)
        .map_err(|_| anyhow::anyhow!("internal: results still shared"))?
        .into_inner()
        .map_err(|_| anyhow::anyhow!("internal: a check panicked"))?;
    results.sort_by(|x, y| x.check.cmp(&y.check));
    report(&desc, &model, results, &a)
}

fn parse_kind(s: &str) -> anyhow::Result<CheckKind> {
    CheckKind::parse(s).with_context(|| {
        let names: Vec<&str> = CheckKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown check '{s}' ({})", names.join(", "))
    })
}

/// Finding locations independent of where the run happened: paths
/// relative to the description's folder, loopback URLs of the built-in app
/// and the gateway named by their component, so baselines match across runs.
fn normalise(mut r: CheckResult, base: &Path, desc: &SystemDescription) -> CheckResult {
    let base_s = format!("{}/", base.display());
    let declared = desc
        .component(&r.check.component)
        .and_then(|c| c.url.clone())
        .unwrap_or_else(|| r.check.component.clone());
    for f in &mut r.findings {
        if let Some(rest) = f.location.path.strip_prefix(&base_s) {
            f.location.path = rest.to_string();
        } else if f.location.path.starts_with("http://127.0.0.1:") {
            f.location.path = match r.check.kind {
                CheckKind::GuardReplay => format!("gateway:{}", r.check.component),
                _ => declared.clone(),
            };
        }
    }
    r
}

fn plan(desc: &SystemDescription, model: &ThreatModel, a: &AssessArgs) -> anyhow::Result<i32> {
    if let Some(p) = &a.threat_dragon {
        let v = aisec_assess::threatdragon::export(desc, model, &BTreeMap::new());
        std::fs::write(p, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    let mut report = Report::new("assess plan");
    report.summary.items = model.threats.len() as u64;
    report
        .data
        .insert("plan".into(), serde_json::to_value(model)?);
    let mut t = format!(
        "Threat model of {}: {} threats, {} checks to run.\n\n",
        desc.system.name,
        model.threats.len(),
        model.checks.len()
    );
    for th in &model.threats {
        let _ = writeln!(
            t,
            "{:<34} {:<22} risk {:<6} {}\n    {}  [{}{}{}]\n    {}",
            th.id,
            th.stride.name(),
            th.inherent_risk().name(),
            th.title,
            th.target.label(),
            th.atlas.join(", "),
            if th.owasp.is_empty() { "" } else { "; " },
            th.owasp.join(", "),
            match &th.check {
                Some(c) => format!("tested by: {} on {}", c.kind.command(), c.component),
                None => format!("not testable by aisec; control: {}", th.control),
            }
        );
    }
    crate::run::finish_with_tail(report, &a.output, &t).map(|c| if c == 1 { 0 } else { c })
}

fn import(td: &Path, out: &OutputArgs) -> anyhow::Result<i32> {
    let text = read_bounded(td, aisec_assess::threatdragon::MAX_IMPORT_BYTES)?;
    let imp = aisec_assess::threatdragon::import(&text)?;
    let mut s = format!(
        "# Imported from the Threat Dragon model {} by aisec assess --import.\n# Threats in the model ({}):\n",
        td.display(),
        imp.threats.len()
    );
    for t in &imp.threats {
        let _ = writeln!(
            s,
            "#   [{}] {} on {} ({}, {})",
            t.status,
            t.title.replace('\n', " "),
            t.target,
            t.stride.map(|x| x.name()).unwrap_or("?"),
            t.severity
        );
    }
    s.push_str("# Add each component's keys (path, url, inputs...) so aisec can test it; see docs/assess.md.\n\n");
    s.push_str(&toml::to_string(&imp.description).context("cannot write the description as TOML")?);
    match &out.output {
        Some(p) => {
            std::fs::write(p, &s).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{s}"),
    }
    Ok(0)
}

fn threat_finding(t: &AssessedThreat) -> Option<aisec_core::Finding> {
    let rule = match t.status {
        Status::Open => &aisec_assess::ASSESS_THREAT_OPEN,
        Status::NotTested if t.threat.inherent_risk() == Level::High => {
            &aisec_assess::ASSESS_THREAT_UNTESTED
        }
        _ => return None,
    };
    let mut f = rule
        .finding(
            Location::path(format!("threat:{}", t.threat.target.label()))
                .with_member(t.threat.rule.clone()),
            format!(
                "{} {} Control: {}",
                t.threat.title, t.reason, t.threat.control
            ),
        )
        .title(format!("{}: {}", t.threat.id, t.threat.title));
    if t.status == Status::Open {
        f = f.severity(match t.residual_risk {
            Level::High => Severity::High,
            Level::Medium => Severity::Medium,
            Level::Low => Severity::Low,
        });
    }
    f.atlas = if t.threat.atlas.is_empty() {
        f.atlas
    } else {
        t.threat.atlas.clone()
    };
    f.owasp = t.threat.owasp.clone();
    Some(f)
}

fn report(
    desc: &SystemDescription,
    model: &ThreatModel,
    results: Vec<CheckResult>,
    a: &AssessArgs,
) -> anyhow::Result<i32> {
    let threats = status::assess(model, &results);
    let risk = status::overall_risk(&threats);
    let mut findings: Vec<aisec_core::Finding> = results
        .iter()
        .flat_map(|r| r.findings.iter().cloned())
        .collect();
    findings.extend(threats.iter().filter_map(threat_finding));
    let baseline = a.baseline.as_ref().map(|p| Baseline::load(p)).transpose()?;
    let changes = baseline.as_ref().map(|b| b.diff(&threats, &findings));
    if let Some(p) = &a.write_baseline {
        let b = Baseline::of(&desc.system.name, risk, &threats, &findings);
        std::fs::write(p, serde_json::to_string_pretty(&b)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    let assessment = Assessment {
        system: desc.system.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        overall_risk: risk,
        threats,
        results,
        changes,
        max_attack_success_rate: desc.budget.max_attack_success_rate,
    };
    if let Some(p) = &a.html {
        std::fs::write(p, aisec_assess::html::render(&assessment))
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &a.threat_dragon {
        let st: BTreeMap<String, Status> = assessment
            .threats
            .iter()
            .map(|t| (t.threat.id.clone(), t.status))
            .collect();
        let v = aisec_assess::threatdragon::export(desc, model, &st);
        std::fs::write(p, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    let mut report = Report::new("assess");
    for (_, rules) in crate::registry::SOURCES {
        report.add_rules(rules);
    }
    report.add_rules(aisec_assess::RULES);
    let (known, new): (Vec<_>, Vec<_>) = findings
        .into_iter()
        .partition(|f| baseline.as_ref().is_some_and(|b| b.knows(f)));
    report.extend(new);
    report.summary.items = assessment.results.len() as u64;
    report.summary.seconds = assessment.results.iter().map(|r| r.seconds).sum();
    for r in &assessment.results {
        match &r.outcome {
            Outcome::Failed { error } => report.error(r.check.key(), error.clone()),
            Outcome::Interrupted => report.error(
                r.check.key(),
                "interrupted; run aisec assess again to resume",
            ),
            Outcome::Done => {}
        }
    }
    if assessment
        .results
        .iter()
        .any(|r| r.outcome == Outcome::Interrupted)
    {
        report
            .data
            .insert("incomplete".into(), serde_json::Value::Bool(true));
    }
    if !assessment.results.is_empty()
        && assessment
            .results
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Failed { .. }))
    {
        report
            .data
            .insert("failed".into(), serde_json::Value::Bool(true));
    }
    report
        .data
        .insert("baselined_findings".into(), serde_json::json!(known.len()));
    let tail = text_summary(&assessment);
    let mut data = serde_json::to_value(&assessment)?;
    // The JSON report keeps the numbers; pictures stay in the HTML.
    if let Some(rs) = data.get_mut("results").and_then(|v| v.as_array_mut()) {
        for r in rs {
            if let Some(d) = r.get_mut("data").and_then(|d| d.as_object_mut()) {
                d.remove("grid_png");
                d.remove("roc_svg");
                d.remove("inversion_png");
                d.remove("triggers_png");
                if let Some(e) = d.get_mut("explain").and_then(|e| e.as_object_mut()) {
                    e.remove("heatmaps");
                    e.remove("bars_svg");
                }
            }
        }
    }
    report.data.insert("assess".into(), data);
    if let Some(url) = &a.mlflow {
        let run = mlflow_run(desc, model, &assessment, &report)?;
        match mlflow::log(url, &a.mlflow_experiment, &run) {
            Ok(id) => {
                crate::run::note(format_args!(
                    "aisec assess: logged to MLflow run {id} ({} metrics, {} params, {} files).",
                    run.metrics.len(),
                    run.params.len(),
                    run.artifacts.len()
                ));
                report
                    .data
                    .insert("mlflow_run_id".into(), serde_json::json!(id));
            }
            Err(e) => report.error("mlflow", format!("{e:#}")),
        }
    }
    if let Some(p) = &a.navigator {
        let mut r = report.clone();
        r.finish();
        std::fs::write(
            p,
            aisec_core::render::render(&r, aisec_core::render::Format::Navigator),
        )
        .with_context(|| format!("cannot write {}", p.display()))?;
    }
    crate::run::finish_with_tail(report, &a.output, &tail)
}

/// What `--mlflow` logs: the budget and system as params; every check's
/// metrics (`<check>.<component>.<metric>`), threat counts, the overall
/// risk (0 low, 1 medium, 2 high) and findings per severity as metrics;
/// the HTML report, the JSON report and the Threat Dragon model as files.
fn mlflow_run(
    desc: &SystemDescription,
    model: &ThreatModel,
    a: &Assessment,
    report: &Report,
) -> anyhow::Result<mlflow::RunLog> {
    let mut run = mlflow::RunLog {
        name: format!("aisec assess: {}", desc.system.name),
        ..Default::default()
    };
    run.params.push(("system".into(), desc.system.name.clone()));
    run.params.push(("aisec_version".into(), a.version.clone()));
    if let serde_json::Value::Object(b) = serde_json::to_value(&desc.budget)? {
        for (k, v) in b {
            run.params.push((format!("budget.{k}"), v.to_string()));
        }
    }
    for r in &a.results {
        for (k, v) in &r.metrics {
            run.metrics.push((
                format!("{}.{}.{k}", r.check.kind.as_str(), r.check.component),
                *v,
            ));
        }
    }
    for st in [Status::Open, Status::Mitigated, Status::NotTested] {
        let n = a.threats.iter().filter(|t| t.status == st).count();
        run.metrics.push((
            format!("threats.{}", st.as_str().replace(' ', "_")),
            n as f64,
        ));
    }
    run.metrics
        .push(("overall_risk".into(), a.overall_risk as u8 as f64));
    let mut r = report.clone();
    r.finish();
    for (sev, n) in &r.summary.by_severity {
        run.metrics.push((format!("findings.{sev}"), *n as f64));
    }
    run.tags
        .push(("aisec.overall_risk".into(), a.overall_risk.name().into()));
    run.artifacts.push((
        "report.html".into(),
        aisec_assess::html::render(a).into_bytes(),
    ));
    run.artifacts.push((
        "report.json".into(),
        aisec_core::render::render(&r, aisec_core::render::Format::Json).into_bytes(),
    ));
    let st: BTreeMap<String, Status> = a
        .threats
        .iter()
        .map(|t| (t.threat.id.clone(), t.status))
        .collect();
    run.artifacts.push((
        "threat-dragon.json".into(),
        serde_json::to_vec_pretty(&aisec_assess::threatdragon::export(desc, model, &st))?,
    ));
    Ok(run)
}

fn text_summary(a: &Assessment) -> String {
    let mut s = format!(
        "Assessment of {}: overall risk {}.\n",
        a.system.name,
        a.overall_risk.name()
    );
    for st in [Status::Open, Status::NotTested, Status::Mitigated] {
        let ts: Vec<&AssessedThreat> = a.threats.iter().filter(|t| t.status == st).collect();
        if ts.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n{} ({}):", st.as_str(), ts.len());
        for t in ts {
            let _ = writeln!(
                s,
                "  {:<6} {:<34} {}",
                t.residual_risk.name(),
                t.threat.id,
                t.reason
            );
        }
    }
    if let Some(c) = &a.changes {
        let _ = writeln!(
            s,
            "\nSince the baseline: {} new finding(s), {} fixed, {} threat status change(s).",
            c.new_findings.len(),
            c.fixed_findings.len(),
            c.status_changes.len()
        );
    }
    s
}
