//! Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
//! ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSumExp; ArgMax/ArgMin; CumSum.

use std::sync::Arc;

use super::super::{attrs, fval, ival, need_in, norm_axis, shape_err, Cx, Node, Val};
use super::elementwise::sign;
use super::{one, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::kernels;

pub(super) fn register(r: &mut Registry) {
    for (name, kind) in [
        ("ReduceSum", Reduction::Sum),
        ("ReduceMean", Reduction::Mean),
        ("ReduceMax", Reduction::Max),
        ("ReduceMin", Reduction::Min),
        ("ReduceProd", Reduction::Prod),
        ("ReduceL1", Reduction::L1),
        ("ReduceL2", Reduction::L2),
        ("ReduceSumSquare", Reduction::SumSquare),
        ("ReduceLogSumExp", Reduction::LogSumExp),
    ] {
        r.add(&[name], move |n, opset| {
            // Axes moved from the attribute to input 1 in opset 18 (13 for
            // ReduceSum).
            let axes_in_input = kind == Reduction::Sum && opset >= 13 || opset >= 18;
            Ok(Arc::new(Reduce {
                kind,
                axes: if axes_in_input {
                    None
                } else {
                    attrs::ints(n, "axes")
                },
                keep: attrs::int(n, "keepdims", 1) != 0,
                noop_empty: attrs::int(n, "noop_with_empty_axes", 0) != 0,
            }))
        });
    }
    r.add(&["ArgMax", "ArgMin"], |n, _| {
        Ok(Arc::new(ArgExtreme {
            max: n.op_type == "ArgMax",
            axis: attrs::int(n, "axis", 0),
            keep: attrs::int(n, "keepdims", 1) != 0,
            last: attrs::int(n, "select_last_index", 0) != 0,
        }))
    });
    r.add(&["CumSum"], |n, _| {
        Ok(Arc::new(CumSum {
            exclusive: attrs::int(n, "exclusive", 0) != 0,
            reverse: attrs::int(n, "reverse", 0) != 0,
        }))
    });
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Reduction {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    SumSquare,
    LogSumExp,
}

#[derive(Debug)]
struct Reduce {
    kind: Reduction,
    /// From the attribute (older opsets); `None`: from input 1.
    axes: Option<Vec<i64>>,
    keep: bool,
    /// `noop_with_empty_axes`: no axes means identity, not "all axes".
    noop_empty: bool,
}

impl Reduce {
    /// The sorted axes to reduce; `None` for the no-op (no axes and
    /// `noop_with_empty_axes`).
    fn axes(
        &self,
        ins: &[Option<&Val>],
        r: usize,
        node: &Node,
    ) -> Result<Option<Vec<usize>>, ModelError> {
        let axes = match &self.axes {
            Some(a) => a.clone(),
            None => match ins.get(1).copied().flatten() {
                Some(v) => v.ints(),
                None => vec![],
            },
        };
        if axes.is_empty() {
            if self.noop_empty {
                return Ok(None);
            }
            return Ok(Some((0..r).collect()));
        }
        let mut out = axes
            .iter()
            .map(|&a| norm_axis(a, r, &node.name))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_unstable();
        out.dedup();
        Ok(Some(out))
    }

    /// Output shape from the kept-dims shape `ks`.
    fn out_shape(&self, s: &[usize], ks: Vec<usize>, ax: &[usize]) -> Vec<usize> {
        if self.keep {
            ks
        } else {
            s.iter()
                .enumerate()
                .filter(|(i, _)| !ax.contains(i))
                .map(|(_, &d)| d)
                .collect()
        }
    }

    fn linear(&self) -> bool {
        matches!(self.kind, Reduction::Sum | Reduction::Mean)
    }
}

/// Reduced shape (reduced dims set to 1) and element count per group.
fn kept_shape(s: &[usize], ax: &[usize]) -> (Vec<usize>, usize) {
    let ks: Vec<usize> = s
        .iter()
        .enumerate()
        .map(|(i, &d)| if ax.contains(&i) { 1 } else { d })
        .collect();
    (ks, ax.iter().map(|&a| s[a]).product())
}

impl Op for Reduce {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let node = cx.node;
        let nm = node.name.as_str();
        let x = cx.input(0)?;
        let s = x.shape();
        if self.linear() {
            let Some(ax) = self.axes(cx.ins, s.len(), node)? else {
                return one(x.clone());
            };
            let (ks, cnt) = kept_shape(s, &ax);
            cx.alloc(&ks)?;
            let mut r = kernels::reduce_to(x.f(nm)?, s, &ks);
            if self.kind == Reduction::Mean {
                r.iter_mut().for_each(|v| *v /= cnt.max(1) as f32);
            }
            return one(fval(self.out_shape(s, ks, &ax), r));
        }
        let xd = x.f(nm)?;
        // noop_with_empty_axes and no axes: every element is its own
        // group (the identity for Max/Min, |x| or x^2 for the norms, as
        // the ONNX reference implementation computes them).
        let ax = self.axes(cx.ins, s.len(), node)?.unwrap_or_default();
        let (ks, _) = kept_shape(s, &ax);
        let st = kernels::bcast_strides(&ks, s);
        let m = cx.alloc(&ks)?;
        let kind = self.kind;
        let init = match kind {
            Reduction::Max | Reduction::LogSumExp => f32::NEG_INFINITY,
            Reduction::Min => f32::INFINITY,
            Reduction::Prod => 1.0,
            _ => 0.0,
        };
        let mut r = vec![init; m];
        kernels::for_each_bcast(s, [&st], |o, [i]| {
            let v = xd[o];
            match kind {
                Reduction::Max | Reduction::LogSumExp => r[i] = r[i].max(v),
                Reduction::Min => r[i] = r[i].min(v),
                Reduction::Prod => r[i] *= v,
                Reduction::L1 => r[i] += v.abs(),
                Reduction::L2 | Reduction::SumSquare => r[i] += v * v,
                Reduction::Sum | Reduction::Mean => r[i] += v,
            }
        });
        match kind {
            Reduction::L2 => r.iter_mut().for_each(|v| *v = v.sqrt()),
            Reduction::LogSumExp => {
                let mx = r.clone();
                let mut sum = vec![0.0f32; m];
                kernels::for_each_bcast(s, [&st], |o, [i]| {
                    if mx[i].is_finite() {
                        sum[i] += (xd[o] - mx[i]).exp();
                    }
                });
                for (v, (&mx, &sm)) in r.iter_mut().zip(mx.iter().zip(&sum)) {
                    *v = if mx.is_finite() { mx + sm.ln() } else { mx };
                }
            }
            // Finished by the accumulation above.
            Reduction::Sum
            | Reduction::Mean
            | Reduction::Max
            | Reduction::Min
            | Reduction::Prod
            | Reduction::L1
            | Reduction::SumSquare => {}
        }
        one(fval(self.out_shape(s, ks, &ax), r))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let nm = b.name();
        let mut res = b.none();
        if !b.need(0) {
            return Ok(res);
        }
        let x = b.input(0)?;
        let s = x.shape();
        let dy = b.dy();
        let xd = x.f(nm)?;
        let yd = b.y()?.f(nm)?;
        // No axes with noop_with_empty_axes: every element is its own
        // group, which makes each gradient below the identity's.
        let ax = self.axes(b.ins, s.len(), b.node)?.unwrap_or_default();
        let (ks, cnt) = kept_shape(s, &ax);
        let st = kernels::bcast_strides(&ks, s);
        let mut dx = vec![0.0f32; xd.len()];
        match self.kind {
            Reduction::Sum | Reduction::Mean => {
                let f = if self.kind == Reduction::Mean {
                    1.0 / cnt.max(1) as f32
                } else {
                    1.0
                };
                kernels::for_each_bcast(s, [&st], |o, [i]| dx[o] = dy[i] * f);
            }
            Reduction::Max | Reduction::Min => {
                // Ties share the gradient equally (as torch.amax/amin do).
                let mut ties = vec![0.0f32; yd.len()];
                kernels::for_each_bcast(s, [&st], |o, [i]| {
                    if xd[o] == yd[i] {
                        ties[i] += 1.0;
                    }
                });
                kernels::for_each_bcast(s, [&st], |o, [i]| {
                    if xd[o] == yd[i] {
                        dx[o] = dy[i] / ties[i];
                    }
                });
            }
            Reduction::Prod => {
                // d/dx_j of a product is the product of the others. Kept
                // exact with zeros: count them and multiply the rest
                // (one zero: only it gets a gradient; two: none does).
                let mut zeros = vec![0u32; yd.len()];
                let mut rest = vec![1.0f32; yd.len()];
                kernels::for_each_bcast(s, [&st], |o, [i]| {
                    if xd[o] == 0.0 {
                        zeros[i] += 1;
                    } else {
                        rest[i] *= xd[o];
                    }
                });
                kernels::for_each_bcast(s, [&st], |o, [i]| {
                    dx[o] = match (zeros[i], xd[o] == 0.0) {
                        (0, _) => dy[i] * rest[i] / xd[o],
                        (1, true) => dy[i] * rest[i],
                        _ => 0.0,
                    };
                });
            }
            Reduction::L1 => kernels::for_each_bcast(s, [&st], |o, [i]| {
                dx[o] = dy[i] * sign(xd[o]);
            }),
            Reduction::L2 => kernels::for_each_bcast(s, [&st], |o, [i]| {
                if yd[i] > 0.0 {
                    dx[o] = dy[i] * xd[o] / yd[i];
                }
            }),
            Reduction::SumSquare => kernels::for_each_bcast(s, [&st], |o, [i]| {
                dx[o] = 2.0 * dy[i] * xd[o];
            }),
            Reduction::LogSumExp => kernels::for_each_bcast(s, [&st], |o, [i]| {
                if yd[i].is_finite() {
                    dx[o] = dy[i] * (xd[o] - yd[i]).exp();
                }
            }),
        }
        res[0] = Some(dx);
        Ok(res)
    }
}

/// ArgMax (`max`) / ArgMin: integer indices, no gradient.
#[derive(Debug)]
struct ArgExtreme {
    max: bool,
    axis: i64,
    keep: bool,
    /// `select_last_index`: ties go to the last index.
    last: bool,
}

impl Op for ArgExtreme {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let s = x.shape();
        let ax = norm_axis(self.axis, s.len(), cx.name())?;
        let d = s[ax];
        if d == 0 {
            return Err(shape_err(
                cx.node,
                "arg-reduction over an empty axis".into(),
            ));
        }
        let outer: usize = s[..ax].iter().product();
        let inner: usize = s[ax + 1..].iter().product();
        cx.alloc(&[outer, inner])?;
        let v = x.as_f64();
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| v[(o * d + j) * inner + i];
                let mut best = 0usize;
                for j in 1..d {
                    let (a, b) = (at(j), at(best));
                    let better = if self.max { a > b } else { a < b };
                    if better || (self.last && a == b) {
                        best = j;
                    }
                }
                out.push(best as i64);
            }
        }
        let mut os = s.to_vec();
        if self.keep {
            os[ax] = 1;
        } else {
            os.remove(ax);
        }
        one(ival(os, out))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        // Integer output: no gradient flows.
        Ok(b.none())
    }
}

