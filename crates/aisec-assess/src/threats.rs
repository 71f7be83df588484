//! The threat model: STRIDE categories crossed with MITRE ATLAS techniques
//! and OWASP LLM Top 10 ids, derived from a [`SystemDescription`] by a table
//! of rules ([`THREAT_RULES`]) over components and data flows.
//!
//! STRIDE is Microsoft's threat classification (Kohnfelder and Garg, "The
//! threats to our products", 1999; Shostack, *Threat Modeling*, 2014). The
//! AI-specific rows follow MITRE ATLAS (atlas.mitre.org) and the OWASP Top 10
//! for LLM Applications 2025; each row names the aisec check that measures
//! it or, when aisec cannot, the manual control a reviewer should look for.

use serde::{Deserialize, Serialize};

use crate::system::{
    Component, ComponentKind, DataSource, Exposure, Flow, Outputs, SystemDescription,
};

/// The six STRIDE categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stride {
    /// Pretending to be someone or something else.
    Spoofing,
    /// Changing data, code or models.
    Tampering,
    /// Denying an action for lack of evidence.
    Repudiation,
    /// Exposing information to those not meant to have it.
    InformationDisclosure,
    /// Making the service unavailable.
    DenialOfService,
    /// Gaining capabilities without authorisation.
    ElevationOfPrivilege,
}

impl Stride {
    /// The name as Threat Dragon writes it.
    pub fn name(self) -> &'static str {
        match self {
            Stride::Spoofing => "Spoofing",
            Stride::Tampering => "Tampering",
            Stride::Repudiation => "Repudiation",
            Stride::InformationDisclosure => "Information disclosure",
            Stride::DenialOfService => "Denial of service",
            Stride::ElevationOfPrivilege => "Elevation of privilege",
        }
    }

    /// Parses a Threat Dragon STRIDE type name (case-insensitive).
    pub fn parse(s: &str) -> Option<Stride> {
        let l = s.to_ascii_lowercase();
        [
            Stride::Spoofing,
            Stride::Tampering,
            Stride::Repudiation,
            Stride::InformationDisclosure,
            Stride::DenialOfService,
            Stride::ElevationOfPrivilege,
        ]
        .into_iter()
        .find(|x| x.name().to_ascii_lowercase() == l)
    }
}

/// The aisec check that measures a threat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// `aisec scan` of the artifact folder.
    Scan,
    /// `aisec attack evasion` (FGSM, PGD, robust-accuracy curve).
    Evasion,
    /// `aisec attack membership` (loss threshold attack).
    Membership,
    /// `aisec attack extraction` (Knockoff-style surrogate).
    Extraction,
    /// `aisec attack inversion` (MI-Face).
    Inversion,
    /// `aisec probe` against the LLM endpoint.
    Probe,
    /// The same probes replayed through the gateway in front of the endpoint.
    GuardReplay,
    /// Group fairness of a model's decisions over a sensitive attribute
    /// (governance, outside STRIDE: planned for every model that names one).
    Fairness,
    /// `aisec defend data`: activation clustering and spectral signatures
    /// of a training set, through the model trained on it.
    PoisonData,
    /// `aisec defend model`: Neural Cleanse on a model, without its data.
    Backdoor,
    /// `aisec explain`: Integrated Gradients on a few examples, with the
    /// completeness delta (transparency evidence, outside STRIDE).
    Explain,
}

impl CheckKind {
    /// Short name (`scan`, `evasion`...).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Scan => "scan",
            CheckKind::Evasion => "evasion",
            CheckKind::Membership => "membership",
            CheckKind::Extraction => "extraction",
            CheckKind::Inversion => "inversion",
            CheckKind::Probe => "probe",
            CheckKind::GuardReplay => "guard-replay",
            CheckKind::Fairness => "fairness",
            CheckKind::PoisonData => "poison-data",
            CheckKind::Backdoor => "backdoor",
            CheckKind::Explain => "explain",
        }
    }

    /// Every kind, in plan order.
    pub const ALL: [CheckKind; 11] = [
        CheckKind::Scan,
        CheckKind::Evasion,
        CheckKind::Membership,
        CheckKind::Extraction,
        CheckKind::Inversion,
        CheckKind::Probe,
        CheckKind::GuardReplay,
        CheckKind::Fairness,
        CheckKind::PoisonData,
        CheckKind::Backdoor,
        CheckKind::Explain,
    ];

    /// Parses a short name (`scan`, `poison-data`...).
    pub fn parse(s: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The command a person would run for the same measurement.
    pub fn command(self) -> &'static str {
        match self {
            CheckKind::Scan => "aisec scan",
            CheckKind::Evasion => "aisec attack evasion",
            CheckKind::Membership => "aisec attack membership",
            CheckKind::Extraction => "aisec attack extraction",
            CheckKind::Inversion => "aisec attack inversion",
            CheckKind::Probe => "aisec probe",
            CheckKind::GuardReplay => "aisec probe through aisec guard",
            CheckKind::Fairness => "fairness metrics (aisec assess)",
            CheckKind::PoisonData => "aisec defend data",
            CheckKind::Backdoor => "aisec defend model",
            CheckKind::Explain => "aisec explain (Integrated Gradients)",
        }
    }
}

