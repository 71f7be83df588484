//! The system description (`aisec.toml`): the components of an ML system
//! and the data flows between them. Unknown keys are errors, so a typo is
//! reported instead of silently dropping a component's setting.
//!
//! The format is documented with a worked example in `docs/assess.md`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::AssessError;

/// Largest description file read (a description is a few KiB).
pub const MAX_DESCRIPTION_BYTES: u64 = 4 << 20;

/// A whole system description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemDescription {
    /// Name, owner and purpose of the system.
    pub system: SystemInfo,
    /// The components (`[[component]]` tables).
    #[serde(default, rename = "component")]
    pub components: Vec<Component>,
    /// The data flows between components (`[[flow]]` tables).
    #[serde(default, rename = "flow")]
    pub flows: Vec<Flow>,
    /// Budgets and thresholds of the checks `aisec assess` runs.
    #[serde(default)]
    pub budget: Budget,
}

/// The `[system]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemInfo {
    /// The system's name (report title).
    pub name: String,
    /// Who owns it.
    #[serde(default)]
    pub owner: Option<String>,
    /// What it does.
    #[serde(default)]
    pub description: Option<String>,
}

/// What a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentKind {
    /// A person or outside system that sends or receives data.
    Actor,
    /// A training (or fine-tuning) data set.
    TrainingData,
    /// Model files on disk (any format aisec scan reads).
    ModelArtifact,
    /// A classifier aisec can attack: an ONNX (or spec) file and evaluation data.
    Model,
    /// A remote inference endpoint (KServe v2) serving a model.
    InferenceEndpoint,
    /// An LLM application or endpoint (OpenAI-compatible or REST).
    LlmEndpoint,
    /// A gateway (aisec guard or similar) in front of an endpoint.
    Gateway,
}

impl ComponentKind {
    /// The kebab-case name used in the description.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Actor => "actor",
            ComponentKind::TrainingData => "training-data",
            ComponentKind::ModelArtifact => "model-artifact",
            ComponentKind::Model => "model",
            ComponentKind::InferenceEndpoint => "inference-endpoint",
            ComponentKind::LlmEndpoint => "llm-endpoint",
            ComponentKind::Gateway => "gateway",
        }
    }

    /// Parses the kebab-case name.
    pub fn parse(s: &str) -> Option<ComponentKind> {
        [
            ComponentKind::Actor,
            ComponentKind::TrainingData,
            ComponentKind::ModelArtifact,
            ComponentKind::Model,
            ComponentKind::InferenceEndpoint,
            ComponentKind::LlmEndpoint,
            ComponentKind::Gateway,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Who can reach a component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exposure {
    /// Anyone on the internet.
    Public,
    /// Staff or other services inside the organisation.
    #[default]
    Internal,
    /// Only the team that runs it.
    Private,
}

/// What a model or endpoint answers with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outputs {
    /// Class scores or probabilities (the most an attacker can learn from).
    #[default]
    Scores,
    /// The top label only.
    Labels,
}

/// Where data comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// Collected and curated in house.
    #[default]
    Internal,
    /// Downloaded from a public source.
    Public,
    /// Contributed by users (feedback, uploads, scraped content).
    UserContributed,
    /// Bought or received from a third party.
    ThirdParty,
}

