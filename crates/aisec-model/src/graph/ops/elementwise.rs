//! Element-wise operators with broadcasting: arithmetic (Add, Sub, Mul,
//! Div, Pow, Mod), unary math (Neg, Abs, Exp, Log, Sqrt, Reciprocal, Sin,
//! Cos, Erf, Floor, Ceil, Round, Sign), the variadic Max/Min/Sum/Mean,
//! comparisons and logic (integer 0/1 outputs, no gradient) and Where.

use std::cmp::Ordering;
use std::sync::Arc;

use super::super::{attrs, fval, ival, shape_err, Cx, Node, Val};
use super::{one, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::kernels;

pub(super) fn register(r: &mut Registry) {
    for (name, f) in [
        ("Add", Arith::Add),
        ("Sub", Arith::Sub),
        ("Mul", Arith::Mul),
        ("Div", Arith::Div),
        ("Pow", Arith::Pow),
    ] {
        r.add_op(name, Binary(f));
    }
    r.add(&["Mod"], |n, _| {
        Ok(Arc::new(Binary(Arith::Mod {
            fmod: attrs::int(n, "fmod", 0) != 0,
        })))
    });
    for (name, f) in [
        ("Erf", MathFn::Erf),
        ("Neg", MathFn::Neg),
        ("Exp", MathFn::Exp),
        ("Sqrt", MathFn::Sqrt),
        ("Log", MathFn::Log),
        ("Abs", MathFn::Abs),
        ("Reciprocal", MathFn::Reciprocal),
        ("Sin", MathFn::Sin),
        ("Cos", MathFn::Cos),
        ("Floor", MathFn::Floor),
        ("Ceil", MathFn::Ceil),
        ("Round", MathFn::Round),
        ("Sign", MathFn::Sign),
    ] {
        r.add_op(name, Math(f));
    }
    for (name, f) in [
        ("Max", VariadicFn::Max),
        ("Min", VariadicFn::Min),
        ("Sum", VariadicFn::Sum),
        ("Mean", VariadicFn::Mean),
    ] {
        r.add_op(name, Variadic(f));
    }
    for (name, ord, or_equal) in [
        ("Equal", Ordering::Equal, false),
        ("Less", Ordering::Less, false),
        ("Greater", Ordering::Greater, false),
        ("LessOrEqual", Ordering::Less, true),
        ("GreaterOrEqual", Ordering::Greater, true),
    ] {
        r.add_op(name, Compare { ord, or_equal });
    }
    for (name, f) in [
        ("And", LogicFn::And),
        ("Or", LogicFn::Or),
        ("Xor", LogicFn::Xor),
    ] {
        r.add_op(name, Logic(f));
    }
    r.add(&["Not"], |_, _| Ok(Arc::new(Not)));
    r.add(&["Where"], |_, _| Ok(Arc::new(Where)));
}

/// Binary arithmetic with multidirectional broadcasting.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// ONNX `Mod`; `fmod` true: C `fmod` (sign of the dividend), false:
    /// the integer default (sign of the divisor).
    Mod {
        fmod: bool,
    },
}

#[derive(Debug)]
struct Binary(Arith);

impl Arith {
    fn ints(self, p: i64, q: i64) -> i64 {
        match self {
            Arith::Add => p.wrapping_add(q),
            Arith::Sub => p.wrapping_sub(q),
            Arith::Mul => p.wrapping_mul(q),
            Arith::Div => {
                if q == 0 {
                    0
                } else {
                    p.wrapping_div(q)
                }
            }
            Arith::Pow => p.wrapping_pow(q.clamp(0, 64) as u32),
            Arith::Mod { fmod } => {
                if q == 0 {
                    0
                } else {
                    let r = p.wrapping_rem(q);
                    if !fmod && r != 0 && (r < 0) != (q < 0) {
                        r + q
                    } else {
                        r
                    }
                }
            }
        }
    }

    fn floats(self, p: f32, q: f32) -> f32 {
        match self {
            Arith::Add => p + q,
            Arith::Sub => p - q,
            Arith::Mul => p * q,
            Arith::Div => p / q,
            Arith::Pow => {
                if q == 2.0 {
                    p * p
                } else {
                    p.powf(q)
                }
            }
            Arith::Mod { fmod: true } => p % q,
            Arith::Mod { fmod: false } => p - q * (p / q).floor(),
        }
    }