/// A planned check: one kind run on one component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CheckRef {
    /// What runs.
    pub kind: CheckKind,
    /// The component it runs on.
    pub component: String,
}

impl CheckRef {
    /// Stable key, `evasion:cnn` (the resume state file uses it).
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.component)
    }
}

/// Likelihood or impact on a three-step scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Unlikely, or little harm.
    Low,
    /// Plausible, or real harm.
    Medium,
    /// Expected, or severe harm.
    High,
}

impl Level {
    /// Capitalised name, as Threat Dragon's severity field wants it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Low => "Low",
            Level::Medium => "Medium",
            Level::High => "High",
        }
    }

    fn idx(self) -> usize {
        self as usize
    }
}

/// The risk of a threat: likelihood x impact, on the usual 3x3 matrix.
pub fn risk(likelihood: Level, impact: Level) -> Level {
    match likelihood.idx() + impact.idx() {
        0 | 1 => Level::Low,
        2 => Level::Medium,
        _ => Level::High,
    }
}

/// What a threat attaches to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subject<'a> {
    /// A component.
    Component(&'a Component),
    /// A data flow.
    Flow(&'a Flow),
}

/// One row of the rule table.
pub struct ThreatRule {
    /// Stable id, `TM-...`.
    pub id: &'static str,
    /// Threat title.
    pub title: &'static str,
    /// STRIDE category.
    pub stride: Stride,
    /// ATLAS technique ids.
    pub atlas: &'static [&'static str],
    /// OWASP LLM Top 10 (2025) ids.
    pub owasp: &'static [&'static str],
    /// How it happens.
    pub description: &'static str,
    /// The aisec check that measures it, if any.
    pub check: Option<CheckKind>,
    /// The control to review (always shown; the only evidence when `check` is None).
    pub control: &'static str,
    /// Harm if it happens.
    pub impact: Level,
    /// Whether the rule applies.
    pub applies: fn(&SystemDescription, Subject<'_>) -> bool,
}

impl std::fmt::Debug for ThreatRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatRule").field("id", &self.id).finish()
    }
}

fn comp<'a>(s: Subject<'a>, kinds: &[ComponentKind]) -> Option<&'a Component> {
    match s {
        Subject::Component(c) if kinds.contains(&c.kind) => Some(c),
        _ => None,
    }
}

fn is_model(s: Subject<'_>) -> Option<&Component> {
    comp(s, &[ComponentKind::Model, ComponentKind::InferenceEndpoint])
}

fn reachable(d: &SystemDescription, c: &Component) -> bool {
    c.exposure == Exposure::Public
        || d.flows_into(&c.id).any(|f| {
            f.public_network
                || d.component(&f.from)
                    .is_some_and(|s| s.exposure == Exposure::Public)
        })
}

