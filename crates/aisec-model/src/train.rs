//! Weight training: SGD with momentum and Adam (Kingma & Ba 2015) over the
//! executor's weight gradients, plus a simple epoch loop.

use crate::classifier::{Loss, ModelError, Tensor};
use crate::onnx_model::OnnxModel;

/// Optimiser choice and hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
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

/// Optimiser state for one model.
#[derive(Debug, Clone)]
pub struct Trainer {
    opt: Optimizer,
    step: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Trainer {
    /// A trainer with fresh state.
    pub fn new(opt: Optimizer) -> Trainer {
        Trainer {
            opt,
            step: 0,
            m: vec![],
            v: vec![],
        }
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
        let b = vals.len().max(1) as f32;
        if self.m.len() != grads.len() {
            self.m = grads.iter().map(|(_, g)| vec![0.0; g.data.len()]).collect();
            self.v = self.m.clone();
        }
        self.step += 1;
        for (k, (name, g)) in grads.iter().enumerate() {
            let Some(mut w) = model.weight(name) else {
                continue;
            };
            let (m, v) = (&mut self.m[k], &mut self.v[k]);
            match self.opt {
                Optimizer::Sgd { lr, momentum } => {
                    for ((w, m), g) in w.data.iter_mut().zip(m.iter_mut()).zip(&g.data) {
                        *m = momentum * *m + g / b;
                        *w -= lr * *m;
                    }
                }
                Optimizer::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                } => {
                    let c1 = 1.0 - beta1.powi(self.step);
                    let c2 = 1.0 - beta2.powi(self.step);
                    for i in 0..w.data.len() {
                        let gi = g.data[i] / b;
                        m[i] = beta1 * m[i] + (1.0 - beta1) * gi;
                        v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
                        w.data[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
                    }
                }
            }
            model.set_weight(name, &w)?;
        }
        Ok(vals.iter().sum::<f32>() / b)
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
