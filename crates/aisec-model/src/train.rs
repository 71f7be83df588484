//! Weight training: SGD with momentum and Adam (Kingma & Ba 2015) over the
//! executor's weight gradients, plus a simple epoch loop.
//!
//! Weight decay comes in two forms ([`WeightDecay`]): classic L2 (the decay
//! term is added to the gradient, so Adam rescales it) and decoupled decay
//! (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019:
//! weights shrink by `lr * lambda` each step, outside the adaptive update;
//! AdamW). The full training loop with schedules, augmentation, validation
//! and checkpoints is in [`crate::fit`].

use crate::classifier::{Loss, ModelError, Tensor};
use crate::onnx_model::OnnxModel;

/// Optimiser choice and hyper-parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Optimizer {
    /// SGD with momentum (`momentum = 0` for plain SGD).
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum coefficient.
        momentum: f32,
    },
    /// Adam.
    Adam {
        /// Learning rate.
        lr: f32,
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Denominator epsilon.
        eps: f32,
    },
}

impl Optimizer {
    /// Adam with the usual defaults and learning rate `lr`.
    pub fn adam(lr: f32) -> Optimizer {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl Optimizer {
    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } => *lr,
        }
    }
}

/// Weight decay applied by a [`Trainer`] to every weight.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "lambda", rename_all = "snake_case")]
pub enum WeightDecay {
    /// No decay.
    #[default]
    None,
    /// L2 penalty `lambda/2 * |w|^2`: `lambda * w` is added to the mean
    /// gradient (PyTorch's `weight_decay` for `SGD` and `Adam`).
    L2(f32),
    /// Decoupled decay (AdamW): `w -= lr * lambda * w` after the update
    /// (PyTorch's `AdamW(weight_decay=lambda)`).
    Decoupled(f32),
}

/// Optimiser state for one model.
#[derive(Debug, Clone)]
pub struct Trainer {
    opt: Optimizer,
    step: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    decay: WeightDecay,
    lr: Option<f32>,
    frozen: Vec<String>,
}

/// A [`Trainer`]'s moments and step count, for checkpoints: `m` and `v`
/// hold one buffer per weight, in the order of
/// [`OnnxModel::weight_names`] (empty before the first step; `v` is unused
/// by SGD).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerState {
    /// Steps taken so far (Adam's bias correction uses it).
    pub step: i32,
    /// First moments (SGD momentum buffers).
    pub m: Vec<Vec<f32>>,
    /// Second moments (Adam).
    pub v: Vec<Vec<f32>>,
}

impl Trainer {
    /// A trainer with fresh state.
    pub fn new(opt: Optimizer) -> Trainer {
        Trainer {
            opt,
            step: 0,
            m: vec![],
            v: vec![],
            decay: WeightDecay::None,
            lr: None,
            frozen: vec![],
        }
    }

    /// The same trainer with weight decay.
    pub fn with_weight_decay(mut self, decay: WeightDecay) -> Trainer {
        self.decay = decay;
        self
    }

    /// Overrides the optimiser's learning rate for the following steps
    /// (learning-rate schedules call this before each step).
    pub fn set_lr(&mut self, lr: f32) {
        self.lr = Some(lr);
    }

    /// The learning rate the next step uses.
    pub fn lr(&self) -> f32 {
        self.lr.unwrap_or_else(|| self.opt.lr())
    }

    /// The optimiser.
    pub fn optimizer(&self) -> &Optimizer {
        &self.opt
    }

    /// Leaves the named weights untouched by every step (no update, no
    /// decay); used for buffers such as batch-norm running statistics.
    pub fn freeze(&mut self, names: impl IntoIterator<Item = String>) {
        self.frozen.extend(names);
    }

    /// Moments and step count, for a checkpoint.
    pub fn state(&self) -> TrainerState {
        TrainerState {
            step: self.step,
            m: self.m.clone(),
            v: self.v.clone(),
        }
    }

    /// Restores moments and step count saved by [`Trainer::state`]. The
    /// buffers must match the model's weights (checked at the next step).
    pub fn set_state(&mut self, s: TrainerState) {
        self.step = s.step;
        self.m = s.m;
        self.v = s.v;
    }

