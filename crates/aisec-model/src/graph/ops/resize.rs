//! Resize and Upsample: nearest and (bi)linear interpolation over any
//! number of axes, with ONNX's coordinate transformation modes.

use std::sync::Arc;

use super::super::{attrs, checked_numel, fval, shape_err, Cx, Node, Val};
use super::{one, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::kernels;
use crate::onnx::proto::NodeP;

pub(super) fn register(r: &mut Registry) {
    r.add(&["Resize", "Upsample"], compile);
}

fn compile(n: &NodeP, opset: i64) -> Result<Arc<dyn Op>, ModelError> {
    let mode = attrs::string(n, "mode");
    let linear = match mode.as_str() {
        "" | "nearest" => false,
        "linear" | "bilinear" => true,
        _ => return Err(attrs::unsupported(n, &format!("mode={mode}"))),
    };
    let coord = attrs::string(n, "coordinate_transformation_mode");
    let known = [
        "",
        "half_pixel",
        "pytorch_half_pixel",
        "align_corners",
        "asymmetric",
    ];
    if !known.contains(&coord.as_str()) || attrs::int(n, "antialias", 0) != 0 {
        return Err(attrs::unsupported(
            n,
            &format!("coordinate_transformation_mode={coord}"),
        ));
    }
    Ok(Arc::new(Resize {
        linear,
        coord: if coord.is_empty() {
            if n.op_type == "Upsample" || opset < 11 {
                "asymmetric".into()
            } else {
                "half_pixel".into()
            }
        } else {
            coord
        },
        nearest: {
            let m = attrs::string(n, "nearest_mode");
            if m.is_empty() {
                "round_prefer_floor".into()
            } else {
                m
            }
        },
        opset: if n.op_type == "Upsample" { 9 } else { opset },
    }))
}

#[derive(Debug)]
struct Resize {
    linear: bool,
    /// `coordinate_transformation_mode`.
    coord: String,
    /// `nearest_mode`.
    nearest: String,
    /// Scales are input 1 before opset 11, inputs 2 (scales) or 3 (sizes)
    /// after.
    opset: i64,
}

/// Per-axis interpolation taps: for each output index, `(input index, weight)` pairs.
type Taps = Vec<Vec<Vec<(usize, f32)>>>;

impl Resize {
    /// Output shape and per-axis taps.
    fn plan(
        &self,
        node: &Node,
        ins: &[Option<&Val>],
        xs: &[usize],
    ) -> Result<(Vec<usize>, Taps), ModelError> {
        let r = xs.len();
        let nonempty = |i: usize| ins.get(i).copied().flatten().filter(|v| v.numel() > 0);
        let (scales, sizes): (Option<Vec<f32>>, Option<Vec<i64>>) = if self.opset < 11 {
            (
                nonempty(1)
                    .map(|v| v.f(&node.name).map(|d| d.to_vec()))
                    .transpose()?,
                None,
            )
        } else {
            (
                nonempty(2)
                    .map(|v| v.f(&node.name).map(|d| d.to_vec()))
                    .transpose()?,
                nonempty(3).map(|v| v.ints()),
            )
        };
        let mut os = Vec::with_capacity(r);
        let mut sc = Vec::with_capacity(r);
        for i in 0..r {
            let (o, s) = match (&sizes, &scales) {
                (Some(z), _) if z.len() == r => {
                    let o = usize::try_from(z[i])
                        .map_err(|_| shape_err(node, "negative size".into()))?;
                    (o, o as f32 / xs[i].max(1) as f32)
                }
                (_, Some(s)) if s.len() == r => {
                    if !(s[i] > 0.0 && s[i] < 1e4) {
                        return Err(shape_err(node, format!("bad scale {}", s[i])));
                    }
                    ((xs[i] as f32 * s[i]).floor() as usize, s[i])
                }
                _ => {
                    return Err(shape_err(
                        node,
                        "needs scales or sizes for every axis".into(),
                    ))
                }
            };
            os.push(o);
            sc.push(s);
        }
        checked_numel(&os, &node.name)?;
        let mut taps: Taps = Vec::with_capacity(r);
        for i in 0..r {
            let (n_in, n_out, s) = (xs[i], os[i], sc[i]);
            let mut ax = Vec::with_capacity(n_out);
            for o in 0..n_out {
                if n_in == n_out {
                    ax.push(vec![(o, 1.0)]);
                    continue;
                }
                let of = o as f32;
                let c = match self.coord.as_str() {
                    "asymmetric" => of / s,
                    "align_corners" => {
                        if n_out > 1 {
                            of * (n_in as f32 - 1.0) / (n_out as f32 - 1.0)
                        } else {
                            0.0
                        }
                    }
                    "pytorch_half_pixel" if n_out <= 1 => 0.0,
                    _ => (of + 0.5) / s - 0.5,
                };
                let last = n_in.saturating_sub(1) as f32;
                if self.linear {
                    let c = c.clamp(0.0, last);
                    let i0 = c.floor();
                    let t = c - i0;
                    let i0 = i0 as usize;
                    let i1 = (i0 + 1).min(n_in - 1);
                    ax.push(if t == 0.0 || i1 == i0 {
                        vec![(i0, 1.0)]
                    } else {
                        vec![(i0, 1.0 - t), (i1, t)]
                    });
                } else {
                    let v = match self.nearest.as_str() {
                        "floor" => c.floor(),
                        "ceil" => c.ceil(),
                        "round_prefer_ceil" => (c + 0.5).floor(),
                        _ => {
                            if c.fract() == 0.5 {
                                c.floor()
                            } else {
                                c.round()
                            }
                        }
                    };
                    ax.push(vec![(v.clamp(0.0, last) as usize, 1.0)]);
                }
            }
            taps.push(ax);
        }
        Ok((os, taps))
    }
}

/// Calls `f(out_index, in_index, weight)` for every tap of a resize.
fn resize_apply(os: &[usize], xs: &[usize], taps: &Taps, mut f: impl FnMut(usize, usize, f32)) {
    let st = kernels::strides(xs);
    let total: usize = os.iter().product();
    let r = os.len();
    let mut idx = vec![0usize; r];
    for o in 0..total {
        // Expand the product of per-axis taps.
        let mut combos: Vec<(usize, f32)> = vec![(0, 1.0)];
        for d in 0..r {
            let t = &taps[d][idx[d]];
            if t.len() == 1 {
                for c in combos.iter_mut() {
                    c.0 += t[0].0 * st[d];
                    c.1 *= t[0].1;
                }
            } else {
                let sd = st[d];
                combos = combos
                    .iter()
                    .flat_map(|&(off, w)| t.iter().map(move |&(i, tw)| (off + i * sd, w * tw)))
                    .collect();
            }
        }
        for (i, w) in combos {
            f(o, i, w);
        }
        let mut d = r;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            if idx[d] < os[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

impl Op for Resize {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let (os, taps) = self.plan(cx.node, cx.ins, x.shape())?;
        let xd = x.f(cx.name())?;
        let mut y = vec![0.0f32; cx.alloc(&os)?];
        // Up to 2^rank taps per output element.
        cx.work(&[y.len(), 1 << x.shape().len().min(16)])?;
        resize_apply(&os, x.shape(), &taps, |o, i, wgt| y[o] += wgt * xd[i]);
        one(fval(os, y))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let x = b.input(0)?;
            let (os, taps) = self.plan(b.node, b.ins, x.shape())?;
            let dy = b.dy();
            let mut dx = vec![0.0f32; x.numel()];
            resize_apply(&os, x.shape(), &taps, |o, i, wgt| dx[i] += wgt * dy[o]);
            res[0] = Some(dx);
        }
        Ok(res)
    }
}
