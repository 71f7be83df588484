//! Shadow (and demo target) model training for LiRA: a spec architecture
//! trained by aisec's own executor and optimisers.

use aisec_model::data::Dataset;
use aisec_model::fit::{train_spec, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::{Classifier, ModelError, OnnxModel, Tensor};

use crate::util::gather;

/// Something that trains a fresh model on a data set. LiRA calls it once
/// per shadow model, with a different seed each time.
pub trait ShadowTrainer: Sync {
    /// Trains a new model on `data` (initialisation and order from `seed`).
    fn train(&self, data: &Dataset, seed: u64) -> Result<Box<dyn Classifier>, ModelError>;
}

/// Trains an [`ArchSpec`] model: `epochs` passes in a fresh random order
/// each, mini-batches of `batch_size`.
#[derive(Debug, Clone)]
pub struct SpecTrainer {
    /// The architecture.
    pub spec: ArchSpec,
    /// Passes over the data.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Optimiser and learning rate.
    pub optimizer: Optimizer,
}

impl SpecTrainer {
    /// Trains a spec model on `data` with aisec-model's fit loop (seeded
    /// shuffling every epoch; batch norm trained with batch statistics) and
    /// returns it as an [`OnnxModel`].
    pub fn fit(&self, data: &Dataset, seed: u64) -> Result<OnnxModel, ModelError> {
        if data.is_empty() {
            return Err(ModelError::Shape("no training examples".into()));
        }
        let cfg = TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size.max(1),
            optimizer: self.optimizer.clone(),
            seed: seed ^ 0x7368_6164_6f77,
            ..TrainConfig::default()
        };
        Ok(train_spec(&self.spec, seed, data, &cfg)?.0)
    }
}

impl ShadowTrainer for SpecTrainer {
    fn train(&self, data: &Dataset, seed: u64) -> Result<Box<dyn Classifier>, ModelError> {
        Ok(Box::new(self.fit(data, seed)?))
    }
}

/// The examples of `x`/`y` whose `keep` flag is set, as a data set.
pub fn subset(x: &Tensor, y: &[usize], keep: &[bool]) -> Result<Dataset, ModelError> {
    let idx: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
    Dataset::new(gather(x, &idx), idx.iter().map(|&i| y[i]).collect())
}