/// Every threat rule, in the order the plan lists them.
pub const THREAT_RULES: &[ThreatRule] = &[
    ThreatRule {
        id: "TM-ART-EXEC",
        title: "Code execution when a model file is loaded",
        stride: Stride::Tampering,
        atlas: &["AML.T0010.003", "AML.T0011.000"],
        owasp: &["LLM03"],
        description: "A model file in a pickle-bearing format (PyTorch, joblib, NumPy object arrays, Keras Lambda layers) runs code when loaded; a tampered or malicious artifact compromises whoever loads it.",
        check: Some(CheckKind::Scan),
        control: "Load only safetensors/ONNX where possible; scan every artifact before loading; pin artifacts by hash.",
        impact: Level::High,
        applies: |_, s| comp(s, &[ComponentKind::ModelArtifact]).is_some(),
    },
    ThreatRule {
        id: "TM-ART-SIGN",
        title: "Model artifact replaced in storage or transit",
        stride: Stride::Tampering,
        atlas: &["AML.T0010.003", "AML.T0018"],
        owasp: &["LLM03", "LLM04"],
        description: "Anyone who can write to the artifact store or the path to it can swap the weights for a backdoored or degraded model.",
        check: None,
        control: "Sign artifacts (e.g. Sigstore model signing) and verify signatures and hashes at load; restrict write access to the store.",
        impact: Level::High,
        applies: |_, s| comp(s, &[ComponentKind::ModelArtifact]).is_some(),
    },
    ThreatRule {
        id: "TM-DATA-POISON",
        title: "Training data poisoned",
        stride: Stride::Tampering,
        atlas: &["AML.T0020", "AML.T0010.002"],
        owasp: &["LLM04"],
        description: "Data from outside the team (public downloads, user contributions, third parties) can carry poisoned or backdoor-triggering examples that the model learns.",
        check: Some(CheckKind::PoisonData),
        control: "Record data provenance; filter and deduplicate outside data; audit label quality; inspect the data through the model trained on it (activation clustering, spectral signatures: aisec measures this when the description gives the data's `inputs` and `labels` and a flow to that model).",
        impact: Level::High,
        applies: |_, s| {
            comp(s, &[ComponentKind::TrainingData])
                .is_some_and(|c| c.source.unwrap_or_default() != DataSource::Internal)
        },
    },
    ThreatRule {
        id: "TM-DATA-LEAK",
        title: "Sensitive training data stored without access control",
        stride: Stride::InformationDisclosure,
        atlas: &["AML.T0057"],
        owasp: &["LLM02"],
        description: "A training set with personal or confidential records is a target in its own right, apart from what the model leaks.",
        check: None,
        control: "Restrict and log access to the data store; minimise and pseudonymise personal fields; keep a data protection impact assessment.",
        impact: Level::Medium,
        applies: |_, s| comp(s, &[ComponentKind::TrainingData]).is_some_and(|c| c.sensitive),
    },
    ThreatRule {
        id: "TM-MODEL-EVASION",
        title: "Adversarial inputs change the model's decision",
        stride: Stride::Tampering,
        atlas: &["AML.T0015", "AML.T0043"],
        owasp: &[],
        description: "Small, crafted changes to an input (white-box gradients or black-box queries) make the model misclassify it.",
        check: Some(CheckKind::Evasion),
        control: "Adversarial training, input validation and monitoring for adversarial inputs; do not let a single model decision gate a high-impact action.",
        impact: Level::Medium,
        applies: |_, s| comp(s, &[ComponentKind::Model, ComponentKind::InferenceEndpoint]).is_some(),
    },
    ThreatRule {
        id: "TM-MODEL-BACKDOOR",
        title: "The model carries a planted backdoor",
        stride: Stride::Tampering,
        atlas: &["AML.T0018", "AML.T0018.000"],
        owasp: &["LLM04"],
        description: "A model trained on poisoned data, or a pre-trained model tampered with, answers normally except when an input carries the attacker's trigger, which selects the attacker's class.",
        check: Some(CheckKind::Backdoor),
        control: "Inspect models before deployment (Neural Cleanse, aisec defend model); train on vetted data; repair or retrain a flagged model; take pre-trained weights only from verified sources.",
        impact: Level::High,
        applies: |_, s| comp(s, &[ComponentKind::Model]).is_some(),
    },
    ThreatRule {
        id: "TM-MODEL-MEMBERSHIP",
        title: "Membership of a record in the training set can be inferred",
        stride: Stride::InformationDisclosure,
        atlas: &["AML.T0024.000"],
        owasp: &["LLM02"],
        description: "Confidence scores are higher on training records; an attacker with query access tells members from non-members.",
        check: Some(CheckKind::Membership),
        control: "Return labels, not scores; regularise or train with differential privacy; limit query rates.",
        impact: Level::Medium,
        applies: |d, s| {
            is_model(s).is_some_and(|c| c.outputs == Outputs::Scores && (c.members.is_some() || reachable(d, c)))
        },
    },
    ThreatRule {
        id: "TM-MODEL-EXTRACTION",
        title: "The model can be stolen through its prediction API",
        stride: Stride::InformationDisclosure,
        atlas: &["AML.T0024.002", "AML.T0005.001"],
        owasp: &["LLM10"],
        description: "Querying the model and training a copy on its answers reproduces its behaviour (and gives a white-box proxy for further attacks).",
        check: Some(CheckKind::Extraction),
        control: "Authenticate clients, rate-limit and budget queries, return labels only, watermark or fingerprint the model.",
        impact: Level::Medium,
        applies: |d, s| is_model(s).is_some_and(|c| reachable(d, c)),
    },
    ThreatRule {
        id: "TM-MODEL-INVERSION",
        title: "Class representatives can be reconstructed from the model",
        stride: Stride::InformationDisclosure,
        atlas: &["AML.T0024.001"],
        owasp: &["LLM02"],
        description: "Optimising an input for a class's confidence reconstructs what the class's training data looks like (MI-Face).",
        check: Some(CheckKind::Inversion),
        control: "Return labels, not scores; rate-limit; avoid training on identifiable images per class.",
        impact: Level::Low,
        applies: |d, s| {
            comp(s, &[ComponentKind::Model]).is_some_and(|c| c.outputs == Outputs::Scores && reachable(d, c))
        },
    },
    ThreatRule {
        id: "TM-API-DOS",
        title: "Inference API exhausted by expensive queries",
        stride: Stride::DenialOfService,
        atlas: &["AML.T0029", "AML.T0034"],
        owasp: &["LLM10"],
        description: "Unbounded request sizes, rates or generation lengths let one client deny the service to others or run up its cost.",
        check: None,
        control: "Rate limits and quotas per client, bounded input and output sizes, autoscaling limits, cost alerts.",
        impact: Level::Medium,
        applies: |d, s| {
            comp(s, &[ComponentKind::InferenceEndpoint, ComponentKind::LlmEndpoint])
                .is_some_and(|c| reachable(d, c))
        },
    },
    ThreatRule {
        id: "TM-API-SPOOF",
        title: "Clients of the endpoint are not authenticated",
        stride: Stride::Spoofing,
        atlas: &["AML.T0040"],
        owasp: &[],
        description: "Without client authentication every other control (budgets, audit, per-user limits) can be sidestepped by changing identity.",
        check: None,
        control: "Authenticate every client (OAuth2/mTLS/API keys), bind quotas and logs to identities.",
        impact: Level::Medium,
        applies: |d, s| {
            comp(s, &[ComponentKind::InferenceEndpoint, ComponentKind::LlmEndpoint])
                .is_some_and(|c| reachable(d, c))
        },
    },
    ThreatRule {
        id: "TM-LLM-INJECTION",
        title: "Prompt injection overrides the application's instructions",
        stride: Stride::ElevationOfPrivilege,
        atlas: &["AML.T0051.000", "AML.T0054"],
        owasp: &["LLM01"],
        description: "User input that reads as instructions makes the model ignore its system prompt (direct injection, jailbreaks).",
        check: Some(CheckKind::Probe),
        control: "Treat model output as untrusted; screen inputs (aisec guard); keep privileges out of the prompt.",
        impact: Level::High,
        applies: |_, s| comp(s, &[ComponentKind::LlmEndpoint]).is_some(),
    },
    ThreatRule {
        id: "TM-LLM-INDIRECT",
        title: "Indirect prompt injection through retrieved content",
        stride: Stride::ElevationOfPrivilege,
        atlas: &["AML.T0051.001", "AML.T0070"],
        owasp: &["LLM01", "LLM08"],
        description: "Instructions hidden in documents, web pages or tool results the application feeds to the model are followed as if the user wrote them.",
        check: Some(CheckKind::Probe),
        control: "Screen retrieved and tool content (aisec guard's indirect screening); mark untrusted spans; least-privilege tools.",
        impact: Level::High,
        applies: |_, s| comp(s, &[ComponentKind::LlmEndpoint]).is_some_and(|c| c.retrieval || !c.tools.is_empty()),
    },
    ThreatRule {
        id: "TM-LLM-SYSPROMPT",
        title: "System prompt and embedded secrets leak",
        stride: Stride::InformationDisclosure,
        atlas: &["AML.T0056", "AML.T0057"],
        owasp: &["LLM07", "LLM02"],
        description: "The model repeats its system prompt, or secrets placed in it, when asked cleverly.",
        check: Some(CheckKind::Probe),
        control: "Keep secrets out of prompts; detect canaries in output (aisec guard leakage screening).",
        impact: Level::Medium,
        applies: |_, s| {
            comp(s, &[ComponentKind::LlmEndpoint]).is_some_and(|c| c.system_prompt.is_some() || !c.secrets.is_empty())
        },
    },
    ThreatRule {
        id: "TM-LLM-AGENCY",
        title: "Excessive agency: tools invoked on an attacker's behalf",
        stride: Stride::ElevationOfPrivilege,
        atlas: &["AML.T0053"],
        owasp: &["LLM06"],
        description: "An LLM with tools acts with the tools' privileges; an injected instruction becomes an action (send mail, run code, pay).",
        check: None,
        control: "Least privilege per tool, human approval for consequential actions, allowlists for tool arguments, log every tool call.",
        impact: Level::High,
        applies: |_, s| comp(s, &[ComponentKind::LlmEndpoint]).is_some_and(|c| !c.tools.is_empty()),
    },
    ThreatRule {
        id: "TM-LLM-OUTPUT",
        title: "Unsafe model output rendered or executed downstream",
        stride: Stride::Tampering,
        atlas: &["AML.T0077", "AML.T0050"],
        owasp: &["LLM05"],
        description: "Markdown images, links, HTML or code in answers exfiltrate data or run in the client or a downstream interpreter.",
        check: Some(CheckKind::Probe),
        control: "Encode output for its sink; strip active content and external images; never eval model output.",
        impact: Level::Medium,
        applies: |_, s| comp(s, &[ComponentKind::LlmEndpoint]).is_some(),
    },
    ThreatRule {
        id: "TM-LLM-MISINFO",
        title: "Hallucinated packages, facts or references relied on",
        stride: Stride::Tampering,
        atlas: &["AML.T0060"],
        owasp: &["LLM09"],
        description: "Invented package names can be registered by attackers; invented facts are relied on by users.",
        check: Some(CheckKind::Probe),
        control: "Check suggested packages against an allowlist; ground answers; tell users the limits.",
        impact: Level::Low,
        applies: |_, s| comp(s, &[ComponentKind::LlmEndpoint]).is_some(),
    },
    ThreatRule {
        id: "TM-GW-BYPASS",
        title: "Gateway screening bypassed or ineffective",
        stride: Stride::ElevationOfPrivilege,
        atlas: &["AML.T0051", "AML.T0068"],
        owasp: &["LLM01"],
        description: "Attacks that succeed directly may still succeed through the gateway (obfuscation, encodings), or the endpoint may be reachable around it.",
        check: Some(CheckKind::GuardReplay),
        control: "Make the gateway the only network path to the endpoint; keep its policy under review; alert on blocked-request rates.",
        impact: Level::High,
        applies: |d, s| {
            comp(s, &[ComponentKind::Gateway]).is_some_and(|g| {
                g.protects.iter().any(|p| {
                    d.component(p).is_some_and(|c| c.kind == ComponentKind::LlmEndpoint)
                })
            })
        },
    },
    ThreatRule {
        id: "TM-GW-AUDIT",
        title: "Requests and decisions cannot be traced afterwards",
        stride: Stride::Repudiation,
        atlas: &[],
        owasp: &[],
        description: "Without an audit log of requests, decisions and identities, abuse cannot be investigated or attributed.",
        check: None,
        control: "Keep the gateway's JSON audit log, ship it to tamper-evident storage, retain it per policy (ISO/IEC 42001 A.6.2.8).",
        impact: Level::Medium,
        applies: |_, s| comp(s, &[ComponentKind::Gateway]).is_some(),
    },
    ThreatRule {
        id: "TM-FLOW-CLEAR",
        title: "Data flow over a public network is not encrypted",
        stride: Stride::InformationDisclosure,
        atlas: &[],
        owasp: &[],
        description: "Prompts, inputs, answers or artifacts crossing the internet in clear text can be read or changed in transit.",
        check: None,
        control: "TLS (mTLS between services) on every public flow; verify certificates.",
        impact: Level::Medium,
        applies: |_, s| matches!(s, Subject::Flow(f) if f.public_network && !f.encrypted),
    },
    ThreatRule {
        id: "TM-FLOW-SUPPLY",
        title: "Model or data pulled from outside without verification",
        stride: Stride::Tampering,
        atlas: &["AML.T0010", "AML.T0058"],
        owasp: &["LLM03"],
        description: "A flow that brings models or data in from a public network delivers whatever the source (or a man in the middle) serves.",
        check: None,
        control: "Pin sources by hash or signature; mirror vetted artifacts internally; scan on arrival.",
        impact: Level::High,
        applies: |d, s| match s {
            Subject::Flow(f) => {
                f.public_network
                    && d.component(&f.to).is_some_and(|c| {
                        matches!(c.kind, ComponentKind::ModelArtifact | ComponentKind::TrainingData)
                    })
            }
            _ => false,
        },
    },
];