    /// Partial derivatives `(d/dp, d/dq)` times the incoming gradient `g`.
    fn partials(self, p: f32, q: f32, g: f32) -> (f32, f32) {
        match self {
            Arith::Add => (g, g),
            Arith::Sub => (g, -g),
            Arith::Mul => (g * q, g * p),
            Arith::Div => (g / q, -g * p / (q * q)),
            Arith::Pow => (
                g * q * p.powf(q - 1.0),
                if p > 0.0 { g * p.powf(q) * p.ln() } else { 0.0 },
            ),
            Arith::Mod { fmod: true } => (g, -g * (p / q).trunc()),
            Arith::Mod { fmod: false } => (g, -g * (p / q).floor()),
        }
    }
}

impl Op for Binary {
    fn rows_independent(&self) -> bool {
        true
    }
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let node = cx.node;
        let op = self.0;
        let a = cx.input(0)?;
        let b = cx.input(1)?;
        let os = kernels::bcast_shape(a.shape(), b.shape()).ok_or_else(|| {
            shape_err(
                node,
                format!("cannot broadcast {:?} with {:?}", a.shape(), b.shape()),
            )
        })?;
        let total = cx.alloc(&os)?;
        let sa = kernels::bcast_strides(a.shape(), &os);
        let sb = kernels::bcast_strides(b.shape(), &os);
        if let (Val::I(_, x), Val::I(_, y)) = (a, b) {
            let mut out = vec![0i64; total];
            kernels::for_each_bcast(&os, [&sa, &sb], |o, [i, j]| {
                out[o] = op.ints(x[i], y[j]);
            });
            return one(ival(os, out));
        }
        let af: Vec<f32>;
        let bf: Vec<f32>;
        let x: &[f32] = match a {
            Val::F(_, d) => d,
            Val::I(..) => {
                af = a.to_f32();
                &af
            }
        };
        let y: &[f32] = match b {
            Val::F(_, d) => d,
            Val::I(..) => {
                bf = b.to_f32();
                &bf
            }
        };
        let mut out = vec![0.0f32; total];
        let f = |p: f32, q: f32| op.floats(p, q);
        if x.len() == total && y.len() == total {
            out.iter_mut()
                .zip(x.iter().zip(y))
                .for_each(|(o, (&p, &q))| *o = f(p, q));
        } else if y.len() == 1 && x.len() == total {
            let q = y[0];
            out.iter_mut().zip(x).for_each(|(o, &p)| *o = f(p, q));
        } else {
            kernels::for_each_bcast(&os, [&sa, &sb], |o, [i, j]| out[o] = f(x[i], y[j]));
        }
        one(fval(os, out))
    }

    fn backward(&self, bw: &Backward<'_>) -> Result<Grads, ModelError> {
        let op = self.0;
        let mut res = bw.none();
        let a = bw.input(0)?;
        let b = bw.input(1)?;
        let os = kernels::bcast_shape(a.shape(), b.shape())
            .ok_or_else(|| shape_err(bw.node, "broadcast".into()))?;
        let sa = kernels::bcast_strides(a.shape(), &os);
        let sb = kernels::bcast_strides(b.shape(), &os);
        let dy = bw.dy_ref();
        if matches!(op, Arith::Add | Arith::Sub) && a.numel() == dy.len() && b.numel() == dy.len() {
            // Same shapes, constant partials: the general loop's
            // `0 + partial` per element without reading the operands.
            let sign = if op == Arith::Add { 1.0 } else { -1.0 };
            res[0] = bw.need(0).then(|| dy.iter().map(|&g| 0.0 + g).collect());
            res[1] = bw
                .need(1)
                .then(|| dy.iter().map(|&g| 0.0 + sign * g).collect());
            return Ok(res);
        }
        let af = a.to_f32();
        let bf = b.to_f32();
        let mut ga = if bw.need(0) {
            Some(vec![0.0f32; af.len()])
        } else {
            None
        };
        let mut gb = if bw.need(1) {
            Some(vec![0.0f32; bf.len()])
        } else {
            None
        };
        let same = af.len() == dy.len() && bf.len() == dy.len();
        let mut step = |o: usize, i: usize, j: usize| {
            let (dp, dq) = op.partials(af[i], bf[j], dy[o]);
            if let Some(ga) = ga.as_mut() {
                ga[i] += dp;
            }
            if let Some(gb) = gb.as_mut() {
                gb[j] += dq;
            }
        };
        if same {
            for o in 0..dy.len() {
                step(o, o, o);
            }
        } else {
            kernels::for_each_bcast(&os, [&sa, &sb], |o, [i, j]| step(o, i, j));
        }
        res[0] = ga;
        res[1] = gb;
        Ok(res)
    }
}

