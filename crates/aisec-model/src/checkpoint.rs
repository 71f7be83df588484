//! Training checkpoints: one safetensors file holding the model's weights
//! (`model/<name>`), the optimiser's moment buffers (`opt.m/<name>`,
//! `opt.v/<name>`) and, in the header's `__metadata__`, a JSON record of the
//! position in the run (epochs and batches done), the training
//! configuration, the history so far and the architecture when known.
//!
//! Files are written to a temporary name in the same folder, flushed to
//! disk and renamed over the target, so a crash or Ctrl-C never leaves a
//! half-written checkpoint. Any safetensors reader can open them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classifier::{ModelError, Tensor};
use crate::fit::{History, TrainConfig};
use crate::onnx_model::OnnxModel;
use crate::safetensors::{encode_f32, F32Tensor};
use crate::spec::ArchSpec;
use crate::train::{Trainer, TrainerState};

const FORMAT: &str = "aisec-checkpoint/1";
const META_KEY: &str = "aisec_checkpoint";

/// A saved training run.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Model weights by name, in the model's order.
    pub weights: Vec<(String, Tensor)>,
    /// Optimiser moments and step count.
    pub trainer: TrainerState,
    /// The configuration the run used.
    pub config: TrainConfig,
    /// Epochs finished so far.
    pub history: History,
    /// The architecture, when the run was given one.
    pub spec: Option<ArchSpec>,
    /// Completed epochs.
    pub epochs_done: usize,
    /// Batches already taken in the epoch after `epochs_done` (non-zero
    /// only for a run interrupted mid-epoch).
    pub batches_done: usize,
    /// Sum of the partial epoch's batch losses.
    pub partial_loss_sum: f64,
    /// Seconds spent in the partial epoch.
    pub partial_seconds: f64,
    /// The caller's own record of how the run was started (for `aisec
    /// train`, its command-line options: data paths, validation split,
    /// scale), so that a resumed run keeps them. Opaque to this crate.
    pub run_options: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    weights: Vec<String>,
    step: i32,
    epochs_done: usize,
    batches_done: usize,
    partial_loss_sum: f64,
    partial_seconds: f64,
    config: TrainConfig,
    history: History,
    spec: Option<ArchSpec>,
    #[serde(default)]
    run_options: Option<serde_json::Value>,
}

fn bad(m: impl Into<String>) -> ModelError {
    ModelError::Invalid(format!("checkpoint: {}", m.into()))
}

impl Checkpoint {
    /// Captures a run's state. `pos` is `(epochs_done, batches_done,
    /// partial_loss_sum, partial_seconds)`.
    pub fn capture(
        model: &OnnxModel,
        trainer: &Trainer,
        config: &TrainConfig,
        history: &History,
        spec: Option<&ArchSpec>,
        pos: (usize, usize, f64, f64),
    ) -> Checkpoint {
        let weights = model
            .weight_names()
            .into_iter()
            .filter_map(|n| model.weight(&n).map(|t| (n, t)))
            .collect();
        Checkpoint {
            weights,
            trainer: trainer.state(),
            config: config.clone(),
            history: history.clone(),
            spec: spec.cloned(),
            epochs_done: pos.0,
            batches_done: pos.1,
            partial_loss_sum: pos.2,
            partial_seconds: pos.3,
            run_options: None,
        }
    }

