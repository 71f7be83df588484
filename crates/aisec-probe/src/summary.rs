//! Turns a [`RunOutcome`] into an [`aisec_core::Report`]: one finding per
//! probe that succeeded at least once, with its attack success rate, Wilson
//! 95% interval and sample size as metrics; per-probe and per-family tables
//! in `Report.data["probe"]`.

use std::collections::BTreeMap;

use aisec_core::{Confidence, Location, Report, Severity};
use serde_json::{json, Value};

use crate::detect::Outcome;
use crate::harness::{AttemptRecord, RunOutcome};
use crate::probes::Family;
use crate::stats::{wilson, Z95};

/// Counts for one probe or family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Attacks that worked.
    pub hits: u64,
    /// Attacks that did not.
    pub misses: u64,
    /// Replies no detector could score (judge answer unparseable...).
    pub unscored: u64,
    /// Attempts that failed (transport, HTTP, malformed response).
    pub errors: u64,
    /// Highest confidence among the hits.
    pub best_hit_confidence: f64,
}

impl Tally {
    /// Adds an attempt.
    pub fn add(&mut self, r: &AttemptRecord) {
        match (&r.verdict, &r.error) {
            (Some(v), _) => match v.outcome {
                Outcome::Hit => {
                    self.hits += 1;
                    self.best_hit_confidence = self.best_hit_confidence.max(v.confidence);
                }
                Outcome::Miss => self.misses += 1,
                Outcome::Unscored => self.unscored += 1,
            },
            (None, _) => self.errors += 1,
        }
    }

    /// Scored attempts (hits + misses): the denominator of the rate.
    pub fn n(&self) -> u64 {
        self.hits + self.misses
    }

    /// Attack success rate over scored attempts (0 when none).
    pub fn rate(&self) -> f64 {
        if self.n() == 0 {
            0.0
        } else {
            self.hits as f64 / self.n() as f64
        }
    }

