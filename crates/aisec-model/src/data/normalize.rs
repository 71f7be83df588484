//! Per-channel normalisation as part of the model.
//!
//! Vision models are usually trained on `(x - mean) / std` inputs, while
//! robustness budgets are stated on images in `[0, 1]` (Carlini et al., "On
//! Evaluating Adversarial Robustness", 2019, sec. 4: report the threat model
//! in the input space of the data). [`Normalized`] puts the normalisation in
//! front of a model, so attacks see pixel-space inputs and their gradients
//! are taken through the normalisation (chain rule: divided by `std`).

use crate::classifier::{Classifier, Differentiable, Loss, ModelError, Tensor};

/// A model that normalises its input per channel (dimension 1 of the
/// batch) before running the wrapped model.
#[derive(Debug, Clone)]
pub struct Normalized<M> {
    inner: M,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    channels: usize,
}

impl<M: Classifier> Normalized<M> {
    /// Wraps `inner`. `mean` and `std` hold one value (all channels) or one
    /// per channel of the model's input; `std` must be positive.
    pub fn new(inner: M, mean: Vec<f32>, std: Vec<f32>) -> Result<Self, ModelError> {
        let channels = inner.input_shape().first().copied().unwrap_or(1).max(1);
        let expand = |v: Vec<f32>, d: f32, what: &str| -> Result<Vec<f32>, ModelError> {
            match v.len() {
                0 => Ok(vec![d; channels]),
                1 => Ok(vec![v[0]; channels]),
                l if l == channels => Ok(v),
                l => Err(ModelError::Shape(format!(
                    "{l} {what} values for a model with {channels} input channels"
                ))),
            }
        };
        let mean = expand(mean, 0.0, "mean")?;
        let std = expand(std, 1.0, "std")?;
        if std.iter().any(|&s| !(s > 0.0 && s.is_finite())) || mean.iter().any(|m| !m.is_finite()) {
            return Err(ModelError::Invalid(
                "std must be positive and mean finite".into(),
            ));
        }
        Ok(Normalized {
            inner,
            mean,
            inv_std: std.iter().map(|s| 1.0 / s).collect(),
            channels,
        })
    }

    /// The wrapped model.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    fn per_channel(&self, x: &Tensor, mut f: impl FnMut(&mut f32, usize)) -> Tensor {
        let mut t = x.clone();
        let inner: usize = x.shape.iter().skip(2).product::<usize>().max(1);
        for (blk, chunk) in t.data.chunks_mut(inner).enumerate() {
            let ch = blk % self.channels;
            chunk.iter_mut().for_each(|v| f(v, ch));
        }
        t
    }

    fn normalize(&self, x: &Tensor) -> Tensor {
        self.per_channel(x, |v, c| *v = (*v - self.mean[c]) * self.inv_std[c])
    }
}

impl<M: Classifier> Classifier for Normalized<M> {
    fn input_shape(&self) -> &[usize] {
        self.inner.input_shape()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        self.inner.logits(&self.normalize(x))
    }
}

impl<M: Differentiable> Differentiable for Normalized<M> {
    fn loss_grad(&self, x: &Tensor, loss: &Loss) -> Result<(Vec<f32>, Tensor, Tensor), ModelError> {
        let (v, g, z) = self.inner.loss_grad(&self.normalize(x), loss)?;
        let g = self.per_channel(&g, |v, c| *v *= self.inv_std[c]);
        Ok((v, g, z))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// logits = [sum of channel 0, sum of channel 1] of a [2, 1, 2] input.
    struct SumModel;
    impl Classifier for SumModel {
        fn input_shape(&self) -> &[usize] {
            &[2, 1, 2]
        }
        fn num_classes(&self) -> usize {
            2
        }
        fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
            let d = (0..x.batch())
                .flat_map(|i| {
                    let r = x.row(i);
                    [r[0] + r[1], r[2] + r[3]]
                })
                .collect();
            Tensor::new(vec![x.batch(), 2], d)
        }
    }
    impl Differentiable for SumModel {
        fn loss_grad(
            &self,
            x: &Tensor,
            loss: &Loss,
        ) -> Result<(Vec<f32>, Tensor, Tensor), ModelError> {
            let z = self.logits(x)?;
            let Loss::Logit { classes } = loss else {
                return Err(ModelError::Invalid("test model: Logit loss only".into()));
            };
            let mut g = Tensor::zeros(x.shape.clone());
            let mut vals = vec![];
            for (i, &c) in classes.iter().enumerate() {
                vals.push(z.row(i)[c]);
                g.row_mut(i)[2 * c..2 * c + 2].fill(1.0);
            }
            Ok((vals, g, z))
        }
    }

    #[test]
    fn normalises_inputs_and_chains_gradients() {
        let m = Normalized::new(SumModel, vec![0.5, 0.25], vec![0.5, 2.0]).unwrap();
        let x = Tensor::new(vec![1, 2, 1, 2], vec![1.0, 0.0, 0.25, 4.25]).unwrap();
        // ((1-.5)/.5 + (0-.5)/.5, (0)/2 + 4/2)
        assert_eq!(m.logits(&x).unwrap().data, vec![0.0, 2.0]);
        let (_, g, _) = m.loss_grad(&x, &Loss::Logit { classes: vec![1] }).unwrap();
        assert_eq!(g.data, vec![0.0, 0.0, 0.5, 0.5]);
        assert!(Normalized::new(SumModel, vec![0.0; 3], vec![]).is_err());
        assert!(Normalized::new(SumModel, vec![], vec![0.0]).is_err());
    }
}
