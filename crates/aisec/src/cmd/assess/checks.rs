//! The checks `aisec assess` runs, each through the same library calls as
//! its own command (scan, attack evasion / membership / extraction /
//! inversion, probe, and the probes replayed through aisec guard), with
//! the budgets of the description. Each returns a [`CheckResult`]; a check
//! that cannot run (missing input, endpoint down) is a failed result, not
//! an error of the whole assessment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aisec_assess::status::{CheckResult, Outcome};
use aisec_assess::system::{Component, ComponentKind, Outputs, SystemDescription};
use aisec_assess::{CheckKind, CheckRef};
use aisec_core::Report;
use aisec_model::data::Dataset;
use aisec_model::{Classifier, OnnxModel};
use anyhow::{bail, Context};
use base64::Engine;
use serde_json::{json, Value};

use super::llmapp;

/// What a check needs besides its component.
pub struct Env<'a> {
    /// The description.
    pub desc: &'a SystemDescription,
    /// The folder the description's relative paths start from.
    pub base: &'a Path,
}

impl Env<'_> {
    fn path(&self, rel: &str) -> PathBuf {
        SystemDescription::resolve(self.base, rel)
    }
}

/// Runs one check. Never returns an error: failures become a failed result.
pub fn run(check: &CheckRef, env: &Env<'_>) -> CheckResult {
    let start = Instant::now();
    let empty = |outcome| CheckResult {
        check: check.clone(),
        outcome,
        exercised: Vec::new(),
        findings: Vec::new(),
        metrics: BTreeMap::new(),
        data: Value::Null,
        seconds: 0.0,
    };
    let Some(comp) = env.desc.component(&check.component) else {
        return empty(Outcome::Failed {
            error: format!("no component '{}'", check.component),
        });
    };
    let out = match check.kind {
        CheckKind::Scan => scan(comp, env),
        CheckKind::Evasion => evasion(comp, env),
        CheckKind::Membership => membership(comp, env),
        CheckKind::Extraction => extraction(comp, env),
        CheckKind::Inversion => inversion(comp, env),
        CheckKind::Probe => probe(comp, env, None),
        CheckKind::GuardReplay => guard_replay(comp, env),
        CheckKind::Fairness => fairness(comp, env),
        CheckKind::PoisonData => poison_data(comp, env),
        CheckKind::Backdoor => backdoor(comp, env),
        CheckKind::Explain => explain(comp, env),
    };
    let mut r = match out {
        Ok(m) => {
            let interrupted = crate::run::cancel().is_cancelled()
                || m.report.data.get("incomplete") == Some(&Value::Bool(true));
            let mut r = empty(if interrupted {
                Outcome::Interrupted
            } else {
                Outcome::Done
            });
            r.exercised = m.exercised;
            r.findings = m.report.findings;
            r.metrics = m.metrics;
            r.data = m.data;
            r
        }
        Err(e) => empty(Outcome::Failed {
            error: format!("{e:#}"),
        }),
    };
    r.seconds = start.elapsed().as_secs_f64();
    r
}

/// What a check measured, before it becomes a [`CheckResult`].
struct Measured {
    report: Report,
    exercised: Vec<String>,
    metrics: BTreeMap<String, f64>,
    data: Value,
}

