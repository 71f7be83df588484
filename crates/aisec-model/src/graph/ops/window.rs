//! Sliding-window geometry shared by convolutions and pools: the
//! `kernel_shape`/`strides`/`dilations`/`pads`/`auto_pad`/`ceil_mode`
//! attributes and the [`Geom`] the kernels run on.

use super::super::attrs;
use super::super::{checked_numel, shape_err, Cx, Node, Val};
use super::Backward;
use crate::classifier::ModelError;
use crate::kernels::Geom;
use crate::onnx::proto::NodeP;

/// Per axis: output size, begin pad, end pad.
type Spatial = (Vec<usize>, Vec<usize>, Vec<usize>);

#[derive(Debug, Clone)]
pub(super) struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    /// Begin pads then end pads, ONNX order.
    pub pads: Vec<usize>,
    pub auto_pad: String,
    pub ceil: bool,
}

impl Window {
    /// Parses the window attributes; `need_kernel` for pools, whose
    /// kernel is not implied by a weight.
    pub(super) fn parse(n: &NodeP, need_kernel: bool) -> Result<Window, ModelError> {
        let k = match attrs::ints(n, "kernel_shape") {
            Some(k) => attrs::sizes(&k, "kernel_shape", &n.name)?,
            None if need_kernel => {
                return Err(ModelError::Invalid(format!(
                    "node '{}': kernel_shape missing",
                    n.name
                )))
            }
            None => vec![],
        };
        let r = k.len();
        let ones = |v: Option<Vec<i64>>| -> Result<Vec<usize>, ModelError> {
            match v {
                Some(v) => attrs::sizes(&v, "stride/dilation", &n.name),
                None => Ok(vec![1; r]),
            }
        };
        let strides = ones(attrs::ints(n, "strides"))?;
        let dilations = ones(attrs::ints(n, "dilations"))?;
        let pads = match attrs::ints(n, "pads") {
            Some(p) => attrs::sizes(&p, "pads", &n.name)?,
            None => vec![0; 2 * r],
        };
        Ok(Window {
            kernel: k,
            strides,
            dilations,
            pads,
            auto_pad: attrs::string(n, "auto_pad"),
            ceil: attrs::int(n, "ceil_mode", 0) != 0,
        })
    }

    /// Strides for rank `r` (ones when the attribute has another rank).
    fn strides_for(&self, r: usize) -> Vec<usize> {
        if self.strides.len() == r {
            self.strides.clone()
        } else {
            vec![1; r]
        }
    }

    fn dilations_for(&self, r: usize) -> Vec<usize> {
        if self.dilations.len() == r {
            self.dilations.clone()
        } else {
            vec![1; r]
        }
    }

    /// Resolves auto_pad and ceil_mode into (out size, pad_begin, pad_end)
    /// per axis.
    fn spatial(&self, inp: &[usize], k: &[usize], node: &Node) -> Result<Spatial, ModelError> {
        let r = inp.len();
        let s = self.strides_for(r);
        let d = self.dilations_for(r);
        let mut out = vec![0; r];
        let mut pb = vec![0; r];
        let mut pe = vec![0; r];
        for i in 0..r {
            let ek = (k[i] - 1) * d[i] + 1;
            if s[i] == 0 {
                return Err(shape_err(node, "zero stride".into()));
            }
            match self.auto_pad.as_str() {
                "SAME_UPPER" | "SAME_LOWER" => {
                    let o = inp[i].div_ceil(s[i]);
                    let total = ((o - 1) * s[i] + ek).saturating_sub(inp[i]);
                    let (b, e) = if self.auto_pad == "SAME_UPPER" {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    };
                    out[i] = o;
                    pb[i] = b;
                    pe[i] = e;
                }
                "VALID" => {
                    if inp[i] < ek {
                        return Err(shape_err(node, "kernel larger than input".into()));
                    }
                    out[i] = (inp[i] - ek) / s[i] + 1;
                }
                _ => {
                    let (b, e) = if self.pads.len() == 2 * r {
                        (self.pads[i], self.pads[i + r])
                    } else {
                        (0, 0)
                    };
                    let span = inp[i] + b + e;
                    if span < ek {
                        return Err(shape_err(node, "kernel larger than padded input".into()));
                    }
                    let mut o = if self.ceil {
                        (span - ek).div_ceil(s[i]) + 1
                    } else {
                        (span - ek) / s[i] + 1
                    };
                    if self.ceil && (o - 1) * s[i] >= inp[i] + b {
                        o -= 1;
                    }
                    out[i] = o;
                    pb[i] = b;
                    pe[i] = e;
                }
            }
        }
        Ok((out, pb, pe))
    }

