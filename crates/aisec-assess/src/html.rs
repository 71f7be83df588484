//! The assessment report as one self-contained HTML page for a security
//! lead: executive summary (overall risk, top open threats, changes since
//! the baseline), the risk matrix, the measurements with the pictures the
//! checks computed (robust-accuracy curves, ROC curves on log axes,
//! adversarial example grids, probe success per family with confidence
//! intervals, findings by severity), per-threat sections with evidence and
//! the compliance views. Inline CSS and SVG/PNG only: no scripts, no
//! external fonts or images.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use aisec_core::{Finding, Severity};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::baseline::Changes;
use crate::compliance::{self, ControlView, Verdict};
use crate::status::{AssessedThreat, CheckResult, Outcome, Status};
use crate::svg::{self, esc, Bar, Series};
use crate::system::SystemInfo;
use crate::threats::{CheckKind, Level};

/// Everything the report shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assessment {
    /// The system.
    pub system: SystemInfo,
    /// aisec's version.
    pub version: String,
    /// Overall risk.
    pub overall_risk: Level,
    /// Every threat with its status.
    pub threats: Vec<AssessedThreat>,
    /// Every check's result.
    pub results: Vec<CheckResult>,
    /// Changes since the baseline, when one was given.
    pub changes: Option<Changes>,
    /// The attack success rate above which a probe family counts as open.
    pub max_attack_success_rate: f64,
}

impl Assessment {
    /// All findings of all checks.
    pub fn findings(&self) -> Vec<&Finding> {
        self.results
            .iter()
            .flat_map(|r| r.findings.iter())
            .collect()
    }
}

