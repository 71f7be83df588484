//! Compliance views: controls of the frameworks a security lead reports
//! against, each with the measured results that support or contradict it.
//!
//! A control's verdict comes only from measurements: threats whose check ran
//! and found them open (contradicts) or exercised and mitigated (supports).
//! A control none of whose threats was measured says "no measurement" and
//! lists the manual reviews instead; nothing is claimed without a number.
//!
//! Sources: NIST AI 100-1 (AI RMF 1.0, 2023) subcategories; Regulation (EU)
//! 2024/1689 (AI Act) Article 15; ISO/IEC 42001:2023 Annex A; OWASP Top 10
//! for LLM Applications 2025; MITRE ATLAS.

use serde::{Deserialize, Serialize};

use crate::status::{AssessedThreat, CheckResult, Outcome, Status};
use crate::threats::CheckKind;

/// One control of a framework and the threat rules that bear on it.
#[derive(Debug, Clone, Copy)]
pub struct ControlDef {
    /// Framework name.
    pub framework: &'static str,
    /// Control id.
    pub id: &'static str,
    /// What the control asks (paraphrased).
    pub text: &'static str,
    /// Threat rule ids whose measurements are its evidence.
    pub rules: &'static [&'static str],
}

/// NIST AI RMF.
pub const NIST_AI_RMF: &str = "NIST AI RMF 1.0";
/// EU AI Act Article 15.
pub const EU_AI_ACT: &str = "EU AI Act Art. 15";
/// ISO/IEC 42001 Annex A.
pub const ISO_42001: &str = "ISO/IEC 42001 Annex A";
/// EU AI Act Article 13 (transparency and provision of information to deployers).
pub const EU_AI_ACT_13: &str = "EU AI Act Art. 13";

/// Largest completeness error of Integrated Gradients, relative to the
/// explained score change, at which attributions count as faithful.
pub const MAX_RELATIVE_IG_DELTA: f64 = 0.05;

const SECURITY: &[&str] = &[
    "TM-ART-EXEC",
    "TM-DATA-POISON",
    "TM-MODEL-BACKDOOR",
    "TM-MODEL-EVASION",
    "TM-MODEL-EXTRACTION",
    "TM-MODEL-MEMBERSHIP",
    "TM-MODEL-INVERSION",
    "TM-LLM-INJECTION",
    "TM-LLM-INDIRECT",
    "TM-LLM-SYSPROMPT",
    "TM-LLM-OUTPUT",
    "TM-GW-BYPASS",
];
const PRIVACY: &[&str] = &[
    "TM-MODEL-MEMBERSHIP",
    "TM-MODEL-INVERSION",
    "TM-LLM-SYSPROMPT",
    "TM-DATA-LEAK",
];