/// Unary math functions (activations are in `activation.rs`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum MathFn {
    Erf,
    Neg,
    Exp,
    Sqrt,
    Log,
    Abs,
    Reciprocal,
    Sin,
    Cos,
    /// Floor, Ceil, Round (half to even) and Sign: piecewise constant,
    /// zero gradient.
    Floor,
    Ceil,
    Round,
    Sign,
}

impl MathFn {
    fn value(self, x: f32) -> f32 {
        match self {
            MathFn::Erf => erf(x),
            MathFn::Neg => -x,
            MathFn::Exp => x.exp(),
            MathFn::Sqrt => x.sqrt(),
            MathFn::Log => x.ln(),
            MathFn::Abs => x.abs(),
            MathFn::Reciprocal => 1.0 / x,
            MathFn::Sin => x.sin(),
            MathFn::Cos => x.cos(),
            MathFn::Floor => x.floor(),
            MathFn::Ceil => x.ceil(),
            MathFn::Round => x.round_ties_even(),
            MathFn::Sign => sign(x),
        }
    }

    /// Derivative at `x` with output `y`.
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            MathFn::Erf => 2.0 / std::f32::consts::PI.sqrt() * (-x * x).exp(),
            MathFn::Neg => -1.0,
            MathFn::Exp => y,
            MathFn::Sqrt => 0.5 / y,
            MathFn::Log => 1.0 / x,
            MathFn::Abs => sign(x),
            MathFn::Reciprocal => -y * y,
            MathFn::Sin => x.cos(),
            MathFn::Cos => -x.sin(),
            MathFn::Floor | MathFn::Ceil | MathFn::Round | MathFn::Sign => 0.0,
        }
    }
}

/// -1, 0 or 1 (the derivative of `|x|`, 0 at 0).
pub(super) fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Error function. Abramowitz–Stegun 7.1.26 is too coarse for gradient
/// checks, so this uses the erfc continued-fraction-free rational
/// approximation from Numerical Recipes (`erfcc`, |error| < 1.2e-7), in
/// [`crate::special::log_erfc_pos`].
pub(super) fn erf(x: f32) -> f32 {
    let r = crate::special::log_erfc_pos(f64::from(x).abs()).exp();
    let v = 1.0 - r;
    (if x >= 0.0 { v } else { -v }) as f32
}

/// Forward of a float-to-float element-wise function.
pub(super) fn map_floats(
    cx: &Cx<'_>,
    x: &Val,
    f: impl Fn(f32) -> f32,
) -> Result<Outputs, ModelError> {
    cx.alloc(x.shape())?;
    let y = x.f(&cx.node.name)?.iter().map(|&v| f(v)).collect();
    one(fval(x.shape().to_vec(), y))
}

/// Backward of an element-wise function: the incoming gradient times
/// `d(x, y)`.
pub(super) fn chain_pointwise(
    b: &Backward<'_>,
    d: impl Fn(f32, f32) -> f32,
) -> Result<Grads, ModelError> {
    let mut res = b.none();
    if b.need(0) {
        let nm = b.name();
        let x = b.input(0)?.f(nm)?;
        let y = b.y()?.f(nm)?;
        let mut g = b.dy();
        for ((gv, &xv), &yv) in g.iter_mut().zip(x).zip(y) {
            *gv *= d(xv, yv);
        }
        res[0] = Some(g);
    }
    Ok(res)
}

#[derive(Debug)]
struct Math(MathFn);

impl Op for Math {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let f = self.0;
        let x = cx.input(0)?;
        if let (MathFn::Neg | MathFn::Abs, Val::I(s, d)) = (f, x) {
            cx.alloc(s)?;
            let v = d
                .iter()
                .map(|&v| {
                    if f == MathFn::Neg {
                        v.wrapping_neg()
                    } else {
                        v.wrapping_abs()
                    }
                })
                .collect();
            return one(ival(s.clone(), v));
        }
        map_floats(cx, x, |v| f.value(v))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        chain_pointwise(b, |x, y| self.0.derivative(x, y))
    }
}