    /// One step on the mean cross-entropy of a batch; returns that loss.
    pub fn step(
        &mut self,
        model: &mut OnnxModel,
        x: &Tensor,
        labels: &[usize],
    ) -> Result<f32, ModelError> {
        self.step_loss(
            model,
            x,
            &Loss::CrossEntropy {
                labels: labels.to_vec(),
            },
        )
    }

    /// One step on the batch mean of any per-example [`Loss`] (for example
    /// [`Loss::SoftCrossEntropy`] to distil another model's outputs);
    /// returns that mean.
    pub fn step_loss(
        &mut self,
        model: &mut OnnxModel,
        x: &Tensor,
        loss: &Loss,
    ) -> Result<f32, ModelError> {
        let (vals, grads) = model.weight_grads(x, loss)?;
        self.apply(model, &vals, grads)?;
        Ok(vals.iter().sum::<f32>() / vals.len().max(1) as f32)
    }

    /// One update from weight gradients summed over `n` examples, for
    /// batches that cannot share one tensor (sequences of different
    /// lengths, each run through [`OnnxModel::weight_grads`] on its own,
    /// their gradients added up). The same update as [`Trainer::step_loss`]
    /// on a batch of those `n` examples.
    pub fn step_summed(
        &mut self,
        model: &mut OnnxModel,
        n: usize,
        grads: Vec<(String, Tensor)>,
    ) -> Result<(), ModelError> {
        self.apply(model, &vec![0.0; n.max(1)], grads)
    }