/// One component (`[[component]]`). Which keys matter depends on `kind`;
/// [`SystemDescription::validate`] says which are required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Unique id, referenced by flows and gateways (`[a-z0-9_-]+`).
    pub id: String,
    /// What the component is.
    pub kind: ComponentKind,
    /// Human name (defaults to the id).
    #[serde(default)]
    pub name: Option<String>,
    /// A sentence on what it is.
    #[serde(default)]
    pub description: Option<String>,
    /// Who can reach it.
    #[serde(default)]
    pub exposure: Exposure,
    /// A file or folder (data set, artifact folder, model file), relative to the description.
    #[serde(default)]
    pub path: Option<String>,
    /// Where the data comes from (training data).
    #[serde(default)]
    pub source: Option<DataSource>,
    /// The data holds personal or confidential records.
    #[serde(default)]
    pub sensitive: bool,
    /// Evaluation inputs of a model (`.npy`), relative to the description.
    #[serde(default)]
    pub inputs: Option<String>,
    /// Labels of those inputs (`.npy`).
    #[serde(default)]
    pub labels: Option<String>,
    /// A `.npy` of 0/1 per input: 1 when the input was in the model's training set
    /// (enables the membership-inference check).
    #[serde(default)]
    pub members: Option<String>,
    /// A `.npy` of one integer group per input (a sensitive attribute),
    /// enabling the fairness check of a model.
    #[serde(default)]
    pub sensitive_attribute: Option<String>,
    /// The label that counts as the positive decision for fairness (default 1).
    #[serde(default)]
    pub positive_label: Option<usize>,
    /// Training data: the ground truth of a poisoning test (`indices.json`
    /// written by `aisec attack poison`), for precision and recall of the
    /// data inspection.
    #[serde(default)]
    pub poison_manifest: Option<String>,
    /// Inference endpoint: name of the request's input tensor (default `input`).
    #[serde(default)]
    pub input_name: Option<String>,
    /// Inference endpoint: per-example input shape (default: the shape of `inputs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_shape: Vec<usize>,
    /// Inference endpoint: number of classes it answers (default: largest label + 1).
    #[serde(default)]
    pub classes: Option<usize>,
    /// Divide raw input values by this before use (e.g. 255 for bytes, 16 for the digits).
    #[serde(default)]
    pub scale: Option<f32>,
    /// Lowest valid input value after scaling.
    #[serde(default)]
    pub lo: Option<f32>,
    /// Highest valid input value after scaling.
    #[serde(default)]
    pub hi: Option<f32>,
    /// What the model or endpoint returns.
    #[serde(default)]
    pub outputs: Outputs,
    /// Endpoint URL (inference or LLM endpoints). `builtin:weak-chat` starts
    /// aisec's deliberately weak loopback chat app (for the example system).
    #[serde(default)]
    pub url: Option<String>,
    /// LLM API: `openai-chat` or `rest` (default `openai-chat`).
    #[serde(default)]
    pub api: Option<String>,
    /// Model name sent to an OpenAI-compatible endpoint.
    #[serde(default)]
    pub model: Option<String>,
    /// The LLM application's system prompt.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Tools (functions) the LLM may call.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Strings that must never appear in an answer (keys, codes).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The LLM reads content from outside (web pages, documents, RAG).
    #[serde(default)]
    pub retrieval: bool,
    /// Gateway policy file (aisec guard TOML), relative to the description.
    #[serde(default)]
    pub policy: Option<String>,
    /// Component ids a gateway sits in front of.
    #[serde(default)]
    pub protects: Vec<String>,
    /// Controls already in place, by the threat rule id they answer
    /// (e.g. `"TM-ART-SIGN"`), each with a sentence of evidence. A control
    /// marks a manual threat reviewed; it never overrides a measurement.
    #[serde(default)]
    pub controls: Vec<Control>,
}

/// A control the team says is in place (`[[component.controls]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// The threat rule id it answers.
    pub threat: String,
    /// What is in place and where the evidence is.
    pub evidence: String,
}

impl Component {
    /// The human name, or the id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// A data flow (`[[flow]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Source component id.
    pub from: String,
    /// Destination component id.
    pub to: String,
    /// What flows (`"prompts"`, `"model files"`...).
    #[serde(default)]
    pub data: Option<String>,
    /// The flow crosses the public internet.
    #[serde(default)]
    pub public_network: bool,
    /// The flow is encrypted and authenticated (TLS, mTLS, signed).
    #[serde(default)]
    pub encrypted: bool,
}

