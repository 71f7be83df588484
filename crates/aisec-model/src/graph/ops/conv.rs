//! Convolution and transposed convolution (1-D and 2-D, grouped, strided,
//! dilated, padded), over the im2col kernels in [`crate::kernels`].

use std::sync::Arc;

use super::super::{attrs, fval, shape_err, Cx, Node, Val};
use super::window::{out_spatial, Window};
use super::{one, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::kernels::{self, Geom};
use crate::onnx::proto::NodeP;

pub(super) fn register(r: &mut Registry) {
    r.add(&["Conv"], |n, _| {
        Ok(Arc::new(Conv {
            window: Window::parse(n, false)?,
            group: attrs::int(n, "group", 1).max(1) as usize,
        }))
    });
    r.add(&["ConvTranspose"], compile_conv_transpose);
}

#[derive(Debug)]
struct Conv {
    window: Window,
    group: usize,
}

impl Conv {
    /// Checks the input and weight shapes against the attributes and
    /// returns the geometry.
    fn geom(&self, node: &Node, xs: &[usize], ws: &[usize]) -> Result<Geom, ModelError> {
        let (w, group) = (&self.window, self.group);
        if xs.len() < 3
            || ws.len() != xs.len()
            || ws[1].checked_mul(group) != Some(xs[1])
            || !ws[0].is_multiple_of(group)
        {
            return Err(shape_err(
                node,
                format!("input {xs:?}, weight {ws:?}, group {group}"),
            ));
        }
        let k: Vec<usize> = ws[2..].to_vec();
        if !w.kernel.is_empty() && w.kernel != k {
            return Err(shape_err(
                node,
                format!("kernel_shape {:?} differs from weight {ws:?}", w.kernel),
            ));
        }
        Ok(w.geom(xs, &k, node)?.0)
    }

    /// The kernel operands for input `x` and weights `wt`.
    fn args<'a>(
        &self,
        x: &'a Val,
        wt: &'a Val,
        g: &'a Geom,
        nm: &str,
    ) -> Result<kernels::ConvArgs<'a>, ModelError> {
        Ok(kernels::ConvArgs {
            x: x.f(nm)?,
            n: x.shape()[0],
            g,
            groups: self.group,
            wt: wt.f(nm)?,
            m: wt.shape()[0],
        })
    }
}

impl Op for Conv {
    fn rows_independent(&self) -> bool {
        true
    }
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let wt = cx.input(1)?;
        let (xs, ws) = (x.shape(), wt.shape());
        let g = self.geom(cx.node, xs, ws)?;
        let bias = cx.opt_f(2, ws[0])?;
        let os = out_spatial(xs, ws[0], &g);
        cx.alloc(&os)?;
        cx.alloc_named("unfolded input", &[ws[1], g.kh, g.kw, g.oh, g.ow])?;
        cx.work(&[xs[0], ws[0], g.oh, g.ow, ws[1], g.kh, g.kw])?;
        let y = kernels::conv_fwd(&self.args(x, wt, &g, cx.name())?, bias);
        one(fval(os, y))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let x = b.input(0)?;
        let wt = b.input(1)?;
        let (xs, ws) = (x.shape(), wt.shape());
        let g = self.geom(b.node, xs, ws)?;
        let a = self.args(x, wt, &g, b.name())?;
        let need = [b.need(0), b.need(1), b.need(2)];
        let (dx, dw, db) = kernels::conv_bwd(&a, &b.dy_ref(), need);
        Ok(b.place([dx, dw, db]))
    }
}

#[derive(Debug)]
struct ConvTranspose {
    window: Window,
    group: usize,
    out_pad: Vec<usize>,
}

fn compile_conv_transpose(n: &NodeP, _opset: i64) -> Result<Arc<dyn Op>, ModelError> {
    if attrs::ints(n, "output_shape").is_some()
        || !matches!(attrs::string(n, "auto_pad").as_str(), "" | "NOTSET")
    {
        return Err(ModelError::Unsupported {
            op: "ConvTranspose(output_shape/auto_pad)".into(),
            node: n.name.clone(),
        });
    }
    Ok(Arc::new(ConvTranspose {
        window: Window::parse(n, false)?,
        group: attrs::int(n, "group", 1).max(1) as usize,
        out_pad: match attrs::ints(n, "output_padding") {
            Some(p) => attrs::sizes(&p, "output_padding", &n.name)?,
            None => vec![],
        },
    }))
}

impl Op for ConvTranspose {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let wt = cx.input(1)?;
        let (g, cin) =
            self.window
                .convt_geom(cx.node, self.group, &self.out_pad, x.shape(), wt.shape())?;
        let bias = cx.opt_f(2, g.c)?;
        let xs = x.shape();
        let os = if xs.len() == 4 {
            vec![xs[0], g.c, g.h, g.w]
        } else {
            vec![xs[0], g.c, g.w]
        };
        cx.alloc(&os)?;
        let cog = g.c / self.group;
        cx.alloc_named("column buffer", &[cog, g.kh, g.kw, g.oh, g.ow])?;
        cx.work(&[xs[0], cin, cog, g.kh, g.kw, g.oh, g.ow])?;
        let y = kernels::convt_fwd(
            x.f(cx.name())?,
            xs[0],
            &g,
            self.group,
            cin,
            wt.f(cx.name())?,
            bias,
        );
        one(fval(os, y))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let nm = b.name();
        let x = b.input(0)?;
        let wt = b.input(1)?;
        let (g, cin) =
            self.window
                .convt_geom(b.node, self.group, &self.out_pad, x.shape(), wt.shape())?;
        let dy = b.dy_ref();
        let (dx, dw, db) = kernels::convt_bwd(
            x.f(nm)?,
            x.shape()[0],
            &g,
            self.group,
            cin,
            wt.f(nm)?,
            &dy,
            [b.need(0), b.need(1), b.need(2)],
        );
        // The kernel leaves a gradient that was not asked for `None`; a
        // node without a bias input has no third slot.
        Ok(b.place([dx, dw, db]))
    }
}
