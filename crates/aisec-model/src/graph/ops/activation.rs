//! Activations: the pointwise nonlinearities (Relu, Sigmoid, Tanh,
//! HardSigmoid, HardSwish, Elu, Selu, Celu, ThresholdedRelu, Shrink,
//! Softplus, Softsign, Mish), LeakyRelu, Gelu, PRelu, Clip, and Softmax/LogSoftmax.

use std::sync::Arc;

use super::super::{attrs, fval, norm_axis, shape_err, Cx, Node, Val};
use super::elementwise::{chain_pointwise, erf, map_floats};
use super::{one, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::kernels;

pub(super) fn register(r: &mut Registry) {
    for (name, f) in [
        ("Relu", ActivationFn::Relu),
        ("Sigmoid", ActivationFn::Sigmoid),
        ("Tanh", ActivationFn::Tanh),
        ("HardSwish", ActivationFn::HardSwish),
        ("Softplus", ActivationFn::Softplus),
        ("Softsign", ActivationFn::Softsign),
        ("Mish", ActivationFn::Mish),
    ] {
        r.add_op(name, Activation(f));
    }
    r.add(&["HardSigmoid"], |n, _| {
        Ok(Arc::new(Activation(ActivationFn::HardSigmoid {
            alpha: attrs::float(n, "alpha", 0.2),
            beta: attrs::float(n, "beta", 0.5),
        })))
    });
    r.add(&["Elu"], |n, _| {
        Ok(Arc::new(Activation(ActivationFn::Elu {
            alpha: attrs::float(n, "alpha", 1.0),
        })))
    });
    r.add(&["Selu"], |n, _| {
        Ok(Arc::new(Activation(ActivationFn::Selu {
            alpha: attrs::float(n, "alpha", 1.673_263_2),
            gamma: attrs::float(n, "gamma", 1.050_701),
        })))
    });
    r.add(&["Celu"], |n, _| {
        let alpha = attrs::float(n, "alpha", 1.0);
        if alpha == 0.0 {
            return Err(ModelError::Invalid(format!(
                "node '{}': Celu alpha 0",
                n.name
            )));
        }
        Ok(Arc::new(Activation(ActivationFn::Celu { alpha })))
    });
    r.add(&["ThresholdedRelu"], |n, _| {
        Ok(Arc::new(Activation(ActivationFn::ThresholdedRelu {
            alpha: attrs::float(n, "alpha", 1.0),
        })))
    });
    r.add(&["Shrink"], |n, _| {
        Ok(Arc::new(Activation(ActivationFn::Shrink {
            lambd: attrs::float(n, "lambd", 0.5),
            bias: attrs::float(n, "bias", 0.0),
        })))
    });
    r.add(&["LeakyRelu"], |n, _| {
        Ok(Arc::new(LeakyRelu {
            alpha: attrs::float(n, "alpha", 0.01),
        }))
    });
    r.add(&["Gelu"], |n, _| {
        Ok(Arc::new(Gelu {
            tanh: attrs::string(n, "approximate") == "tanh",
        }))
    });
    r.add_op("PRelu", PRelu);
    r.add(&["Clip"], |n, _| {
        Ok(Arc::new(Clip {
            min: attrs::float(n, "min", f32::NEG_INFINITY),
            max: attrs::float(n, "max", f32::INFINITY),
        }))
    });
    r.add(&["Softmax", "LogSoftmax"], |n, opset| {
        Ok(Arc::new(Softmax {
            axis: attrs::int(n, "axis", if opset >= 13 { -1 } else { 1 }),
            legacy: opset < 13,
            log: n.op_type == "LogSoftmax",
        }))
    });
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ActivationFn {
    Relu,
    Sigmoid,
    Tanh,
    /// `max(0, min(1, alpha*x + beta))`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * max(0, min(1, x/6 + 1/2))` (Howard et al., "Searching for
    /// MobileNetV3", 2019).
    HardSwish,
    /// `x` for `x >= 0`, `alpha*(e^x - 1)` below (Clevert et al., 2015).
    Elu {
        alpha: f32,
    },
    /// `gamma * elu_alpha(x)` (Klambauer et al., "Self-Normalizing Neural
    /// Networks", 2017).
    Selu {
        alpha: f32,
        gamma: f32,
    },
    /// `max(0,x) + min(0, alpha*(e^(x/alpha) - 1))` (Barron, 2017).
    Celu {
        alpha: f32,
    },
    /// `x` above `alpha`, else 0.
    ThresholdedRelu {
        alpha: f32,
    },
    /// `x - bias` above `lambd`, `x + bias` below `-lambd`, else 0 (ONNX
    /// `Shrink`; soft shrinkage with `bias = lambd`, hard with 0).
    Shrink {
        lambd: f32,
        bias: f32,
    },
    Softplus,
    Softsign,
    /// `x * tanh(softplus(x))` (Misra, 2019).
    Mish,
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

impl ActivationFn {
    fn value(self, x: f32) -> f32 {
        match self {
            ActivationFn::Relu => x.max(0.0),
            ActivationFn::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            ActivationFn::Tanh => x.tanh(),
            ActivationFn::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            ActivationFn::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            ActivationFn::Elu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x.exp_m1()
                }
            }
            ActivationFn::Selu { alpha, gamma } => {
                if x > 0.0 {
                    gamma * x
                } else {
                    gamma * alpha * x.exp_m1()
                }
            }
            ActivationFn::Celu { alpha } => x.max(0.0) + (alpha * (x / alpha).exp_m1()).min(0.0),
            ActivationFn::ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
            ActivationFn::Shrink { lambd, bias } => {
                if x < -lambd {
                    x + bias
                } else if x > lambd {
                    x - bias
                } else {
                    0.0
                }
            }
            ActivationFn::Softplus => softplus(x),
            ActivationFn::Softsign => x / (1.0 + x.abs()),
            ActivationFn::Mish => x * softplus(x).tanh(),
        }
    }

    /// Derivative at `x` with output `y`.
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            ActivationFn::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            ActivationFn::Sigmoid => y * (1.0 - y),
            ActivationFn::Tanh => 1.0 - y * y,
            ActivationFn::HardSigmoid { alpha, beta } => {
                let v = alpha * x + beta;
                if v > 0.0 && v < 1.0 {
                    alpha
                } else {
                    0.0
                }
            }
            ActivationFn::HardSwish => {
                if x <= -3.0 {
                    0.0
                } else if x >= 3.0 {
                    1.0
                } else {
                    x / 3.0 + 0.5
                }
            }
            ActivationFn::Elu { alpha } => {
                if x >= 0.0 {
                    1.0
                } else {
                    alpha * x.exp()
                }
            }
            ActivationFn::Selu { alpha, gamma } => {
                if x > 0.0 {
                    gamma
                } else {
                    gamma * alpha * x.exp()
                }
            }
            ActivationFn::Celu { alpha } => {
                if x > 0.0 {
                    1.0
                } else {
                    (x / alpha).exp()
                }
            }
            ActivationFn::ThresholdedRelu { alpha } => {
                if x > alpha {
                    1.0
                } else {
                    0.0
                }
            }
            ActivationFn::Shrink { lambd, .. } => {
                if x < -lambd || x > lambd {
                    1.0
                } else {
                    0.0
                }
            }
            ActivationFn::Softplus => 1.0 / (1.0 + (-x).exp()),
            ActivationFn::Softsign => 1.0 / ((1.0 + x.abs()) * (1.0 + x.abs())),
            ActivationFn::Mish => {
                let t = softplus(x).tanh();
                t + x * (1.0 - t * t) / (1.0 + (-x).exp())
            }
        }
    }
}

