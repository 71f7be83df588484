//! Shape and type operators: Identity/Dropout, Constant,
//! ConstantOfShape, Shape, Size, Cast, Range, Flatten, Reshape, Squeeze,
//! Unsqueeze. Those that only relabel a shape share the data (no copy).

use std::sync::Arc;

use super::super::{attrs, fval, ival, norm_axis, shape_err, Cx, Node, Val};
use super::{one, refuse, Backward, Grads, Op, Outputs, Registry};
use crate::classifier::ModelError;
use crate::onnx::proto::{AttrVal, MAX_ELEMS};

pub(super) fn register(r: &mut Registry) {
    r.add(&["Identity", "Dropout"], |n, _| {
        // Dropout's mask output is a training artefact.
        if n.op_type == "Dropout" && n.outputs.len() > 1 && !n.outputs[1].is_empty() {
            return Err(refuse(n));
        }
        Ok(Arc::new(Identity))
    });
    r.add(&["Constant"], |n, _| {
        let v = match attrs::attr(n, "value") {
            Some(AttrVal::T(t)) => Val::from_tensor(t),
            _ => match (
                attrs::attr(n, "value_float"),
                attrs::attr(n, "value_int"),
                attrs::attr(n, "value_ints"),
                attrs::attr(n, "value_floats"),
            ) {
                (Some(AttrVal::F(f)), _, _, _) => fval(vec![], vec![*f]),
                (_, Some(AttrVal::I(i)), _, _) => ival(vec![], vec![*i]),
                (_, _, Some(AttrVal::Is(v)), _) => ival(vec![v.len()], v.clone()),
                (_, _, _, Some(AttrVal::Fs(v))) => fval(vec![v.len()], v.clone()),
                _ => return Err(refuse(n)),
            },
        };
        Ok(Arc::new(Constant(v)))
    });
    r.add(&["ConstantOfShape"], |n, _| {
        Ok(Arc::new(ConstantOfShape(match attrs::attr(n, "value") {
            Some(AttrVal::T(t)) => Val::from_tensor(t),
            _ => fval(vec![1], vec![0.0]),
        })))
    });
    r.add(&["Shape"], |n, _| {
        Ok(Arc::new(Shape {
            start: attrs::int(n, "start", 0),
            end: match attrs::attr(n, "end") {
                Some(AttrVal::I(v)) => Some(*v),
                _ => None,
            },
        }))
    });
    r.add_op("Size", Size);
    r.add(&["Cast"], |n, _| {
        Ok(Arc::new(Cast {
            to: attrs::int(n, "to", 1),
        }))
    });
    r.add_op("Range", Range);
    r.add_with_axis("Flatten", 1, |axis| Flatten { axis });
    r.add_op("Reshape", Reshape);
    r.add(&["Unsqueeze", "Squeeze"], |n, opset| {
        Ok(Arc::new(Squeeze {
            unsqueeze: n.op_type == "Unsqueeze",
            // Axes moved from the attribute to input 1 in opset 13.
            axes: if opset < 13 {
                attrs::ints(n, "axes")
            } else {
                None
            },
        }))
    });
}

/// Gradient passes through unchanged (ops that relabel or copy the data).
fn pass_through(b: &Backward<'_>) -> Grads {
    let mut res = b.none();
    if b.need(0) {
        res[0] = Some(b.dy());
    }
    res
}

/// Identity, and Dropout at inference (no mask output).
#[derive(Debug)]
struct Identity;

impl Op for Identity {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        // Dropout's optional training_mode input (opset 12+): a random
        // mask is not an inference op.
        if cx.node.op_type == "Dropout"
            && cx
                .ins
                .get(2)
                .copied()
                .flatten()
                .is_some_and(|t| t.ints().iter().any(|&v| v != 0))
        {
            return Err(ModelError::Unsupported {
                op: "Dropout(training_mode=1)".into(),
                node: cx.node.name.clone(),
            });
        }
        one(cx.input(0)?.clone())
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        Ok(pass_through(b))
    }
}

#[derive(Debug)]
struct Constant(Val);

impl Op for Constant {
    fn forward(&self, _cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        one(self.0.clone())
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        // No inputs.
        Ok(b.none())
    }
}

/// A tensor of the shape given by input 0, filled with the value.
#[derive(Debug)]
struct ConstantOfShape(Val);

impl Op for ConstantOfShape {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let s = attrs::sizes(&cx.input(0)?.ints(), "shape", cx.name())?;
        super::super::checked_numel(&s, cx.name())?;
        let n = cx.alloc(&s)?;
        match &self.0 {
            Val::F(_, d) => one(fval(s, vec![d.first().copied().unwrap_or(0.0); n])),
            Val::I(_, d) => one(ival(s, vec![d.first().copied().unwrap_or(0); n])),
        }
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        // The input is a shape (integers): no gradient.
        Ok(b.none())
    }
}

/// The input's shape (optionally a `start..end` slice of it).
#[derive(Debug)]
struct Shape {
    start: i64,
    end: Option<i64>,
}

impl Op for Shape {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let s: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
        let r = s.len() as i64;
        let cl = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let (a, b) = (cl(self.start), cl(self.end.unwrap_or(r)));
        let v = if a < b { s[a..b].to_vec() } else { vec![] };
        one(ival(vec![v.len()], v))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        // Integer output: no gradient flows.
        Ok(b.none())
    }
}

#[derive(Debug)]
struct Size;