/// Where a threat applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Target {
    /// A component, by id.
    Component {
        /// Its id.
        id: String,
    },
    /// A flow, by its ends.
    Flow {
        /// Source id.
        from: String,
        /// Destination id.
        to: String,
    },
}

impl Target {
    /// `cnn` or `users -> cnn`.
    pub fn label(&self) -> String {
        match self {
            Target::Component { id } => id.clone(),
            Target::Flow { from, to } => format!("{from} -> {to}"),
        }
    }
}

/// One threat of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threat {
    /// `TM-ART-EXEC@models` (rule id at target).
    pub id: String,
    /// The rule.
    pub rule: String,
    /// Title.
    pub title: String,
    /// STRIDE category.
    pub stride: Stride,
    /// ATLAS ids.
    pub atlas: Vec<String>,
    /// OWASP LLM ids.
    pub owasp: Vec<String>,
    /// Where it applies.
    pub target: Target,
    /// How it happens.
    pub description: String,
    /// The check that measures it (None: not testable by aisec).
    pub check: Option<CheckRef>,
    /// The control to review.
    pub control: String,
    /// Likelihood (from exposure).
    pub likelihood: Level,
    /// Impact.
    pub impact: Level,
    /// A control the description says is in place (manual evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_control: Option<String>,
}