#[derive(Debug)]
struct Activation(ActivationFn);

impl Op for Activation {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        if self.0 == ActivationFn::Relu {
            cx.alloc(x.shape())?;
            let y = kernels::relu_fwd(x.f(&cx.node.name)?);
            return one(fval(x.shape().to_vec(), y));
        }
        map_floats(cx, x, |v| self.0.value(v))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        if self.0 == ActivationFn::Relu {
            let mut res = b.none();
            if b.need(0) {
                // Fast path: one pass, no copy of the incoming gradient.
                let x = b.input(0)?.f(b.name())?;
                res[0] = Some(kernels::relu_bwd(&b.dy_ref(), x));
            }
            return Ok(res);
        }
        chain_pointwise(b, |x, y| self.0.derivative(x, y))
    }
}

/// `x` for `x >= 0`, `alpha * x` below.
#[derive(Debug)]
struct LeakyRelu {
    alpha: f32,
}

impl Op for LeakyRelu {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let al = self.alpha;
        map_floats(cx, x, |v| if v >= 0.0 { v } else { al * v })
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let x = b.input(0)?.f(b.name())?;
            let mut g = b.dy();
            g.iter_mut().zip(x).for_each(|(g, &x)| {
                if x < 0.0 {
                    *g *= self.alpha
                }
            });
            res[0] = Some(g);
        }
        Ok(res)
    }
}