    /// Applies one update from per-example losses and summed weight
    /// gradients (as [`OnnxModel::weight_grads`] returns them).
    pub(crate) fn apply(
        &mut self,
        model: &mut OnnxModel,
        vals: &[f32],
        grads: Vec<(String, Tensor)>,
    ) -> Result<(), ModelError> {
        let b = vals.len().max(1) as f32;
        let fresh = self.m.len() != grads.len()
            || self
                .m
                .iter()
                .zip(&grads)
                .any(|(m, (_, g))| m.len() != g.data.len());
        if fresh {
            self.m = grads.iter().map(|(_, g)| vec![0.0; g.data.len()]).collect();
            self.v = self.m.clone();
        }
        if self.v.len() != self.m.len()
            || self.v.iter().zip(&self.m).any(|(v, m)| v.len() != m.len())
        {
            self.v = self.m.iter().map(|m| vec![0.0; m.len()]).collect();
        }
        self.step += 1;
        let lr = self.lr();
        let (l2, decoupled) = match self.decay {
            WeightDecay::None => (0.0, 0.0),
            WeightDecay::L2(l) => (l, 0.0),
            WeightDecay::Decoupled(l) => (0.0, l),
        };
        for (k, (name, g)) in grads.iter().enumerate() {
            if self.frozen.iter().any(|f| f == name) {
                continue;
            }
            // Updated in place: no copy of the weight out and back.
            let Some(w) = model.weight_data_mut(name) else {
                continue;
            };
            if w.len() != g.data.len() {
                return Err(ModelError::Shape(format!(
                    "gradient of '{name}' has {} values for {} weights",
                    g.data.len(),
                    w.len()
                )));
            }
            let (m, v) = (&mut self.m[k], &mut self.v[k]);
            match self.opt {
                Optimizer::Sgd { momentum, .. } => {
                    for ((w, m), g) in w.iter_mut().zip(m.iter_mut()).zip(&g.data) {
                        let gi = g / b + l2 * *w;
                        *m = momentum * *m + gi;
                        *w -= lr * *m + lr * decoupled * *w;
                    }
                }
                Optimizer::Adam {
                    beta1, beta2, eps, ..
                } => {
                    let c1 = 1.0 - beta1.powi(self.step);
                    let c2 = 1.0 - beta2.powi(self.step);
                    // Same formula as element-indexed code, as zipped
                    // iterators (no bounds checks, so it vectorises).
                    for (((w, m), v), &g) in w
                        .iter_mut()
                        .zip(m.iter_mut())
                        .zip(v.iter_mut())
                        .zip(&g.data)
                    {
                        let gi = g / b + l2 * *w;
                        *m = beta1 * *m + (1.0 - beta1) * gi;
                        *v = beta2 * *v + (1.0 - beta2) * gi * gi;
                        *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps) + lr * decoupled * *w;
                    }
                }
            }
        }
        Ok(())
    }

    /// One pass over `(x, labels)` in batches of `batch`, in the given
    /// order; returns the mean batch loss.
    pub fn epoch(
        &mut self,
        model: &mut OnnxModel,
        x: &Tensor,
        labels: &[usize],
        batch: usize,
    ) -> Result<f32, ModelError> {
        let n = x.batch();
        if labels.len() != n {
            return Err(ModelError::Shape(format!(
                "{} labels for {n} examples",
                labels.len()
            )));
        }
        let batch = batch.max(1);
        let row = x.row_len();
        let mut total = 0.0;
        let mut count = 0;
        for s in (0..n).step_by(batch) {
            let e = (s + batch).min(n);
            let mut shape = x.shape.clone();
            shape[0] = e - s;
            let xb = Tensor::new(shape, x.data[s * row..e * row].to_vec())?;
            total += self.step(model, &xb, &labels[s..e])?;
            count += 1;
        }
        Ok(total / count.max(1) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (OnnxModel, Tensor, Loss) {
        let m = OnnxModel::test_from_spec(
            r#"{"input": [3], "layers": [{"type": "dense", "units": 2}]}"#,
            1,
        );
        let x = Tensor::new(vec![2, 3], vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.5]).unwrap();
        (m, x, Loss::CrossEntropy { labels: vec![1, 0] })
    }

    #[test]
    fn weight_decay_follows_the_l2_and_decoupled_formulas() {
        let (m0, x, loss) = setup();
        let (_, grads) = m0.weight_grads(&x, &loss).unwrap();
        let (lr, lam) = (0.1f32, 0.5f32);
        // SGD with L2: w - lr * (g/b + lam * w).
        let mut m = m0.clone();
        let mut t = Trainer::new(Optimizer::Sgd { lr, momentum: 0.0 })
            .with_weight_decay(WeightDecay::L2(lam));
        t.step_loss(&mut m, &x, &loss).unwrap();
        for (name, g) in &grads {
            let (w0, w1) = (m0.weight(name).unwrap(), m.weight(name).unwrap());
            for i in 0..g.data.len() {
                let want = w0.data[i] - lr * (g.data[i] / 2.0 + lam * w0.data[i]);
                assert!((w1.data[i] - want).abs() < 1e-6, "{name}[{i}]");
            }
        }
        // Adam with decoupled decay, first step: m^ = g, v^ = g^2, so
        // w - lr * g / (|g| + eps) - lr * lam * w.
        let mut m = m0.clone();
        let mut t =
            Trainer::new(Optimizer::adam(lr)).with_weight_decay(WeightDecay::Decoupled(lam));
        t.step_loss(&mut m, &x, &loss).unwrap();
        for (name, g) in &grads {
            let (w0, w1) = (m0.weight(name).unwrap(), m.weight(name).unwrap());
            for i in 0..g.data.len() {
                let gi = g.data[i] / 2.0;
                let want = w0.data[i] - lr * gi / (gi.abs() + 1e-8) - lr * lam * w0.data[i];
                assert!((w1.data[i] - want).abs() < 1e-5, "{name}[{i}]");
            }
        }
        // Frozen weights and the lr override.
        let mut m = m0.clone();
        let mut t = Trainer::new(Optimizer::Sgd { lr, momentum: 0.9 });
        t.freeze(["layer0.bias".to_string()]);
        t.set_lr(0.0);
        assert_eq!(t.lr(), 0.0);
        t.step_loss(&mut m, &x, &loss).unwrap();
        assert_eq!(m.weight("layer0.weight"), m0.weight("layer0.weight"));
        t.set_lr(lr);
        t.step_loss(&mut m, &x, &loss).unwrap();
        assert_eq!(m.weight("layer0.bias"), m0.weight("layer0.bias"));
        assert_ne!(m.weight("layer0.weight"), m0.weight("layer0.weight"));
        let s = t.state();
        assert_eq!(s.step, 2);
        let mut t2 = Trainer::new(Optimizer::Sgd { lr, momentum: 0.9 });
        t2.set_state(s.clone());
        assert_eq!(t2.state(), s);
    }
}