impl Threat {
    /// Risk before any measurement.
    pub fn inherent_risk(&self) -> Level {
        risk(self.likelihood, self.impact)
    }
}

/// The plan: every threat, and the checks to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreatModel {
    /// The system's name.
    pub system: String,
    /// Threats in rule order, components before flows.
    pub threats: Vec<Threat>,
    /// The distinct checks the threats need.
    pub checks: Vec<CheckRef>,
}

fn likelihood(d: &SystemDescription, s: Subject<'_>) -> Level {
    match s {
        Subject::Component(c) => {
            if reachable(d, c) {
                Level::High
            } else if c.exposure == Exposure::Internal {
                Level::Medium
            } else {
                Level::Low
            }
        }
        Subject::Flow(f) => {
            if f.public_network {
                Level::High
            } else {
                Level::Medium
            }
        }
    }
}

/// The model components trained on a training-data component (the
/// destinations of its flows).
pub fn trained_models<'a>(
    d: &'a SystemDescription,
    data: &'a Component,
) -> impl Iterator<Item = &'a Component> + 'a {
    d.flows
        .iter()
        .filter(move |f| f.from == data.id)
        .filter_map(move |f| d.component(&f.to))
        .filter(|c| c.kind == ComponentKind::Model)
}

/// Whether the description gives what a check needs on a component; a
/// threat whose check cannot run is planned as a manual control.
fn measurable(d: &SystemDescription, kind: CheckKind, c: &Component) -> bool {
    match kind {
        CheckKind::PoisonData => {
            c.inputs
                .as_deref()
                .is_some_and(|x| c.labels.is_some() || x.ends_with(".npz"))
                && trained_models(d, c).next().is_some()
        }
        _ => true,
    }
}