/// GELU, `x * Phi(x)` (Hendrycks & Gimpel, 2016), exact or with the tanh
/// approximation; returns the value and the derivative.
fn gelu(x: f32, tanh: bool) -> (f32, f32) {
    if tanh {
        let c = (2.0f32 / std::f32::consts::PI).sqrt();
        let u = c * (x + 0.044715 * x * x * x);
        let t = u.tanh();
        let du = c * (1.0 + 3.0 * 0.044715 * x * x);
        (
            0.5 * x * (1.0 + t),
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du,
        )
    } else {
        let cdf = 0.5 * (1.0 + erf(x / std::f32::consts::SQRT_2));
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f32::consts::PI).sqrt();
        (x * cdf, cdf + x * pdf)
    }
}

#[derive(Debug)]
struct Gelu {
    tanh: bool,
}

impl Op for Gelu {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        map_floats(cx, x, |v| gelu(v, self.tanh).0)
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let x = b.input(0)?.f(b.name())?;
            let mut g = b.dy();
            g.iter_mut()
                .zip(x)
                .for_each(|(g, &x)| *g *= gelu(x, self.tanh).1);
            res[0] = Some(g);
        }
        Ok(res)
    }
}

/// Strides of PRelu's slope against the input (unidirectional broadcast).
fn prelu_strides(node: &Node, xs: &[usize], ss: &[usize]) -> Result<Vec<usize>, ModelError> {
    match kernels::bcast_shape(xs, ss) {
        Some(os) if os == xs => Ok(kernels::bcast_strides(ss, xs)),
        _ => Err(shape_err(
            node,
            format!("slope {ss:?} does not broadcast to input {xs:?}"),
        )),
    }
}

/// `x` where `x >= 0`, `slope * x` below; `slope` broadcasts to `x`.
#[derive(Debug)]
struct PRelu;

impl Op for PRelu {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let sl = cx.input(1)?;
        let st = prelu_strides(cx.node, x.shape(), sl.shape())?;
        let (xd, sd) = (x.f(cx.name())?, sl.f(cx.name())?);
        cx.alloc(x.shape())?;
        let mut y = vec![0.0f32; xd.len()];
        kernels::for_each_bcast(x.shape(), [&st], |o, [i]| {
            let v = xd[o];
            y[o] = if v < 0.0 { sd[i] * v } else { v };
        });
        one(fval(x.shape().to_vec(), y))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let nm = b.name();
        let mut res = b.none();
        let dy = b.dy();
        let x = b.input(0)?;
        let sl = b.input(1)?;
        let st = prelu_strides(b.node, x.shape(), sl.shape())?;
        let (xd, sd) = (x.f(nm)?, sl.f(nm)?);
        let mut dx = vec![0.0f32; xd.len()];
        let mut ds = vec![0.0f32; sd.len()];
        kernels::for_each_bcast(x.shape(), [&st], |o, [i]| {
            if xd[o] < 0.0 {
                dx[o] = dy[o] * sd[i];
                ds[i] += dy[o] * xd[o];
            } else {
                dx[o] = dy[o];
            }
        });
        if b.need(0) {
            res[0] = Some(dx);
        }
        if b.need(1) {
            res[1] = Some(ds);
        }
        Ok(res)
    }
}

/// Clamps to `[min, max]`: attributes before opset 11, optional scalar
/// inputs 1 and 2 after.
#[derive(Debug)]
struct Clip {
    min: f32,
    max: f32,
}