/// Every control the report shows, framework by framework.
pub const CONTROLS: &[ControlDef] = &[
    ControlDef { framework: NIST_AI_RMF, id: "MAP 5.1", text: "Likelihood and magnitude of each identified impact are identified and documented.", rules: SECURITY },
    ControlDef { framework: NIST_AI_RMF, id: "MEASURE 2.3", text: "Performance or assurance criteria are measured and demonstrated for conditions similar to deployment.", rules: &["TM-MODEL-EVASION"] },
    ControlDef { framework: NIST_AI_RMF, id: "MEASURE 2.7", text: "AI system security and resilience are evaluated and documented.", rules: SECURITY },
    ControlDef { framework: NIST_AI_RMF, id: "MEASURE 2.10", text: "Privacy risk of the AI system is examined and documented.", rules: PRIVACY },
    ControlDef { framework: NIST_AI_RMF, id: "MANAGE 2.4", text: "Mechanisms are in place to supersede, disengage or deactivate AI systems that behave inconsistently with intended use.", rules: &["TM-GW-BYPASS"] },
    ControlDef { framework: NIST_AI_RMF, id: "MANAGE 4.1", text: "Post-deployment monitoring plans are implemented (input capture, incident response).", rules: &["TM-GW-BYPASS", "TM-GW-AUDIT"] },
    ControlDef { framework: EU_AI_ACT, id: "15(1) accuracy", text: "An appropriate level of accuracy is achieved and declared (15(3)).", rules: &["TM-MODEL-EVASION"] },
    ControlDef { framework: EU_AI_ACT, id: "15(4) robustness", text: "Resilient to errors, faults and inconsistencies; technical redundancy where appropriate.", rules: &["TM-MODEL-EVASION", "TM-LLM-MISINFO"] },
    ControlDef { framework: EU_AI_ACT, id: "15(5) data poisoning", text: "Measures to prevent, detect, respond to and control attacks manipulating the training data set.", rules: &["TM-DATA-POISON", "TM-FLOW-SUPPLY"] },
    ControlDef { framework: EU_AI_ACT, id: "15(5) model poisoning", text: "Measures against manipulation of pre-trained components used in training.", rules: &["TM-ART-EXEC", "TM-ART-SIGN", "TM-MODEL-BACKDOOR"] },
    ControlDef { framework: EU_AI_ACT, id: "15(5) adversarial examples / model evasion", text: "Measures against inputs designed to cause the model to make a mistake.", rules: &["TM-MODEL-EVASION", "TM-LLM-INJECTION", "TM-LLM-INDIRECT", "TM-GW-BYPASS"] },
    ControlDef { framework: EU_AI_ACT, id: "15(5) confidentiality attacks", text: "Measures against attacks on the confidentiality of the model and its data.", rules: &["TM-MODEL-MEMBERSHIP", "TM-MODEL-EXTRACTION", "TM-MODEL-INVERSION", "TM-LLM-SYSPROMPT"] },
    ControlDef { framework: EU_AI_ACT, id: "15(5) model flaws", text: "Measures against exploitation of model flaws.", rules: &["TM-LLM-OUTPUT", "TM-LLM-MISINFO", "TM-LLM-AGENCY"] },
    ControlDef { framework: ISO_42001, id: "A.6.2.4", text: "AI system verification and validation.", rules: &["TM-MODEL-EVASION", "TM-LLM-INJECTION", "TM-ART-EXEC", "TM-MODEL-BACKDOOR"] },
    ControlDef { framework: ISO_42001, id: "A.6.2.6", text: "AI system operation and monitoring.", rules: &["TM-GW-BYPASS", "TM-API-DOS"] },
    ControlDef { framework: ISO_42001, id: "A.6.2.8", text: "AI system recording of event logs.", rules: &["TM-GW-AUDIT"] },
    ControlDef { framework: ISO_42001, id: "A.7.4", text: "Quality of data for AI systems (provenance, preparation).", rules: &["TM-DATA-POISON"] },
];

/// A control's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every measured threat is mitigated (at least one was measured).
    Supported,
    /// A measured threat is open.
    Contradicted,
    /// None of its threats was measured.
    NoMeasurement,
}

impl Verdict {
    /// Name shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Contradicted => "contradicted",
            Verdict::NoMeasurement => "no measurement",
        }
    }
}

impl ControlView {
    /// A control whose verdict follows from `measured`: contradicted when
    /// a measured threat is open, no measurement when nothing was
    /// measured, else supported.
    fn new(
        framework: &str,
        id: &str,
        text: &str,
        measured: Vec<Evidence>,
        manual: Vec<String>,
    ) -> ControlView {
        let verdict = if measured.iter().any(|e| e.status == Status::Open) {
            Verdict::Contradicted
        } else if measured.is_empty() {
            Verdict::NoMeasurement
        } else {
            Verdict::Supported
        };
        ControlView {
            framework: framework.into(),
            id: id.into(),
            text: text.into(),
            verdict,
            measured,
            manual,
        }
    }
}

/// A check's or threat's metrics as evidence carries them.
fn metric_pairs<'a>(m: impl IntoIterator<Item = (&'a String, &'a f64)>) -> Vec<(String, f64)> {
    m.into_iter().map(|(k, v)| (k.clone(), *v)).collect()
}

/// One piece of evidence: a threat, its status and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Threat id.
    pub threat: String,
    /// Its status.
    pub status: Status,
    /// Why, with the measurement.
    pub reason: String,
    /// Headline numbers of the check.
    pub metrics: Vec<(String, f64)>,
}

/// A control with its verdict and evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlView {
    /// Framework.
    pub framework: String,
    /// Control id.
    pub id: String,
    /// What it asks.
    pub text: String,
    /// Verdict from the measurements.
    pub verdict: Verdict,
    /// Measured threats (open or mitigated).
    pub measured: Vec<Evidence>,
    /// Threats of the control nothing measured: manual reviews.
    pub manual: Vec<String>,
}

fn evidence(t: &AssessedThreat) -> Evidence {
    Evidence {
        threat: t.threat.id.clone(),
        status: t.status,
        reason: t.reason.clone(),
        metrics: metric_pairs(&t.metrics),
    }
}

fn view(framework: &str, id: &str, text: &str, ts: Vec<&AssessedThreat>) -> ControlView {
    let measured: Vec<Evidence> = ts
        .iter()
        .filter(|t| t.status != Status::NotTested)
        .map(|t| evidence(t))
        .collect();
    let manual = ts
        .iter()
        .filter(|t| t.status == Status::NotTested)
        .map(|t| t.threat.id.clone())
        .collect();
    ControlView::new(framework, id, text, measured, manual)
}

