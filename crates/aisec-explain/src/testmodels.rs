//! Analytic models for the unit tests: their attributions are known in
//! closed form.

use aisec_model::{Classifier, Differentiable, Loss, ModelError, Tensor};

/// `z_k = sum_j w[k][j] x_j + c_k`, or with `square`, `z_k = sum_j w[k][j] x_j^2 + c_k`.
pub(crate) struct Poly {
    pub shape: Vec<usize>,
    pub w: Vec<Vec<f32>>,
    pub c: Vec<f32>,
    pub square: bool,
}

impl Poly {
    pub(crate) fn linear(shape: Vec<usize>, w: Vec<Vec<f32>>) -> Poly {
        let c = (0..w.len()).map(|k| 0.1 * k as f32 - 0.3).collect();
        Poly {
            shape,
            w,
            c,
            square: false,
        }
    }
}

impl Classifier for Poly {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }
    fn num_classes(&self) -> usize {
        self.w.len()
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let mut out = Vec::new();
        for i in 0..x.batch() {
            for (wk, ck) in self.w.iter().zip(&self.c) {
                let s: f32 = wk
                    .iter()
                    .zip(x.row(i))
                    .map(|(w, v)| if self.square { w * v * v } else { w * v })
                    .sum();
                out.push(s + ck);
            }
        }
        Tensor::new(vec![x.batch(), self.w.len()], out)
    }
}

impl Differentiable for Poly {
    fn loss_grad(&self, x: &Tensor, loss: &Loss) -> Result<(Vec<f32>, Tensor, Tensor), ModelError> {
        let Loss::Logit { classes } = loss else {
            return Err(ModelError::Invalid("test model: logit loss only".into()));
        };
        let z = self.logits(x)?;
        let mut g = Vec::new();
        let mut v = Vec::new();
        for (i, &k) in classes.iter().enumerate() {
            v.push(z.row(i)[k]);
            for (w, xv) in self.w[k].iter().zip(x.row(i)) {
                g.push(if self.square { 2.0 * w * xv } else { *w });
            }
        }
        Ok((v, Tensor::new(x.shape.clone(), g)?, z))
    }
}

/// A non-additive model with feature interactions:
/// `z_0 = x0 x1 + tanh(x2 - x3) + x4 * x5 * x0 + 0.5 x1`, `z_1 = -z_0` (6 features).
pub(crate) struct Interact;

impl Classifier for Interact {
    fn input_shape(&self) -> &[usize] {
        &[6]
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let mut out = Vec::new();
        for i in 0..x.batch() {
            let r = x.row(i);
            let z = r[0] * r[1] + (r[2] - r[3]).tanh() + r[4] * r[5] * r[0] + 0.5 * r[1];
            out.push(z);
            out.push(-z);
        }
        Tensor::new(vec![x.batch(), 2], out)
    }
}
