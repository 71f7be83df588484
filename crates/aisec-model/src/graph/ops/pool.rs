//! Pools: MaxPool, AveragePool (windowed, 1-D and 2-D), GlobalAveragePool
//! and GlobalMaxPool.

use std::sync::Arc;

use super::super::{attrs, fval, shape_err, Cx, Saved, Val};
use super::window::Window;
use super::{one, refuse, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::kernels;

pub(super) fn register(r: &mut Registry) {
    r.add(&["MaxPool"], |n, _| {
        // The optional Indices output is not produced.
        if n.outputs.len() > 1 && !n.outputs[1].is_empty() {
            return Err(refuse(n));
        }
        Ok(Arc::new(MaxPool {
            window: Window::parse(n, true)?,
        }))
    });
    r.add(&["AveragePool"], |n, _| {
        Ok(Arc::new(AveragePool {
            window: Window::parse(n, true)?,
            count_include_pad: attrs::int(n, "count_include_pad", 0) != 0,
        }))
    });
    r.add(&["GlobalAveragePool"], |_, _| {
        Ok(Arc::new(GlobalAveragePool))
    });
    r.add(&["GlobalMaxPool"], |_, _| Ok(Arc::new(GlobalMaxPool)));
}

#[derive(Debug)]
struct MaxPool {
    window: Window,
}

impl Op for MaxPool {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let (x, g, _, _, os) = self.window.pool_plan(cx)?;
        cx.alloc_named("argmax indices", &os)?;
        let xs = x.shape();
        let (y, idx) = kernels::maxpool_fwd(x.f(cx.name())?, xs[0] * xs[1], &g);
        Ok((vec![fval(os, y)], Saved::ArgIndices(idx)))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let (x, g, _, _) = self.window.pool_backward_plan(b)?;
            let xs = x.shape();
            let Saved::ArgIndices(idx) = b.saved else {
                return Err(shape_err(b.node, "missing pooling indices".into()));
            };
            let dy = b.dy_ref();
            let planes = xs[0] * xs[1];
            res[0] = Some(kernels::maxpool_bwd(
                &dy,
                idx,
                planes,
                g.h * g.w,
                g.oh * g.ow,
            ));
        }
        Ok(res)
    }
}

#[derive(Debug)]
struct AveragePool {
    window: Window,
    count_include_pad: bool,
}

impl Op for AveragePool {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let (x, g, pb, pr, os) = self.window.pool_plan(cx)?;
        let xs = x.shape();
        let y = kernels::avgpool_fwd(
            x.f(cx.name())?,
            xs[0] * xs[1],
            &g,
            pb,
            pr,
            self.count_include_pad,
        );
        one(fval(os, y))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let (x, g, pb, pr) = self.window.pool_backward_plan(b)?;
            let dy = b.dy();
            let hw = g.h * g.w;
            let ohw = g.oh * g.ow;
            let mut dx = vec![0.0f32; x.numel()];
            for (p, dxp) in dx.chunks_mut(hw.max(1)).enumerate() {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let (y0, y1, x0, x1, div) =
                            kernels::avg_window(&g, oy, ox, pb, pr, self.count_include_pad);
                        if div <= 0.0 {
                            continue;
                        }
                        let gv = dy[p * ohw + oy * g.ow + ox] / div;
                        for iy in y0..y1 {
                            for ix in x0..x1 {
                                dxp[iy * g.w + ix] += gv;
                            }
                        }
                    }
                }
            }
            res[0] = Some(dx);
        }
        Ok(res)
    }
}

/// Output shape `[n, c, 1, ..]` of a global pooling (allocated through
/// `cx`) and the number of positions pooled per channel.
fn global_shape(cx: &Cx<'_>, x: &Val) -> Result<(Vec<usize>, usize), ModelError> {
    let xs = x.shape();
    if xs.len() < 3 {
        return Err(shape_err(cx.node, format!("input {xs:?}")));
    }
    let mut os = vec![xs[0], xs[1]];
    os.extend(std::iter::repeat_n(1, xs.len() - 2));
    cx.alloc(&os)?;
    Ok((os, xs[2..].iter().product()))
}

#[derive(Debug)]
struct GlobalAveragePool;

impl Op for GlobalAveragePool {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let (os, hw) = global_shape(cx, x)?;
        let y = x
            .f(cx.name())?
            .chunks(hw.max(1))
            .map(|c| c.iter().sum::<f32>() / hw as f32)
            .collect();
        one(fval(os, y))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let x = b.input(0)?;
            let hw: usize = x.shape()[2..].iter().product();
            let dy = b.dy();
            let mut dx = vec![0.0f32; x.numel()];
            for (c, chunk) in dx.chunks_mut(hw.max(1)).enumerate() {
                chunk.fill(dy[c] / hw as f32);
            }
            res[0] = Some(dx);
        }
        Ok(res)
    }
}

#[derive(Debug)]
struct GlobalMaxPool;

impl Op for GlobalMaxPool {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let (os, hw) = global_shape(cx, x)?;
        if hw == 0 {
            return Err(shape_err(cx.node, "empty spatial extent".into()));
        }
        let mut y = Vec::with_capacity(os[0] * os[1]);
        let mut idx = Vec::with_capacity(os[0] * os[1]);
        for c in x.f(cx.name())?.chunks(hw) {
            let (mut bi, mut bv) = (0usize, f32::NEG_INFINITY);
            for (i, &v) in c.iter().enumerate() {
                if v > bv || i == 0 {
                    bi = i;
                    bv = v;
                }
            }
            y.push(bv);
            idx.push(u32::try_from(bi).unwrap_or(u32::MAX));
        }
        Ok((vec![fval(os, y)], Saved::ArgIndices(idx)))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let dy = b.dy();
            let x = b.input(0)?;
            let hw: usize = x.shape()[2..].iter().product();
            let Saved::ArgIndices(idx) = b.saved else {
                return Err(shape_err(b.node, "missing pooling indices".into()));
            };
            let mut dx = vec![0.0f32; x.numel()];
            for (p, (&i, &g)) in idx.iter().zip(&dy).enumerate() {
                if let Some(v) = dx.get_mut(p * hw + i as usize) {
                    *v += g;
                }
            }
            res[0] = Some(dx);
        }
        Ok(res)
    }
}