impl Op for Size {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        one(ival(vec![], vec![x.numel() as i64]))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        // Integer output: no gradient flows.
        Ok(b.none())
    }
}

/// Cast between the float types (all held as `f32`) and the integer
/// types (all held as `i64`).
#[derive(Debug)]
struct Cast {
    to: i64,
}

impl Op for Cast {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        match self.to {
            1 | 10 | 11 | 16 => match x {
                Val::F(..) => one(x.clone()),
                Val::I(s, _) => {
                    cx.alloc(s)?;
                    one(fval(s.clone(), x.to_f32()))
                }
            },
            2..=7 | 9 | 12 | 13 => {
                cx.alloc(x.shape())?;
                one(ival(x.shape().to_vec(), x.ints()))
            }
            to => Err(ModelError::Unsupported {
                op: format!("Cast(to={to})"),
                node: cx.node.name.clone(),
            }),
        }
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        Ok(pass_through(b))
    }
}

/// `start, start + delta, ..` below `limit`.
#[derive(Debug)]
struct Range;

impl Op for Range {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let node = cx.node;
        let (s, l, d) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
        let (fs, fl, fd) = (s.as_f64(), l.as_f64(), d.as_f64());
        let (start, limit, delta) = match (fs.first(), fl.first(), fd.first()) {
            (Some(&a), Some(&b), Some(&c)) if c != 0.0 => (a, b, c),
            _ => return Err(shape_err(node, "bad range arguments".into())),
        };
        let count = ((limit - start) / delta).ceil().max(0.0);
        if count.is_nan() || count >= MAX_ELEMS as f64 {
            return Err(shape_err(node, "range too long".into()));
        }
        let count = count as usize;
        cx.alloc(&[count])?;
        if s.is_float() {
            one(fval(
                vec![count],
                (0..count)
                    .map(|i| (start + i as f64 * delta) as f32)
                    .collect(),
            ))
        } else {
            one(ival(
                vec![count],
                (0..count)
                    .map(|i| (start + i as f64 * delta) as i64)
                    .collect(),
            ))
        }
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        // A function of scalar bounds, piecewise constant in them.
        Ok(b.none())
    }
}

/// To 2-D: `[prod(s[..axis]), prod(s[axis..])]`.
#[derive(Debug)]
struct Flatten {
    axis: i64,
}

impl Op for Flatten {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let s = x.shape();
        let ax = if self.axis < 0 {
            self.axis + s.len() as i64
        } else {
            self.axis
        };
        if ax < 0 || ax as usize > s.len() {
            return Err(shape_err(cx.node, "flatten axis".into()));
        }
        let a: usize = s[..ax as usize].iter().product();
        let b: usize = s[ax as usize..].iter().product();
        one(x.reshaped(vec![a, b]))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        Ok(pass_through(b))
    }
}

/// The shape Reshape produces from input shape `s` and spec `spec` (0:
/// keep that dim, -1: infer one dim).
fn reshape_target(node: &Node, s: &[usize], spec: &[i64]) -> Result<Vec<usize>, ModelError> {
    let total: usize = s.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            0 => out.push(
                *s.get(i)
                    .ok_or_else(|| shape_err(node, "reshape 0 past input rank".into()))?,
            ),
            -1 => {
                if infer.is_some() {
                    return Err(shape_err(node, "two -1 dims in reshape".into()));
                }
                infer = Some(i);
                out.push(1);
            }
            d if d > 0 => out.push(d as usize),
            _ => return Err(shape_err(node, format!("bad reshape dim {d}"))),
        }
    }
    let known = super::super::checked_numel(&out, &node.name)?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(shape_err(node, format!("cannot reshape {s:?} to {spec:?}")));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(shape_err(node, format!("cannot reshape {s:?} to {spec:?}")));
    }
    Ok(out)
}

#[derive(Debug)]
struct Reshape;

impl Op for Reshape {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let spec = cx.input(1)?.ints();
        let t = reshape_target(cx.node, x.shape(), &spec)?;
        one(x.reshaped(t))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        Ok(pass_through(b))
    }
}

/// Squeeze (drop size-1 axes) or Unsqueeze (insert them).
#[derive(Debug)]
struct Squeeze {
    unsqueeze: bool,
    /// From the attribute (before opset 13); `None`: from input 1.
    axes: Option<Vec<i64>>,
}

impl Op for Squeeze {
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError> {
        let x = cx.input(0)?;
        let axes = match &self.axes {
            Some(a) => a.clone(),
            None => cx
                .ins
                .get(1)
                .copied()
                .flatten()
                .map(|v| v.ints())
                .unwrap_or_default(),
        };
        let s = x.shape();
        let t = if self.unsqueeze {
            let r = s.len() + axes.len();
            let mut ax: Vec<usize> = axes
                .iter()
                .map(|&a| norm_axis(a, r, cx.name()))
                .collect::<Result<_, _>>()?;
            ax.sort_unstable();
            let mut out = s.to_vec();
            for a in ax {
                out.insert(a.min(out.len()), 1);
            }
            out
        } else if axes.is_empty() {
            s.iter().copied().filter(|&d| d != 1).collect()
        } else {
            let ax: Vec<usize> = axes
                .iter()
                .map(|&a| norm_axis(a, s.len(), cx.name()))
                .collect::<Result<_, _>>()?;
            s.iter()
                .enumerate()
                .filter(|(i, _)| !ax.contains(i))
                .map(|(_, &d)| d)
                .collect()
        };
        one(x.reshaped(t))
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError> {
        Ok(pass_through(b))
    }
}