    /// A pooling forward's plan: its input (rank 3 or more), the window
    /// geometry and bottom/right padding, and the output shape, charged to
    /// the pass's budget with the window's work.
    pub(super) fn pool_plan<'a>(
        &self,
        cx: &Cx<'a>,
    ) -> Result<(&'a Val, Geom, usize, usize, Vec<usize>), ModelError> {
        let x = cx.input(0)?;
        let xs = x.shape();
        if xs.len() < 3 {
            return Err(shape_err(cx.node, format!("input {xs:?}")));
        }
        let (g, pb, pr) = self.geom(xs, &self.kernel, cx.node)?;
        let os = out_spatial(xs, xs[1], &g);
        cx.alloc(&os)?;
        cx.work(&[xs[0], xs[1], g.oh, g.ow, g.kh, g.kw])?;
        Ok((x, g, pb, pr, os))
    }

    /// A pooling backward's plan: its input and the window geometry with
    /// the bottom/right padding, as [`Window::pool_plan`] made them.
    pub(super) fn pool_backward_plan<'a>(
        &self,
        b: &Backward<'a>,
    ) -> Result<(&'a Val, Geom, usize, usize), ModelError> {
        let x = b.input(0)?;
        let (g, pb, pr) = self.geom(x.shape(), &self.kernel, b.node)?;
        Ok((x, g, pb, pr))
    }

    /// Builds the 2-D geometry (1-D as height 1) for NC(H)W input `xs`;
    /// also returns the bottom and right pads.
    pub(super) fn geom(
        &self,
        xs: &[usize],
        k: &[usize],
        node: &Node,
    ) -> Result<(Geom, usize, usize), ModelError> {
        let sp = &xs[2..];
        if !(1..=2).contains(&sp.len()) || k.len() != sp.len() || k.contains(&0) {
            return Err(shape_err(
                node,
                format!("only 1-D and 2-D windows are supported (input {xs:?}, kernel {k:?})"),
            ));
        }
        let (o, pb, pe) = self.spatial(sp, k, node)?;
        let r = sp.len();
        let s = self.strides_for(r);
        let d = self.dilations_for(r);
        let g = plane_geom(xs[1], sp, k, &s, &d, &pb, &o);
        let (pbot, pr) = if r == 2 { (pe[0], pe[1]) } else { (0, pe[0]) };
        Ok((g, pbot, pr))
    }

    /// Geometry of a transposed convolution (see
    /// [`crate::kernels::convt_fwd`]) and its input channel count.
    pub(super) fn convt_geom(
        &self,
        node: &Node,
        group: usize,
        out_pad: &[usize],
        xs: &[usize],
        ws: &[usize],
    ) -> Result<(Geom, usize), ModelError> {
        let r = xs.len().saturating_sub(2);
        if !(1..=2).contains(&r)
            || ws.len() != xs.len()
            || xs[1] != ws[0]
            || !ws[0].is_multiple_of(group)
        {
            return Err(shape_err(
                node,
                format!("input {xs:?}, weight {ws:?}, group {group}"),
            ));
        }
        let k = &ws[2..];
        if !self.kernel.is_empty() && self.kernel != k {
            return Err(shape_err(node, "kernel_shape differs from weight".into()));
        }
        let s = self.strides_for(r);
        let d = self.dilations_for(r);
        let p = if self.pads.len() == 2 * r {
            self.pads.clone()
        } else {
            vec![0; 2 * r]
        };
        let op = if out_pad.len() == r {
            out_pad.to_vec()
        } else {
            vec![0; r]
        };
        let mut o = vec![0; r];
        for i in 0..r {
            if s[i] == 0 || k[i] == 0 {
                return Err(shape_err(node, "zero stride or kernel".into()));
            }
            let full = (xs[2 + i].max(1) - 1) * s[i] + (k[i] - 1) * d[i] + 1 + op[i];
            o[i] = full
                .checked_sub(p[i] + p[i + r])
                .filter(|&v| v > 0 && v < 1 << 20)
                .ok_or_else(|| shape_err(node, "output size not positive".into()))?;
        }
        let cout = ws[1]
            .checked_mul(group)
            .ok_or_else(|| shape_err(node, "group too large".into()))?;
        checked_numel(&[xs[0], cout, o.iter().product()], &node.name)?;
        let g = plane_geom(cout, &o, k, &s, &d, &p[..r], &xs[2..]);
        Ok((g, xs[1]))
    }
}

/// The 2-D geometry of a window over `c` channels from per-axis input
/// sizes, kernel, strides, dilations, leading pads and output sizes (one
/// axis each for 1-D, which becomes height 1).
fn plane_geom(
    c: usize,
    inp: &[usize],
    k: &[usize],
    s: &[usize],
    d: &[usize],
    pad: &[usize],
    out: &[usize],
) -> Geom {
    // [height, width]; a 1-D axis is the width.
    let hw = |v: &[usize], fill: usize| match *v {
        [a, b, ..] => [a, b],
        [w] => [fill, w],
        [] => [fill, fill],
    };
    Geom::plane(
        c,
        hw(inp, 1),
        hw(k, 1),
        hw(s, 1),
        hw(d, 1),
        hw(pad, 0),
        hw(out, 1),
    )
}

/// Output shape `[n, ch, (oh,) ow]` of a window op on input `xs`.
pub(super) fn out_spatial(xs: &[usize], ch: usize, g: &Geom) -> Vec<usize> {
    if xs.len() == 4 {
        vec![xs[0], ch, g.oh, g.ow]
    } else {
        vec![xs[0], ch, g.ow]
    }
}