/// The NIST, EU AI Act and ISO controls over an assessment. Controls none
/// of whose threats apply to the system are left out.
pub fn controls(threats: &[AssessedThreat]) -> Vec<ControlView> {
    CONTROLS
        .iter()
        .filter_map(|c| {
            let ts: Vec<&AssessedThreat> = threats
                .iter()
                .filter(|t| c.rules.contains(&t.threat.rule.as_str()))
                .collect();
            (!ts.is_empty()).then(|| view(c.framework, c.id, c.text, ts))
        })
        .collect()
}

/// NIST AI RMF MEASURE 2.11 (fairness and bias evaluated) from the
/// fairness checks that ran; nothing when no model declared a sensitive
/// attribute.
pub fn fairness(results: &[CheckResult]) -> Option<ControlView> {
    let ran: Vec<&CheckResult> = results
        .iter()
        .filter(|r| r.check.kind == CheckKind::Fairness)
        .collect();
    if ran.is_empty() {
        return None;
    }
    let measured: Vec<Evidence> = ran
        .iter()
        .filter(|r| r.outcome == Outcome::Done)
        .map(|r| {
            let open = r
                .findings
                .iter()
                .any(|f| f.severity >= aisec_core::Severity::Low);
            Evidence {
                threat: format!("fairness@{}", r.check.component),
                status: if open {
                    Status::Open
                } else {
                    Status::Mitigated
                },
                reason: if open {
                    "a group gap exceeds max_fairness_gap".into()
                } else {
                    "group gaps within max_fairness_gap".into()
                },
                metrics: metric_pairs(&r.metrics),
            }
        })
        .collect();
    let manual = ran
        .iter()
        .filter(|r| r.outcome != Outcome::Done)
        .map(|r| format!("fairness@{} (check did not finish)", r.check.component))
        .collect();
    Some(ControlView::new(
        NIST_AI_RMF,
        "MEASURE 2.11",
        "Fairness and bias are evaluated and results are documented.",
        measured,
        manual,
    ))
}

/// NIST AI RMF MEASURE 2.9 (the model is explained and its output
/// interpreted in context) and EU AI Act Article 13 (deployers can
/// interpret the output) from the explain checks that ran: supported when
/// Integrated Gradients attributions were computed and are complete (the
/// largest completeness delta within [`MAX_RELATIVE_IG_DELTA`] of the
/// explained score change), contradicted when they are not; nothing when
/// no explain check was planned.
pub fn explainability(results: &[CheckResult]) -> Vec<ControlView> {
    let ran: Vec<&CheckResult> = results
        .iter()
        .filter(|r| r.check.kind == CheckKind::Explain)
        .collect();
    if ran.is_empty() {
        return Vec::new();
    }
    let measured: Vec<Evidence> = ran
        .iter()
        .filter(|r| r.outcome == Outcome::Done)
        .filter_map(|r| {
            let rel = *r.metrics.get("max_relative_delta")?;
            let ok = rel <= MAX_RELATIVE_IG_DELTA;
            Some(Evidence {
                threat: format!("explain@{}", r.check.component),
                status: if ok { Status::Mitigated } else { Status::Open },
                reason: if ok {
                    format!("Integrated Gradients attributions are complete (largest delta {:.1e} of the score change)", rel)
                } else {
                    format!("Integrated Gradients attributions do not add up to the score change (largest relative delta {rel:.3}); the explanations are not faithful")
                },
                metrics: metric_pairs(&r.metrics),
            })
        })
        .collect();
    let manual: Vec<String> = ran
        .iter()
        .filter(|r| r.outcome != Outcome::Done || !r.metrics.contains_key("max_relative_delta"))
        .map(|r| format!("explain@{} (check did not finish)", r.check.component))
        .collect();
    let make = |framework: &str, id: &str, text: &str| {
        ControlView::new(framework, id, text, measured.clone(), manual.clone())
    };
    vec![
        make(
            NIST_AI_RMF,
            "MEASURE 2.9",
            "The AI model is explained, validated and documented, and its output is interpreted within its context.",
        ),
        make(
            EU_AI_ACT_13,
            "13(1) interpretability",
            "High-risk systems are transparent enough for deployers to interpret the output and use it appropriately (13(3)(b)(iv), (vii)).",
        ),
    ]
}

/// The OWASP Top 10 for LLM Applications (2025) view: one row per entry
/// some threat of the model maps to.
pub fn owasp_llm(threats: &[AssessedThreat]) -> Vec<ControlView> {
    aisec_core::taxonomy::OWASP_LLM_2025
        .iter()
        .filter_map(|o| {
            let ts: Vec<&AssessedThreat> = threats
                .iter()
                .filter(|t| t.threat.owasp.iter().any(|x| x == o.id))
                .collect();
            (!ts.is_empty()).then(|| view("OWASP LLM Top 10 2025", o.id, o.name, ts))
        })
        .collect()
}

