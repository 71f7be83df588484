//! Pad: constant, reflect and edge modes (the numpy `np.pad` semantics
//! the ONNX reference implementation uses; reflect past the edge folds
//! back and forth, period `2 * (d - 1)`).

use std::sync::Arc;

use super::super::{attrs, fval, need_in, shape_err, Cx, Node, Val};
use super::layout::for_each_slice;
use super::{one, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::kernels;

pub(super) fn register(r: &mut Registry) {
    r.add(&["Pad"], |n, opset| {
        Ok(Arc::new(Pad {
            // Pads moved from the attribute to input 1 in opset 11.
            pads: if opset < 11 {
                attrs::ints(n, "pads")
            } else {
                None
            },
            value: attrs::float(n, "value", 0.0),
            mode: {
                let m = attrs::string(n, "mode");
                if m.is_empty() {
                    "constant".into()
                } else {
                    m
                }
            },
        }))
    });
}

#[derive(Debug)]
struct Pad {
    pads: Option<Vec<i64>>,
    value: f32,
    mode: String,
}

impl Pad {
    fn pads(
        &self,
        b_ins: &[Option<&Val>],
        node: &super::super::Node,
    ) -> Result<Vec<i64>, ModelError> {
        Ok(match &self.pads {
            Some(p) => p.clone(),
            None => need_in(b_ins, 1, node)?.ints(),
        })
    }
}

impl Pad {
    /// Per axis, the input index each output index reads (reflect and
    /// edge modes).
    fn source_maps(
        &self,
        node: &Node,
        s: &[usize],
        pads: &[i64],
    ) -> Result<Vec<Vec<usize>>, ModelError> {
        let r = s.len();
        (0..r)
            .map(|ax| {
                let d = s[ax];
                let (pb, pe) = (pads[ax] as usize, pads[ax + r] as usize);
                if d == 0 && pb + pe > 0 {
                    return Err(shape_err(
                        node,
                        format!("{} padding of an empty axis", self.mode),
                    ));
                }
                Ok((0..pb + d + pe)
                    .map(|o| {
                        let i = o as i64 - pb as i64;
                        let last = d as i64 - 1;
                        let j = if self.mode == "edge" || last == 0 {
                            i.clamp(0, last)
                        } else {
                            let period = 2 * last;
                            let m = i.abs() % period;
                            if m > last {
                                period - m
                            } else {
                                m
                            }
                        };
                        j as usize
                    })
                    .collect())
            })
            .collect()
    }
}

/// Calls `f(out_index, in_index)` for every output element, the input
/// index being the product of the per-axis `maps` over input shape `s`.
fn for_each_source(maps: &[Vec<usize>], s: &[usize], mut f: impl FnMut(usize, usize)) {
    let st = kernels::strides(s);
    let os: Vec<usize> = maps.iter().map(Vec::len).collect();
    let total: usize = os.iter().product();
    let r = os.len();
    let mut idx = vec![0usize; r];
    for o in 0..total {
        let i: usize = (0..r).map(|a| maps[a][idx[a]] * st[a]).sum();
        f(o, i);
        let mut a = r;
        while a > 0 {
            a -= 1;
            idx[a] += 1;
            if idx[a] < os[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

impl Op for Pad {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let node = cx.node;
        let nm = node.name.as_str();
        if !matches!(self.mode.as_str(), "constant" | "reflect" | "edge") {
            return Err(ModelError::Unsupported {
                op: format!("Pad(mode={})", self.mode),
                node: node.name.clone(),
            });
        }
        let x = cx.input(0)?;
        let pads = self.pads(cx.ins, node)?;
        let value = match cx.opt(2) {
            Some(v) => v
                .f(nm)
                .ok()
                .and_then(|d| d.first().copied())
                .unwrap_or(self.value),
            None => self.value,
        };
        if cx.opt(3).is_some() {
            return Err(ModelError::Unsupported {
                op: "Pad(axes)".into(),
                node: node.name.clone(),
            });
        }
        let s = x.shape();
        let r = s.len();
        if pads.len() != 2 * r || pads.iter().any(|&p| !(0..1 << 20).contains(&p)) {
            return Err(shape_err(
                node,
                format!("pads {pads:?} (negative pads unsupported)"),
            ));
        }
        let os: Vec<usize> = (0..r)
            .map(|i| s[i] + pads[i] as usize + pads[i + r] as usize)
            .collect();
        super::super::checked_numel(&os, nm)?;
        let n = cx.alloc(&os)?;
        let xd = x.f(nm)?;
        if self.mode != "constant" {
            let maps = self.source_maps(node, s, &pads)?;
            let mut out = vec![0.0f32; n];
            for_each_source(&maps, s, |o, i| out[o] = xd[i]);
            return one(fval(os, out));
        }
        let plan: Vec<(i64, i64, usize)> = (0..r).map(|i| (pads[i], 1, s[i])).collect();
        let mut out = vec![value; n];
        let mut i = 0;
        for_each_slice(&os, &plan, |_, b| {
            out[b] = xd[i];
            i += 1;
        });
        one(fval(os, out))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let x = b.input(0)?;
            let pads = self.pads(b.ins, b.node)?;
            let s = x.shape();
            let r = s.len();
            let os: Vec<usize> = (0..r)
                .map(|i| s[i] + pads[i] as usize + pads[i + r] as usize)
                .collect();
            let dy = b.dy();
            let mut dx = vec![0.0f32; x.numel()];
            if self.mode != "constant" {
                // Every output element came from one input element: sum
                // the gradients back onto their sources.
                let maps = self.source_maps(b.node, s, &pads)?;
                for_each_source(&maps, s, |o, i| dx[i] += dy[o]);
                res[0] = Some(dx);
                return Ok(res);
            }
            let plan: Vec<(i64, i64, usize)> = (0..r).map(|i| (pads[i], 1, s[i])).collect();
            for_each_slice(&os, &plan, |a, i| dx[a] = dy[i]);
            res[0] = Some(dx);
        }
        Ok(res)
    }
}