fn ids(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

fn scan(c: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    let Some(rel) = &c.path else {
        bail!("needs `path`")
    };
    let path = env.path(rel);
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    let scanner = aisec_scan::Scanner::new(aisec_scan::ScanOptions::default());
    let report = scanner.scan_paths(&[path], &|_| {});
    let mut metrics = BTreeMap::new();
    metrics.insert("files".into(), report.summary.items as f64);
    metrics.insert("findings".into(), report.findings.len() as f64);
    let exercised = if report.summary.items > 0 {
        ids(&["AML.T0010", "AML.T0011"])
    } else {
        Vec::new()
    };
    Ok(Measured {
        report,
        exercised,
        metrics,
        data: Value::Null,
    })
}

/// The model and its evaluation data, scaled, at most `limit` examples.
fn model_and_data(
    c: &Component,
    env: &Env<'_>,
    limit: usize,
) -> anyhow::Result<(OnnxModel, Dataset, String)> {
    let Some(p) = &c.path else {
        bail!("needs `path`, `inputs` and `labels`")
    };
    let model = crate::cmd::target::load_local(&env.path(p), None)?;
    let data = eval_data(c, env, limit, model.input_shape(), model.num_classes())?;
    Ok((model, data, p.clone()))
}

/// A component's evaluation inputs (scaled, reshaped to `shape` when they
/// hold the same number of values per example) and labels, at most
/// `limit` examples, checked against `classes` and the `lo`..`hi` range.
fn eval_data(
    c: &Component,
    env: &Env<'_>,
    limit: usize,
    shape: &[usize],
    classes: usize,
) -> anyhow::Result<Dataset> {
    let Some(xi) = &c.inputs else {
        bail!("needs `inputs` and `labels`")
    };
    let labels = c.labels.as_deref().map(|l| env.path(l));
    // `.npy`/IDX inputs with `labels`, an `.npz` with arrays x and y, CSV
    // (label in the last column) or an image folder, as `aisec train` reads them.
    // `scale` is applied below, as the description's `lo`/`hi` expect it.
    let d = crate::cmd::train::load_data(
        &env.path(xi),
        labels.as_deref(),
        "last",
        shape,
        &aisec_model::data::Preprocess::default(),
    )?;
    let (mut x, y) = (d.x, d.y);
    if let Some(s) = c.scale {
        x.data.iter_mut().for_each(|v| *v /= s);
    }
    crate::data::check_lengths(&x, &y, "inputs")?;
    crate::data::check_labels(&y, classes, "labels")?;
    if x.shape.get(1..) != Some(shape) && x.row_len() == shape.iter().product::<usize>() {
        let mut s = vec![x.batch()];
        s.extend_from_slice(shape);
        x = aisec_model::Tensor::new(s, std::mem::take(&mut x.data))?;
    }
    let n = x.batch().min(limit.max(1));
    let idx: Vec<usize> = (0..n).collect();
    let data = Dataset::new(aisec_attack::util::gather(&x, &idx), y[..n].to_vec())?;
    crate::data::check_inputs(
        &data.x,
        "inputs",
        c.lo.unwrap_or(0.0),
        c.hi.unwrap_or(1.0),
        crate::data::Fix::Scale("`scale`"),
    )?;
    Ok(data)
}

/// A model to attack: a local file (gradients) or a KServe v2 endpoint
/// (queries only).
enum Victim {
    Local(OnnxModel),
    Remote(aisec_model::blackbox::RemoteClassifier),
}

impl Victim {
    fn classifier(&self) -> &dyn Classifier {
        match self {
            Victim::Local(m) => m,
            Victim::Remote(r) => r,
        }
    }
}

/// Most classes a remote endpoint is asked to answer.
const MAX_REMOTE_CLASSES: usize = 100_000;

/// The model or endpoint of a component with its evaluation data. An
/// endpoint's input shape defaults to the shape of `inputs`, its classes
/// to the largest label + 1, its model name to `model`.
fn victim_and_data(
    c: &Component,
    env: &Env<'_>,
    limit: usize,
) -> anyhow::Result<(Victim, Dataset, String)> {
    if c.kind != ComponentKind::InferenceEndpoint {
        let (m, d, name) = model_and_data(c, env, limit)?;
        return Ok((Victim::Local(m), d, name));
    }
    let Some(url) = &c.url else {
        bail!("needs `url`")
    };
    let (Some(xi), Some(yi)) = (&c.inputs, &c.labels) else {
        bail!("needs `inputs` and `labels`: evaluation data to send to the endpoint")
    };
    let x = crate::cmd::attack::load_inputs(&env.path(xi))?;
    let y = crate::cmd::attack::load_labels(&env.path(yi))?;
    let shape = if c.input_shape.is_empty() {
        x.shape.get(1..).unwrap_or_default().to_vec()
    } else {
        c.input_shape.clone()
    };
    if shape.is_empty() {
        bail!("`inputs` holds no examples with a shape; give `input_shape`")
    }
    let classes = match c.classes {
        Some(k) => k,
        None => y.iter().max().map_or(0, |m| m + 1).max(2),
    };
    // Every answer holds one score per class: bound what a label file can ask for.
    if classes > MAX_REMOTE_CLASSES {
        bail!("{classes} classes (from `classes` or the largest label) is more than {MAX_REMOTE_CLASSES}")
    }
    let remote = aisec_model::blackbox::RemoteClassifier::new(
        url,
        c.model.as_deref().unwrap_or("model"),
        c.input_name.as_deref().unwrap_or("input"),
        shape.clone(),
        classes,
    )?
    .with_timeout(std::time::Duration::from_secs(30))?;
    let data = eval_data(c, env, limit, &shape, classes)?;
    let name = url.clone();
    Ok((Victim::Remote(remote), data, name))
}

fn evasion(c: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    if c.kind == ComponentKind::InferenceEndpoint {
        return remote_evasion(c, env);
    }
    let b = &env.desc.budget;
    let (model, data, name) = model_and_data(c, env, b.evasion_examples)?;
    let (lo, hi) = (c.lo.unwrap_or(0.0), c.hi.unwrap_or(1.0));
    let mut cfg = aisec_attack::EvasionConfig {
        attacks: vec![
            aisec_attack::AttackKind::Fgsm,
            aisec_attack::AttackKind::Pgd,
        ],
        eps: b.evasion_eps,
        eps_curve: b.evasion_curve.clone(),
        lo,
        hi,
        seed: b.seed,
        ..aisec_attack::EvasionConfig::default()
    };
    cfg.pgd.steps = b.pgd_steps.max(1);
    let (report, result) =
        crate::cmd::attack::evaluate(&model, &data.x, &data.y, &cfg, &name, false)?;
    let mut metrics = BTreeMap::new();
    metrics.insert("examples".into(), result.n as f64);
    metrics.insert("clean_accuracy".into(), result.clean_accuracy);
    if let Some(w) = result.worst_case_robust_accuracy {
        metrics.insert(format!("robust_accuracy@{}", b.evasion_eps), w);
    }
    // The grid: successful examples first, as `aisec attack evasion --save-png` orders them.
    let mut order: Vec<usize> = (0..result.n)
        .filter(|&i| result.worst_case_success[i])
        .collect();
    order.extend((0..result.n).filter(|&i| !result.worst_case_success[i]));
    order.truncate(8);
    let mut data_json = json!({"evasion": serde_json::to_value(&result)?});
    if !order.is_empty() {
        if let Ok(png) =
            aisec_attack::save::png_grid(&result.clean, &result.adversarial, &order, lo, hi)
        {
            let adv_pred =
                model.predict(&aisec_attack::util::gather(&result.adversarial, &order))?;
            let labels: Vec<Value> = order
                .iter()
                .zip(&adv_pred)
                .map(|(&i, &p)| json!({"label": result.labels[i], "clean": result.clean_pred[i], "adversarial": p}))
                .collect();
            data_json["grid_png"] = json!(base64::engine::general_purpose::STANDARD.encode(png));
            data_json["grid_labels"] = json!(labels);
        }
    }
    Ok(Measured {
        report,
        exercised: ids(&["AML.T0015", "AML.T0043"]),
        metrics,
        data: data_json,
    })
}

/// Black-box evasion through a remote endpoint, as `aisec attack evasion`
/// runs it on a query-only model: Square when the endpoint answers scores,
/// HopSkipJump when it answers labels, each within `remote_queries` per
/// example, on `remote_examples` inputs.
fn remote_evasion(c: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    let b = &env.desc.budget;
    let (victim, data, name) = victim_and_data(c, env, b.remote_examples)?;
    let attack = if c.outputs == Outputs::Labels {
        aisec_attack::AttackKind::HopSkipJump
    } else {
        aisec_attack::AttackKind::Square
    };
    let mut cfg = aisec_attack::EvasionConfig {
        attacks: vec![attack],
        eps: b.evasion_eps,
        eps_curve: Vec::new(),
        lo: c.lo.unwrap_or(0.0),
        hi: c.hi.unwrap_or(1.0),
        seed: b.seed,
        ..aisec_attack::EvasionConfig::default()
    };
    cfg.square.max_queries = b.remote_queries.max(1);
    cfg.hsj.max_queries = b.remote_queries.max(1);
    let ctx = crate::cmd::attack::attack_context(false);
    let start = Instant::now();
    let model = victim.classifier();
    let result = aisec_attack::evasion::run_evasion_blackbox(model, &data.x, &data.y, &cfg, &ctx)?;
    let mut report = Report::new("attack evasion");
    report.add_rules(aisec_attack::RULES);
    report.extend(result.findings(&name));
    report.summary.items = result.n as u64;
    report.summary.seconds = start.elapsed().as_secs_f64();
    if result.cancelled {
        report.data.insert("incomplete".into(), Value::Bool(true));
    }
    let mut metrics = BTreeMap::new();
    metrics.insert("examples".into(), result.n as f64);
    metrics.insert("clean_accuracy".into(), result.clean_accuracy);
    if let Some(w) = result.worst_case_robust_accuracy {
        metrics.insert(format!("robust_accuracy@{}", b.evasion_eps), w);
    }
    metrics.insert(
        "queries".into(),
        result.attacks.iter().map(|a| a.total_queries).sum::<u64>() as f64,
    );
    let mut data_json = json!({"evasion": serde_json::to_value(&result)?, "remote": true});
    let order: Vec<usize> = (0..result.n)
        .filter(|&i| result.worst_case_success[i])
        .take(8)
        .collect();
    if !order.is_empty() {
        if let Ok(png) =
            aisec_attack::save::png_grid(&result.clean, &result.adversarial, &order, cfg.lo, cfg.hi)
        {
            // The adversarial labels as the endpoint answered them during the attack.
            let labels: Vec<Value> = order
                .iter()
                .map(|&i| json!({"label": result.labels[i], "clean": result.clean_pred[i], "adversarial": result.worst_case_adv_pred(i)}))
                .collect();
            data_json["grid_png"] = json!(base64::engine::general_purpose::STANDARD.encode(png));
            data_json["grid_labels"] = json!(labels);
        }
    }
    Ok(Measured {
        report,
        exercised: ids(&["AML.T0015", "AML.T0043"]),
        metrics,
        data: data_json,
    })
}

fn membership(c: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    let b = &env.desc.budget;
    let Some(mp) = &c.members else {
        bail!("needs `members` (which evaluation inputs were training members) to measure membership inference")
    };
    let (victim, data, name) = victim_and_data(c, env, b.membership_examples)?;
    let model = victim.classifier();
    let member_all = crate::cmd::attack::load_labels(&env.path(mp))?;
    if member_all.len() < data.len() {
        bail!(
            "`members` has {} entries for {} inputs",
            member_all.len(),
            data.len()
        );
    }
    let member: Vec<bool> = member_all[..data.len()].iter().map(|&m| m != 0).collect();
    if member.iter().all(|&m| m) || member.iter().all(|&m| !m) {
        bail!("`members` must mark some inputs as members and some as non-members");
    }
    let cfg = aisec_attack::membership::MembershipConfig {
        attacks: vec![aisec_attack::membership::MiaAttack::Loss],
        shadows: 0,
        bootstrap: 200,
        seed: b.seed,
        ..Default::default()
    };
    let sample = aisec_attack::membership::MembershipData {
        x: &data.x,
        y: &data.y,
        member: &member,
        population: None,
    };
    let (report, result) =
        crate::cmd::membership::evaluate(model, &sample, None, &cfg, None, &name, false)?;
    let mut metrics = BTreeMap::new();
    metrics.insert("members".into(), result.members as f64);
    metrics.insert("non_members".into(), result.non_members as f64);
    if let Some(a) = result.attacks.first() {
        metrics.insert("auc".into(), a.metrics.auc);
        metrics.insert("tpr@0.1%fpr".into(), a.metrics.tpr_at_0_1pct_fpr);
        metrics.insert("balanced_accuracy".into(), a.metrics.balanced_accuracy);
    }
    let svg = crate::cmd::membership::roc_svg(
        &result,
        &format!("Membership inference: {}", c.display_name()),
    );
    Ok(Measured {
        report,
        exercised: ids(&["AML.T0024.000"]),
        metrics,
        data: json!({"membership": serde_json::to_value(&result)?, "roc_svg": svg}),
    })
}

fn extraction(c: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    use aisec_attack::extraction::{ExtractionConfig, QueryStrategy, SurrogateTraining};
    let b = &env.desc.budget;
    let (victim, all, name) = victim_and_data(c, env, usize::MAX)?;
    let model = victim.classifier();
    if all.len() < 20 {
        bail!("needs at least 20 evaluation inputs (a query pool and a test set)");
    }
    let half = all.len() / 2;
    let pool_idx: Vec<usize> = (0..half).collect();
    let test_idx: Vec<usize> = (half..all.len()).take(300).collect();
    let pool = aisec_attack::util::gather(&all.x, &pool_idx);
    let test = Dataset::new(
        aisec_attack::util::gather(&all.x, &test_idx),
        test_idx.iter().map(|&i| all.y[i]).collect(),
    )?;
    let surrogate = aisec_model::spec::ArchSpec {
        input: model.input_shape().to_vec(),
        layers: vec![
            aisec_model::spec::LayerSpec::Flatten,
            aisec_model::spec::LayerSpec::Dense {
                units: 64,
                init: None,
            },
            aisec_model::spec::LayerSpec::Relu,
            aisec_model::spec::LayerSpec::Dense {
                units: model.num_classes(),
                init: None,
            },
        ],
    };
    let mut cfg = ExtractionConfig::new(QueryStrategy::Pool { x: pool }, surrogate);
    cfg.query_data = "in-distribution (the description's inputs)".into();
    cfg.budgets = b.extraction_queries.iter().map(|&q| q as usize).collect();
    cfg.labels_only = c.outputs == Outputs::Labels;
    cfg.lo = c.lo.unwrap_or(0.0);
    cfg.hi = c.hi.unwrap_or(1.0);
    cfg.seed = b.seed;
    cfg.training = SurrogateTraining {
        epochs: 10,
        min_steps: 120,
        batch_size: 32,
        lr: 0.01,
    };
    let (report, out) = crate::cmd::extraction::evaluate(model, &test, &cfg, &name, false)?;
    let mut metrics = BTreeMap::new();
    metrics.insert("victim_accuracy".into(), out.report.victim_accuracy);
    if let Some(p) = out.report.curve.last() {
        metrics.insert("queries".into(), p.queries as f64);
        metrics.insert("fidelity".into(), p.fidelity);
        metrics.insert("surrogate_accuracy".into(), p.surrogate_accuracy);
    }
    Ok(Measured {
        report,
        exercised: ids(&["AML.T0024.002", "AML.T0005.001"]),
        metrics,
        data: json!({"extraction": serde_json::to_value(&out.report)?}),
    })
}

fn inversion(c: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    use aisec_attack::inversion::{run_inversion, tile_png, InversionConfig};
    let b = &env.desc.budget;
    let (model, data, name) = model_and_data(c, env, usize::MAX)?;
    let cfg = InversionConfig {
        max_iters: b.inversion_iters.max(1),
        patience: (b.inversion_iters / 4).max(10),
        lo: c.lo.unwrap_or(0.0),
        hi: c.hi.unwrap_or(1.0),
        ..InversionConfig::default()
    };
    let ctx = crate::cmd::attack::attack_context(false);
    let r = run_inversion(&model, &cfg, Some(&data), &ctx)?;
    let mut report = Report::new("attack inversion");
    report.add_rules(aisec_attack::RULES);
    report.extend(r.findings(&name));
    if r.cancelled {
        report.data.insert("incomplete".into(), Value::Bool(true));
    }
    let mut metrics = BTreeMap::new();
    metrics.insert("classes".into(), r.classes.len() as f64);
    metrics.insert("mean_confidence".into(), r.mean_confidence);
    if let Some(id) = r.identification_rate {
        metrics.insert("identification_rate".into(), id);
    }
    metrics.insert("chance".into(), r.chance);
    let png = tile_png(&[&r.reconstructions], cfg.lo, cfg.hi)
        .map(|p| base64::engine::general_purpose::STANDARD.encode(p))
        .ok();
    Ok(Measured {
        report,
        exercised: ids(&["AML.T0024.001"]),
        metrics,
        data: json!({"inversion": serde_json::to_value(&r)?, "inversion_png": png}),
    })
}

/// The probe target of an LLM component at `base` (an OpenAI base URL
/// ending in `/v1`, or a REST URL).
fn target_for(c: &Component, url: &str) -> anyhow::Result<aisec_probe::Target> {
    let mut t = match c.api.as_deref().unwrap_or("openai-chat") {
        "openai-chat" => aisec_probe::Target::openai_chat(
            url.to_string(),
            c.model.clone().unwrap_or_else(|| "default".into()),
        ),
        "rest" => aisec_probe::Target::rest(
            url.to_string(),
            aisec_probe::demo::DEMO_TEMPLATE,
            aisec_probe::demo::DEMO_RESPONSE_PATH,
        ),
        other => bail!("api '{other}' cannot be probed (openai-chat or rest)"),
    };
    t.system = c.system_prompt.clone();
    t.max_tokens = 256;
    Ok(t)
}

/// Runs the description's probe families against `c` (directly, or through
/// a gateway at `via`) and returns the report.
fn probe(c: &Component, env: &Env<'_>, via: Option<&Component>) -> anyhow::Result<Measured> {
    let b = &env.desc.budget;
    let Some(url) = c.url.clone() else {
        bail!("needs `url`")
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let audit_dir = tempfile::tempdir()?;
    let (report, audit_lines, detections) = rt.block_on(async {
        let app = if url == llmapp::BUILTIN {
            Some(llmapp::start().await?)
        } else {
            None
        };
        // The endpoint's base URL (the OpenAI API lives under /v1).
        let upstream = match &app {
            Some(a) => a.base(),
            None => url
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .to_string(),
        };
        let mut guard = None;
        let probe_url = match via {
            None => format!("{upstream}/v1"),
            Some(g) => {
                let mut policy = match &g.policy {
                    Some(p) => aisec_guard::Policy::load(&env.path(p))
                        .with_context(|| format!("gateway '{}' policy", g.id))?,
                    None => aisec_guard::Policy::default_for(&upstream),
                };
                policy.server.upstream = upstream.clone();
                // The audit log goes to a file the check counts, not to stderr.
                policy.audit.path = audit_dir.path().join("audit.jsonl").display().to_string();
                let running = aisec_guard::start(
                    policy,
                    aisec_guard::StartOptions {
                        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                        ..Default::default()
                    },
                )
                .await?;
                let u = format!("http://{}/v1", running.addr);
                guard = Some(running);
                u
            }
        };
        let mut cfg = aisec_probe::RunConfig::new(target_for(c, &probe_url)?);
        cfg.secrets = c.secrets.clone();
        cfg.seed = Some(b.seed);
        cfg.timeout = std::time::Duration::from_secs(30);
        cfg.concurrency = 4;
        let probes = aisec_probe::probes::select(&b.probe_families, &[])?;
        let out = aisec_probe::run_probes(cfg, probes).await?;
        let mut report = aisec_probe::summary::build_report(
            &out,
            &aisec_probe::summary::SummaryOptions {
                max_asr: Some(b.max_attack_success_rate),
            },
        );
        if out.interrupted {
            report.data.insert("incomplete".into(), Value::Bool(true));
        }
        let sent = out
            .records
            .iter()
            .filter(|r| r.verdict.is_some() || r.error.is_some())
            .count();
        if sent > 0 && out.records.iter().all(|r| r.error.is_some()) {
            bail!("every one of {sent} probe attempts failed; the endpoint never answered");
        }
        let mut audit_lines = None;
        let mut detections = None;
        if let Some(g) = guard {
            // The guard's own detections are the defence working, not the
            // threat succeeding: they are counted, not reported as findings.
            detections = Some(g.state.findings().len());
            g.shutdown().await?;
            audit_lines = Some(
                std::fs::read_to_string(audit_dir.path().join("audit.jsonl"))
                    .map(|t| t.lines().count())
                    .unwrap_or(0),
            );
        }
        drop(app);
        anyhow::Ok((report, audit_lines, detections))
    })?;
    let probe = report.data.get("probe").cloned().unwrap_or(Value::Null);
    let mut exercised = Vec::new();
    let mut metrics = BTreeMap::new();
    for f in probe
        .get("families")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let n = f.get("n").and_then(Value::as_f64).unwrap_or(0.0);
        if n > 0.0 {
            for a in f
                .get("atlas")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(a) = a.as_str() {
                    exercised.push(a.to_string());
                }
            }
            if let (Some(fam), Some(rate)) = (
                f.get("family").and_then(Value::as_str),
                f.get("rate").and_then(Value::as_f64),
            ) {
                metrics.insert(format!("asr_{fam}"), rate);
            }
        }
    }
    if via.is_some() && !exercised.is_empty() {
        // Attacks sent through the gateway exercise its screening of them.
        exercised.extend(ids(&["AML.T0051", "AML.T0068"]));
    }
    if let Some(n) = audit_lines {
        metrics.insert("audit_events".into(), n as f64);
    }
    if let Some(n) = detections {
        metrics.insert("guard_detections".into(), n as f64);
    }
    exercised.sort();
    exercised.dedup();
    Ok(Measured {
        report,
        exercised,
        metrics,
        data: json!({"probe": probe}),
    })
}