/// Output shape of multidirectional broadcasting over all inputs.
pub(super) fn bcast_all(node: &Node, vs: &[&Val]) -> Result<Vec<usize>, ModelError> {
    let mut os: Vec<usize> = vec![];
    for v in vs {
        os = kernels::bcast_shape(&os, v.shape()).ok_or_else(|| {
            shape_err(
                node,
                format!("cannot broadcast {os:?} with {:?}", v.shape()),
            )
        })?;
    }
    super::super::checked_numel(&os, &node.name)?;
    Ok(os)
}

/// Element-wise variadic ops with multidirectional broadcasting.
#[derive(Debug, Clone, Copy, PartialEq)]
enum VariadicFn {
    Max,
    Min,
    Sum,
    Mean,
}

/// Max, Min, Sum, Mean over any number of inputs.
#[derive(Debug)]
struct Variadic(VariadicFn);

impl Op for Variadic {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let k = self.0;
        let vs: Vec<&Val> = cx.ins.iter().flatten().copied().collect();
        if vs.is_empty() {
            return Err(shape_err(cx.node, "no inputs".into()));
        }
        let os = bcast_all(cx.node, &vs)?;
        let n = cx.alloc(&os)?;
        if vs.iter().all(|v| !v.is_float()) && k != VariadicFn::Mean {
            let mut out: Vec<i64> = Vec::new();
            for (j, v) in vs.iter().enumerate() {
                let st = kernels::bcast_strides(v.shape(), &os);
                let d = v.ints();
                if j == 0 {
                    out = vec![0; n];
                    kernels::for_each_bcast(&os, [&st], |o, [i]| out[o] = d[i]);
                    continue;
                }
                kernels::for_each_bcast(&os, [&st], |o, [i]| {
                    out[o] = match k {
                        VariadicFn::Max => out[o].max(d[i]),
                        VariadicFn::Min => out[o].min(d[i]),
                        _ => out[o].wrapping_add(d[i]),
                    }
                });
            }
            return one(ival(os, out));
        }
        let mut out = vec![0.0f32; n];
        for (j, v) in vs.iter().enumerate() {
            let st = kernels::bcast_strides(v.shape(), &os);
            let d: Vec<f32> = v.as_f64().into_iter().map(|x| x as f32).collect();
            kernels::for_each_bcast(&os, [&st], |o, [i]| {
                let q = d[i];
                out[o] = if j == 0 {
                    q
                } else {
                    match k {
                        VariadicFn::Max => out[o].max(q),
                        VariadicFn::Min => out[o].min(q),
                        VariadicFn::Sum | VariadicFn::Mean => out[o] + q,
                    }
                }
            });
        }
        if k == VariadicFn::Mean {
            let c = vs.len() as f32;
            out.iter_mut().for_each(|v| *v /= c);
        }
        one(fval(os, out))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let k = self.0;
        let mut res = b.none();
        let y = b.y()?;
        let dy = b.dy();
        let os = y.shape();
        let yd = y.f(b.name())?;
        let vs: Vec<(usize, &Val)> = b
            .ins
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .collect();
        let n = vs.len() as f32;
        // For Max/Min: how many inputs attain the extreme per element.
        let mut ties = vec![0.0f32; yd.len()];
        let fs: Vec<Vec<f32>> = vs
            .iter()
            .map(|(_, v)| v.as_f64().into_iter().map(|x| x as f32).collect())
            .collect();
        if matches!(k, VariadicFn::Max | VariadicFn::Min) {
            for ((_, v), d) in vs.iter().zip(&fs) {
                let st = kernels::bcast_strides(v.shape(), os);
                kernels::for_each_bcast(os, [&st], |o, [i]| {
                    if d[i] == yd[o] {
                        ties[o] += 1.0;
                    }
                });
            }
        }
        for ((slot, v), d) in vs.iter().zip(&fs) {
            if !b.need(*slot) {
                continue;
            }
            let g: Vec<f32> = match k {
                VariadicFn::Sum => dy.clone(),
                VariadicFn::Mean => dy.iter().map(|g| g / n).collect(),
                VariadicFn::Max | VariadicFn::Min => {
                    let st = kernels::bcast_strides(v.shape(), os);
                    let mut g = vec![0.0f32; dy.len()];
                    kernels::for_each_bcast(os, [&st], |o, [i]| {
                        if d[i] == yd[o] {
                            g[o] = dy[o] / ties[o];
                        }
                    });
                    g
                }
            };
            res[*slot] = Some(kernels::reduce_to(&g, os, v.shape()));
        }
        Ok(res)
    }
}