/// Running sum along the axis given as input 1.
#[derive(Debug)]
struct CumSum {
    exclusive: bool,
    reverse: bool,
}

fn cumsum_axis(node: &Node, ins: &[Option<&Val>], r: usize) -> Result<usize, ModelError> {
    let a = need_in(ins, 1, node)?.ints();
    match a.as_slice() {
        [a] => norm_axis(*a, r, &node.name),
        _ => Err(shape_err(node, "CumSum axis must be a scalar".into())),
    }
}

/// Running sum along `ax` (inclusive or exclusive, forwards or backwards).
fn cumsum(d: &[f32], s: &[usize], ax: usize, exclusive: bool, reverse: bool) -> Vec<f32> {
    let n = s[ax];
    let inner: usize = s[ax + 1..].iter().product();
    let outer: usize = s[..ax].iter().product();
    let mut y = vec![0.0f32; d.len()];
    for o in 0..outer {
        for i in 0..inner {
            let mut acc = 0.0f32;
            for k in 0..n {
                let j = if reverse { n - 1 - k } else { k };
                let at = (o * n + j) * inner + i;
                if exclusive {
                    y[at] = acc;
                    acc += d[at];
                } else {
                    acc += d[at];
                    y[at] = acc;
                }
            }
        }
    }
    y
}

impl Op for CumSum {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let ax = cumsum_axis(cx.node, cx.ins, x.shape().len())?;
        cx.alloc(x.shape())?;
        let y = cumsum(x.f(cx.name())?, x.shape(), ax, self.exclusive, self.reverse);
        one(fval(x.shape().to_vec(), y))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let dy = b.dy();
            let x = b.input(0)?;
            let ax = cumsum_axis(b.node, b.ins, x.shape().len())?;
            // The adjoint of a running sum is the running sum the other way.
            res[0] = Some(cumsum(&dy, x.shape(), ax, self.exclusive, !self.reverse));
        }
        Ok(res)
    }
}