/// Derives the threat model from a description.
pub fn plan(d: &SystemDescription) -> ThreatModel {
    let mut threats = Vec::new();
    let subjects = d
        .components
        .iter()
        .map(Subject::Component)
        .chain(d.flows.iter().map(Subject::Flow));
    for s in subjects {
        for r in THREAT_RULES {
            if !(r.applies)(d, s) {
                continue;
            }
            let target = match s {
                Subject::Component(c) => Target::Component { id: c.id.clone() },
                Subject::Flow(f) => Target::Flow {
                    from: f.from.clone(),
                    to: f.to.clone(),
                },
            };
            // The check runs on the component; a gateway's replay runs on
            // the gateway (it knows what it protects).
            let check = match (r.check, s) {
                (Some(kind), Subject::Component(c)) if measurable(d, kind, c) => Some(CheckRef {
                    kind,
                    component: c.id.clone(),
                }),
                _ => None,
            };
            let declared_control = match s {
                Subject::Component(c) => c
                    .controls
                    .iter()
                    .find(|k| k.threat == r.id)
                    .map(|k| k.evidence.clone()),
                Subject::Flow(_) => None,
            };
            threats.push(Threat {
                id: format!("{}@{}", r.id, target.label()),
                rule: r.id.to_string(),
                title: r.title.to_string(),
                stride: r.stride,
                atlas: r.atlas.iter().map(|s| s.to_string()).collect(),
                owasp: r.owasp.iter().map(|s| s.to_string()).collect(),
                target,
                description: r.description.to_string(),
                check,
                control: r.control.to_string(),
                likelihood: likelihood(d, s),
                impact: r.impact,
                declared_control,
            });
        }
    }
    let mut checks: Vec<CheckRef> = threats.iter().filter_map(|t| t.check.clone()).collect();
    checks.extend(
        d.components
            .iter()
            .filter(|c| c.kind == ComponentKind::Model && c.sensitive_attribute.is_some())
            .map(|c| CheckRef {
                kind: CheckKind::Fairness,
                component: c.id.clone(),
            }),
    );
    if d.budget.explain_examples > 0 {
        checks.extend(
            d.components
                .iter()
                .filter(|c| c.kind == ComponentKind::Model)
                .map(|c| CheckRef {
                    kind: CheckKind::Explain,
                    component: c.id.clone(),
                }),
        );
    }
    checks.sort();
    checks.dedup();
    ThreatModel {
        system: d.system.name.clone(),
        threats,
        checks,
    }
}