/// A broadcasting binary operator with a 0/1 integer output: both inputs
/// are read as `T` by `read`, and `f` decides each output element.
fn bool_binary<T>(
    cx: &Cx<'_>,
    read: fn(&Val) -> Vec<T>,
    f: impl Fn(&T, &T) -> bool,
) -> Result<Outputs, ModelError> {
    let node = cx.node;
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let os = bcast_all(node, &[a, b])?;
    let n = cx.alloc(&os)?;
    let (sa, sb) = (
        kernels::bcast_strides(a.shape(), &os),
        kernels::bcast_strides(b.shape(), &os),
    );
    let (da, db) = (read(a), read(b));
    let mut out = vec![0i64; n];
    kernels::for_each_bcast(&os, [&sa, &sb], |o, [i, j]| {
        out[o] = i64::from(f(&da[i], &db[j]));
    });
    one(ival(os, out))
}

/// Equal, Less, Greater (`or_equal` false) and LessOrEqual,
/// GreaterOrEqual (`or_equal` true), to 0/1 integers.
#[derive(Debug)]
struct Compare {
    ord: Ordering,
    or_equal: bool,
}

impl Op for Compare {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        bool_binary(cx, Val::as_f64, |a: &f64, b: &f64| {
            let c = a.partial_cmp(b);
            c == Some(self.ord) || (self.or_equal && c == Some(Ordering::Equal))
        })
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        // Integer output: no gradient flows.
        Ok(b.none())
    }
}

#[derive(Debug, Clone, Copy)]
enum LogicFn {
    And,
    Or,
    Xor,
}

/// And, Or, Xor on 0/1 integers.
#[derive(Debug)]
struct Logic(LogicFn);

impl Op for Logic {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        bool_binary(cx, Val::ints, |&a: &i64, &b: &i64| {
            let (p, q) = (a != 0, b != 0);
            match self.0 {
                LogicFn::And => p && q,
                LogicFn::Or => p || q,
                LogicFn::Xor => p != q,
            }
        })
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        // Integer output: no gradient flows.
        Ok(b.none())
    }
}

#[derive(Debug)]
struct Not;

impl Op for Not {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        cx.alloc(x.shape())?;
        let v = x.ints().iter().map(|&v| i64::from(v == 0)).collect();
        one(ival(x.shape().to_vec(), v))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        // Integer output: no gradient flows.
        Ok(b.none())
    }
}

/// `cond ? a : b`, broadcasting all three.
#[derive(Debug)]
struct Where;

impl Op for Where {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let node = cx.node;
        let c = cx.input(0)?;
        let a = cx.input(1)?;
        let b = cx.input(2)?;
        let os = kernels::bcast_shape(c.shape(), a.shape())
            .and_then(|s| kernels::bcast_shape(&s, b.shape()))
            .ok_or_else(|| shape_err(node, "broadcast".into()))?;
        let n = cx.alloc(&os)?;
        let (sc, sa, sb) = (
            kernels::bcast_strides(c.shape(), &os),
            kernels::bcast_strides(a.shape(), &os),
            kernels::bcast_strides(b.shape(), &os),
        );
        let cd = c.ints();
        if let (Val::I(_, ad), Val::I(_, bd)) = (a, b) {
            let mut out = vec![0i64; n];
            kernels::for_each_bcast(&os, [&sc, &sa, &sb], |o, [k, i, j]| {
                out[o] = if cd[k] != 0 { ad[i] } else { bd[j] };
            });
            return one(ival(os, out));
        }
        let (fa, fb) = (a.as_f64(), b.as_f64());
        let mut out = vec![0.0f32; n];
        kernels::for_each_bcast(&os, [&sc, &sa, &sb], |o, [k, i, j]| {
            out[o] = if cd[k] != 0 { fa[i] } else { fb[j] } as f32;
        });
        one(fval(os, out))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        let mut res = b.none();
        let c = b.input(0)?;
        let y = b.y()?;
        let os = y.shape().to_vec();
        let cd = c.ints();
        let sc = kernels::bcast_strides(c.shape(), &os);
        let dy = b.dy();
        for (slot, pick) in [(1usize, true), (2, false)] {
            if b.need(slot) {
                let v = b.input(slot)?;
                let mut masked = vec![0.0f32; dy.len()];
                kernels::for_each_bcast(&os, [&sc], |o, [k]| {
                    if (cd[k] != 0) == pick {
                        masked[o] = dy[o];
                    }
                });
                res[slot] = Some(kernels::reduce_to(&masked, &os, v.shape()));
            }
        }
        Ok(res)
    }
}