fn guard_replay(g: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    let llm = g
        .protects
        .iter()
        .filter_map(|p| env.desc.component(p))
        .find(|c| c.kind == ComponentKind::LlmEndpoint)
        .context("the gateway protects no LLM endpoint")?;
    probe(llm, env, Some(g))
}

/// Group fairness of the model's decisions on its evaluation inputs over
/// the declared sensitive attribute (see `aisec_assess::fairness`).
fn fairness(c: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    let b = &env.desc.budget;
    let Some(sp) = &c.sensitive_attribute else {
        bail!("needs `sensitive_attribute`")
    };
    let (model, data, name) = model_and_data(c, env, 100_000)?;
    let groups_all = crate::cmd::attack::load_labels(&env.path(sp))?;
    if groups_all.len() < data.len() {
        bail!(
            "`sensitive_attribute` has {} entries for {} inputs",
            groups_all.len(),
            data.len()
        );
    }
    let group: Vec<u64> = groups_all[..data.len()].iter().map(|&g| g as u64).collect();
    let pos = c.positive_label.unwrap_or(1);
    let pred = model.predict(&data.x)?;
    let f = aisec_assess::fairness::evaluate(&data.y, &pred, &group, pos, 1000, b.seed)
        .context("the sensitive attribute has fewer than two groups")?;
    let mut report = Report::new("assess fairness");
    report.add_rules(aisec_assess::RULES);
    let dp = f.demographic_parity_difference;
    let eo = f.equalized_odds_difference;
    let gap = dp.value.max(eo.value);
    let evidence = format!(
        "{} examples, {} groups, positive label {pos}: demographic parity difference {:.3} (95% CI {:.3}-{:.3}), equalized odds difference {:.3} (95% CI {:.3}-{:.3}); accepted gap {:.3}.",
        data.len(),
        f.groups.len(),
        dp.value,
        dp.low,
        dp.high,
        eo.value,
        eo.low,
        eo.high,
        b.max_fairness_gap
    );
    let mut finding = aisec_assess::ASSESS_FAIRNESS_GAP
        .finding(
            aisec_core::Location::path(name.clone()).with_member("fairness"),
            evidence,
        )
        .metric("demographic_parity_difference", dp.value)
        .metric("equalized_odds_difference", eo.value);
    if gap <= b.max_fairness_gap {
        finding = finding
            .severity(aisec_core::Severity::Info)
            .title("Group gaps within the accepted fairness gap");
    }
    report.extend([finding]);
    let mut metrics = BTreeMap::new();
    metrics.insert("demographic_parity_difference".into(), dp.value);
    metrics.insert("equalized_odds_difference".into(), eo.value);
    metrics.insert("accuracy_difference".into(), f.accuracy_difference.value);
    metrics.insert("examples".into(), data.len() as f64);
    Ok(Measured {
        report,
        exercised: Vec::new(),
        metrics,
        data: json!({
            "fairness": serde_json::to_value(&f)?,
            "fairness_inputs": {"y": data.y, "pred": pred, "group": group},
        }),
    })
}

