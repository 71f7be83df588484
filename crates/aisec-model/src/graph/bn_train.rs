//! Training-mode batch normalisation (Ioffe & Szegedy, "Batch
//! Normalization: Accelerating Deep Network Training by Reducing Internal
//! Covariate Shift", ICML 2015) as one fused operator of the executor:
//! `ai.aisec::BatchNormTrain(x, scale, bias)` with attribute `epsilon`
//! normalises each channel of `x` (`[n, c, ...]`) by the mean and biased
//! variance over the batch and spatial axes, and outputs `y`, the batch
//! mean and the batch variance (both `[c]`; the training loop reads them to
//! update the running averages). Spec models use it only in their training
//! twin, which is never exported; the exported graph has the standard
//! `BatchNormalization` with running statistics.
//!
//! Backward, with `xh = (x - mean) * rstd` and `m` values per channel:
//! `dbias = sum dy`, `dscale = sum dy * xh`,
//! `dx = scale * rstd / m * (m * dy - dbias - xh * dscale)`.
//!
//! Registered with the normalisations (see [`super::ops`]).

use std::sync::Arc;

use rayon::prelude::*;

use super::ops::{Backward, Grads, Op, Outputs, Registry};
use super::{attrs, fval, need_in, shape_err, Cx, Node, Saved, Val};
use crate::classifier::ModelError;

pub(super) fn register(r: &mut Registry) {
    r.add(&["ai.aisec::BatchNormTrain"], |n, _| {
        Ok(Arc::new(BatchNormTrain {
            eps: attrs::float(n, "epsilon", 1e-5),
        }))
    });
}

/// `ai.aisec::BatchNormTrain`: batch norm with the batch's statistics.
#[derive(Debug)]
struct BatchNormTrain {
    eps: f32,
}

impl Op for BatchNormTrain {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        if let Some(x) = cx.opt(0) {
            cx.alloc(x.shape())?;
        }
        forward(cx.node, cx.ins, self.eps)
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        backward(b.node, b.ins, b.saved, &b.dy(), |i| b.need(i))
    }
}

fn dims(node: &Node, x: &Val) -> Result<(usize, usize, usize), ModelError> {
    let s = x.shape();
    if s.len() < 2 {
        return Err(shape_err(node, "input rank < 2".into()));
    }
    let inner: usize = s[2..].iter().product();
    Ok((s[0], s[1], inner))
}

/// Forward pass: outputs `[y, mean, var]`, aux `(mean, rstd)`.
fn forward(node: &Node, ins: &[Option<&Val>], eps: f32) -> Result<Outputs, ModelError> {
    let nm = node.name.as_str();
    let x = need_in(ins, 0, node)?;
    let (n, c, inner) = dims(node, x)?;
    let scale = need_in(ins, 1, node)?.f(nm)?;
    let bias = need_in(ins, 2, node)?.f(nm)?;
    if scale.len() != c || bias.len() != c {
        return Err(shape_err(
            node,
            "scale/bias length must be the channel count".into(),
        ));
    }
    let xd = x.f(nm)?;
    let m = (n * inner).max(1) as f64;
    // Per-channel mean and variance in f64 (two passes: no cancellation).
    let stats: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut s = 0.0f64;
            for i in 0..n {
                let b = (i * c + ch) * inner;
                s += xd[b..b + inner].iter().map(|&v| f64::from(v)).sum::<f64>();
            }
            let mean = s / m;
            let mut q = 0.0f64;
            for i in 0..n {
                let b = (i * c + ch) * inner;
                q += xd[b..b + inner]
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>();
            }
            (mean as f32, (q / m) as f32)
        })
        .collect();
    let mean: Vec<f32> = stats.iter().map(|s| s.0).collect();
    let var: Vec<f32> = stats.iter().map(|s| s.1).collect();
    let rstd: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let mut y = vec![0.0f32; xd.len()];
    y.par_chunks_mut(inner.max(1))
        .zip(xd.par_chunks(inner.max(1)))
        .enumerate()
        .for_each(|(blk, (yb, xb))| {
            let ch = blk % c;
            let a = scale[ch] * rstd[ch];
            let b = bias[ch] - mean[ch] * a;
            yb.iter_mut().zip(xb).for_each(|(o, &v)| *o = v * a + b);
        });
    Ok((
        vec![
            fval(x.shape().to_vec(), y),
            fval(vec![c], mean.clone()),
            fval(vec![c], var),
        ],
        Saved::NormStats { mean, rstd },
    ))
}

/// Backward pass: gradients for `(x, scale, bias)` where needed.
fn backward(
    node: &Node,
    ins: &[Option<&Val>],
    saved: &Saved,
    dy: &[f32],
    need: impl Fn(usize) -> bool,
) -> Result<Grads, ModelError> {
    let nm = node.name.as_str();
    let x = need_in(ins, 0, node)?;
    let (n, c, inner) = dims(node, x)?;
    let scale = need_in(ins, 1, node)?.f(nm)?;
    let xd = x.f(nm)?;
    let Saved::NormStats { mean, rstd } = saved else {
        return Err(shape_err(node, "missing forward statistics".into()));
    };
    if dy.len() != xd.len() || mean.len() != c || scale.len() != c {
        return Err(shape_err(node, "gradient shape".into()));
    }
    let sums: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut sg, mut sgx) = (0.0f64, 0.0f64);
            for i in 0..n {
                let b = (i * c + ch) * inner;
                for j in b..b + inner {
                    let g = f64::from(dy[j]);
                    sg += g;
                    sgx += g * f64::from((xd[j] - mean[ch]) * rstd[ch]);
                }
            }
            (sg as f32, sgx as f32)
        })
        .collect();
    let dbias: Vec<f32> = sums.iter().map(|s| s.0).collect();
    let dscale: Vec<f32> = sums.iter().map(|s| s.1).collect();
    let mut res = vec![None, None, None];
    if need(0) {
        let m = (n * inner).max(1) as f32;
        let mut dx = vec![0.0f32; xd.len()];
        dx.par_chunks_mut(inner.max(1))
            .enumerate()
            .for_each(|(blk, out)| {
                let ch = blk % c;
                let k = scale[ch] * rstd[ch] / m;
                let b = blk * inner;
                for (j, o) in out.iter_mut().enumerate() {
                    let xh = (xd[b + j] - mean[ch]) * rstd[ch];
                    *o = k * (m * dy[b + j] - dbias[ch] - xh * dscale[ch]);
                }
            });
        res[0] = Some(dx);
    }
    if need(1) {
        res[1] = Some(dscale);
    }
    if need(2) {
        res[2] = Some(dbias);
    }
    Ok(res)
}
