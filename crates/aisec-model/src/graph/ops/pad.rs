//! Pad (constant mode).

use std::sync::Arc;

use super::super::{attrs, fval, need_in, shape_err, Cx, Val};
use super::layout::for_each_slice;
use super::{one, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;

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

impl Op for Pad {
    fn forward(&self, cx: &Cx<'_>, ins: &[Option<&Val>]) -> Result<Outputs, ModelError> {
        let node = cx.node;
        let nm = node.name.as_str();
        if self.mode != "constant" {
            return Err(ModelError::Unsupported {
                op: format!("Pad(mode={})", self.mode),
                node: node.name.clone(),
            });
        }
        let x = need_in(ins, 0, node)?;
        let pads = self.pads(ins, node)?;
        let value = match ins.get(2).copied().flatten() {
            Some(v) => v
                .f(nm)
                .ok()
                .and_then(|d| d.first().copied())
                .unwrap_or(self.value),
            None => self.value,
        };
        if ins.get(3).copied().flatten().is_some() {
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
        let plan: Vec<(i64, i64, usize)> = (0..r).map(|i| (pads[i], 1, s[i])).collect();
        let mut out = vec![value; n];
        let xd = x.f(nm)?;
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
            let plan: Vec<(i64, i64, usize)> = (0..r).map(|i| (pads[i], 1, s[i])).collect();
            let dy = b.dy();
            let mut dx = vec![0.0f32; x.numel()];
            for_each_slice(&os, &plan, |a, i| dx[a] = dy[i]);
            res[0] = Some(dx);
        }
        Ok(res)
    }
}