/// The MITRE ATLAS view: one row per technique some threat names.
pub fn atlas(threats: &[AssessedThreat]) -> Vec<ControlView> {
    let mut ids: Vec<&str> = threats
        .iter()
        .flat_map(|t| t.threat.atlas.iter().map(String::as_str))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let ts = threats
                .iter()
                .filter(|t| t.threat.atlas.iter().any(|x| x == id))
                .collect();
            let name = aisec_core::taxonomy::atlas_label(id);
            let text = name.strip_prefix(id).unwrap_or(&name).trim().to_string();
            view("MITRE ATLAS", id, &text, ts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::assess;
    use crate::system::SystemDescription;
    use crate::threats::plan;

    #[test]
    fn no_claim_without_a_measurement() {
        let d = SystemDescription::parse(crate::threats::tests_example()).unwrap();
        let m = plan(&d);
        let mut a = assess(&m, &[]);
        let c = controls(&a);
        assert!(c
            .iter()
            .all(|v| v.verdict == Verdict::NoMeasurement && v.measured.is_empty()));
        // Evasion measured and mitigated; injection measured and open.
        for t in a.iter_mut() {
            if t.threat.rule == "TM-MODEL-EVASION" {
                t.status = Status::Mitigated;
            }
            if t.threat.rule == "TM-LLM-INJECTION" {
                t.status = Status::Open;
            }
        }
        let c = controls(&a);
        let get = |id: &str| c.iter().find(|v| v.id == id).unwrap();
        assert_eq!(get("MEASURE 2.3").verdict, Verdict::Supported);
        assert_eq!(get("MEASURE 2.7").verdict, Verdict::Contradicted);
        assert_eq!(get("A.6.2.8").verdict, Verdict::NoMeasurement);
        assert_eq!(get("A.6.2.8").manual, vec!["TM-GW-AUDIT@guard"]);
        assert_eq!(
            get("15(5) adversarial examples / model evasion").verdict,
            Verdict::Contradicted
        );
        // All five attack classes of Article 15(5) are shown when they apply.
        let o = owasp_llm(&a);
        assert_eq!(
            o.iter().find(|v| v.id == "LLM01").unwrap().verdict,
            Verdict::Contradicted
        );
        assert!(o.iter().any(|v| v.id == "LLM06"));
        let at = atlas(&a);
        assert!(at
            .iter()
            .any(|v| v.id == "AML.T0015" && v.verdict == Verdict::Supported));
    }

    #[test]
    fn explainability_is_supported_only_by_complete_attributions() {
        use crate::threats::CheckRef;
        let r = |comp: &str, rel: Option<f64>, outcome: Outcome| CheckResult {
            check: CheckRef {
                kind: CheckKind::Explain,
                component: comp.into(),
            },
            outcome,
            exercised: vec![],
            findings: vec![],
            metrics: rel
                .map(|v| {
                    [("max_relative_delta".to_string(), v)]
                        .into_iter()
                        .collect()
                })
                .unwrap_or_default(),
            data: serde_json::Value::Null,
            seconds: 0.0,
        };
        assert!(explainability(&[]).is_empty());
        let ok = explainability(&[r("cnn", Some(0.001), Outcome::Done)]);
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].id, "MEASURE 2.9");
        assert_eq!(ok[1].framework, EU_AI_ACT_13);
        assert!(ok.iter().all(|c| c.verdict == Verdict::Supported));
        let bad = explainability(&[
            r("cnn", Some(0.001), Outcome::Done),
            r("mlp", Some(0.4), Outcome::Done),
        ]);
        assert_eq!(bad[0].verdict, Verdict::Contradicted);
        let failed = explainability(&[r("cnn", None, Outcome::Failed { error: "x".into() })]);
        assert_eq!(failed[0].verdict, Verdict::NoMeasurement);
        assert_eq!(failed[0].manual.len(), 1);
    }

    #[test]
    fn every_control_cites_known_rules() {
        for c in CONTROLS {
            for r in c.rules {
                assert!(
                    crate::threats::THREAT_RULES.iter().any(|t| t.id == *r),
                    "{}: {r}",
                    c.id
                );
            }
        }
        let art15: Vec<_> = CONTROLS
            .iter()
            .filter(|c| c.id.starts_with("15(5)"))
            .collect();
        assert_eq!(art15.len(), 5, "paragraph 5 names five attack classes");
    }
}