    /// Encodes the checkpoint as safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let names: Vec<String> = self.weights.iter().map(|w| w.0.clone()).collect();
        let mut tensors: Vec<(String, &[usize], &[f32])> = Vec::new();
        for (n, t) in &self.weights {
            tensors.push((format!("model/{n}"), &t.shape, &t.data));
        }
        let st = &self.trainer;
        if !st.m.is_empty() {
            if st.m.len() != names.len() || st.v.len() != names.len() {
                return Err(bad("optimiser state does not match the weights"));
            }
            for (k, (n, t)) in self.weights.iter().enumerate() {
                if st.m[k].len() != t.data.len() || st.v[k].len() != t.data.len() {
                    return Err(bad(format!("optimiser state for '{n}' has the wrong size")));
                }
                tensors.push((format!("opt.m/{n}"), &t.shape, &st.m[k]));
                tensors.push((format!("opt.v/{n}"), &t.shape, &st.v[k]));
            }
        }
        let meta = Meta {
            format: FORMAT.into(),
            weights: names,
            step: st.step,
            epochs_done: self.epochs_done,
            batches_done: self.batches_done,
            partial_loss_sum: self.partial_loss_sum,
            partial_seconds: self.partial_seconds,
            config: self.config.clone(),
            history: self.history.clone(),
            spec: self.spec.clone(),
            run_options: self.run_options.clone(),
        };
        let meta = serde_json::to_string(&meta).map_err(|e| bad(e.to_string()))?;
        let views: Vec<F32Tensor<'_>> = tensors
            .iter()
            .map(|(n, s, d)| (n.as_str(), *s, *d))
            .collect();
        encode_f32(&[(META_KEY, meta)], &views)
    }

    /// Writes the checkpoint atomically (temporary file, flush, rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let file = path
            .file_name()
            .ok_or_else(|| bad(format!("{} is not a file path", path.display())))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            file.to_string_lossy(),
            std::process::id()
        ));
        let res = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, path)?;
            // Make the rename itself durable where the platform allows it.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res.map_err(ModelError::from)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint, ModelError> {
        let b = crate::onnx_model::read_bounded(path.as_ref())?;
        Checkpoint::from_bytes(&b)
    }

    /// Decodes checkpoint bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Checkpoint, ModelError> {
        if b.len() < 8 {
            return Err(bad("truncated"));
        }
        let mut l = [0u8; 8];
        l.copy_from_slice(&b[..8]);
        let hl = u64::from_le_bytes(l);
        if hl > (b.len() - 8) as u64 || hl > 100 << 20 {
            return Err(bad("header length out of range"));
        }
        let header: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&b[8..8 + hl as usize]).map_err(|e| bad(e.to_string()))?;
        let meta = header
            .get("__metadata__")
            .and_then(|m| m.get(META_KEY))
            .and_then(|m| m.as_str())
            .ok_or_else(|| bad("not an aisec checkpoint (no metadata)"))?;
        let meta: Meta = serde_json::from_str(meta).map_err(|e| bad(format!("metadata: {e}")))?;
        if meta.format != FORMAT {
            return Err(bad(format!("unsupported format '{}'", meta.format)));
        }
        let mut all: BTreeMap<String, Tensor> = crate::safetensors::parse_safetensors(b)?
            .into_iter()
            .collect();
        let mut weights = Vec::with_capacity(meta.weights.len());
        let (mut m, mut v) = (Vec::new(), Vec::new());
        for n in &meta.weights {
            let w = all
                .remove(&format!("model/{n}"))
                .ok_or_else(|| bad(format!("weight '{n}' is missing")))?;
            match (
                all.remove(&format!("opt.m/{n}")),
                all.remove(&format!("opt.v/{n}")),
            ) {
                (Some(a), Some(c))
                    if a.data.len() == w.data.len() && c.data.len() == w.data.len() =>
                {
                    m.push(a.data);
                    v.push(c.data);
                }
                (None, None) => {}
                _ => return Err(bad(format!("optimiser state for '{n}' is incomplete"))),
            }
            weights.push((n.clone(), w));
        }
        if !m.is_empty() && m.len() != weights.len() {
            return Err(bad("optimiser state covers only some weights"));
        }
        Ok(Checkpoint {
            weights,
            trainer: TrainerState {
                step: meta.step,
                m,
                v,
            },
            config: meta.config,
            history: meta.history,
            spec: meta.spec,
            epochs_done: meta.epochs_done,
            batches_done: meta.batches_done,
            partial_loss_sum: meta.partial_loss_sum,
            partial_seconds: meta.partial_seconds,
            run_options: meta.run_options,
        })
    }

    /// Loads the weights into `model` and the optimiser state into
    /// `trainer`; the checkpoint's weights must be exactly the model's.
    pub fn restore(&self, model: &mut OnnxModel, trainer: &mut Trainer) -> Result<(), ModelError> {
        let names = model.weight_names();
        if names.len() != self.weights.len()
            || names.iter().zip(&self.weights).any(|(a, b)| *a != b.0)
        {
            return Err(bad(
                "its weights do not match the model's (another architecture?)",
            ));
        }
        for (n, t) in &self.weights {
            model.set_weight(n, t)?;
        }
        trainer.set_state(self.trainer.clone());
        Ok(())
    }
}