/// The example description the crate's tests share.
#[cfg(test)]
pub(crate) fn tests_example() -> &'static str {
    tests::EXAMPLE
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"
[system]
name = "Digits service"

[[component]]
id = "users"
kind = "actor"
exposure = "public"

[[component]]
id = "models"
kind = "model-artifact"
path = "models"

[[component]]
id = "cnn"
kind = "model"
path = "m.onnx"
inputs = "x.npy"
labels = "y.npy"

[[component]]
id = "chat"
kind = "llm-endpoint"
url = "builtin:weak-chat"
system_prompt = "You are a helper."
tools = ["send_email"]

[[component]]
id = "guard"
kind = "gateway"
protects = ["chat"]

[[flow]]
from = "users"
to = "cnn"
public_network = true

[[flow]]
from = "users"
to = "guard"
public_network = true
encrypted = true
"#;

    #[test]
    fn the_issue_examples_are_derived() {
        let d = SystemDescription::parse(EXAMPLE).unwrap();
        let m = plan(&d);
        let has = |rule: &str, target: &str| {
            m.threats
                .iter()
                .any(|t| t.rule == rule && t.target.label() == target)
        };
        // A pickle-bearing artifact: tampering, T0010/T0011, tested by scan.
        let art = m
            .threats
            .iter()
            .find(|t| t.id == "TM-ART-EXEC@models")
            .unwrap();
        assert_eq!(art.stride, Stride::Tampering);
        assert!(art.atlas.iter().any(|a| a == "AML.T0011.000"));
        assert_eq!(art.check.as_ref().unwrap().kind, CheckKind::Scan);
        // A public prediction API returning scores: extraction and membership.
        assert!(has("TM-MODEL-EXTRACTION", "cnn"));
        assert!(has("TM-MODEL-MEMBERSHIP", "cnn"));
        // An LLM with tools: prompt injection and excessive agency.
        assert!(has("TM-LLM-INJECTION", "chat"));
        let agency = m
            .threats
            .iter()
            .find(|t| t.id == "TM-LLM-AGENCY@chat")
            .unwrap();
        assert_eq!(agency.owasp, vec!["LLM06"]);
        assert!(
            agency.check.is_none(),
            "not testable by aisec: a manual control"
        );
        // Flows: the clear-text public one only.
        assert!(has("TM-FLOW-CLEAR", "users -> cnn"));
        assert!(!has("TM-FLOW-CLEAR", "users -> guard"));
        assert!(has("TM-GW-BYPASS", "guard"));
        let keys: Vec<String> = m.checks.iter().map(CheckRef::key).collect();
        assert!(keys.contains(&"scan:models".to_string()));
        assert!(keys.contains(&"guard-replay:guard".to_string()));
    }

    #[test]
    fn an_internal_model_without_members_has_no_privacy_threats() {
        let d = SystemDescription::parse(
            &EXAMPLE
                .replace("public_network = true\n\n[[flow]]", "\n[[flow]]")
                .replace(
                    "from = \"users\"\nto = \"cnn\"\n",
                    "from = \"models\"\nto = \"cnn\"\n",
                ),
        )
        .unwrap();
        let m = plan(&d);
        assert!(!m.threats.iter().any(|t| t.rule == "TM-MODEL-EXTRACTION"));
        assert!(!m.threats.iter().any(|t| t.rule == "TM-MODEL-MEMBERSHIP"));
        assert!(m.threats.iter().any(|t| t.rule == "TM-MODEL-EVASION"));
    }

    #[test]
    fn poisoning_and_explain_checks_are_planned_when_the_description_allows() {
        // The example's data has no inputs: data poisoning is a manual control.
        let with_data = EXAMPLE.replace(
            "[[component]]\nid = \"models\"",
            "[[component]]\nid = \"uploads\"\nkind = \"training-data\"\nsource = \"user-contributed\"\n\n[[component]]\nid = \"models\"",
        );
        let m = plan(&SystemDescription::parse(&with_data).unwrap());
        let poison = m
            .threats
            .iter()
            .find(|t| t.id == "TM-DATA-POISON@uploads")
            .unwrap();
        assert!(poison.check.is_none());
        // Inputs, labels and a flow to the model trained on them: inspected.
        let measured = format!(
            "{}\n[[flow]]\nfrom = \"uploads\"\nto = \"cnn\"\n",
            with_data.replace(
                "source = \"user-contributed\"",
                "source = \"user-contributed\"\ninputs = \"d.npz\"",
            )
        );
        let m = plan(&SystemDescription::parse(&measured).unwrap());
        let poison = m
            .threats
            .iter()
            .find(|t| t.id == "TM-DATA-POISON@uploads")
            .unwrap();
        assert_eq!(poison.check.as_ref().unwrap().kind, CheckKind::PoisonData);
        let backdoor = m
            .threats
            .iter()
            .find(|t| t.id == "TM-MODEL-BACKDOOR@cnn")
            .unwrap();
        assert_eq!(backdoor.atlas, vec!["AML.T0018", "AML.T0018.000"]);
        assert_eq!(backdoor.check.as_ref().unwrap().kind, CheckKind::Backdoor);
        let keys: Vec<String> = m.checks.iter().map(CheckRef::key).collect();
        for k in ["poison-data:uploads", "backdoor:cnn", "explain:cnn"] {
            assert!(keys.contains(&k.to_string()), "{keys:?}");
        }
        // No explain check when the budget asks for none.
        let none = format!("{measured}\n[budget]\nexplain_examples = 0\n");
        let m = plan(&SystemDescription::parse(&none).unwrap());
        assert!(!m.checks.iter().any(|c| c.kind == CheckKind::Explain));
        // Every kind round-trips through its name (--only uses it).
        for k in CheckKind::ALL {
            assert_eq!(CheckKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn a_remote_endpoint_is_attacked_like_a_model() {
        let d = SystemDescription::parse(&format!(
            "{EXAMPLE}\n[[component]]\nid = \"api\"\nkind = \"inference-endpoint\"\nurl = \"http://127.0.0.1:9\"\nexposure = \"public\"\n"
        ))
        .unwrap();
        let m = plan(&d);
        let keys: Vec<String> = m.checks.iter().map(CheckRef::key).collect();
        for k in ["evasion:api", "extraction:api", "membership:api"] {
            assert!(keys.contains(&k.to_string()), "{keys:?}");
        }
        // Gradients only exist locally: no inversion, backdoor or explain check.
        for k in ["inversion:api", "backdoor:api", "explain:api"] {
            assert!(!keys.contains(&k.to_string()), "{keys:?}");
        }
    }

    #[test]
    fn every_rule_cites_known_taxonomy_ids() {
        let mut seen = std::collections::HashSet::new();
        for r in THREAT_RULES {
            assert!(seen.insert(r.id), "duplicate {}", r.id);
            for a in r.atlas {
                assert!(aisec_core::taxonomy::atlas(a).is_some(), "{}: {a}", r.id);
            }
            for o in r.owasp {
                assert!(aisec_core::taxonomy::owasp(o).is_some(), "{}: {o}", r.id);
            }
            assert!(!r.control.is_empty());
        }
    }

    #[test]
    fn risk_matrix_is_monotone() {
        assert_eq!(risk(Level::Low, Level::Low), Level::Low);
        assert_eq!(risk(Level::High, Level::Low), Level::Medium);
        assert_eq!(risk(Level::Medium, Level::High), Level::High);
    }
}