const CSS: &str = r#"
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d1d1f;background:#f5f6f8}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{border-bottom:2px solid #dde;padding-bottom:4px;margin-top:36px}
section.card{background:#fff;border-radius:8px;padding:16px 20px;margin:14px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e5e5ea;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#fafafa}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.High,.open,.contradicted,.critical,.high{background:#c62828}.Medium,.medium{background:#ef6c00}.Low,.low{background:#2e7d32}
.mitigated,.supported{background:#2e7d32}.not-tested,.no-measurement,.info{background:#757575}
.risk{font-size:28px;padding:6px 18px;border-radius:8px}
.grid{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.kpi{background:#fff;border-radius:8px;padding:12px 18px;min-width:120px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.kpi b{display:block;font-size:26px}
.matrix td{width:90px;height:54px;text-align:center;font-size:15px;font-weight:600;color:#fff;border:2px solid #fff}
.m-Low{background:#66bb6a}.m-Medium{background:#ffa726}.m-High{background:#e53935}
.muted{color:#666;font-size:12px}code{background:#f0f0f4;padding:1px 4px;border-radius:3px}
details summary{cursor:pointer;font-weight:600}
.ev{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;background:#f7f7fa;padding:6px;border-radius:4px;max-height:140px;overflow:auto}
"#;

fn badge(class: &str, text: &str) -> String {
    format!(r#"<span class="badge {}">{}</span>"#, esc(class), esc(text))
}

fn status_badge(s: Status) -> String {
    badge(&s.as_str().replace(' ', "-"), s.as_str())
}

fn verdict_badge(v: Verdict) -> String {
    badge(&v.as_str().replace(' ', "-"), v.as_str())
}

fn check_anchor(kind: CheckKind, comp: &str) -> String {
    format!("check-{}-{}", kind.as_str(), comp)
}

/// Renders the report.
pub fn render(a: &Assessment) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Security assessment: {}</title><style>{CSS}</style></head><body><main>"#,
        esc(&a.system.name)
    );
    let _ = write!(
        h,
        r#"<h1>Security assessment: {}</h1><div class="muted">{}{}aisec {} · STRIDE × MITRE ATLAS × OWASP LLM Top 10 (2025)</div>"#,
        esc(&a.system.name),
        a.system
            .owner
            .as_deref()
            .map(|o| format!("Owner: {} · ", esc(o)))
            .unwrap_or_default(),
        a.system
            .description
            .as_deref()
            .map(|d| format!("{} · ", esc(d)))
            .unwrap_or_default(),
        esc(&a.version)
    );
    summary(&mut h, a);
    matrix(&mut h, a);
    measurements(&mut h, a);
    threats(&mut h, a);
    compliance_views(&mut h, a);
    appendix(&mut h, a);
    h.push_str("</main></body></html>\n");
    h
}

fn count(a: &Assessment, s: Status) -> usize {
    a.threats.iter().filter(|t| t.status == s).count()
}

fn summary(h: &mut String, a: &Assessment) {
    h.push_str(r#"<h2 id="summary">Executive summary</h2><div class="grid">"#);
    let _ = write!(
        h,
        r#"<div class="kpi">Overall risk<b><span class="badge risk {r}">{r}</span></b></div><div class="kpi">Threats<b>{}</b></div><div class="kpi">Open<b style="color:#c62828">{}</b></div><div class="kpi">Mitigated<b style="color:#2e7d32">{}</b></div><div class="kpi">Not tested<b style="color:#757575">{}</b></div><div class="kpi">Checks run<b>{}</b></div>"#,
        a.threats.len(),
        count(a, Status::Open),
        count(a, Status::Mitigated),
        count(a, Status::NotTested),
        a.results
            .iter()
            .filter(|r| r.outcome == Outcome::Done)
            .count(),
        r = a.overall_risk.name()
    );
    let mut sev: BTreeMap<Severity, u64> = BTreeMap::new();
    for f in a.findings() {
        *sev.entry(f.severity).or_default() += 1;
    }
    let counts: Vec<(&str, u64)> = Severity::ALL
        .iter()
        .map(|s| (s.as_str(), sev.get(s).copied().unwrap_or(0)))
        .collect();
    let _ = write!(
        h,
        r#"<div class="kpi">{}</div></div>"#,
        svg::severity_chart(&counts)
    );
    let mut open: Vec<&AssessedThreat> = a
        .threats
        .iter()
        .filter(|t| t.status == Status::Open)
        .collect();
    open.sort_by(|x, y| {
        y.residual_risk
            .cmp(&x.residual_risk)
            .then(y.threat.impact.cmp(&x.threat.impact))
    });
    h.push_str(r#"<section class="card"><h3>Top findings</h3>"#);
    if open.is_empty() {
        h.push_str("<p>No threat was shown to be open by a measurement. Untested threats are listed below; untested is not mitigated.</p>");
    } else {
        h.push_str(
            "<table><tr><th>Risk</th><th>Threat</th><th>Where</th><th>Measurement</th></tr>",
        );
        for t in open.iter().take(6) {
            let _ = write!(
                h,
                r##"<tr><td>{}</td><td><a href="#{}">{}</a></td><td>{}</td><td>{}</td></tr>"##,
                badge(t.residual_risk.name(), t.residual_risk.name()),
                esc(&t.threat.id),
                esc(&t.threat.title),
                esc(&t.threat.target.label()),
                esc(&t.reason)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>");
    h.push_str(r#"<section class="card"><h3>Changes since the last assessment</h3>"#);
    match &a.changes {
        None => h.push_str("<p class=\"muted\">No baseline given (<code>--baseline FILE</code>); this is the first assessment on record.</p>"),
        Some(c) => {
            let _ = write!(
                h,
                "<p>Overall risk then: {}; now: {}. New findings: <b>{}</b>; fixed: <b>{}</b>; threats whose status changed: <b>{}</b>; new threats: {}; removed threats: {}.</p>",
                c.previous_risk.map(|r| badge(r.name(), r.name())).unwrap_or_else(|| "?".into()),
                badge(a.overall_risk.name(), a.overall_risk.name()),
                c.new_findings.len(),
                c.fixed_findings.len(),
                c.status_changes.len(),
                c.new_threats.len(),
                c.removed_threats.len()
            );
            if !c.status_changes.is_empty() {
                h.push_str("<table><tr><th>Threat</th><th>Then</th><th>Now</th></tr>");
                for (id, then, now) in &c.status_changes {
                    let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(id), status_badge(*then), status_badge(*now));
                }
                h.push_str("</table>");
            }
            if !c.new_findings.is_empty() {
                let _ = write!(h, "<details><summary>New findings ({})</summary><div class=\"ev\">{}</div></details>", c.new_findings.len(), esc(&c.new_findings.join("\n")));
            }
            if !c.fixed_findings.is_empty() {
                let _ = write!(h, "<details><summary>Fixed findings ({})</summary><div class=\"ev\">{}</div></details>", c.fixed_findings.len(), esc(&c.fixed_findings.join("\n")));
            }
        }
    }
    h.push_str("</section>");
}

fn matrix(h: &mut String, a: &Assessment) {
    h.push_str(r#"<h2 id="matrix">Risk matrix</h2><section class="card"><p class="muted">Open and untested threats by likelihood (from each component's exposure) and impact; mitigated threats are not counted. Each cell: open / not tested.</p><table class="matrix" style="width:auto"><tr><th>Likelihood \ Impact</th><th>Low</th><th>Medium</th><th>High</th></tr>"#);
    for l in [Level::High, Level::Medium, Level::Low] {
        let _ = write!(h, "<tr><th>{}</th>", l.name());
        for i in [Level::Low, Level::Medium, Level::High] {
            let cell = |s: Status| {
                a.threats
                    .iter()
                    .filter(|t| t.status == s && t.threat.likelihood == l && t.threat.impact == i)
                    .count()
            };
            let _ = write!(
                h,
                r#"<td class="m-{}">{} / {}</td>"#,
                crate::threats::risk(l, i).name(),
                cell(Status::Open),
                cell(Status::NotTested)
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></section>");
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn measurements(h: &mut String, a: &Assessment) {
    h.push_str(r#"<h2 id="measurements">Measurements</h2>"#);
    for r in &a.results {
        let _ = write!(
            h,
            r#"<section class="card" id="{}"><h3>{} on <code>{}</code></h3>"#,
            esc(&check_anchor(r.check.kind, &r.check.component)),
            esc(r.check.kind.command()),
            esc(&r.check.component)
        );
        match &r.outcome {
            Outcome::Done => {}
            Outcome::Failed { error } => {
                let _ = write!(
                    h,
                    "<p>{} Could not run: {}</p></section>",
                    badge("not-tested", "not run"),
                    esc(error)
                );
                continue;
            }
            Outcome::Interrupted => {
                h.push_str("<p>Interrupted; its partial numbers are not used.</p></section>");
                continue;
            }
        }
        if !r.metrics.is_empty() {
            h.push_str("<table style=\"width:auto\"><tr>");
            for k in r.metrics.keys() {
                let _ = write!(h, "<th>{}</th>", esc(k));
            }
            h.push_str("</tr><tr>");
            for v in r.metrics.values() {
                let _ = write!(h, "<td>{}</td>", fmt_metric(*v));
            }
            h.push_str("</tr></table>");
        }
        h.push_str(r#"<div class="grid">"#);
        charts(h, r, a.max_attack_success_rate);
        h.push_str("</div>");
        let _ = write!(
            h,
            r#"<p class="muted">{} finding(s), {:.1} s.</p></section>"#,
            r.findings.len(),
            r.seconds
        );
    }
}

fn fmt_metric(v: f64) -> String {
    if v == v.round() && v.abs() < 1e12 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn charts(h: &mut String, r: &CheckResult, max_asr: f64) {
    let d = &r.data;
    if let Some(ev) = d.get("evasion") {
        let mut pts: Vec<(f64, f64)> = Vec::new();
        if let Some(c) = num(ev, "clean_accuracy") {
            pts.push((0.0, c));
        }
        for p in ev
            .get("curve")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(e), Some(acc)) = (num(p, "eps"), num(p, "robust_accuracy")) {
                pts.push((e, acc));
            }
        }
        if pts.len() > 1 {
            let name = ev
                .get("curve_attack")
                .and_then(Value::as_str)
                .unwrap_or("attack");
            h.push_str(&svg::line_chart(
                "Robust accuracy versus L-inf budget",
                "epsilon",
                "accuracy",
                &[Series {
                    name: format!("{name} (eps 0 = clean)"),
                    points: pts,
                }],
                false,
            ));
        }
    }
    if let Some(png) = d.get("grid_png").and_then(Value::as_str) {
        let labels = d
            .get("grid_labels")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let _ = write!(
            h,
            r#"<figure style="margin:0"><figcaption><b>Adversarial examples</b> (clean | adversarial | amplified difference)</figcaption><div style="display:flex;gap:8px"><img alt="adversarial example grid" style="image-rendering:pixelated;width:240px" src="data:image/png;base64,{}"><table style="width:auto;font-size:12px">"#,
            esc(png)
        );
        let _ = write!(
            h,
            "<tr><th>true</th><th>clean</th><th>adversarial</th></tr>"
        );
        for l in labels {
            let g = |k: &str| {
                l.get(k)
                    .and_then(Value::as_u64)
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            };
            let flipped = g("clean") != g("adversarial");
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                g("label"),
                g("clean"),
                if flipped {
                    format!("<b style=\"color:#c62828\">{}</b>", g("adversarial"))
                } else {
                    g("adversarial")
                }
            );
        }
        h.push_str("</table></div></figure>");
    }
    if let Some(svg_text) = d.get("roc_svg").and_then(Value::as_str) {
        // Written by aisec-attack's plot module (escaped there); it is our own SVG.
        let _ = write!(h, "<div>{svg_text}</div>");
    }
    if let Some(ex) = d.get("extraction") {
        let mut fid = Vec::new();
        let mut acc = Vec::new();
        for p in ex
            .get("curve")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(q) = num(p, "queries") {
                if let Some(f) = num(p, "fidelity") {
                    fid.push((q, f));
                }
                if let Some(s) = num(p, "surrogate_accuracy") {
                    acc.push((q, s));
                }
            }
        }
        if !fid.is_empty() {
            h.push_str(&svg::line_chart(
                "Model extraction: agreement with the victim",
                "queries",
                "rate",
                &[
                    Series {
                        name: "fidelity (agreement)".into(),
                        points: fid,
                    },
                    Series {
                        name: "surrogate accuracy".into(),
                        points: acc,
                    },
                ],
                true,
            ));
        }
    }
    if let Some(png) = d.get("inversion_png").and_then(Value::as_str) {
        let _ = write!(
            h,
            r#"<figure style="margin:0"><figcaption><b>Reconstructed class representatives</b> (one per class)</figcaption><img alt="model inversion reconstructions" style="image-rendering:pixelated;width:320px" src="data:image/png;base64,{}"></figure>"#,
            esc(png)
        );
    }
    if let Some(f) = d.get("fairness") {
        fairness_section(h, f);
    }
    if let Some(dd) = d.get("defend_data") {
        data_inspection_section(h, dd);
    }
    if let Some(b) = d.get("backdoor").and_then(Value::as_array) {
        backdoor_section(h, b, d.get("triggers_png").and_then(Value::as_str));
    }
    if let Some(e) = d.get("explain") {
        explain_section(h, e);
    }
    if let Some(p) = d.get("probe") {
        let bars: Vec<Bar> = p
            .get("families")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|f| num(f, "n").unwrap_or(0.0) > 0.0)
            .map(|f| Bar {
                label: f
                    .get("family")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                rate: num(f, "rate").unwrap_or(0.0),
                lo: num(f, "ci_low").unwrap_or(0.0),
                hi: num(f, "ci_high").unwrap_or(0.0),
                n: num(f, "n").unwrap_or(0.0) as u64,
            })
            .collect();
        if !bars.is_empty() {
            let title = if r.check.kind == CheckKind::GuardReplay {
                "Attack success through the gateway (95% CI)"
            } else {
                "Attack success per probe family (95% CI)"
            };
            h.push_str(&svg::bar_ci_chart(title, &bars, Some(max_asr)));
        }
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "n/a".into())
}

/// Dataset inspection: per method, the flagged examples per class (and
/// precision/recall against a poisoning manifest when one was given).
fn data_inspection_section(h: &mut String, dd: &Value) {
    let _ = write!(
        h,
        r#"<div><b>Training-data inspection</b> <span class="muted">({} examples, {} classes; activations of the model trained on the data)</span><table style="width:auto"><tr><th>method</th><th>flagged</th><th>classes with flags</th><th>precision</th><th>recall</th></tr>"#,
        dd.get("examples").and_then(Value::as_u64).unwrap_or(0),
        dd.get("classes").and_then(Value::as_u64).unwrap_or(0)
    );
    for m in dd
        .get("methods")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let hit: Vec<String> = m
            .get("classes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c.get("flagged").and_then(Value::as_u64).unwrap_or(0) > 0)
            .map(|c| {
                format!(
                    "{}: {}/{}",
                    c.get("class").and_then(Value::as_u64).unwrap_or(0),
                    c.get("flagged").and_then(Value::as_u64).unwrap_or(0),
                    c.get("examples").and_then(Value::as_u64).unwrap_or(0)
                )
            })
            .collect();
        let det = m.get("detection").unwrap_or(&Value::Null);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(m.get("method").and_then(Value::as_str).unwrap_or("?")),
            m.get("flagged").and_then(Value::as_u64).unwrap_or(0),
            if hit.is_empty() {
                "none".to_string()
            } else {
                esc(&hit.join(", "))
            },
            opt(num(det, "precision"), 3),
            opt(num(det, "recall"), 3)
        );
    }
    h.push_str("</table><p class=\"muted\">Activation clustering flags a class whose activations split into a cluster under 35% of it; spectral signatures rank every class's examples (its flags alone are not a verdict).</p></div>");
}

/// Model inspection: Neural Cleanse's reversed trigger per class, its size
/// and MAD anomaly index, and the trigger picture.
fn backdoor_section(h: &mut String, ins: &[Value], png: Option<&str>) {
    for i in ins {
        let _ = write!(
            h,
            r#"<div><b>Model inspection: {}</b> <span class="muted">(median trigger size {}, 1.4826·MAD {}; a class is flagged at anomaly index 2 or more when its trigger is smaller than the median)</span><table style="width:auto"><tr><th>class</th><th>trigger size</th><th>success</th><th>anomaly index</th><th>flagged</th></tr>"#,
            esc(i.get("method").and_then(Value::as_str).unwrap_or("?")),
            opt(num(i, "median"), 3),
            opt(num(i, "mad"), 3)
        );
        for c in i
            .get("classes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let flagged = c.get("flagged").and_then(Value::as_bool).unwrap_or(false);
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                c.get("class").and_then(Value::as_u64).unwrap_or(0),
                opt(num(c, "size"), 3),
                opt(num(c, "success").map(|v| 100.0 * v), 1) + "%",
                opt(num(c, "anomaly_index"), 2),
                if flagged {
                    badge("high", "flagged")
                } else {
                    String::new()
                }
            );
        }
        h.push_str("</table></div>");
    }
    if let Some(p) = png {
        let _ = write!(
            h,
            r#"<figure style="margin:0"><figcaption><b>Reversed triggers</b> (mask above masked pattern, one column per class)</figcaption><img alt="reverse-engineered triggers" style="image-rendering:pixelated;width:480px" src="data:image/png;base64,{}"></figure>"#,
            esc(p)
        );
    }
}

/// Attributions: heat maps (or a bar chart of the most important features)
/// and the completeness delta of every explained example.
fn explain_section(h: &mut String, e: &Value) {
    let _ = write!(
        h,
        r#"<div><b>Attributions: {}</b> <span class="muted">({} path points, baseline {}; red raises the predicted class's score, blue lowers it)</span><table style="width:auto"><tr><th>example</th><th>label</th><th>predicted</th><th>score − baseline</th><th>sum of attributions</th><th>delta</th></tr>"#,
        esc(e.get("method").and_then(Value::as_str).unwrap_or("?")),
        e.get("steps").and_then(Value::as_u64).unwrap_or(0),
        esc(e.get("baseline").and_then(Value::as_str).unwrap_or("?"))
    );
    for x in e
        .get("examples")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let change = num(x, "score")
            .zip(num(x, "baseline_score"))
            .map(|(a, b)| a - b);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            x.get("index").and_then(Value::as_u64).unwrap_or(0),
            x.get("label").and_then(Value::as_u64).unwrap_or(0),
            x.get("predicted").and_then(Value::as_u64).unwrap_or(0),
            opt(change, 4),
            opt(change.zip(num(x, "delta")).map(|(c, d)| c + d), 4),
            num(x, "delta")
                .map(|d| format!("{d:.2e}"))
                .unwrap_or_else(|| "n/a".into())
        );
    }
    h.push_str("</table>");
    let pngs: Vec<&str> = e
        .get("heatmaps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !pngs.is_empty() {
        h.push_str(r#"<div style="display:flex;flex-wrap:wrap;gap:8px">"#);
        for p in pngs {
            let _ = write!(
                h,
                r#"<img alt="attribution heat map" style="image-rendering:pixelated;width:200px" src="data:image/png;base64,{}">"#,
                esc(p)
            );
        }
        h.push_str("</div>");
    }
    if let Some(svg_text) = e.get("bars_svg").and_then(Value::as_str) {
        // Written by aisec-explain's renderer (it escapes its labels).
        let _ = write!(h, "<div>{svg_text}</div>");
    }
    h.push_str("</div>");
}

fn fairness_section(h: &mut String, f: &Value) {
    let iv = |k: &str| {
        let x = &f[k];
        format!(
            "{:.3} (95% CI {:.3}-{:.3})",
            num(x, "value").unwrap_or(f64::NAN),
            num(x, "low").unwrap_or(f64::NAN),
            num(x, "high").unwrap_or(f64::NAN)
        )
    };
    let _ = write!(
        h,
        r#"<div><b>Group fairness</b> <span class="muted">(positive decision: label {})</span><table style="width:auto"><tr><th>group</th><th>n</th><th>accuracy</th><th>selection rate</th><th>TPR</th><th>FPR</th></tr>"#,
        f.get("positive_label").and_then(Value::as_u64).unwrap_or(0)
    );
    let fmt = |v: Option<f64>| {
        v.filter(|x| x.is_finite())
            .map(|x| format!("{x:.3}"))
            .unwrap_or_else(|| "n/a".into())
    };
    let mut bars = Vec::new();
    for g in f
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            g.get("group").and_then(Value::as_u64).unwrap_or(0),
            g.get("n").and_then(Value::as_u64).unwrap_or(0),
            fmt(num(g, "accuracy")),
            fmt(num(g, "selection_rate")),
            fmt(num(g, "tpr")),
            fmt(num(g, "fpr"))
        );
        let sel = num(g, "selection_rate").unwrap_or(0.0);
        bars.push(Bar {
            label: format!(
                "group {}",
                g.get("group").and_then(Value::as_u64).unwrap_or(0)
            ),
            rate: sel,
            lo: sel,
            hi: sel,
            n: g.get("n").and_then(Value::as_u64).unwrap_or(0),
        });
    }
    let _ = write!(
        h,
        "</table><p>Demographic parity difference {}<br>Equalized odds difference {}<br>Accuracy difference {}</p></div>",
        iv("demographic_parity_difference"),
        iv("equalized_odds_difference"),
        iv("accuracy_difference")
    );
    h.push_str(&svg::bar_ci_chart("Selection rate per group", &bars, None));
}

fn threats(h: &mut String, a: &Assessment) {
    h.push_str(r#"<h2 id="threats">Threats</h2>"#);
    let mut by_target: BTreeMap<String, Vec<&AssessedThreat>> = BTreeMap::new();
    for t in &a.threats {
        by_target
            .entry(t.threat.target.label())
            .or_default()
            .push(t);
    }
    for (target, ts) in by_target {
        let _ = write!(
            h,
            r#"<section class="card"><h3><code>{}</code></h3>"#,
            esc(&target)
        );
        for t in ts {
            let th = &t.threat;
            let taxa: Vec<String> = th
                .atlas
                .iter()
                .map(|x| aisec_core::taxonomy::atlas_label(x))
                .chain(
                    th.owasp
                        .iter()
                        .map(|x| aisec_core::taxonomy::owasp_label(x)),
                )
                .collect();
            let _ = write!(
                h,
                r#"<div id="{}" style="border-left:4px solid #ccc;padding-left:10px;margin:12px 0"><b>{}</b> {} <span class="muted">{} · {} · risk {} (likelihood {}, impact {})</span><br><span class="muted">{}</span><p>{}</p><p><b>Status:</b> {}"#,
                esc(&th.id),
                esc(&th.title),
                status_badge(t.status),
                esc(&th.id),
                esc(th.stride.name()),
                th.inherent_risk().name(),
                th.likelihood.name(),
                th.impact.name(),
                esc(&taxa.join(" · ")),
                esc(&th.description),
                esc(&t.reason)
            );
            match &th.check {
                Some(c) => {
                    let _ = write!(
                        h,
                        r##" <a href="#{}">measurement</a>"##,
                        esc(&check_anchor(c.kind, &c.component))
                    );
                }
                None if t.reason.starts_with("Not testable") => {}
                None => h.push_str(" <i>Not testable by aisec.</i>"),
            }
            let _ = write!(h, "</p><p><b>Control:</b> {}</p>", esc(&th.control));
            if let Some(dc) = &th.declared_control {
                let _ = write!(
                    h,
                    "<p><b>Declared control (not measured):</b> {}</p>",
                    esc(dc)
                );
            }
            if !t.evidence.is_empty() {
                let _ = write!(h, "<details><summary>Evidence: {} finding(s)</summary><table><tr><th>Severity</th><th>Finding</th><th>Evidence</th></tr>", t.evidence.len());
                for f in t.evidence.iter().take(20) {
                    let _ = write!(
                        h,
                        r#"<tr><td>{}</td><td>{}<br><span class="muted">{} · {}</span></td><td><div class="ev">{}</div></td></tr>"#,
                        badge(f.severity.as_str(), f.severity.as_str()),
                        esc(&f.title),
                        esc(&f.rule_id),
                        esc(&f.location.to_string()),
                        esc(&f.evidence)
                    );
                }
                h.push_str("</table></details>");
            }
            h.push_str("</div>");
        }
        h.push_str("</section>");
    }
}

fn control_table(h: &mut String, title: &str, rows: &[ControlView]) {
    let _ = write!(
        h,
        r#"<section class="card"><h3>{}</h3><table><tr><th style="width:150px">Control</th><th style="width:110px">Verdict</th><th>Measured evidence</th><th>Manual review</th></tr>"#,
        esc(title)
    );
    for c in rows {
        let ev: Vec<String> = c
            .measured
            .iter()
            .map(|e| {
                let nums: Vec<String> = e
                    .metrics
                    .iter()
                    .take(4)
                    .map(|(k, v)| format!("{k} {}", fmt_metric(*v)))
                    .collect();
                format!(
                    r##"{} <a href="#{}">{}</a>{}"##,
                    status_badge(e.status),
                    esc(&e.threat),
                    esc(&e.threat),
                    if nums.is_empty() {
                        String::new()
                    } else {
                        format!(" <span class=\"muted\">({})</span>", esc(&nums.join(", ")))
                    }
                )
            })
            .collect();
        let _ = write!(
            h,
            r#"<tr><td><b>{}</b><br><span class="muted">{}</span></td><td>{}</td><td>{}</td><td class="muted">{}</td></tr>"#,
            esc(&c.id),
            esc(&c.text),
            verdict_badge(c.verdict),
            if ev.is_empty() {
                "<i>none</i>".into()
            } else {
                ev.join("<br>")
            },
            esc(&c.manual.join(", "))
        );
    }
    h.push_str("</table></section>");
}

fn compliance_views(h: &mut String, a: &Assessment) {
    h.push_str(r#"<h2 id="compliance">Compliance views</h2><p class="muted">Every verdict comes from measurements: a control is <i>contradicted</i> when a measured threat is open, <i>supported</i> when every measured threat is mitigated, and shows <i>no measurement</i> otherwise (its threats are then listed for manual review).</p>"#);
    let mut controls = compliance::controls(&a.threats);
    controls.extend(compliance::fairness(&a.results));
    controls.extend(compliance::explainability(&a.results));
    for fw in [
        compliance::NIST_AI_RMF,
        compliance::EU_AI_ACT,
        compliance::EU_AI_ACT_13,
        compliance::ISO_42001,
    ] {
        let rows: Vec<ControlView> = controls
            .iter()
            .filter(|c| c.framework == fw)
            .cloned()
            .collect();
        if !rows.is_empty() {
            control_table(h, fw, &rows);
        }
    }
    let o = compliance::owasp_llm(&a.threats);
    if !o.is_empty() {
        control_table(h, "OWASP Top 10 for LLM Applications 2025", &o);
    }
    control_table(
        h,
        "MITRE ATLAS techniques (the Navigator layer: aisec assess --navigator FILE)",
        &compliance::atlas(&a.threats),
    );
}

fn appendix(h: &mut String, a: &Assessment) {
    h.push_str(r#"<h2 id="appendix">Checks run</h2><section class="card"><table><tr><th>Check</th><th>Component</th><th>Outcome</th><th>Findings</th><th>Seconds</th></tr>"#);
    for r in &a.results {
        let outcome = match &r.outcome {
            Outcome::Done => "done".to_string(),
            Outcome::Failed { error } => format!("failed: {error}"),
            Outcome::Interrupted => "interrupted".into(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
            esc(r.check.kind.command()),
            esc(&r.check.component),
            esc(&outcome),
            r.findings.len(),
            r.seconds
        );
    }
    h.push_str("</table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::assess;
    use crate::system::SystemDescription;
    use crate::threats::{plan, CheckRef};
    use serde_json::json;

    #[test]
    fn report_is_self_contained_and_shows_every_part() {
        let d = SystemDescription::parse(crate::threats::tests_example()).unwrap();
        let m = plan(&d);
        let ev = CheckResult {
            check: CheckRef {
                kind: CheckKind::Evasion,
                component: "cnn".into(),
            },
            outcome: Outcome::Done,
            exercised: vec!["AML.T0015".into()],
            findings: vec![],
            metrics: [("robust_accuracy".to_string(), 0.25)].into(),
            data: json!({"evasion": {"clean_accuracy": 1.0, "curve_attack": "pgd", "curve": [{"eps": 0.05, "robust_accuracy": 0.5}, {"eps": 0.1, "robust_accuracy": 0.25}]},
                         "grid_png": "iVBORw0KGgo=", "grid_labels": [{"label": 3, "clean": 3, "adversarial": 8}]}),
            seconds: 1.0,
        };
        let pr = CheckResult {
            check: CheckRef {
                kind: CheckKind::Probe,
                component: "chat".into(),
            },
            outcome: Outcome::Done,
            exercised: vec!["AML.T0051.000".into()],
            findings: vec![],
            metrics: BTreeMap::new(),
            data: json!({"probe": {"families": [{"family": "injection", "n": 10, "rate": 0.4, "ci_low": 0.2, "ci_high": 0.6}]}}),
            seconds: 1.0,
        };
        let results = vec![ev, pr];
        let threats = assess(&m, &results);
        let a = Assessment {
            system: d.system.clone(),
            version: "0.1.0".into(),
            overall_risk: crate::status::overall_risk(&threats),
            threats,
            results,
            changes: None,
            max_attack_success_rate: 0.05,
        };
        let html = render(&a);
        for needle in [
            "Executive summary",
            "Risk matrix",
            "Robust accuracy versus L-inf budget",
            "data:image/png;base64,",
            "Attack success per probe family",
            "EU AI Act Art. 15",
            "ISO/IEC 42001",
            "MEASURE 2.7",
            "OWASP Top 10 for LLM",
            "TM-LLM-AGENCY@chat",
            "Findings by severity",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src=\"http"), "no external resources");
        assert!(
            !html.contains("@import") && !html.contains("url("),
            "no external fonts"
        );
    }
}
