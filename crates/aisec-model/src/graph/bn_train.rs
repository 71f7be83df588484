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
use crate::kernels::{build, Sink};
use crate::simd;

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
        backward(b.node, b.ins, b.saved, &b.dy_ref(), |i| b.need(i))
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
    // Per-channel mean and variance in f64, in one pass over `x`: sums of
    // `x - k` and `(x - k)^2` around a shift `k` (the channel's first
    // value), so that the difference `E[(x-k)^2] - E[x-k]^2` does not
    // cancel even when the mean is far from zero (the "shifted data"
    // algorithm; Chan, Golub and LeVeque, "Algorithms for computing the
    // sample variance", 1983). In f64 with f32 data the result matches
    // the two-pass formula to well within f32 rounding.
    let stats: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| channel_stats(xd, (n, c, inner), ch))
        .collect();
    let mean: Vec<f32> = stats.iter().map(|s| s.0).collect();
    let var: Vec<f32> = stats.iter().map(|s| s.1).collect();
    let rstd: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    // One chunk per image (per-channel blocks can be a few dozen values).
    let img = (c * inner).max(1);
    let y = build(xd.len(), img, |i, out| {
        let xi = &xd[i * img..((i + 1) * img).min(xd.len())];
        normalize_image(xi, inner, (scale, bias), (&mean, &rstd), out);
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

simd::widened! {
    /// Writes image `xi` (`[c, inner]`) normalised: `x * a + b` per
    /// channel with `a = scale * rstd` and `b = bias - mean * a`.
    fn normalize_image(
        xi: &[f32],
        inner: usize,
        sb: (&[f32], &[f32]),
        stats: (&[f32], &[f32]),
        out: &mut Sink<'_>,
    ) {
        let ((scale, bias), (mean, rstd)) = (sb, stats);
        for (ch, xb) in xi.chunks(inner.max(1)).enumerate() {
            let a = scale[ch] * rstd[ch];
            let b = bias[ch] - mean[ch] * a;
            out.put_map(xb, |v| v * a + b);
        }
    }
}

simd::widened! {
    /// Writes the input gradient of image `i` (values `r` of `xd` and
    /// `dy`): `k * (m * dy - dbias - xh * dscale)` per channel.
    fn input_grad_image(
        xdy: (&[f32], &[f32]),
        r: std::ops::Range<usize>,
        inner: usize,
        m: f32,
        params: (&[f32], &[f32], &[f32]),
        sums: (&[f32], &[f32]),
        out: &mut Sink<'_>,
    ) {
        let ((xd, dy), (scale, mean, rstd), (dbias, dscale)) = (xdy, params, sums);
        let blocks = xd[r.clone()]
            .chunks(inner.max(1))
            .zip(dy[r].chunks(inner.max(1)));
        for (ch, (xb, gb)) in blocks.enumerate() {
            let k = scale[ch] * rstd[ch] / m;
            let (mu, rs, db, ds) = (mean[ch], rstd[ch], dbias[ch], dscale[ch]);
            out.put_zip(xb, gb, |x, g| {
                let xh = (x - mu) * rs;
                k * (m * g - db - xh * ds)
            });
        }
    }
}

simd::widened! {
    /// `(sum dy, sum dy * xh)` over channel `ch` of `dy` and `xd`
    /// (`[n, c, inner]`), in `f64` lanes, rounded to `f32`.
    fn channel_grad_sums(
        dy: &[f32],
        xd: &[f32],
        dims: (usize, usize, usize),
        ch: usize,
        mu: f32,
        rs: f32,
    ) -> (f32, f32) {
        let (n, c, inner) = dims;
        let (mut sg, mut sgx) = (Lanes::default(), Lanes::default());
        for i in 0..n {
            let b = (i * c + ch) * inner;
            sg.add_all(&dy[b..b + inner], f64::from);
            sgx.add_pairs(&dy[b..b + inner], &xd[b..b + inner], |g, x| {
                f64::from(g) * f64::from((x - mu) * rs)
            });
        }
        (sg.total() as f32, sgx.total() as f32)
    }
}

simd::widened! {
/// Mean and biased variance of channel `ch` of `xd` (`[n, c, inner]`), in
/// one pass (see [`forward`]).
fn channel_stats(xd: &[f32], dims: (usize, usize, usize), ch: usize) -> (f32, f32) {
    let (n, c, inner) = dims;
    let m = (n * inner).max(1) as f64;
    let k = xd.get(ch * inner).map_or(0.0, |&v| f64::from(v));
    let (mut s, mut q) = (Lanes::default(), Lanes::default());
    for i in 0..n {
        let b = (i * c + ch) * inner;
        Lanes::add_shifted(&mut s, &mut q, &xd[b..b + inner], k);
    }
    let d = s.total() / m;
    let var = (q.total() / m - d * d).max(0.0);
    ((k + d) as f32, var as f32)
}
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
        .map(|ch| channel_grad_sums(dy, xd, (n, c, inner), ch, mean[ch], rstd[ch]))
        .collect();
    let dbias: Vec<f32> = sums.iter().map(|s| s.0).collect();
    let dscale: Vec<f32> = sums.iter().map(|s| s.1).collect();
    let mut res = vec![None, None, None];
    if need(0) {
        let m = (n * inner).max(1) as f32;
        let img = (c * inner).max(1);
        let dx = build(xd.len(), img, |i, out| {
            let r = i * img..((i + 1) * img).min(xd.len());
            let params = (scale, mean.as_slice(), rstd.as_slice());
            let sums = (dbias.as_slice(), dscale.as_slice());
            input_grad_image((xd, dy), r, inner, m, params, sums, out);
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

/// An `f64` sum kept in eight running partial sums, so long reductions
/// vectorise (one running sum is one dependent add per value). The
/// result differs from a left-to-right sum only by reassociation.
#[derive(Default)]
struct Lanes([f64; 8]);

impl Lanes {
    #[inline(always)]
    fn add_all(&mut self, xs: &[f32], f: impl Fn(f32) -> f64) {
        let mut it = xs.chunks_exact(8);
        for ch in &mut it {
            for (a, &v) in self.0.iter_mut().zip(ch) {
                *a += f(v);
            }
        }
        for (a, &v) in self.0.iter_mut().zip(it.remainder()) {
            *a += f(v);
        }
    }
    /// Adds `x - k` to `s` and `(x - k)^2` to `q` for each `x` of `xs`.
    #[inline(always)]
    fn add_shifted(s: &mut Lanes, q: &mut Lanes, xs: &[f32], k: f64) {
        let mut it = xs.chunks_exact(8);
        for ch in &mut it {
            for ((a, b), &v) in s.0.iter_mut().zip(q.0.iter_mut()).zip(ch) {
                let d = f64::from(v) - k;
                *a += d;
                *b += d * d;
            }
        }
        for ((a, b), &v) in s.0.iter_mut().zip(q.0.iter_mut()).zip(it.remainder()) {
            let d = f64::from(v) - k;
            *a += d;
            *b += d * d;
        }
    }
    #[inline(always)]
    fn add_pairs(&mut self, xs: &[f32], ys: &[f32], f: impl Fn(f32, f32) -> f64) {
        let (mut ix, mut iy) = (xs.chunks_exact(8), ys.chunks_exact(8));
        for (cx, cy) in (&mut ix).zip(&mut iy) {
            for ((a, &x), &y) in self.0.iter_mut().zip(cx).zip(cy) {
                *a += f(x, y);
            }
        }
        for ((a, &x), &y) in self.0.iter_mut().zip(ix.remainder()).zip(iy.remainder()) {
            *a += f(x, y);
        }
    }
    #[inline(always)]
    fn total(&self) -> f64 {
        let s = &self.0;
        ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
    }
}

#[cfg(test)]
mod tests {
    use super::{channel_grad_sums, channel_stats, input_grad_image, normalize_image};
    use crate::kernels::Sink;

    /// The batch-norm kernels compute the same bits on the baseline and
    /// the AVX2 path of `simd::widened!` (planes of 49 and 196 values,
    /// neither a multiple of the vector width).
    #[test]
    fn kernels_are_bit_identical_across_the_simd_dispatch() {
        for (n, c, inner) in [(3, 5, 49), (2, 4, 196)] {
            let len = n * c * inner;
            let xd: Vec<f32> = (0..len)
                .map(|i| (i as f32 * 0.37).sin() * 3.0 + 0.5)
                .collect();
            let dy: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos() * 0.01).collect();
            let (scale, bias) = (vec![1.3f32; c], vec![-0.2f32; c]);
            crate::simd::assert_same_bits(|| {
                let stats: Vec<(f32, f32)> = (0..c)
                    .map(|ch| channel_stats(&xd, (n, c, inner), ch))
                    .collect();
                let mean: Vec<f32> = stats.iter().map(|s| s.0).collect();
                let rstd: Vec<f32> = stats.iter().map(|s| 1.0 / (s.1 + 1e-5).sqrt()).collect();
                let sums: Vec<(f32, f32)> = (0..c)
                    .map(|ch| channel_grad_sums(&dy, &xd, (n, c, inner), ch, mean[ch], rstd[ch]))
                    .collect();
                let db: Vec<f32> = sums.iter().map(|s| s.0).collect();
                let ds: Vec<f32> = sums.iter().map(|s| s.1).collect();
                let (mut y, mut dx) = (Vec::new(), Vec::new());
                let img = c * inner;
                for i in 0..n {
                    let r = i * img..(i + 1) * img;
                    normalize_image(
                        &xd[r.clone()],
                        inner,
                        (&scale, &bias),
                        (&mean, &rstd),
                        &mut Sink::Grow(&mut y),
                    );
                    let params = (scale.as_slice(), mean.as_slice(), rstd.as_slice());
                    input_grad_image(
                        (&xd, &dy),
                        r,
                        inner,
                        (n * inner) as f32,
                        params,
                        (&db, &ds),
                        &mut Sink::Grow(&mut dx),
                    );
                }
                assert_eq!(y.len(), len);
                assert_eq!(dx.len(), len);
                vec![mean, rstd, db, ds, y, dx]
            });
        }
    }

    /// Two-pass f64 reference: mean, then the mean squared deviation.
    fn two_pass(xd: &[f32], (n, c, inner): (usize, usize, usize), ch: usize) -> (f64, f64) {
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| xd[(i * c + ch) * inner..(i * c + ch + 1) * inner].iter())
            .map(|&v| f64::from(v))
            .collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
        (mean, var)
    }

    #[test]
    fn one_pass_statistics_match_two_passes_even_far_from_zero() {
        // Channel 0 near zero, channel 1 at 1e4 with a spread of about
        // 0.01 (where a naive sum of squares would cancel to nothing),
        // channel 2 constant; 19 values per plane (not a multiple of the
        // eight lanes).
        let (n, c, inner) = (5, 3, 19);
        let mut xd = vec![0.0f32; n * c * inner];
        for i in 0..n {
            for j in 0..inner {
                let t = ((i * inner + j) as f32 * 0.618).fract() - 0.5;
                xd[(i * c) * inner + j] = t;
                xd[(i * c + 1) * inner + j] = 1.0e4 + 0.02 * t;
                xd[(i * c + 2) * inner + j] = -3.5;
            }
        }
        for ch in 0..c {
            let (mean, var) = channel_stats(&xd, (n, c, inner), ch);
            let (rm, rv) = two_pass(&xd, (n, c, inner), ch);
            assert!(
                (f64::from(mean) - rm).abs() <= 1e-6 * rm.abs().max(1.0),
                "{ch}: {mean} {rm}"
            );
            assert!(
                (f64::from(var) - rv).abs() <= 1e-5 * rv + 1e-12,
                "{ch}: {var} {rv}"
            );
        }
        assert_eq!(channel_stats(&xd, (n, c, inner), 2).1, 0.0);
        assert_eq!(channel_stats(&[], (0, 3, 4), 1), (0.0, 0.0));
    }
}