/// Budgets and pass thresholds (`[budget]`); every field has a default
/// small enough for a laptop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budget {
    /// Inputs attacked per model by the evasion check.
    pub evasion_examples: usize,
    /// L-inf budget of the evasion check (in scaled input units).
    pub evasion_eps: f32,
    /// Budgets of the robust-accuracy curve.
    pub evasion_curve: Vec<f32>,
    /// PGD steps.
    pub pgd_steps: usize,
    /// Optimisation steps per class of the model-inversion check.
    pub inversion_iters: usize,
    /// Examples (members plus non-members) for membership inference.
    pub membership_examples: usize,
    /// Queries the extraction check may spend, as a curve of budgets.
    pub extraction_queries: Vec<u64>,
    /// Probe families run against LLM endpoints (`all` for every one).
    pub probe_families: Vec<String>,
    /// Highest probe attack success rate that counts as mitigated.
    pub max_attack_success_rate: f64,
    /// Largest demographic-parity or equalized-odds difference accepted.
    pub max_fairness_gap: f64,
    /// Neural Cleanse optimisation steps per class (model inspection).
    pub backdoor_steps: usize,
    /// Examples explained per model with Integrated Gradients (0: no explain check).
    pub explain_examples: usize,
    /// Integrated Gradients path points.
    pub ig_steps: usize,
    /// Examples attacked through a remote inference endpoint (Square or HopSkipJump).
    pub remote_examples: usize,
    /// Queries the black-box evasion attack may spend per example on a remote endpoint.
    pub remote_queries: u64,
    /// Checks run at the same time (0: one per CPU).
    pub jobs: usize,
    /// Seed of every randomised check.
    pub seed: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            evasion_examples: 64,
            evasion_eps: 0.1,
            evasion_curve: vec![0.02, 0.05, 0.1, 0.2],
            pgd_steps: 20,
            inversion_iters: 200,
            membership_examples: 400,
            extraction_queries: vec![100, 400],
            probe_families: vec!["all".into()],
            max_attack_success_rate: 0.05,
            max_fairness_gap: 0.1,
            backdoor_steps: 300,
            explain_examples: 4,
            ig_steps: 32,
            remote_examples: 16,
            remote_queries: 500,
            jobs: 0,
            seed: 0,
        }
    }
}

impl SystemDescription {
    /// Parses and validates a description.
    pub fn parse(text: &str) -> Result<SystemDescription, AssessError> {
        let d: SystemDescription =
            toml::from_str(text).map_err(|e| AssessError::Description(e.to_string()))?;
        d.validate()?;
        Ok(d)
    }

    /// Reads, parses and validates a description file (bounded in size).
    pub fn load(path: &Path) -> Result<SystemDescription, AssessError> {
        let text = read_bounded(path, MAX_DESCRIPTION_BYTES)?;
        SystemDescription::parse(&text).map_err(|e| match e {
            AssessError::Description(m) => {
                AssessError::Description(format!("{}: {m}", path.display()))
            }
            other => other,
        })
    }

    /// The component with this id.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.id == id)
    }

    /// Checks ids, references and the keys each kind needs.
    pub fn validate(&self) -> Result<(), AssessError> {
        let bad = |m: String| Err(AssessError::Description(m));
        let mut ids = BTreeSet::new();
        for c in &self.components {
            if c.id.is_empty()
                || !c
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return bad(format!(
                    "component id '{}' must be non-empty and use only a-z, 0-9, '-' and '_'",
                    c.id
                ));
            }
            if !ids.insert(c.id.as_str()) {
                return bad(format!("component id '{}' is used twice", c.id));
            }
            let need = |field: &str, v: bool| -> Result<(), AssessError> {
                if v {
                    Ok(())
                } else {
                    Err(AssessError::Description(format!(
                        "component '{}' ({}) needs `{field}`",
                        c.id,
                        c.kind.as_str()
                    )))
                }
            };
            match c.kind {
                ComponentKind::ModelArtifact => need("path", c.path.is_some())?,
                ComponentKind::Model => {
                    need("path", c.path.is_some())?;
                    need("inputs", c.inputs.is_some())?;
                }
                ComponentKind::InferenceEndpoint | ComponentKind::LlmEndpoint => {
                    need("url", c.url.is_some())?
                }

                ComponentKind::Gateway => need("protects", !c.protects.is_empty())?,
                ComponentKind::Actor | ComponentKind::TrainingData => {}
            }
            // Training data and endpoints with evaluation inputs need their labels too.
            if let Some(x) = &c.inputs {
                need("labels", c.labels.is_some() || x.ends_with(".npz"))?;
            }
            if c.input_shape.contains(&0) || c.classes == Some(0) {
                return bad(format!(
                    "component '{}': input_shape and classes must be positive",
                    c.id
                ));
            }
            if let Some(api) = &c.api {
                if api != "openai-chat" && api != "rest" && api != "kserve" {
                    return bad(format!(
                        "component '{}': api '{api}' is not one of openai-chat, rest, kserve",
                        c.id
                    ));
                }
            }
            if let Some(s) = c.scale {
                if !(s.is_finite() && s > 0.0) {
                    return bad(format!("component '{}': scale must be positive", c.id));
                }
            }
            if let (Some(lo), Some(hi)) = (c.lo, c.hi) {
                if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                    return bad(format!("component '{}': lo must be below hi", c.id));
                }
            }
        }
        for c in &self.components {
            for p in &c.protects {
                if !ids.contains(p.as_str()) {
                    return bad(format!(
                        "gateway '{}' protects unknown component '{p}'",
                        c.id
                    ));
                }
            }
        }
        for f in &self.flows {
            for end in [&f.from, &f.to] {
                if !ids.contains(end.as_str()) {
                    return bad(format!(
                        "flow {} -> {} names unknown component '{end}'",
                        f.from, f.to
                    ));
                }
            }
        }
        let b = &self.budget;
        if !(b.evasion_eps.is_finite() && b.evasion_eps >= 0.0)
            || b.evasion_curve
                .iter()
                .any(|e| !(e.is_finite() && *e >= 0.0))
        {
            return bad("budget: evasion budgets must be non-negative numbers".into());
        }
        if !(0.0..=1.0).contains(&b.max_attack_success_rate)
            || !(0.0..=1.0).contains(&b.max_fairness_gap)
        {
            return bad("budget: rates must be between 0 and 1".into());
        }
        if b.inversion_iters > 100_000 || b.pgd_steps > 10_000 {
            return bad("budget: iteration counts are unreasonably large".into());
        }
        if b.evasion_examples > 100_000 || b.membership_examples > 1_000_000 {
            return bad("budget: example counts are unreasonably large".into());
        }
        Ok(())
    }

    /// The gateways in front of `id`.
    pub fn gateways_of(&self, id: &str) -> Vec<&Component> {
        self.components
            .iter()
            .filter(|c| c.kind == ComponentKind::Gateway && c.protects.iter().any(|p| p == id))
            .collect()
    }

    /// Flows into `id`.
    pub fn flows_into<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Flow> + 'a {
        self.flows.iter().filter(move |f| f.to == id)
    }

    /// Resolves a path of the description relative to the folder it was read from.
    pub fn resolve(base: &Path, rel: &str) -> PathBuf {
        let p = Path::new(rel);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    }
}

