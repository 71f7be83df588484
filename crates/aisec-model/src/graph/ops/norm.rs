//! Normalisations with given statistics or per-row statistics:
//! BatchNormalization (inference form), LayerNormalization and
//! InstanceNormalization. Training-mode batch norm is in
//! [`super::super::bn_train`].

use std::sync::Arc;

use super::super::{attrs, fval, norm_axis, shape_err, Cx, Saved};
use super::{one, refuse, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;

pub(super) fn register(r: &mut Registry) {
    r.add(&["BatchNormalization"], |n, _| {
        if attrs::int(n, "training_mode", 0) != 0 {
            return Err(refuse(n));
        }
        Ok(Arc::new(BatchNorm {
            eps: attrs::float(n, "epsilon", 1e-5),
        }))
    });
    r.add(&["LayerNormalization"], |n, _| {
        Ok(Arc::new(LayerNorm {
            axis: attrs::int(n, "axis", -1),
            eps: attrs::float(n, "epsilon", 1e-5),
        }))
    });
    r.add(&["InstanceNormalization"], |n, _| {
        Ok(Arc::new(InstanceNorm {
            eps: attrs::float(n, "epsilon", 1e-5),
        }))
    });
}

/// `scale * (x - mean) / sqrt(var + eps) + bias` per channel, with the
/// running statistics as inputs 3 and 4 (Ioffe & Szegedy, 2015).
#[derive(Debug)]
struct BatchNorm {
    eps: f32,
}

impl Op for BatchNorm {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let node = cx.node;
        let nm = node.name.as_str();
        let eps = self.eps;
        let x = cx.input(0)?;
        let xs = x.shape();
        let c = *xs
            .get(1)
            .ok_or_else(|| shape_err(node, "rank < 2".into()))?;
        let p: Vec<&[f32]> = (1..5).map(|i| cx.f(i)).collect::<Result<_, _>>()?;
        if p.iter().any(|v| v.len() != c) {
            return Err(shape_err(node, "parameter lengths".into()));
        }
        let inner: usize = xs[2..].iter().product();
        let xd = x.f(nm)?;
        cx.alloc(xs)?;
        let mut y = vec![0.0f32; xd.len()];
        for (blk, (yb, xb)) in y
            .chunks_mut(inner.max(1))
            .zip(xd.chunks(inner.max(1)))
            .enumerate()
        {
            let ch = blk % c;
            let sc = p[0][ch] / (p[3][ch] + eps).sqrt();
            let sh = p[1][ch] - p[2][ch] * sc;
            yb.iter_mut().zip(xb).for_each(|(o, &v)| *o = v * sc + sh);
        }
        one(fval(xs.to_vec(), y))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let nm = b.name();
        let eps = self.eps;
        let x = b.input(0)?;
        let xs = x.shape();
        let c = xs[1];
        let p: Vec<&[f32]> = (1..5)
            .map(|i| b.input(i).and_then(|v| v.f(nm)))
            .collect::<Result<_, _>>()?;
        let inner: usize = xs[2..].iter().product::<usize>().max(1);
        let dy = b.dy();
        let xd = x.f(nm)?;
        let mut dx = if b.need(0) {
            Some(vec![0.0f32; xd.len()])
        } else {
            None
        };
        let mut dsc = vec![0.0f32; c];
        let mut dbi = vec![0.0f32; c];
        let mut dmean = vec![0.0f32; c];
        let mut dvar = vec![0.0f32; c];
        for blk in 0..xd.len() / inner {
            let ch = blk % c;
            let rs = 1.0 / (p[3][ch] + eps).sqrt();
            let sc = p[0][ch] * rs;
            let mut sxc = 0.0f32;
            let mut sg = 0.0f32;
            for j in blk * inner..(blk + 1) * inner {
                if let Some(dx) = dx.as_mut() {
                    dx[j] = dy[j] * sc;
                }
                sxc += dy[j] * (xd[j] - p[2][ch]);
                sg += dy[j];
            }
            dsc[ch] += sxc * rs;
            dbi[ch] += sg;
            dmean[ch] -= sg * sc;
            dvar[ch] += -0.5 * sxc * p[0][ch] * rs * rs * rs;
        }
        Ok(b.place_needed([dx, Some(dsc), Some(dbi), Some(dmean), Some(dvar)]))
    }
}

/// Normalises over the axes from `axis` on (Ba et al., "Layer
/// Normalization", 2016).
#[derive(Debug)]
struct LayerNorm {
    axis: i64,
    eps: f32,
}