/// Training-data inspection, as `aisec defend data --methods ac,ss` runs
/// it: the penultimate activations of the model trained on the data (the
/// first model component a flow from the data reaches) split per class by
/// activation clustering and ranked by spectral signatures. A cluster
/// activation clustering flags is a finding (high when spectral signatures
/// agree on at least half of it); none is an info finding, i.e. measured
/// clean. With `poison_manifest` the flags are scored against it.
fn poison_data(c: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    use aisec_defend::data::{
        activation_clustering, activations, score_against, spectral_signatures, AcConfig, SsConfig,
    };
    let b = &env.desc.budget;
    let m = aisec_assess::threats::trained_models(env.desc, c)
        .next()
        .context("no flow from this data to a model component (the model trained on it)")?;
    let Some(mp) = &m.path else {
        bail!("model '{}' has no `path`", m.id)
    };
    let model = crate::cmd::target::load_local(&env.path(mp), None)?;
    let classes = model.num_classes();
    let data = eval_data(c, env, usize::MAX, model.input_shape(), classes)?;
    let truth = match &c.poison_manifest {
        Some(p) => {
            let man = aisec_attack::poison::Manifest::load(&env.path(p))
                .with_context(|| format!("cannot read the poison manifest {p}"))?;
            if man.examples != data.len() {
                bail!(
                    "the poison manifest is for {} examples, the data has {}",
                    man.examples,
                    data.len()
                );
            }
            Some(man.is_poisoned())
        }
        None => None,
    };
    let feats = activations(&model, &data.x, &aisec_model::Tap::Penultimate, 256)?;
    let ac = activation_clustering(
        &feats,
        &data.y,
        classes,
        &AcConfig {
            seed: b.seed,
            ..AcConfig::default()
        },
    )?;
    let ss = spectral_signatures(
        &feats,
        &data.y,
        classes,
        &SsConfig {
            seed: b.seed,
            ..SsConfig::default()
        },
    )?;
    let det_ac = truth.as_ref().map(|t| score_against(&ac, t)).transpose()?;
    let det_ss = truth.as_ref().map(|t| score_against(&ss, t)).transpose()?;
    let name = c.path.clone().unwrap_or_else(|| c.id.clone());
    let loc = aisec_core::Location::path(name);
    let flagged = ac.flagged_count();
    let agree = if flagged > 0 {
        ac.flagged
            .iter()
            .zip(&ss.flagged)
            .filter(|(a, s)| **a && **s)
            .count() as f64
            / flagged as f64
    } else {
        0.0
    };
    let finding = if flagged > 0 {
        let hit: Vec<String> = ac
            .classes
            .iter()
            .filter(|k| k.flagged > 0)
            .map(|k| format!("class {} ({} of {})", k.class, k.flagged, k.examples))
            .collect();
        let mut f = aisec_defend::rules::SUSPICIOUS_DATA
            .finding(
                loc,
                format!(
                    "activation clustering (through {}) flags {flagged} of {} examples in a small separate cluster: {}; {:.0}% of them also flagged by spectral signatures. Review the ranked examples: a natural sub-style of a class also forms a small cluster.",
                    m.id,
                    data.len(),
                    hit.join(", "),
                    100.0 * agree
                ),
            )
            .severity(if agree >= 0.5 {
                aisec_core::Severity::High
            } else {
                aisec_core::Severity::Medium
            })
            .metric("flagged", flagged as u64)
            .metric("agreement", agree);
        if let Some(d) = &det_ac {
            f = f
                .metric("precision", f64::from(d.precision))
                .metric("recall", f64::from(d.recall));
        }
        f
    } else {
        aisec_defend::rules::SUSPICIOUS_DATA
            .finding(
                loc,
                format!(
                    "activation clustering (through {}) splits no class of the {} examples into a cluster under 35% of it",
                    m.id,
                    data.len()
                ),
            )
            .severity(aisec_core::Severity::Info)
            .title("No cluster of likely poisoned training examples")
    };
    let mut report = Report::new("defend data");
    report.add_rules(aisec_defend::RULES);
    report.extend([finding]);
    let mut metrics = BTreeMap::new();
    metrics.insert("examples".into(), data.len() as f64);
    metrics.insert("ac_flagged".into(), flagged as f64);
    metrics.insert("ss_flagged".into(), ss.flagged_count() as f64);
    if let Some(d) = &det_ac {
        metrics.insert("ac_precision".into(), f64::from(d.precision));
        metrics.insert("ac_recall".into(), f64::from(d.recall));
    }
    let methods: Vec<Value> = [(&ac, &det_ac), (&ss, &det_ss)]
        .iter()
        .map(|(s, d)| {
            json!({"method": s.method, "flagged": s.flagged_count(), "classes": s.classes, "detection": d,
                   "top": s.ranked().into_iter().take(20).collect::<Vec<_>>()})
        })
        .collect();
    Ok(Measured {
        report,
        exercised: ids(&["AML.T0020"]),
        metrics,
        data: json!({"defend_data": {"examples": data.len(), "classes": classes, "model": m.id, "methods": methods}}),
    })
}

