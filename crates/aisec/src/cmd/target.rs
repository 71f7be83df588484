//! Where an attacked model is: a local ONNX file, an aisec spec model
//! (safetensors weights plus its architecture file), or a KServe v2
//! endpoint. Shared by `aisec attack membership`, `extraction` and
//! `inversion`, so every attack names its target the same way.

use std::path::Path;
use std::path::PathBuf;

use aisec_model::blackbox::RemoteClassifier;
use aisec_model::spec::ArchSpec;
use aisec_model::{Classifier, OnnxModel};
use anyhow::{bail, Context};

/// A local model, the same two forms for every command that needs one
/// whole (gradients): ONNX, or safetensors weights with their
/// architecture spec.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// The model: ONNX, or safetensors weights with their architecture (--spec, or the NAME.spec.json that `aisec train` writes beside NAME.safetensors).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,

    /// Architecture spec (JSON/TOML) when MODEL is a safetensors file [default: the .spec.json beside it].
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
}

impl ModelArgs {
    /// Loads the model (see [`load_local`]).
    pub fn load(&self) -> anyhow::Result<OnnxModel> {
        load_local(&self.model, self.spec.as_deref())
    }

    /// The model's name in reports.
    pub fn name(&self) -> String {
        self.model.display().to_string()
    }
}

/// Where the victim is: a local model file or a KServe v2 endpoint.
#[derive(Debug, Clone, clap::Args)]
pub struct VictimArgs {
    /// The victim model: ONNX, or safetensors weights together with --spec. Omit with --url.
    #[arg(value_name = "MODEL", required_unless_present = "url")]
    pub model: Option<PathBuf>,

    /// Architecture spec (JSON/TOML) when MODEL is a safetensors file of an aisec spec model.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,

    /// Query a remote victim over the KServe v2 / Open Inference Protocol at this base URL (e.g. http://host:8080).
    #[arg(long, value_name = "URL", conflicts_with = "model")]
    pub url: Option<String>,

    /// Model name in the endpoint path /v2/models/NAME/infer.
    #[arg(long, default_value = "model", value_name = "NAME")]
    pub model_name: String,

    /// Name of the request's input tensor.
    #[arg(long, default_value = "input", value_name = "NAME")]
    pub input_name: String,

    /// Per-example input shape of the remote model, comma-separated (e.g. 1,28,28).
    #[arg(long, value_delimiter = ',', value_name = "D,...")]
    pub input_shape: Vec<usize>,

    /// Number of classes the remote model answers.
    #[arg(long, value_name = "N")]
    pub classes: Option<usize>,

    /// Extra request header for the remote model, NAME:VALUE (repeatable).
    #[arg(long, value_name = "NAME:VALUE")]
    pub header: Vec<String>,
}

/// A loaded victim.
pub enum Victim {
    /// Local model (white-box capable).
    Local(OnnxModel),
    /// Remote endpoint (query-only).
    Remote(RemoteClassifier),
}

impl Victim {
    /// The victim as a query-only classifier.
    pub fn classifier(&self) -> &dyn Classifier {
        match self {
            Victim::Local(m) => m,
            Victim::Remote(r) => r,
        }
    }
}

/// Loads a local model (ONNX, or spec + safetensors).
pub fn load_local(model: &Path, spec: Option<&Path>) -> anyhow::Result<OnnxModel> {
    match spec {
        Some(s) => {
            let text = std::fs::read_to_string(s)
                .with_context(|| format!("cannot read {}", s.display()))?;
            let spec = ArchSpec::parse(&text).with_context(|| format!("in {}", s.display()))?;
            OnnxModel::from_spec_safetensors(&spec, model)
                .with_context(|| format!("cannot load weights {}", model.display()))
        }
        None => {
            if model.extension().and_then(|e| e.to_str()) == Some("safetensors") {
                // `aisec train --out m.safetensors` writes the spec beside it.
                let beside = model.with_extension("spec.json");
                if beside.is_file() {
                    return load_local(model, Some(&beside));
                }
                bail!(
                    "{} is a safetensors file: pass its architecture with --spec (no {} beside it)",
                    model.display(),
                    beside.display()
                );
            }
            OnnxModel::load(model).with_context(|| format!("cannot load model {}", model.display()))
        }
    }
}

impl VictimArgs {
    /// Loads or connects to the victim; returns it with a name for reports.
    pub fn load(&self) -> anyhow::Result<(Victim, String)> {
        if let Some(url) = &self.url {
            if self.input_shape.is_empty() {
                bail!("--url needs --input-shape (e.g. 1,28,28)");
            }
            let classes = self
                .classes
                .context("--url needs --classes (number of classes the endpoint answers)")?;
            if classes == 0 || self.input_shape.contains(&0) {
                bail!("--classes and --input-shape must be positive");
            }
            let mut r = RemoteClassifier::new(
                url,
                &self.model_name,
                &self.input_name,
                self.input_shape.clone(),
                classes,
            )?;
            for h in &self.header {
                let (k, v) = h
                    .split_once(':')
                    .with_context(|| format!("--header '{h}' is not NAME:VALUE"))?;
                r = r.with_header(k.trim(), v.trim());
            }
            let name = r.url().to_string();
            return Ok((Victim::Remote(r), name));
        }
        let model = self.model.as_ref().context("give a MODEL or --url")?;
        let m = load_local(model, self.spec.as_deref())?;
        Ok((Victim::Local(m), model.display().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_safetensors_model_finds_the_spec_aisec_train_wrote_beside_it() {
        let d = tempfile::tempdir().unwrap();
        let spec = ArchSpec::parse(r#"{"input": [4], "layers": [{"type": "dense", "units": 3}]}"#)
            .unwrap();
        let m = OnnxModel::from_spec(&spec, 7).unwrap();
        let w = d.path().join("m.safetensors");
        m.save_safetensors(&w).unwrap();
        let err = load_local(&w, None).err().unwrap().to_string();
        assert!(err.contains("--spec"), "{err}");
        std::fs::write(
            d.path().join("m.spec.json"),
            serde_json::to_string(&spec).unwrap(),
        )
        .unwrap();
        let back = load_local(&w, None).unwrap();
        let x = aisec_model::Tensor::new(vec![1, 4], vec![0.5, -1.0, 2.0, 0.0]).unwrap();
        assert_eq!(back.logits(&x).unwrap().data, m.logits(&x).unwrap().data);
    }
}
