//! Training-mode dropout (Srivastava et al., "Dropout: A Simple Way to
//! Prevent Neural Networks from Overfitting", JMLR 2014) in its inverted
//! form, as PyTorch's `nn.Dropout` computes it: each element is kept with
//! probability `1 - ratio` and scaled by `1 / (1 - ratio)`, so inference is
//! the identity.
//!
//! `ai.aisec::DropoutTrain(x, seed)` with attribute `ratio`: the mask is a
//! pure function of the integer `seed` input and the element's flat index
//! (a SplitMix64 hash of the two, compared with `ratio` on 24 bits), so the
//! backward pass recomputes it instead of storing it, a given seed always
//! drops the same elements, and the training loop picks a new mask per
//! step by setting the seed ([`Graph::set_dropout_seed`]). Spec models use
//! it only in their training twin; the inference graph and its ONNX export
//! have the standard `Dropout` node, the identity at inference.
//!
//! Registered with the operators (see [`super::ops`]).

use std::sync::Arc;

use super::ops::{Backward, Grads, Op, Outputs, Registry};
use super::{attrs, fval, ival, shape_err, Cx, Graph, Val};
use crate::classifier::ModelError;

/// The training-twin operator's type name (domain `ai.aisec`).
pub(crate) const OP_TYPE: &str = "DropoutTrain";

pub(super) fn register(r: &mut Registry) {
    r.add(&["ai.aisec::DropoutTrain"], |n, _| {
        let ratio = attrs::float(n, "ratio", 0.5);
        if !(0.0..1.0).contains(&ratio) {
            return Err(ModelError::Invalid(format!(
                "node '{}': dropout ratio {ratio} is not in [0, 1)",
                n.name
            )));
        }
        Ok(Arc::new(DropoutTrain { ratio }))
    });
}

/// SplitMix64's finaliser of `seed` advanced by `i` steps.
fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether element `i` is kept under `seed` at drop probability `ratio`.
pub(crate) fn keep(seed: u64, i: usize, ratio: f32) -> bool {
    // 24 uniform bits: exact in f32, so P(keep) = 1 - ratio up to 2^-24.
    let u = (mix(seed, i as u64) >> 40) as f32 * (1.0 / (1u64 << 24) as f32);
    u >= ratio
}

/// `ai.aisec::DropoutTrain`: inverted dropout with a seeded mask.
#[derive(Debug)]
struct DropoutTrain {
    ratio: f32,
}

impl DropoutTrain {
    fn seed(&self, v: Option<&Val>) -> u64 {
        match v {
            Some(Val::I(_, d)) => d.first().map_or(0, |&s| s as u64),
            _ => 0,
        }
    }

    /// `v * mask / (1 - ratio)` elementwise.
    fn apply(&self, seed: u64, v: &[f32]) -> Vec<f32> {
        if self.ratio == 0.0 {
            return v.to_vec();
        }
        let scale = 1.0 / (1.0 - self.ratio);
        v.iter()
            .enumerate()
            .map(|(i, &x)| {
                if keep(seed, i, self.ratio) {
                    x * scale
                } else {
                    0.0
                }
            })
            .collect()
    }
}

impl Op for DropoutTrain {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        cx.alloc(x.shape())?;
        let seed = self.seed(cx.opt(1));
        let y = self.apply(seed, cx.f(0)?);
        Ok((vec![fval(x.shape().to_vec(), y)], super::Saved::Nothing))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let dy = b.dy_ref();
            let n = b.input(0)?.numel();
            if dy.len() != n {
                return Err(shape_err(b.node, "output gradient size".into()));
            }
            res[0] = Some(self.apply(self.seed(b.opt(1)), &dy));
        }
        Ok(res)
    }
}

impl Graph {
    /// Sets the mask seed of every training-mode dropout node: node `k`
    /// (in graph order) draws its mask from a seed mixed from `seed` and
    /// `k`, so layers drop independently. Graphs without dropout are
    /// unchanged.
    pub(crate) fn set_dropout_seed(&mut self, seed: u64) {
        let mut k = 0u64;
        for node in &self.nodes {
            if node.op_type != OP_TYPE {
                continue;
            }
            if let Some(Some(id)) = node.inputs.get(1) {
                self.consts[*id] = Some(ival(vec![1], vec![mix(seed, k) as i64]));
            }
            k += 1;
        }
    }

    /// Whether the graph has training-mode dropout.
    pub(crate) fn has_dropout(&self) -> bool {
        self.nodes.iter().any(|n| n.op_type == OP_TYPE)
    }
}