    /// JSON row.
    pub fn to_json(&self) -> Value {
        let (lo, hi) = wilson(self.hits, self.n(), Z95);
        json!({"hits": self.hits, "misses": self.misses, "n": self.n(), "unscored": self.unscored,
               "errors": self.errors, "rate": round4(self.rate()), "ci_low": round4(lo), "ci_high": round4(hi)})
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn excerpt(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out.replace('\n', "⏎")
}

/// Options for building the report.
#[derive(Debug, Clone, Default)]
pub struct SummaryOptions {
    /// Probes whose attack success rate is at or below this are reported at
    /// `info` severity, so `--fail-on low` fails exactly when a probe exceeds it.
    pub max_asr: Option<f64>,
}

/// Builds the report.
pub fn build_report(out: &RunOutcome, opts: &SummaryOptions) -> Report {
    let mut report = Report::new("probe");
    report.add_rules(crate::RULES);
    let loc_base = out.target.url.clone();
    let mut per_probe: BTreeMap<&str, (Tally, Option<&AttemptRecord>, Option<&str>)> =
        BTreeMap::new();
    let mut per_family: BTreeMap<Family, Tally> = BTreeMap::new();
    for r in &out.records {
        let e = per_probe.entry(r.probe.as_str()).or_default();
        e.0.add(r);
        if r.is_hit() {
            let better = match e.1 {
                None => true,
                Some(prev) => {
                    let c =
                        |x: &AttemptRecord| x.verdict.as_ref().map(|v| v.confidence).unwrap_or(0.0);
                    c(r) > c(prev)
                }
            };
            if better {
                e.1 = Some(r);
            }
        }
        if e.2.is_none() {
            e.2 = r.error.as_deref();
        }
        per_family.entry(r.family).or_default().add(r);
    }
    let mut rows = Vec::new();
    let mut exceeded = false;
    for p in &out.probes {
        let Some((t, hit, err)) = per_probe.get(p.id.as_str()) else {
            continue;
        };
        let mut row = t.to_json();
        if let Some(o) = row.as_object_mut() {
            o.insert("probe".into(), p.id.clone().into());
            o.insert("family".into(), p.family.as_str().into());
            o.insert("rule".into(), p.family.rule().id.into());
        }
        rows.push(row);
        if t.errors > 0 {
            report.error(
                p.id.clone(),
                format!(
                    "{} attempt(s) failed: {}",
                    t.errors,
                    err.unwrap_or("unknown error")
                ),
            );
        }
        let Some(hit) = hit else { continue };
        let rule = p.family.rule();
        let (lo, hi) = wilson(t.hits, t.n(), Z95);
        let prompt = hit
            .conversation
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.as_str())
            .unwrap_or("");
        let reply = hit
            .conversation
            .iter()
            .rev()
            .find(|m| m.role == "assistant")
            .map(|m| m.content.as_str())
            .unwrap_or("");
        let v = hit.verdict.as_ref();
        let evidence = format!(
            "{}/{} attempts succeeded (ASR {:.0}%, 95% CI {:.0}-{:.0}%). Detector {}: {}. Prompt: \"{}\" Reply: \"{}\"",
            t.hits,
            t.n(),
            t.rate() * 100.0,
            lo * 100.0,
            hi * 100.0,
            v.map(|v| v.detector.as_str()).unwrap_or("?"),
            v.map(|v| excerpt(&v.detail, 200)).unwrap_or_default(),
            excerpt(prompt, 240),
            excerpt(reply, 240),
        );
        let over = match opts.max_asr {
            Some(m) => t.rate() > m,
            None => true,
        };
        exceeded |= over && opts.max_asr.is_some();
        let conf = if t.best_hit_confidence >= 0.9 {
            Confidence::High
        } else if t.best_hit_confidence >= 0.5 {
            Confidence::Medium
        } else {
            Confidence::Low
        };
        let mut f = rule
            .finding(
                Location::path(loc_base.clone()).with_member(p.id.clone()),
                evidence,
            )
            .title(format!("{} [{}: {}/{}]", rule.title, p.id, t.hits, t.n()))
            .confidence(conf)
            .metric("rate", round4(t.rate()))
            .metric("ci_low", round4(lo))
            .metric("ci_high", round4(hi))
            .metric("n", t.n())
            .metric("hits", t.hits)
            .metric("unscored", t.unscored)
            .metric("errors", t.errors);
        if p.buff.is_some() && p.family != Family::Encoding {
            f = f.also_atlas("AML.T0068");
        }
        if !over {
            f = f.severity(Severity::Info);
        } else if conf == Confidence::Low && rule.default_severity > Severity::Low {
            f = f.severity(Severity::Low);
        }
        report.extend([f]);
    }
    let families: Vec<Value> = per_family
        .iter()
        .map(|(fam, t)| {
            let mut v = t.to_json();
            if let Some(o) = v.as_object_mut() {
                o.insert("family".into(), fam.as_str().into());
                o.insert("rule".into(), fam.rule().id.into());
                o.insert("atlas".into(), json!(fam.rule().atlas));
                o.insert("owasp".into(), json!(fam.rule().owasp));
            }
            v
        })
        .collect();
    let sent = out.records.len() - out.resumed;
    let aps = if out.wall_seconds > 0.0 {
        sent as f64 / out.wall_seconds
    } else {
        0.0
    };
    report.data.insert(
        "probe".into(),
        json!({
            "target": out.target.describe(),
            "seed": out.seed,
            "system_canary_planted": out.system_canary.is_some(),
            "attempts": out.records.len(),
            "resumed": out.resumed,
            "requests": out.requests,
            "retries": out.retries,
            "wall_seconds": round4(out.wall_seconds),
            "attempts_per_second": round4(aps),
            "interrupted": out.interrupted,
            "max_asr": opts.max_asr,
            "max_asr_exceeded": exceeded,
            "families": families,
            "probes": rows,
        }),
    );
    if out.interrupted {
        report.error(
            "probe",
            "run interrupted; continue it with --resume and the same --journal",
        );
    }
    report.summary.items = out.records.len() as u64;
    report.summary.seconds = out.wall_seconds;
    report.finish();
    report
}

/// A plain-text per-family table (for stderr).
pub fn family_table(report: &Report) -> String {
    let mut s = String::from("family        hits/n     ASR    95% CI         unscored errors\n");
    let fams = report
        .data
        .get("probe")
        .and_then(|p| p.get("families"))
        .and_then(|f| f.as_array());
    for f in fams.into_iter().flatten() {
        let g = |k: &str| f.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
        s.push_str(&format!(
            "{:<13} {:>4}/{:<5} {:>5.1}%  [{:>5.1}, {:>5.1}]  {:>8} {:>6}\n",
            f.get("family").and_then(|v| v.as_str()).unwrap_or("?"),
            g("hits"),
            g("n"),
            g("rate") * 100.0,
            g("ci_low") * 100.0,
            g("ci_high") * 100.0,
            g("unscored"),
            g("errors"),
        ));
    }
    s
}