/// Reads a text file of at most `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<String, AssessError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| AssessError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| AssessError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
    if buf.len() as u64 > max {
        return Err(AssessError::Description(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    String::from_utf8(buf)
        .map_err(|_| AssessError::Description(format!("{} is not UTF-8", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[system]
name = "t"

[[component]]
id = "users"
kind = "actor"
exposure = "public"

[[component]]
id = "cnn"
kind = "model"
path = "m.onnx"
inputs = "x.npy"
labels = "y.npy"

[[flow]]
from = "users"
to = "cnn"
data = "images"
public_network = true
"#;

    #[test]
    fn parses_a_minimal_description_with_defaults() {
        let d = SystemDescription::parse(MIN).unwrap();
        assert_eq!(d.components.len(), 2);
        assert_eq!(d.components[1].outputs, Outputs::Scores);
        assert_eq!(d.budget, Budget::default());
        assert_eq!(d.flows[0].data.as_deref(), Some("images"));
    }

    #[test]
    fn unknown_keys_and_kinds_are_errors() {
        let e = SystemDescription::parse(&MIN.replace("data = \"images\"", "dta = 1")).unwrap_err();
        assert!(e.to_string().contains("dta"), "{e}");
        let e = SystemDescription::parse(&MIN.replace("kind = \"actor\"", "kind = \"robot\""))
            .unwrap_err();
        assert!(e.to_string().contains("robot"), "{e}");
        let e =
            SystemDescription::parse(&format!("{MIN}\n[budget]\nevasion_epz = 1\n")).unwrap_err();
        assert!(e.to_string().contains("evasion_epz"), "{e}");
    }

    #[test]
    fn references_and_required_keys_are_checked() {
        let e =
            SystemDescription::parse(&MIN.replace("to = \"cnn\"", "to = \"nope\"")).unwrap_err();
        assert!(e.to_string().contains("unknown component 'nope'"), "{e}");
        let e = SystemDescription::parse(&MIN.replace("inputs = \"x.npy\"\n", "")).unwrap_err();
        assert!(e.to_string().contains("needs `inputs`"), "{e}");
        let e =
            SystemDescription::parse(&MIN.replace("id = \"cnn\"", "id = \"users\"")).unwrap_err();
        assert!(e.to_string().contains("used twice"), "{e}");
        let e = SystemDescription::parse(&MIN.replace("id = \"cnn\"", "id = \"C N\"")).unwrap_err();
        assert!(e.to_string().contains("a-z"), "{e}");
    }
}