impl Op for LayerNorm {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let eps = self.eps;
        let x = cx.input(0)?;
        let xs = x.shape();
        let ax = norm_axis(self.axis, xs.len(), cx.name())?;
        let inner: usize = xs[ax..].iter().product();
        let scale = cx.f(1)?;
        let bias = cx.opt_f(2, inner)?;
        if scale.len() != inner {
            return Err(shape_err(
                cx.node,
                "scale/bias must match normalized shape".into(),
            ));
        }
        let xd = x.f(cx.name())?;
        let rows = xd.len() / inner.max(1);
        cx.alloc(xs)?;
        Ok(normalise_rows(xs, xd, rows, inner, eps, |_, j, xh| {
            xh * scale[j] + bias.map_or(0.0, |b| b[j])
        }))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let nm = b.name();
        let x = b.input(0)?;
        let xs = x.shape();
        let ax = norm_axis(self.axis, xs.len(), nm)?;
        let inner: usize = xs[ax..].iter().product();
        let scale = b.input(1)?.f(nm)?;
        let Saved::NormStats { mean: means, rstd } = b.saved else {
            return Err(shape_err(b.node, "missing statistics".into()));
        };
        let xd = x.f(nm)?;
        let dy = b.dy();
        let mut dx = vec![0.0f32; xd.len()];
        let mut dsc = vec![0.0f32; inner];
        let mut dbi = vec![0.0f32; inner];
        for r in 0..means.len() {
            let (mu, rs) = (means[r], rstd[r]);
            let base = r * inner;
            let mut s1 = 0.0f32;
            let mut s2 = 0.0f32;
            for j in 0..inner {
                let xh = (xd[base + j] - mu) * rs;
                let gh = dy[base + j] * scale[j];
                s1 += gh;
                s2 += gh * xh;
                dsc[j] += dy[base + j] * xh;
                dbi[j] += dy[base + j];
            }
            let nf = inner as f32;
            for j in 0..inner {
                let xh = (xd[base + j] - mu) * rs;
                let gh = dy[base + j] * scale[j];
                dx[base + j] = rs * (gh - s1 / nf - xh * s2 / nf);
            }
        }
        Ok(b.place_needed([Some(dx), Some(dsc), Some(dbi)]))
    }
}

/// Normalises each (example, channel) plane (Ulyanov et al., "Instance
/// Normalization", 2016).
#[derive(Debug)]
struct InstanceNorm {
    eps: f32,
}

impl Op for InstanceNorm {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let xs = x.shape();
        let (scale, bias) = (cx.f(1)?, cx.f(2)?);
        if xs.len() < 3 || scale.len() != xs[1] || bias.len() != xs[1] {
            return Err(shape_err(
                cx.node,
                format!("input {xs:?}, scale {}, bias {}", scale.len(), bias.len()),
            ));
        }
        let c = xs[1];
        let inner: usize = xs[2..].iter().product();
        let xd = x.f(cx.name())?;
        cx.alloc(xs)?;
        Ok(normalise_rows(
            xs,
            xd,
            xs[0] * c,
            inner,
            self.eps,
            |r, _, xh| xh * scale[r % c] + bias[r % c],
        ))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let nm = b.name();
        let dy = b.dy();
        let x = b.input(0)?;
        let xs = x.shape();
        let scale = b.input(1)?.f(nm)?;
        let Saved::NormStats { mean: means, rstd } = b.saved else {
            return Err(shape_err(b.node, "missing statistics".into()));
        };
        let c = xs[1];
        let inner: usize = xs[2..].iter().product();
        let xd = x.f(nm)?;
        let mut dx = vec![0.0f32; xd.len()];
        let mut dsc = vec![0.0f32; c];
        let mut dbi = vec![0.0f32; c];
        let nf = inner.max(1) as f32;
        for r in 0..means.len() {
            let (mu, rs, ch) = (means[r], rstd[r], r % c);
            let base = r * inner;
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for j in base..base + inner {
                let xh = (xd[j] - mu) * rs;
                let gh = dy[j] * scale[ch];
                s1 += gh;
                s2 += gh * xh;
                dsc[ch] += dy[j] * xh;
                dbi[ch] += dy[j];
            }
            for j in base..base + inner {
                let xh = (xd[j] - mu) * rs;
                dx[j] = rs * (dy[j] * scale[ch] - s1 / nf - xh * s2 / nf);
            }
        }
        Ok(b.place_needed([Some(dx), Some(dsc), Some(dbi)]))
    }
}

/// Normalises `xd` (of shape `xs`) in `rows` rows of `inner` values each
/// (population variance, `eps` added) and maps each normalised value
/// `xh` of row `r`, column `j` to `affine(r, j, xh)`; the statistics are
/// saved for the backward pass. The forward pass of LayerNormalization
/// and InstanceNormalization.
fn normalise_rows(
    xs: &[usize],
    xd: &[f32],
    rows: usize,
    inner: usize,
    eps: f32,
    affine: impl Fn(usize, usize, f32) -> f32,
) -> Outputs {
    let mut y = vec![0.0f32; xd.len()];
    let mut means = vec![0.0f32; rows];
    let mut rstd = vec![0.0f32; rows];
    let nf = inner.max(1) as f32;
    for r in 0..rows {
        let xr = &xd[r * inner..(r + 1) * inner];
        let mean = xr.iter().sum::<f32>() / nf;
        let var = xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / nf;
        let rs = 1.0 / (var + eps).sqrt();
        means[r] = mean;
        rstd[r] = rs;
        for j in 0..inner {
            y[r * inner + j] = affine(r, j, (xr[j] - mean) * rs);
        }
    }
    (
        vec![fval(xs.to_vec(), y)],
        Saved::NormStats { mean: means, rstd },
    )
}