impl Clip {
    fn bounds(&self, ins: &[Option<&Val>], nm: &str) -> Result<(f32, f32), ModelError> {
        let get = |i: usize, d: f32| -> Result<f32, ModelError> {
            match ins.get(i).copied().flatten() {
                Some(v) => Ok(match v {
                    Val::F(_, d) => d.first().copied(),
                    Val::I(_, d) => d.first().map(|&x| x as f32),
                }
                .ok_or_else(|| ModelError::Invalid(format!("node '{nm}': empty clip bound")))?),
                None => Ok(d),
            }
        };
        Ok((get(1, self.min)?, get(2, self.max)?))
    }
}

impl Op for Clip {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let (lo, hi) = self.bounds(cx.ins, &cx.node.name)?;
        map_floats(cx, x, |v| v.max(lo).min(hi))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let nm = b.name();
        let mut res = b.none();
        if b.need(0) {
            let (lo, hi) = self.bounds(b.ins, nm)?;
            let x = b.input(0)?.f(nm)?;
            let mut g = b.dy();
            g.iter_mut().zip(x).for_each(|(g, &x)| {
                if x < lo || x > hi {
                    *g = 0.0
                }
            });
            res[0] = Some(g);
        }
        // Gradients of tensor bounds (opset 11+ inputs).
        for (i, below) in [(1usize, true), (2, false)] {
            if b.need(i) {
                let x = b.input(0)?.f(nm)?;
                let (lo, hi) = self.bounds(b.ins, nm)?;
                let dy = b.dy();
                let s: f32 = x
                    .iter()
                    .zip(&dy)
                    .filter(|(&x, _)| if below { x < lo } else { x > hi })
                    .map(|(_, g)| g)
                    .sum();
                res[i] = Some(vec![s]);
            }
        }
        Ok(res)
    }
}

/// Softmax or LogSoftmax over `axis` (before opset 13: over the flattened
/// axes from `axis` on).
#[derive(Debug)]
struct Softmax {
    axis: i64,
    legacy: bool,
    log: bool,
}

impl Softmax {
    /// `(outer, axis length, inner)` of input shape `s`.
    fn dims(&self, s: &[usize], node: &Node) -> Result<(usize, usize, usize), ModelError> {
        let ax = norm_axis(self.axis, s.len(), &node.name)?;
        if self.legacy {
            let outer: usize = s[..ax].iter().product();
            let d: usize = s[ax..].iter().product();
            Ok((outer, d, 1))
        } else {
            Ok((
                s[..ax].iter().product(),
                s[ax],
                s[ax + 1..].iter().product(),
            ))
        }
    }
}

impl Op for Softmax {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let s = x.shape();
        let (outer, d, inner) = self.dims(s, cx.node)?;
        let xd = x.f(cx.name())?;
        cx.alloc(s)?;
        let mut y = vec![0.0f32; xd.len()];
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| (o * d + j) * inner + i;
                let mx = (0..d).map(|j| xd[at(j)]).fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = (0..d).map(|j| (xd[at(j)] - mx).exp()).sum();
                let ls = sum.ln();
                for j in 0..d {
                    let z = xd[at(j)] - mx;
                    y[at(j)] = if self.log { z - ls } else { z.exp() / sum };
                }
            }
        }
        one(fval(s.to_vec(), y))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        if b.need(0) {
            let y = b.y()?;
            let (outer, d, inner) = self.dims(y.shape(), b.node)?;
            let yd = y.f(b.name())?;
            let dy = b.dy();
            let mut dx = vec![0.0f32; yd.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| (o * d + j) * inner + i;
                    if self.log {
                        let s: f32 = (0..d).map(|j| dy[at(j)]).sum();
                        for j in 0..d {
                            dx[at(j)] = dy[at(j)] - yd[at(j)].exp() * s;
                        }
                    } else {
                        let s: f32 = (0..d).map(|j| dy[at(j)] * yd[at(j)]).sum();
                        for j in 0..d {
                            dx[at(j)] = yd[at(j)] * (dy[at(j)] - s);
                        }
                    }
                }
            }
            res[0] = Some(dx);
        }
        Ok(res)
    }
}