/// Model inspection without training data, as `aisec defend model
/// --methods nc` runs it: Neural Cleanse reverse-engineers one trigger per
/// class on the component's clean inputs (`backdoor_steps` steps per class)
/// and flags classes by the MAD anomaly index; no flagged class is an info
/// finding (measured clean).
fn backdoor(c: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    use aisec_defend::model::{findings, inspect, InspectConfig, Method};
    let b = &env.desc.budget;
    let (model, data, name) = model_and_data(c, env, 256)?;
    let cfg = InspectConfig {
        steps: b.backdoor_steps.max(1),
        range: (c.lo.unwrap_or(0.0), c.hi.unwrap_or(1.0)),
        seed: b.seed,
        ..InspectConfig::default()
    };
    let cancel = crate::run::cancel();
    let ins = match inspect(
        &model,
        &data.x,
        Method::NeuralCleanse,
        &cfg,
        Some(cancel.flag()),
        &|_, _| {},
    ) {
        Ok(i) => i,
        Err(aisec_defend::DefendError::Cancelled) => {
            let mut report = Report::new("defend model");
            report.data.insert("incomplete".into(), Value::Bool(true));
            return Ok(Measured {
                report,
                exercised: Vec::new(),
                metrics: BTreeMap::new(),
                data: Value::Null,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let mut report = Report::new("defend model");
    report.add_rules(aisec_defend::RULES);
    report.extend(findings(&ins, &name, None));
    let mut metrics = BTreeMap::new();
    metrics.insert("classes".into(), ins.classes.len() as f64);
    metrics.insert("flagged_classes".into(), ins.flagged.len() as f64);
    metrics.insert(
        "max_anomaly_index".into(),
        ins.classes
            .iter()
            .filter(|k| k.size < ins.median)
            .map(|k| f64::from(k.anomaly_index))
            .fold(0.0, f64::max),
    );
    metrics.insert("clean_examples".into(), ins.examples as f64);
    let ts: Vec<&aisec_defend::trigger::MaskTrigger> =
        ins.classes.iter().map(|k| &k.trigger).collect();
    let png = aisec_defend::image::trigger_grid(&ts, cfg.range.0, cfg.range.1)
        .map(|p| base64::engine::general_purpose::STANDARD.encode(p))
        .ok();
    Ok(Measured {
        report,
        exercised: ids(&["AML.T0018"]),
        metrics,
        data: json!({"backdoor": [serde_json::to_value(&ins)?], "triggers_png": png}),
    })
}

/// Attributions for the transparency controls, as `aisec explain --method
/// ig` computes them: Integrated Gradients (Gauss-Legendre, `ig_steps`
/// points, zero baseline at `lo`) for the predicted class of the first
/// `explain_examples` inputs, with Captum's completeness delta; heat maps
/// for image inputs, a bar chart of the most attributed features otherwise.
fn explain(c: &Component, env: &Env<'_>) -> anyhow::Result<Measured> {
    use aisec_explain::gradient::{integrated_gradients, IgConfig};
    use aisec_explain::render::{bar_chart_svg, heatmap_png, mean_abs, Caption};
    let b = &env.desc.budget;
    let (model, data, _name) = model_and_data(c, env, b.explain_examples.max(1))?;
    let pred = model.predict(&data.x)?;
    let shape = model.input_shape().to_vec();
    let m: usize = shape.iter().product();
    let lo = c.lo.unwrap_or(0.0);
    let mut bshape = vec![1];
    bshape.extend_from_slice(&shape);
    let base = aisec_model::Tensor::new(bshape, vec![lo; m])?;
    let cfg = IgConfig {
        steps: b.ig_steps.max(2),
        ..IgConfig::default()
    };
    let r = integrated_gradients(&model, &data.x, &base, &pred, &cfg)?;
    let mut max_abs = 0.0f64;
    let mut max_rel = 0.0f64;
    let mut examples = Vec::new();
    for (i, &p) in pred.iter().enumerate() {
        let change = f64::from(r.score[i] - r.baseline_score[i]);
        let d = f64::from(r.delta[i]).abs();
        max_abs = max_abs.max(d);
        max_rel = max_rel.max(d / change.abs().max(1e-6));
        examples.push(json!({"index": i, "label": data.y[i], "predicted": p,
            "score": r.score[i], "baseline_score": r.baseline_score[i], "delta": r.delta[i]}));
    }
    let image = matches!(shape.as_slice(), [1 | 3, h, w] | [h, w] if *h > 1 && *w > 1);
    let mut heatmaps = Vec::new();
    let mut bars = None;
    if image {
        let dir = tempfile::tempdir()?;
        for (i, (&p_i, &y_i)) in pred.iter().zip(&data.y).enumerate() {
            let p = dir.path().join(format!("{i}.png"));
            heatmap_png(
                &p,
                data.x.row(i),
                r.attributions.row(i),
                &shape,
                &Caption {
                    predicted: p_i,
                    truth: Some(y_i),
                    target: p_i,
                    outline: None,
                },
            )?;
            heatmaps.push(base64::engine::general_purpose::STANDARD.encode(std::fs::read(&p)?));
        }
    } else {
        let names: Vec<String> = (0..m).map(|j| format!("x{j}")).collect();
        bars = Some(bar_chart_svg(
            "Mean |attribution| per input feature",
            &names,
            &mean_abs(&r.attributions.data, m),
            12,
        ));
    }
    let mut report = Report::new("explain");
    report.summary.items = data.len() as u64;
    let mut metrics = BTreeMap::new();
    metrics.insert("examples".into(), data.len() as f64);
    metrics.insert("max_abs_delta".into(), max_abs);
    metrics.insert("max_relative_delta".into(), max_rel);
    Ok(Measured {
        report,
        exercised: Vec::new(),
        metrics,
        data: json!({"explain": {"method": "integrated-gradients", "steps": cfg.steps, "rule": cfg.rule.name(),
            "baseline": format!("constant {lo}"), "examples": examples, "heatmaps": heatmaps, "bars_svg": bars}}),
    })
}
