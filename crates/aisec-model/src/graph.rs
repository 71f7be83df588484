//! The graph executor: a static tape over an ONNX graph.
//!
//! ONNX graphs list nodes in topological order, so the forward pass runs
//! them in order and keeps every intermediate value; the backward pass walks
//! the same list in reverse, calling each operator's hand-written adjoint
//! (reverse-mode automatic differentiation with a fixed tape, as in
//! Griewank & Walther, "Evaluating Derivatives", 2008). Shape-computing
//! subgraphs whose inputs are all constant are folded at load time;
//! integer-valued tensors flow through the same executor but never carry
//! gradients.

#![allow(clippy::type_complexity)]
use std::collections::HashMap;
use std::sync::Arc;

use crate::classifier::ModelError;
use crate::kernels::{self, Geom};
use crate::onnx::proto::{AttrVal, GraphP, NodeP, TensorData, TensorP, MAX_ELEMS};

/// A runtime value: float data (differentiable) or integer data (shapes,
/// indices).
#[derive(Debug, Clone)]
pub(crate) enum Val {
    F(Vec<usize>, Arc<Vec<f32>>),
    I(Vec<usize>, Arc<Vec<i64>>),
}

impl Val {
    pub fn shape(&self) -> &[usize] {
        match self {
            Val::F(s, _) | Val::I(s, _) => s,
        }
    }
    fn f(&self, node: &str) -> Result<&[f32], ModelError> {
        match self {
            Val::F(_, d) => Ok(d),
            Val::I(..) => Err(ModelError::Invalid(format!(
                "node '{node}': expected a float tensor, got integers"
            ))),
        }
    }
    fn ints(&self) -> Vec<i64> {
        match self {
            Val::F(_, d) => d.iter().map(|&x| x as i64).collect(),
            Val::I(_, d) => d.to_vec(),
        }
    }
    fn is_float(&self) -> bool {
        matches!(self, Val::F(..))
    }
    fn from_tensor(t: &TensorP) -> Val {
        match &t.data {
            TensorData::F32(v) => Val::F(t.dims.clone(), Arc::new(v.clone())),
            TensorData::I64(v) => Val::I(t.dims.clone(), Arc::new(v.clone())),
        }
    }
    fn numel(&self) -> usize {
        self.shape().iter().product()
    }
}

fn fval(shape: Vec<usize>, d: Vec<f32>) -> Val {
    Val::F(shape, Arc::new(d))
}
fn ival(shape: Vec<usize>, d: Vec<i64>) -> Val {
    Val::I(shape, Arc::new(d))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// ONNX `Mod`; `true` for `fmod=1` (C `fmod`, sign of the dividend),
    /// `false` for the integer default (sign of the divisor).
    Mod(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Un {
    Relu,
    Sigmoid,
    Tanh,
    Erf,
    Neg,
    Exp,
    Sqrt,
    Log,
    Abs,
    /// `max(0, min(1, alpha*x + beta))`.
    HardSigmoid(f32, f32),
    /// `x * max(0, min(1, x/6 + 1/2))` (Howard et al., "Searching for
    /// MobileNetV3", 2019).
    HardSwish,
    /// `x` for `x >= 0`, `alpha*(e^x - 1)` below (Clevert et al., 2015).
    Elu(f32),
    /// `gamma * elu_alpha(x)` (Klambauer et al., "Self-Normalizing Neural
    /// Networks", 2017).
    Selu(f32, f32),
    /// `max(0,x) + min(0, alpha*(e^(x/alpha) - 1))` (Barron, 2017).
    Celu(f32),
    /// `x` above `alpha`, else 0.
    ThresholdedRelu(f32),
    Softplus,
    Softsign,
    /// `x * tanh(softplus(x))` (Misra, 2019).
    Mish,
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

/// Reductions other than ReduceSum/ReduceMean.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RedK {
    Max,
    Min,
    L1,
    L2,
    SumSquare,
    LogSumExp,
}

/// Element-wise variadic ops with multidirectional broadcasting.
#[derive(Debug, Clone, Copy, PartialEq)]
enum VarK {
    Max,
    Min,
    Sum,
    Mean,
}

#[derive(Debug, Clone)]
struct Window {
    k: Vec<usize>,
    s: Vec<usize>,
    d: Vec<usize>,
    /// begin pads then end pads, ONNX order.
    p: Vec<usize>,
    auto_pad: String,
    ceil: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Resize {
        linear: bool,
        coord: String,
        nearest: String,
        opset: i64,
    },
    ConvT {
        w: Window,
        group: usize,
        out_pad: Vec<usize>,
    },
    Conv {
        w: Window,
        group: usize,
    },
    Gemm {
        alpha: f32,
        beta: f32,
        ta: bool,
        tb: bool,
    },
    MatMul,
    Bin(Bin),
    Un(Un),
    Clip {
        min: f32,
        max: f32,
    },
    LeakyRelu(f32),
    Gelu {
        tanh: bool,
    },
    Softmax {
        axis: i64,
        legacy: bool,
        log: bool,
    },
    MaxPool(Window),
    AvgPool {
        w: Window,
        cip: bool,
    },
    GlobalAvgPool,
    BatchNorm {
        eps: f32,
    },
    /// `ai.aisec::BatchNormTrain` (training-mode batch norm, see bn_train.rs).
    BatchNormTrain {
        eps: f32,
    },
    LayerNorm {
        axis: i64,
        eps: f32,
    },
    Flatten {
        axis: i64,
    },
    Reshape,
    Transpose {
        perm: Option<Vec<usize>>,
    },
    Concat {
        axis: i64,
    },
    Slice {
        attrs: Option<(Vec<i64>, Vec<i64>, Option<Vec<i64>>)>,
    },
    Gather {
        axis: i64,
    },
    Shape {
        start: i64,
        end: Option<i64>,
    },
    Constant(Val),
    ConstantOfShape(Val),
    Unsqueeze {
        axes: Option<Vec<i64>>,
    },
    Squeeze {
        axes: Option<Vec<i64>>,
    },
    Pad {
        pads: Option<Vec<i64>>,
        value: f32,
        mode: String,
    },
    Identity,
    Reduce {
        axes: Option<Vec<i64>>,
        keep: bool,
        mean: bool,
        noop_empty: bool,
    },
    Cast {
        to: i64,
    },
    Split {
        axis: i64,
        split: Option<Vec<i64>>,
    },
    Expand,
    /// Comparison to 0/1 integers: Equal, Less, Greater.
    Cmp(std::cmp::Ordering),
    Not,
    Where,
    Range,
    /// ReduceMax/Min/L1/L2/SumSquare/LogSumExp.
    ReduceX {
        kind: RedK,
        axes: Option<Vec<i64>>,
        keep: bool,
        noop_empty: bool,
    },
    /// Max, Min, Sum, Mean over any number of inputs.
    Variadic(VarK),
    /// `x` where `x >= 0`, `slope * x` below; `slope` broadcasts to `x`.
    PRelu,
    InstanceNorm {
        eps: f32,
    },
    GlobalMaxPool,
    Tile,
    Size,
    /// LessOrEqual / GreaterOrEqual.
    CmpOrEq(std::cmp::Ordering),
    /// And, Or, Xor on 0/1 integers.
    Logic(u8),
    /// DepthToSpace (`dcr`: DCR mode) or SpaceToDepth (`to_space: false`).
    DepthSpace {
        block: usize,
        to_space: bool,
        dcr: bool,
    },
    /// ArgMax (`max`) / ArgMin: integer indices, no gradient.
    ArgExt {
        max: bool,
        axis: i64,
        keep: bool,
        last: bool,
    },
    CumSum {
        exclusive: bool,
        reverse: bool,
    },
    /// LSTM (Hochreiter & Schmidhuber, 1997) in ONNX's form: gates in
    /// i, o, f, c order, default activations, no peepholes, `layout` 0.
    Lstm {
        hidden: usize,
        /// Per direction: true when it runs from the last step to the first.
        dirs: Vec<bool>,
    },
    /// GRU (Cho et al., 2014) in ONNX's form: gates in z, r, h order,
    /// default activations; `lbr` is `linear_before_reset` (PyTorch: 1).
    Gru {
        hidden: usize,
        dirs: Vec<bool>,
        lbr: bool,
    },
}

/// Per-node data kept from forward for backward.
#[derive(Debug, Clone)]
enum Aux {
    None,
    Idx(Vec<u32>),
    Norm(Vec<f32>, Vec<f32>),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub op_type: String,
    op: Op,
    inputs: Vec<Option<usize>>,
    outputs: Vec<usize>,
}

/// A compiled graph.
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    pub nodes: Vec<Node>,
    pub num_values: usize,
    /// Constant values (initializers and folded results) by value id.
    pub consts: Vec<Option<Val>>,
    /// Value id of each float initializer (trainable weight) with its name.
    pub weights: Vec<(String, usize)>,
    pub input: usize,
    pub input_name: String,
    pub input_dims: Vec<Option<usize>>,
    pub output: usize,
}

/// Values and auxiliary data from one forward pass.
pub(crate) struct Tape {
    pub vals: Vec<Option<Val>>,
    aux: Vec<Aux>,
}

fn attr<'a>(n: &'a NodeP, name: &str) -> Option<&'a AttrVal> {
    n.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}
fn attr_i(n: &NodeP, name: &str, d: i64) -> i64 {
    match attr(n, name) {
        Some(AttrVal::I(v)) => *v,
        _ => d,
    }
}
fn attr_f(n: &NodeP, name: &str, d: f32) -> f32 {
    match attr(n, name) {
        Some(AttrVal::F(v)) => *v,
        Some(AttrVal::I(v)) => *v as f32,
        _ => d,
    }
}
fn attr_is(n: &NodeP, name: &str) -> Option<Vec<i64>> {
    match attr(n, name) {
        Some(AttrVal::Is(v)) => Some(v.clone()),
        _ => None,
    }
}
fn attr_s(n: &NodeP, name: &str) -> String {
    match attr(n, name) {
        Some(AttrVal::S(v)) => v.clone(),
        _ => String::new(),
    }
}

fn usz(v: &[i64], what: &str, node: &str) -> Result<Vec<usize>, ModelError> {
    v.iter()
        .map(|&x| {
            usize::try_from(x)
                .ok()
                .filter(|&x| x < 1 << 20)
                .ok_or_else(|| ModelError::Invalid(format!("node '{node}': bad {what} value {x}")))
        })
        .collect()
}

fn window(n: &NodeP, need_kernel: bool) -> Result<Window, ModelError> {
    let k = match attr_is(n, "kernel_shape") {
        Some(k) => usz(&k, "kernel_shape", &n.name)?,
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
            Some(v) => usz(&v, "stride/dilation", &n.name),
            None => Ok(vec![1; r]),
        }
    };
    let s = ones(attr_is(n, "strides"))?;
    let d = ones(attr_is(n, "dilations"))?;
    let p = match attr_is(n, "pads") {
        Some(p) => usz(&p, "pads", &n.name)?,
        None => vec![0; 2 * r],
    };
    Ok(Window {
        k,
        s,
        d,
        p,
        auto_pad: attr_s(n, "auto_pad"),
        ceil: attr_i(n, "ceil_mode", 0) != 0,
    })
}

fn compile_op(n: &NodeP, opset: i64) -> Result<Op, ModelError> {
    let unsup = || ModelError::Unsupported {
        op: if n.domain.is_empty() {
            n.op_type.clone()
        } else {
            format!("{}::{}", n.domain, n.op_type)
        },
        node: n.name.clone(),
    };
    if n.domain == "ai.aisec" && n.op_type == "BatchNormTrain" {
        return Ok(Op::BatchNormTrain {
            eps: attr_f(n, "epsilon", 1e-5),
        });
    }
    if !(n.domain.is_empty() || n.domain == "ai.onnx") {
        return Err(unsup());
    }
    Ok(match n.op_type.as_str() {
        "Resize" | "Upsample" => {
            let mode = attr_s(n, "mode");
            let linear = match mode.as_str() {
                "" | "nearest" => false,
                "linear" | "bilinear" => true,
                _ => {
                    return Err(ModelError::Unsupported {
                        op: format!("{}(mode={mode})", n.op_type),
                        node: n.name.clone(),
                    })
                }
            };
            let coord = attr_s(n, "coordinate_transformation_mode");
            let known = [
                "",
                "half_pixel",
                "pytorch_half_pixel",
                "align_corners",
                "asymmetric",
            ];
            if !known.contains(&coord.as_str()) || attr_i(n, "antialias", 0) != 0 {
                return Err(ModelError::Unsupported {
                    op: format!("{}(coordinate_transformation_mode={coord})", n.op_type),
                    node: n.name.clone(),
                });
            }
            Op::Resize {
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
                    let m = attr_s(n, "nearest_mode");
                    if m.is_empty() {
                        "round_prefer_floor".into()
                    } else {
                        m
                    }
                },
                opset: if n.op_type == "Upsample" { 9 } else { opset },
            }
        }
        "ConvTranspose" => {
            if attr_is(n, "output_shape").is_some()
                || !matches!(attr_s(n, "auto_pad").as_str(), "" | "NOTSET")
            {
                return Err(ModelError::Unsupported {
                    op: "ConvTranspose(output_shape/auto_pad)".into(),
                    node: n.name.clone(),
                });
            }
            Op::ConvT {
                w: window(n, false)?,
                group: attr_i(n, "group", 1).max(1) as usize,
                out_pad: match attr_is(n, "output_padding") {
                    Some(p) => usz(&p, "output_padding", &n.name)?,
                    None => vec![],
                },
            }
        }
        "Conv" => Op::Conv {
            w: window(n, false)?,
            group: attr_i(n, "group", 1).max(1) as usize,
        },
        "Gemm" => Op::Gemm {
            alpha: attr_f(n, "alpha", 1.0),
            beta: attr_f(n, "beta", 1.0),
            ta: attr_i(n, "transA", 0) != 0,
            tb: attr_i(n, "transB", 0) != 0,
        },
        "MatMul" => Op::MatMul,
        "Add" => Op::Bin(Bin::Add),
        "Sub" => Op::Bin(Bin::Sub),
        "Mul" => Op::Bin(Bin::Mul),
        "Div" => Op::Bin(Bin::Div),
        "Pow" => Op::Bin(Bin::Pow),
        "Relu" => Op::Un(Un::Relu),
        "Sigmoid" => Op::Un(Un::Sigmoid),
        "Tanh" => Op::Un(Un::Tanh),
        "Erf" => Op::Un(Un::Erf),
        "Neg" => Op::Un(Un::Neg),
        "Exp" => Op::Un(Un::Exp),
        "Sqrt" => Op::Un(Un::Sqrt),
        "Log" => Op::Un(Un::Log),
        "Abs" => Op::Un(Un::Abs),
        "HardSigmoid" => Op::Un(Un::HardSigmoid(
            attr_f(n, "alpha", 0.2),
            attr_f(n, "beta", 0.5),
        )),
        "HardSwish" => Op::Un(Un::HardSwish),
        "Elu" => Op::Un(Un::Elu(attr_f(n, "alpha", 1.0))),
        "Selu" => Op::Un(Un::Selu(
            attr_f(n, "alpha", 1.673_263_2),
            attr_f(n, "gamma", 1.050_701),
        )),
        "Celu" => {
            let a = attr_f(n, "alpha", 1.0);
            if a == 0.0 {
                return Err(ModelError::Invalid(format!(
                    "node '{}': Celu alpha 0",
                    n.name
                )));
            }
            Op::Un(Un::Celu(a))
        }
        "ThresholdedRelu" => Op::Un(Un::ThresholdedRelu(attr_f(n, "alpha", 1.0))),
        "Softplus" => Op::Un(Un::Softplus),
        "Softsign" => Op::Un(Un::Softsign),
        "Mish" => Op::Un(Un::Mish),
        "Reciprocal" => Op::Un(Un::Reciprocal),
        "Sin" => Op::Un(Un::Sin),
        "Cos" => Op::Un(Un::Cos),
        "Floor" => Op::Un(Un::Floor),
        "Ceil" => Op::Un(Un::Ceil),
        "Round" => Op::Un(Un::Round),
        "Sign" => Op::Un(Un::Sign),
        "Mod" => Op::Bin(Bin::Mod(attr_i(n, "fmod", 0) != 0)),
        "PRelu" => Op::PRelu,
        "Max" => Op::Variadic(VarK::Max),
        "Min" => Op::Variadic(VarK::Min),
        "Sum" => Op::Variadic(VarK::Sum),
        "Mean" => Op::Variadic(VarK::Mean),
        "InstanceNormalization" => Op::InstanceNorm {
            eps: attr_f(n, "epsilon", 1e-5),
        },
        "GlobalMaxPool" => Op::GlobalMaxPool,
        "Tile" => Op::Tile,
        "Size" => Op::Size,
        "LessOrEqual" => Op::CmpOrEq(std::cmp::Ordering::Less),
        "GreaterOrEqual" => Op::CmpOrEq(std::cmp::Ordering::Greater),
        "DepthToSpace" | "SpaceToDepth" => {
            let block = attr_i(n, "blocksize", 0);
            if !(1..=1024).contains(&block) {
                return Err(ModelError::Invalid(format!(
                    "node '{}': blocksize {block}",
                    n.name
                )));
            }
            let mode = attr_s(n, "mode");
            if !matches!(mode.as_str(), "" | "DCR" | "CRD") {
                return Err(ModelError::Unsupported {
                    op: format!("{}(mode={mode})", n.op_type),
                    node: n.name.clone(),
                });
            }
            Op::DepthSpace {
                block: block as usize,
                to_space: n.op_type == "DepthToSpace",
                dcr: mode != "CRD",
            }
        }
        "ArgMax" | "ArgMin" => Op::ArgExt {
            max: n.op_type == "ArgMax",
            axis: attr_i(n, "axis", 0),
            keep: attr_i(n, "keepdims", 1) != 0,
            last: attr_i(n, "select_last_index", 0) != 0,
        },
        "LSTM" | "GRU" => {
            let refuse = |what: &str| ModelError::Unsupported {
                op: format!("{}({what})", n.op_type),
                node: n.name.clone(),
            };
            if attr(n, "activations").is_some() {
                return Err(refuse("activations"));
            }
            if attr(n, "clip").is_some() {
                return Err(refuse("clip"));
            }
            if attr_i(n, "input_forget", 0) != 0 {
                return Err(refuse("input_forget"));
            }
            if attr_i(n, "layout", 0) != 0 {
                return Err(refuse("layout=1"));
            }
            if n.inputs.get(7).is_some_and(|s| !s.is_empty()) {
                return Err(refuse("peepholes"));
            }
            let hidden = attr_i(n, "hidden_size", 0);
            if !(1..=1 << 16).contains(&hidden) {
                return Err(ModelError::Invalid(format!(
                    "node '{}': {} hidden_size {hidden}",
                    n.name, n.op_type
                )));
            }
            let dirs = match attr_s(n, "direction").as_str() {
                "" | "forward" => vec![false],
                "reverse" => vec![true],
                "bidirectional" => vec![false, true],
                d => return Err(refuse(&format!("direction={d}"))),
            };
            if n.op_type == "GRU" {
                Op::Gru {
                    hidden: hidden as usize,
                    dirs,
                    lbr: attr_i(n, "linear_before_reset", 0) != 0,
                }
            } else {
                Op::Lstm {
                    hidden: hidden as usize,
                    dirs,
                }
            }
        }
        "CumSum" => Op::CumSum {
            exclusive: attr_i(n, "exclusive", 0) != 0,
            reverse: attr_i(n, "reverse", 0) != 0,
        },
        "And" => Op::Logic(0),
        "Or" => Op::Logic(1),
        "Xor" => Op::Logic(2),
        "ReduceMax" | "ReduceMin" | "ReduceL1" | "ReduceL2" | "ReduceSumSquare"
        | "ReduceLogSumExp" => Op::ReduceX {
            kind: match n.op_type.as_str() {
                "ReduceMax" => RedK::Max,
                "ReduceMin" => RedK::Min,
                "ReduceL1" => RedK::L1,
                "ReduceL2" => RedK::L2,
                "ReduceSumSquare" => RedK::SumSquare,
                _ => RedK::LogSumExp,
            },
            // Axes moved from the attribute to input 1 in opset 18.
            axes: if opset >= 18 {
                None
            } else {
                attr_is(n, "axes")
            },
            keep: attr_i(n, "keepdims", 1) != 0,
            noop_empty: attr_i(n, "noop_with_empty_axes", 0) != 0,
        },
        "LeakyRelu" => Op::LeakyRelu(attr_f(n, "alpha", 0.01)),
        "Gelu" => Op::Gelu {
            tanh: attr_s(n, "approximate") == "tanh",
        },
        "Clip" => Op::Clip {
            min: attr_f(n, "min", f32::NEG_INFINITY),
            max: attr_f(n, "max", f32::INFINITY),
        },
        "Softmax" | "LogSoftmax" => Op::Softmax {
            axis: attr_i(n, "axis", if opset >= 13 { -1 } else { 1 }),
            legacy: opset < 13,
            log: n.op_type == "LogSoftmax",
        },
        "MaxPool" => {
            if n.outputs.len() > 1 && !n.outputs[1].is_empty() {
                return Err(unsup());
            }
            Op::MaxPool(window(n, true)?)
        }
        "AveragePool" => Op::AvgPool {
            w: window(n, true)?,
            cip: attr_i(n, "count_include_pad", 0) != 0,
        },
        "GlobalAveragePool" => Op::GlobalAvgPool,
        "BatchNormalization" => {
            if attr_i(n, "training_mode", 0) != 0 {
                return Err(unsup());
            }
            Op::BatchNorm {
                eps: attr_f(n, "epsilon", 1e-5),
            }
        }
        "LayerNormalization" => Op::LayerNorm {
            axis: attr_i(n, "axis", -1),
            eps: attr_f(n, "epsilon", 1e-5),
        },
        "Flatten" => Op::Flatten {
            axis: attr_i(n, "axis", 1),
        },
        "Reshape" => Op::Reshape,
        "Transpose" => Op::Transpose {
            perm: match attr_is(n, "perm") {
                Some(p) => Some(usz(&p, "perm", &n.name)?),
                None => None,
            },
        },
        "Concat" => Op::Concat {
            axis: attr_i(n, "axis", 0),
        },
        "Slice" => Op::Slice {
            attrs: if opset < 10 {
                Some((
                    attr_is(n, "starts").unwrap_or_default(),
                    attr_is(n, "ends").unwrap_or_default(),
                    attr_is(n, "axes"),
                ))
            } else {
                None
            },
        },
        "Gather" => Op::Gather {
            axis: attr_i(n, "axis", 0),
        },
        "Shape" => Op::Shape {
            start: attr_i(n, "start", 0),
            end: match attr(n, "end") {
                Some(AttrVal::I(v)) => Some(*v),
                _ => None,
            },
        },
        "Constant" => match attr(n, "value") {
            Some(AttrVal::T(t)) => Op::Constant(Val::from_tensor(t)),
            _ => match (
                attr(n, "value_float"),
                attr(n, "value_int"),
                attr(n, "value_ints"),
                attr(n, "value_floats"),
            ) {
                (Some(AttrVal::F(f)), _, _, _) => Op::Constant(fval(vec![], vec![*f])),
                (_, Some(AttrVal::I(i)), _, _) => Op::Constant(ival(vec![], vec![*i])),
                (_, _, Some(AttrVal::Is(v)), _) => Op::Constant(ival(vec![v.len()], v.clone())),
                (_, _, _, Some(AttrVal::Fs(v))) => Op::Constant(fval(vec![v.len()], v.clone())),
                _ => return Err(unsup()),
            },
        },
        "ConstantOfShape" => Op::ConstantOfShape(match attr(n, "value") {
            Some(AttrVal::T(t)) => Val::from_tensor(t),
            _ => fval(vec![1], vec![0.0]),
        }),
        "Unsqueeze" => Op::Unsqueeze {
            axes: if opset < 13 { attr_is(n, "axes") } else { None },
        },
        "Squeeze" => Op::Squeeze {
            axes: if opset < 13 { attr_is(n, "axes") } else { None },
        },
        "Pad" => Op::Pad {
            pads: if opset < 11 { attr_is(n, "pads") } else { None },
            value: attr_f(n, "value", 0.0),
            mode: {
                let m = attr_s(n, "mode");
                if m.is_empty() {
                    "constant".into()
                } else {
                    m
                }
            },
        },
        "Identity" | "Dropout" => {
            if n.op_type == "Dropout" && n.outputs.len() > 1 && !n.outputs[1].is_empty() {
                return Err(unsup());
            }
            Op::Identity
        }
        "ReduceMean" | "ReduceSum" => {
            let axes_in_input = n.op_type == "ReduceSum" && opset >= 13 || opset >= 18;
            Op::Reduce {
                axes: if axes_in_input {
                    None
                } else {
                    attr_is(n, "axes")
                },
                keep: attr_i(n, "keepdims", 1) != 0,
                mean: n.op_type == "ReduceMean",
                noop_empty: attr_i(n, "noop_with_empty_axes", 0) != 0,
            }
        }
        "Cast" => Op::Cast {
            to: attr_i(n, "to", 1),
        },
        "Split" => Op::Split {
            axis: attr_i(n, "axis", 0),
            split: attr_is(n, "split"),
        },
        "Expand" => Op::Expand,
        "Equal" => Op::Cmp(std::cmp::Ordering::Equal),
        "Less" => Op::Cmp(std::cmp::Ordering::Less),
        "Greater" => Op::Cmp(std::cmp::Ordering::Greater),
        "Not" => Op::Not,
        "Where" => Op::Where,
        "Range" => Op::Range,
        _ => return Err(unsup()),
    })
}

fn norm_axis(a: i64, r: usize, node: &str) -> Result<usize, ModelError> {
    let ax = if a < 0 { a + r as i64 } else { a };
    if ax < 0 || ax as usize >= r.max(1) {
        return Err(ModelError::Shape(format!(
            "node '{node}': axis {a} out of range for rank {r}"
        )));
    }
    Ok(ax as usize)
}

fn checked_numel(shape: &[usize], node: &str) -> Result<usize, ModelError> {
    let mut n: usize = 1;
    for &d in shape {
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMS)
            .ok_or_else(|| ModelError::Shape(format!("node '{node}': tensor too large")))?;
    }
    Ok(n)
}

impl Graph {
    /// Compiles a decoded ONNX graph.
    pub fn compile(g: &GraphP, opset: i64) -> Result<Graph, ModelError> {
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut consts: Vec<Option<Val>> = Vec::new();
        let mut weights = Vec::new();
        let mut id_of = |name: &str, consts: &mut Vec<Option<Val>>| -> usize {
            if let Some(&i) = ids.get(name) {
                return i;
            }
            let i = consts.len();
            consts.push(None);
            ids.insert(name.to_string(), i);
            i
        };
        for t in &g.initializers {
            let i = id_of(&t.name, &mut consts);
            let v = Val::from_tensor(t);
            if v.is_float() {
                weights.push((t.name.clone(), i));
            }
            consts[i] = Some(v);
        }
        let inp = g
            .inputs
            .iter()
            .find(|vi| !g.initializers.iter().any(|t| t.name == vi.name))
            .ok_or_else(|| ModelError::Invalid("graph has no non-constant input".into()))?;
        let input = id_of(&inp.name, &mut consts);
        let out = g
            .outputs
            .first()
            .ok_or_else(|| ModelError::Invalid("graph has no output".into()))?;
        let mut nodes = Vec::with_capacity(g.nodes.len());
        for n in &g.nodes {
            let op = compile_op(n, opset)?;
            let inputs = n
                .inputs
                .iter()
                .map(|s| {
                    if s.is_empty() {
                        None
                    } else {
                        Some(id_of(s, &mut consts))
                    }
                })
                .collect();
            let outputs = n.outputs.iter().map(|s| id_of(s, &mut consts)).collect();
            nodes.push(Node {
                name: n.name.clone(),
                op_type: n.op_type.clone(),
                op,
                inputs,
                outputs,
            });
        }
        let output = *ids
            .get(&out.name)
            .ok_or_else(|| ModelError::Invalid("graph output is never produced".into()))?;
        let num_values = consts.len();
        let mut graph = Graph {
            nodes,
            num_values,
            consts,
            weights,
            input,
            input_name: inp.name.clone(),
            input_dims: inp.dims.clone(),
            output,
        };
        graph.fold_constants()?;
        Ok(graph)
    }

    /// Evaluates at load time every node whose inputs are all constants and
    /// none of them a trainable float weight, then drops it from the tape.
    fn fold_constants(&mut self) -> Result<(), ModelError> {
        let weight_ids: Vec<usize> = self.weights.iter().map(|w| w.1).collect();
        let mut keep = Vec::with_capacity(self.nodes.len());
        let nodes = std::mem::take(&mut self.nodes);
        for node in nodes {
            let foldable = node.inputs.iter().all(|i| match i {
                None => true,
                Some(i) => self.consts[*i].is_some() && !weight_ids.contains(i),
            });
            if foldable {
                let ins: Vec<Option<&Val>> = node
                    .inputs
                    .iter()
                    .map(|i| i.and_then(|i| self.consts[i].as_ref()))
                    .collect();
                let (outs, _) = forward_node(&node, &ins)?;
                for (o, v) in node.outputs.iter().zip(outs) {
                    self.consts[*o] = Some(v);
                }
            } else {
                keep.push(node);
            }
        }
        self.nodes = keep;
        Ok(())
    }

    /// Runs the graph on `x`; returns the tape of all values.
    pub fn forward(&self, x: Val) -> Result<Tape, ModelError> {
        let mut vals: Vec<Option<Val>> = self.consts.clone();
        let mut aux = vec![Aux::None; self.nodes.len()];
        vals[self.input] = Some(x);
        for (ni, node) in self.nodes.iter().enumerate() {
            let ins: Vec<Option<&Val>> = node
                .inputs
                .iter()
                .map(|i| match i {
                    None => Ok(None),
                    Some(i) => vals[*i].as_ref().map(Some).ok_or_else(|| {
                        ModelError::Invalid(format!(
                            "node '{}' reads a value that is never produced",
                            node.name
                        ))
                    }),
                })
                .collect::<Result<_, _>>()?;
            let (outs, a) = forward_node(node, &ins)?;
            aux[ni] = a;
            for (o, v) in node.outputs.iter().zip(outs) {
                vals[*o] = Some(v);
            }
        }
        Ok(Tape { vals, aux })
    }

    /// Output `k` of the node named `node_name` on a tape (for reading
    /// intermediate values such as batch-norm batch statistics).
    pub fn node_value<'a>(&self, tape: &'a Tape, node_name: &str, k: usize) -> Option<&'a Val> {
        let n = self.nodes.iter().find(|n| n.name == node_name)?;
        tape.vals.get(*n.outputs.get(k)?)?.as_ref()
    }

    /// Output value of a tape.
    pub fn output_of<'a>(&self, tape: &'a Tape) -> Result<&'a Val, ModelError> {
        tape.vals[self.output]
            .as_ref()
            .ok_or_else(|| ModelError::Invalid("graph output was not computed".into()))
    }

    /// Backpropagates `gout` (gradient of the output) through the tape.
    /// Returns gradients for the value ids in `wanted` (None where no
    /// gradient flows).
    pub fn backward(
        &self,
        tape: &Tape,
        gout: Vec<f32>,
        wanted: &[usize],
    ) -> Result<Vec<Option<Vec<f32>>>, ModelError> {
        // Which values lie on a path from a wanted value (need gradients).
        let mut live = vec![false; self.num_values];
        for &w in wanted {
            live[w] = true;
        }
        let mut node_live = vec![false; self.nodes.len()];
        for (ni, node) in self.nodes.iter().enumerate() {
            if node.inputs.iter().flatten().any(|&i| live[i]) {
                node_live[ni] = true;
                for &o in &node.outputs {
                    live[o] = true;
                }
            }
        }
        let mut grads: Vec<Option<Vec<f32>>> = vec![None; self.num_values];
        grads[self.output] = Some(gout);
        for (ni, node) in self.nodes.iter().enumerate().rev() {
            if !node_live[ni] {
                continue;
            }
            let gouts: Vec<Option<Vec<f32>>> =
                node.outputs.iter().map(|&o| grads[o].take()).collect();
            if gouts.iter().all(|g| g.is_none()) {
                continue;
            }
            let ins: Vec<Option<&Val>> = node
                .inputs
                .iter()
                .map(|i| i.and_then(|i| tape.vals[i].as_ref()))
                .collect();
            let outs: Vec<Option<&Val>> = node
                .outputs
                .iter()
                .map(|&o| tape.vals[o].as_ref())
                .collect();
            let need: Vec<bool> = node
                .inputs
                .iter()
                .map(|i| {
                    i.is_some_and(|i| live[i] && tape.vals[i].as_ref().is_some_and(Val::is_float))
                })
                .collect();
            let gins = backward_node(node, &ins, &outs, &tape.aux[ni], &gouts, &need)?;
            for (i, g) in node.inputs.iter().zip(gins) {
                if let (Some(i), Some(g)) = (i, g) {
                    match &mut grads[*i] {
                        Some(acc) => acc.iter_mut().zip(&g).for_each(|(a, b)| *a += b),
                        slot => *slot = Some(g),
                    }
                }
            }
        }
        Ok(wanted.iter().map(|&w| grads[w].take()).collect())
    }
}

fn need_in<'a>(ins: &[Option<&'a Val>], i: usize, node: &Node) -> Result<&'a Val, ModelError> {
    ins.get(i).copied().flatten().ok_or_else(|| {
        ModelError::Invalid(format!(
            "node '{}' ({}) is missing input {i}",
            node.name, node.op_type
        ))
    })
}

fn shape_err(node: &Node, msg: String) -> ModelError {
    ModelError::Shape(format!("node '{}' ({}): {msg}", node.name, node.op_type))
}

/// Resolves auto_pad and ceil_mode into (out size, pad_begin, pad_end) per axis.
fn spatial(
    w: &Window,
    inp: &[usize],
    k: &[usize],
    node: &Node,
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>), ModelError> {
    let r = inp.len();
    let s = if w.s.len() == r {
        w.s.clone()
    } else {
        vec![1; r]
    };
    let d = if w.d.len() == r {
        w.d.clone()
    } else {
        vec![1; r]
    };
    let mut out = vec![0; r];
    let mut pb = vec![0; r];
    let mut pe = vec![0; r];
    for i in 0..r {
        let ek = (k[i] - 1) * d[i] + 1;
        if s[i] == 0 {
            return Err(shape_err(node, "zero stride".into()));
        }
        match w.auto_pad.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => {
                let o = inp[i].div_ceil(s[i]);
                let total = ((o - 1) * s[i] + ek).saturating_sub(inp[i]);
                let (b, e) = if w.auto_pad == "SAME_UPPER" {
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
                let (b, e) = if w.p.len() == 2 * r {
                    (w.p[i], w.p[i + r])
                } else {
                    (0, 0)
                };
                let span = inp[i] + b + e;
                if span < ek {
                    return Err(shape_err(node, "kernel larger than padded input".into()));
                }
                let mut o = if w.ceil {
                    (span - ek).div_ceil(s[i]) + 1
                } else {
                    (span - ek) / s[i] + 1
                };
                if w.ceil && (o - 1) * s[i] >= inp[i] + b {
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

/// Builds the 2-D geometry (1-D as height 1) for NC(H)W input `xs`.
fn geom(
    w: &Window,
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
    let (o, pb, pe) = spatial(w, sp, k, node)?;
    let r = sp.len();
    let s = if w.s.len() == r {
        w.s.clone()
    } else {
        vec![1; r]
    };
    let d = if w.d.len() == r {
        w.d.clone()
    } else {
        vec![1; r]
    };
    let g = if r == 2 {
        Geom {
            c: xs[1],
            h: sp[0],
            w: sp[1],
            kh: k[0],
            kw: k[1],
            sh: s[0],
            sw: s[1],
            dh: d[0],
            dw: d[1],
            pt: pb[0],
            pl: pb[1],
            oh: o[0],
            ow: o[1],
        }
    } else {
        Geom {
            c: xs[1],
            h: 1,
            w: sp[0],
            kh: 1,
            kw: k[0],
            sh: 1,
            sw: s[0],
            dh: 1,
            dw: d[0],
            pt: 0,
            pl: pb[0],
            oh: 1,
            ow: o[0],
        }
    };
    let (pbot, pr) = if r == 2 { (pe[0], pe[1]) } else { (0, pe[0]) };
    Ok((g, pbot, pr))
}

/// Per-axis interpolation taps: for each output index, `(input index, weight)` pairs.
type Taps = Vec<Vec<Vec<(usize, f32)>>>;

/// Output shape and per-axis taps of a Resize/Upsample node.
fn resize_plan(
    node: &Node,
    ins: &[Option<&Val>],
    xs: &[usize],
) -> Result<(Vec<usize>, Taps), ModelError> {
    let Op::Resize {
        linear,
        coord,
        nearest,
        opset,
    } = &node.op
    else {
        return Err(shape_err(node, "not a resize".into()));
    };
    let r = xs.len();
    let nonempty = |i: usize| ins.get(i).copied().flatten().filter(|v| v.numel() > 0);
    let (scales, sizes): (Option<Vec<f32>>, Option<Vec<i64>>) = if *opset < 11 {
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
                let o =
                    usize::try_from(z[i]).map_err(|_| shape_err(node, "negative size".into()))?;
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
            let c = match coord.as_str() {
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
            if *linear {
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
                let v = match nearest.as_str() {
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

/// Geometry of a transposed convolution (see [`kernels::convt_fwd`]) and
/// its input channel count.
fn convt_geom(
    node: &Node,
    w: &Window,
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
    if !w.k.is_empty() && w.k != k {
        return Err(shape_err(node, "kernel_shape differs from weight".into()));
    }
    let s = if w.s.len() == r {
        w.s.clone()
    } else {
        vec![1; r]
    };
    let d = if w.d.len() == r {
        w.d.clone()
    } else {
        vec![1; r]
    };
    let p = if w.p.len() == 2 * r {
        w.p.clone()
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
    let g = if r == 2 {
        Geom {
            c: cout,
            h: o[0],
            w: o[1],
            kh: k[0],
            kw: k[1],
            sh: s[0],
            sw: s[1],
            dh: d[0],
            dw: d[1],
            pt: p[0],
            pl: p[1],
            oh: xs[2],
            ow: xs[3],
        }
    } else {
        Geom {
            c: cout,
            h: 1,
            w: o[0],
            kh: 1,
            kw: k[0],
            sh: 1,
            sw: s[0],
            dh: 1,
            dw: d[0],
            pt: 0,
            pl: p[0],
            oh: 1,
            ow: xs[2],
        }
    };
    Ok((g, xs[1]))
}

fn out_spatial(xs: &[usize], ch: usize, g: &Geom) -> Vec<usize> {
    if xs.len() == 4 {
        vec![xs[0], ch, g.oh, g.ow]
    } else {
        vec![xs[0], ch, g.ow]
    }
}

fn unary_f(u: Un, x: f32) -> f32 {
    match u {
        Un::Relu => x.max(0.0),
        Un::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Un::Tanh => x.tanh(),
        Un::Erf => erf(x),
        Un::Neg => -x,
        Un::Exp => x.exp(),
        Un::Sqrt => x.sqrt(),
        Un::Log => x.ln(),
        Un::Abs => x.abs(),
        Un::HardSigmoid(a, b) => (a * x + b).clamp(0.0, 1.0),
        Un::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        Un::Elu(a) => {
            if x >= 0.0 {
                x
            } else {
                a * x.exp_m1()
            }
        }
        Un::Selu(a, g) => {
            if x > 0.0 {
                g * x
            } else {
                g * a * x.exp_m1()
            }
        }
        Un::Celu(a) => x.max(0.0) + (a * (x / a).exp_m1()).min(0.0),
        Un::ThresholdedRelu(a) => {
            if x > a {
                x
            } else {
                0.0
            }
        }
        Un::Softplus => softplus(x),
        Un::Softsign => x / (1.0 + x.abs()),
        Un::Mish => x * softplus(x).tanh(),
        Un::Reciprocal => 1.0 / x,
        Un::Sin => x.sin(),
        Un::Cos => x.cos(),
        Un::Floor => x.floor(),
        Un::Ceil => x.ceil(),
        Un::Round => x.round_ties_even(),
        Un::Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
    }
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Derivative of a unary op at `x` with output `y`.
fn unary_d(u: Un, x: f32, y: f32) -> f32 {
    match u {
        Un::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Un::Sigmoid => y * (1.0 - y),
        Un::Tanh => 1.0 - y * y,
        Un::Erf => 2.0 / std::f32::consts::PI.sqrt() * (-x * x).exp(),
        Un::Neg => -1.0,
        Un::Exp => y,
        Un::Sqrt => 0.5 / y,
        Un::Log => 1.0 / x,
        Un::Abs => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        Un::HardSigmoid(a, b) => {
            let v = a * x + b;
            if v > 0.0 && v < 1.0 {
                a
            } else {
                0.0
            }
        }
        Un::HardSwish => {
            if x <= -3.0 {
                0.0
            } else if x >= 3.0 {
                1.0
            } else {
                x / 3.0 + 0.5
            }
        }
        Un::Elu(a) => {
            if x >= 0.0 {
                1.0
            } else {
                a * x.exp()
            }
        }
        Un::Selu(a, g) => {
            if x > 0.0 {
                g
            } else {
                g * a * x.exp()
            }
        }
        Un::Celu(a) => {
            if x > 0.0 {
                1.0
            } else {
                (x / a).exp()
            }
        }
        Un::ThresholdedRelu(a) => {
            if x > a {
                1.0
            } else {
                0.0
            }
        }
        Un::Softplus => 1.0 / (1.0 + (-x).exp()),
        Un::Softsign => 1.0 / ((1.0 + x.abs()) * (1.0 + x.abs())),
        Un::Mish => {
            let t = softplus(x).tanh();
            t + x * (1.0 - t * t) / (1.0 + (-x).exp())
        }
        Un::Reciprocal => -y * y,
        Un::Sin => x.cos(),
        Un::Cos => -x.sin(),
        Un::Floor | Un::Ceil | Un::Round | Un::Sign => 0.0,
    }
}

/// Error function, Abramowitz–Stegun 7.1.26 is too coarse for gradient
/// checks, so this uses the erfc continued-fraction-free rational
/// approximation from Numerical Recipes (`erfcc`, |error| < 1.2e-7).
pub(crate) fn erf(x: f32) -> f32 {
    let z = f64::from(x).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    let v = 1.0 - r;
    (if x >= 0.0 { v } else { -v }) as f32
}

fn softmax_dims(
    s: &[usize],
    axis: i64,
    legacy: bool,
    node: &Node,
) -> Result<(usize, usize, usize), ModelError> {
    let ax = norm_axis(axis, s.len(), &node.name)?;
    if legacy {
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

fn reduce_axes(
    op_axes: &Option<Vec<i64>>,
    ins: &[Option<&Val>],
    r: usize,
    node: &Node,
    noop_empty: bool,
) -> Result<Option<Vec<usize>>, ModelError> {
    let axes = match op_axes {
        Some(a) => a.clone(),
        None => match ins.get(1).copied().flatten() {
            Some(v) => v.ints(),
            None => vec![],
        },
    };
    if axes.is_empty() {
        if noop_empty {
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

/// Per-axis (start, step, count) for Slice.
fn slice_plan(
    node: &Node,
    op: &Op,
    ins: &[Option<&Val>],
    s: &[usize],
) -> Result<Vec<(i64, i64, usize)>, ModelError> {
    let (starts, ends, axes, steps) = match op {
        Op::Slice {
            attrs: Some((st, en, ax)),
        } => (st.clone(), en.clone(), ax.clone(), None),
        _ => (
            need_in(ins, 1, node)?.ints(),
            need_in(ins, 2, node)?.ints(),
            ins.get(3).copied().flatten().map(|v| v.ints()),
            ins.get(4).copied().flatten().map(|v| v.ints()),
        ),
    };
    let r = s.len();
    let axes: Vec<i64> = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    if starts.len() != axes.len() || ends.len() != axes.len() {
        return Err(shape_err(node, "starts/ends/axes lengths differ".into()));
    }
    let mut plan: Vec<(i64, i64, usize)> = s.iter().map(|&d| (0, 1, d)).collect();
    for (j, &a) in axes.iter().enumerate() {
        let ax = norm_axis(a, r, &node.name)?;
        let dim = s[ax] as i64;
        let step = steps.as_ref().and_then(|v| v.get(j).copied()).unwrap_or(1);
        if step == 0 {
            return Err(shape_err(node, "slice step 0".into()));
        }
        let clampv = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
        let mut st = starts[j];
        let mut en = ends[j];
        if st < 0 {
            st += dim;
        }
        if en < 0 {
            en += dim;
        }
        let count = if step > 0 {
            st = clampv(st, 0, dim);
            en = clampv(en, 0, dim);
            if en > st {
                (en - st + step - 1) / step
            } else {
                0
            }
        } else {
            st = clampv(st, -1, dim - 1);
            en = clampv(en, -1, dim - 1);
            if st > en {
                (st - en + (-step) - 1) / (-step)
            } else {
                0
            }
        };
        plan[ax] = (st, step, count as usize);
    }
    Ok(plan)
}

/// Calls `f(out_idx, in_idx)` for each element of a strided slice.
fn for_each_slice(s: &[usize], plan: &[(i64, i64, usize)], mut f: impl FnMut(usize, usize)) {
    let out: Vec<usize> = plan.iter().map(|p| p.2).collect();
    let st = kernels::strides(s);
    let step: Vec<isize> = plan
        .iter()
        .zip(&st)
        .map(|(p, &t)| p.1 as isize * t as isize)
        .collect();
    let base: isize = plan
        .iter()
        .zip(&st)
        .map(|(p, &t)| p.0 as isize * t as isize)
        .sum();
    let total: usize = out.iter().product();
    let mut idx = vec![0usize; out.len()];
    let mut off = base;
    for o in 0..total {
        f(o, off as usize);
        let mut d = out.len();
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            off += step[d];
            if idx[d] < out[d] {
                break;
            }
            off -= step[d] * out[d] as isize;
            idx[d] = 0;
        }
    }
}

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
    let known = checked_numel(&out, &node.name)?;
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

fn transpose_perm(op: &Op, r: usize) -> Vec<usize> {
    match op {
        Op::Transpose { perm: Some(p) } => p.clone(),
        _ => (0..r).rev().collect(),
    }
}

fn transpose<T: Copy + Default>(d: &[T], s: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<T>) {
    let os: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
    let ist = kernels::strides(s);
    let st: Vec<usize> = perm.iter().map(|&p| ist[p]).collect();
    let mut out = vec![T::default(); d.len()];
    kernels::for_each_bcast(&os, [&st], |o, [a]| out[o] = d[a]);
    (os, out)
}

/// `A[.., m, k] · B[.., k, n]` with broadcast batch dims; returns shape,
/// data and the batch plan `(out_batch_shape, a_batch_strides, b_batch_strides)`.
#[allow(clippy::type_complexity)]
fn matmul_plan(
    node: &Node,
    a: &[usize],
    b: &[usize],
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>, usize, usize, usize), ModelError> {
    if a.len() < 2 || b.len() < 2 {
        return Err(shape_err(
            node,
            format!("1-D MatMul operands {a:?} x {b:?} are not supported"),
        ));
    }
    let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
    let (k2, n) = (b[b.len() - 2], b[b.len() - 1]);
    if k != k2 {
        return Err(shape_err(node, format!("MatMul {a:?} x {b:?}")));
    }
    let ab = &a[..a.len() - 2];
    let bb = &b[..b.len() - 2];
    let ob = kernels::bcast_shape(ab, bb)
        .ok_or_else(|| shape_err(node, format!("MatMul batch {a:?} x {b:?}")))?;
    let sa = kernels::bcast_strides(ab, &ob)
        .iter()
        .map(|x| x * m * k)
        .collect();
    let sb = kernels::bcast_strides(bb, &ob)
        .iter()
        .map(|x| x * k * n)
        .collect();
    Ok((ob, sa, sb, m, k, n))
}

fn forward_node(node: &Node, ins: &[Option<&Val>]) -> Result<(Vec<Val>, Aux), ModelError> {
    let nm = node.name.as_str();
    let one = |v: Val| Ok((vec![v], Aux::None));
    match &node.op {
        Op::Identity => {
            // Dropout's optional training_mode input (opset 12+): a random
            // mask is not an inference op.
            if node.op_type == "Dropout"
                && ins
                    .get(2)
                    .copied()
                    .flatten()
                    .is_some_and(|t| t.ints().iter().any(|&v| v != 0))
            {
                return Err(ModelError::Unsupported {
                    op: "Dropout(training_mode=1)".into(),
                    node: node.name.clone(),
                });
            }
            one(need_in(ins, 0, node)?.clone())
        }
        Op::Constant(v) => one(v.clone()),
        Op::Resize { .. } => {
            let x = need_in(ins, 0, node)?;
            let (os, taps) = resize_plan(node, ins, x.shape())?;
            let xd = x.f(nm)?;
            let mut y = vec![0.0f32; checked_numel(&os, nm)?];
            resize_apply(&os, x.shape(), &taps, |o, i, wgt| y[o] += wgt * xd[i]);
            one(fval(os, y))
        }
        Op::ConvT { w, group, out_pad } => {
            let x = need_in(ins, 0, node)?;
            let wt = need_in(ins, 1, node)?;
            let (g, cin) = convt_geom(node, w, *group, out_pad, x.shape(), wt.shape())?;
            let bias = match ins.get(2).copied().flatten() {
                Some(b) => Some(b.f(nm)?),
                None => None,
            };
            if bias.is_some_and(|b| b.len() != g.c) {
                return Err(shape_err(node, "bias length".into()));
            }
            let xs = x.shape();
            let y = kernels::convt_fwd(x.f(nm)?, xs[0], &g, *group, cin, wt.f(nm)?, bias);
            let os = if xs.len() == 4 {
                vec![xs[0], g.c, g.h, g.w]
            } else {
                vec![xs[0], g.c, g.w]
            };
            one(fval(os, y))
        }
        Op::Conv { w, group } => {
            let x = need_in(ins, 0, node)?;
            let wt = need_in(ins, 1, node)?;
            let xs = x.shape();
            let ws = wt.shape();
            if xs.len() < 3
                || ws.len() != xs.len()
                || ws[1].checked_mul(*group) != Some(xs[1])
                || ws[0] % group != 0
            {
                return Err(shape_err(
                    node,
                    format!("input {xs:?}, weight {ws:?}, group {group}"),
                ));
            }
            let k: Vec<usize> = ws[2..].to_vec();
            if !w.k.is_empty() && w.k != k {
                return Err(shape_err(
                    node,
                    format!("kernel_shape {:?} differs from weight {ws:?}", w.k),
                ));
            }
            let (g, _, _) = geom(w, xs, &k, node)?;
            let bias = match ins.get(2).copied().flatten() {
                Some(b) => Some(b.f(nm)?),
                None => None,
            };
            if bias.is_some_and(|b| b.len() != ws[0]) {
                return Err(shape_err(node, "bias length".into()));
            }
            let y = kernels::conv_fwd(x.f(nm)?, xs[0], &g, *group, wt.f(nm)?, ws[0], bias);
            one(fval(out_spatial(xs, ws[0], &g), y))
        }
        Op::Gemm {
            alpha,
            beta,
            ta,
            tb,
        } => {
            let a = need_in(ins, 0, node)?;
            let b = need_in(ins, 1, node)?;
            let (sa, sb) = (a.shape(), b.shape());
            if sa.len() != 2 || sb.len() != 2 {
                return Err(shape_err(
                    node,
                    format!("Gemm needs 2-D operands, got {sa:?} {sb:?}"),
                ));
            }
            let (m, k) = if *ta { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
            let (k2, n) = if *tb { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
            if k != k2 {
                return Err(shape_err(node, format!("Gemm {sa:?} x {sb:?}")));
            }
            let mut y = vec![0.0f32; checked_numel(&[m, n], nm)?];
            let mut beta_used = 0.0;
            if let Some(c) = ins.get(2).copied().flatten() {
                let cs = c.shape();
                let bs = kernels::bcast_shape(cs, &[m, n])
                    .filter(|s| s == &[m, n])
                    .ok_or_else(|| shape_err(node, format!("Gemm C {cs:?}")))?;
                let st = kernels::bcast_strides(cs, &bs);
                let cd = c.f(nm)?;
                kernels::for_each_bcast(&bs, [&st], |o, [i]| y[o] = beta * cd[i]);
                beta_used = 1.0;
            }
            let (rsa, csa) = if *ta { (1, sa[1]) } else { (sa[1], 1) };
            let (rsb, csb) = if *tb { (1, sb[1]) } else { (sb[1], 1) };
            let ad = a.f(nm)?;
            if *alpha == 1.0 {
                kernels::par_gemm_rows(
                    m,
                    k,
                    n,
                    ad,
                    rsa,
                    csa,
                    b.f(nm)?,
                    rsb,
                    csb,
                    beta_used,
                    &mut y,
                );
            } else {
                kernels::gemm(
                    m,
                    k,
                    n,
                    *alpha,
                    ad,
                    rsa,
                    csa,
                    b.f(nm)?,
                    rsb,
                    csb,
                    beta_used,
                    &mut y,
                    n,
                    1,
                );
            }
            one(fval(vec![m, n], y))
        }
        Op::MatMul => {
            let a = need_in(ins, 0, node)?;
            let b = need_in(ins, 1, node)?;
            let (ob, sa, sb, m, k, n) = matmul_plan(node, a.shape(), b.shape())?;
            let mut os = ob.clone();
            os.push(m);
            os.push(n);
            let total = checked_numel(&os, nm)?;
            let mut y = vec![0.0f32; total];
            let (ad, bd) = (a.f(nm)?, b.f(nm)?);
            if sb.iter().all(|&s| s == 0) && b.shape().len() == 2 {
                // Fold batch dims of A into rows.
                let rows = total / n.max(1);
                kernels::par_gemm_rows(rows, k, n, ad, k, 1, bd, n, 1, 0.0, &mut y);
            } else {
                let mut i = 0;
                kernels::for_each_bcast(&ob, [&sa, &sb], |_, [oa, obb]| {
                    kernels::gemm(
                        m,
                        k,
                        n,
                        1.0,
                        &ad[oa..],
                        k,
                        1,
                        &bd[obb..],
                        n,
                        1,
                        0.0,
                        &mut y[i * m * n..],
                        n,
                        1,
                    );
                    i += 1;
                });
                if ob.is_empty() {
                    kernels::gemm(m, k, n, 1.0, ad, k, 1, bd, n, 1, 0.0, &mut y, n, 1);
                }
            }
            one(fval(os, y))
        }
        Op::Bin(op) => {
            let a = need_in(ins, 0, node)?;
            let b = need_in(ins, 1, node)?;
            let os = kernels::bcast_shape(a.shape(), b.shape()).ok_or_else(|| {
                shape_err(
                    node,
                    format!("cannot broadcast {:?} with {:?}", a.shape(), b.shape()),
                )
            })?;
            let total = checked_numel(&os, nm)?;
            let sa = kernels::bcast_strides(a.shape(), &os);
            let sb = kernels::bcast_strides(b.shape(), &os);
            if let (Val::I(_, x), Val::I(_, y)) = (a, b) {
                let mut out = vec![0i64; total];
                kernels::for_each_bcast(&os, [&sa, &sb], |o, [i, j]| {
                    let (p, q) = (x[i], y[j]);
                    out[o] = match op {
                        Bin::Add => p.wrapping_add(q),
                        Bin::Sub => p.wrapping_sub(q),
                        Bin::Mul => p.wrapping_mul(q),
                        Bin::Div => {
                            if q == 0 {
                                0
                            } else {
                                p.wrapping_div(q)
                            }
                        }
                        Bin::Pow => p.wrapping_pow(q.clamp(0, 64) as u32),
                        Bin::Mod(fm) => {
                            if q == 0 {
                                0
                            } else {
                                let r = p.wrapping_rem(q);
                                if !fm && r != 0 && (r < 0) != (q < 0) {
                                    r + q
                                } else {
                                    r
                                }
                            }
                        }
                    };
                });
                return one(ival(os, out));
            }
            let af: Vec<f32>;
            let bf: Vec<f32>;
            let x: &[f32] = match a {
                Val::F(_, d) => d,
                Val::I(_, d) => {
                    af = d.iter().map(|&v| v as f32).collect();
                    &af
                }
            };
            let y: &[f32] = match b {
                Val::F(_, d) => d,
                Val::I(_, d) => {
                    bf = d.iter().map(|&v| v as f32).collect();
                    &bf
                }
            };
            let mut out = vec![0.0f32; total];
            let f = |p: f32, q: f32| match op {
                Bin::Add => p + q,
                Bin::Sub => p - q,
                Bin::Mul => p * q,
                Bin::Div => p / q,
                Bin::Pow => {
                    if q == 2.0 {
                        p * p
                    } else {
                        p.powf(q)
                    }
                }
                Bin::Mod(true) => p % q,
                Bin::Mod(false) => p - q * (p / q).floor(),
            };
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
        Op::Un(u) => {
            let x = need_in(ins, 0, node)?;
            if let (Un::Neg | Un::Abs, Val::I(s, d)) = (u, x) {
                let v = d
                    .iter()
                    .map(|&v| {
                        if *u == Un::Neg {
                            v.wrapping_neg()
                        } else {
                            v.wrapping_abs()
                        }
                    })
                    .collect();
                return one(ival(s.clone(), v));
            }
            let d = x.f(nm)?;
            let y: Vec<f32> = if *u == Un::Relu {
                kernels::relu_fwd(d)
            } else {
                d.iter().map(|&v| unary_f(*u, v)).collect()
            };
            one(fval(x.shape().to_vec(), y))
        }
        Op::LeakyRelu(al) => {
            let x = need_in(ins, 0, node)?;
            let y = x
                .f(nm)?
                .iter()
                .map(|&v| if v >= 0.0 { v } else { al * v })
                .collect();
            one(fval(x.shape().to_vec(), y))
        }
        Op::Gelu { tanh } => {
            let x = need_in(ins, 0, node)?;
            let y = x.f(nm)?.iter().map(|&v| gelu(v, *tanh).0).collect();
            one(fval(x.shape().to_vec(), y))
        }
        Op::Clip { min, max } => {
            let x = need_in(ins, 0, node)?;
            let (lo, hi) = clip_bounds(*min, *max, ins, nm)?;
            let y = x.f(nm)?.iter().map(|&v| v.max(lo).min(hi)).collect();
            one(fval(x.shape().to_vec(), y))
        }
        Op::Softmax { axis, legacy, log } => {
            let x = need_in(ins, 0, node)?;
            let s = x.shape();
            let (outer, d, inner) = softmax_dims(s, *axis, *legacy, node)?;
            let xd = x.f(nm)?;
            let mut y = vec![0.0f32; xd.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| (o * d + j) * inner + i;
                    let mx = (0..d).map(|j| xd[at(j)]).fold(f32::NEG_INFINITY, f32::max);
                    let sum: f32 = (0..d).map(|j| (xd[at(j)] - mx).exp()).sum();
                    let ls = sum.ln();
                    for j in 0..d {
                        let z = xd[at(j)] - mx;
                        y[at(j)] = if *log { z - ls } else { z.exp() / sum };
                    }
                }
            }
            one(fval(s.to_vec(), y))
        }
        Op::MaxPool(w) => {
            let x = need_in(ins, 0, node)?;
            let xs = x.shape();
            if xs.len() < 3 {
                return Err(shape_err(node, format!("input {xs:?}")));
            }
            let (g, _, _) = geom(w, xs, &w.k, node)?;
            let (y, idx) = kernels::maxpool_fwd(x.f(nm)?, xs[0] * xs[1], &g);
            Ok((vec![fval(out_spatial(xs, xs[1], &g), y)], Aux::Idx(idx)))
        }
        Op::AvgPool { w, cip } => {
            let x = need_in(ins, 0, node)?;
            let xs = x.shape();
            if xs.len() < 3 {
                return Err(shape_err(node, format!("input {xs:?}")));
            }
            let (g, pb, pr) = geom(w, xs, &w.k, node)?;
            let y = kernels::avgpool_fwd(x.f(nm)?, xs[0] * xs[1], &g, pb, pr, *cip);
            one(fval(out_spatial(xs, xs[1], &g), y))
        }
        Op::GlobalAvgPool => {
            let x = need_in(ins, 0, node)?;
            let xs = x.shape();
            if xs.len() < 3 {
                return Err(shape_err(node, format!("input {xs:?}")));
            }
            let hw: usize = xs[2..].iter().product();
            let y = x
                .f(nm)?
                .chunks(hw.max(1))
                .map(|c| c.iter().sum::<f32>() / hw as f32)
                .collect();
            let mut os = vec![xs[0], xs[1]];
            os.extend(std::iter::repeat_n(1, xs.len() - 2));
            one(fval(os, y))
        }
        Op::BatchNorm { eps } => {
            let x = need_in(ins, 0, node)?;
            let xs = x.shape();
            let c = *xs
                .get(1)
                .ok_or_else(|| shape_err(node, "rank < 2".into()))?;
            let p: Vec<&[f32]> = (1..5)
                .map(|i| need_in(ins, i, node).and_then(|v| v.f(nm)))
                .collect::<Result<_, _>>()?;
            if p.iter().any(|v| v.len() != c) {
                return Err(shape_err(node, "parameter lengths".into()));
            }
            let inner: usize = xs[2..].iter().product();
            let xd = x.f(nm)?;
            let mut y = vec![0.0f32; xd.len()];
            for (blk, (yb, xb)) in y
                .chunks_mut(inner.max(1))
                .zip(xd.chunks(inner.max(1)))
                .enumerate()
            {
                let ch = blk % c;
                let sc = p[0][ch] / (p[3][ch] + eps).sqrt();
                let sh = p[1][ch] - p[2][ch] * sc;
                yb.iter_mut().zip(xb).for_each(|(o, &v)| *o = v * sc + sh);
            }
            one(fval(xs.to_vec(), y))
        }
        Op::BatchNormTrain { eps } => bn_train::forward(node, ins, *eps),
        Op::LayerNorm { axis, eps } => {
            let x = need_in(ins, 0, node)?;
            let xs = x.shape();
            let ax = norm_axis(*axis, xs.len(), nm)?;
            let inner: usize = xs[ax..].iter().product();
            let scale = need_in(ins, 1, node)?.f(nm)?;
            let bias = match ins.get(2).copied().flatten() {
                Some(b) => Some(b.f(nm)?),
                None => None,
            };
            if scale.len() != inner || bias.is_some_and(|b| b.len() != inner) {
                return Err(shape_err(
                    node,
                    "scale/bias must match normalized shape".into(),
                ));
            }
            let xd = x.f(nm)?;
            let rows = xd.len() / inner.max(1);
            let mut y = vec![0.0f32; xd.len()];
            let mut means = vec![0.0f32; rows];
            let mut rstd = vec![0.0f32; rows];
            for r in 0..rows {
                let xr = &xd[r * inner..(r + 1) * inner];
                let mean = xr.iter().sum::<f32>() / inner as f32;
                let var = xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / inner as f32;
                let rs = 1.0 / (var + eps).sqrt();
                means[r] = mean;
                rstd[r] = rs;
                for j in 0..inner {
                    y[r * inner + j] = (xr[j] - mean) * rs * scale[j] + bias.map_or(0.0, |b| b[j]);
                }
            }
            Ok((vec![fval(xs.to_vec(), y)], Aux::Norm(means, rstd)))
        }
        Op::Flatten { axis } => {
            let x = need_in(ins, 0, node)?;
            let s = x.shape();
            let ax = if *axis < 0 {
                *axis + s.len() as i64
            } else {
                *axis
            };
            if ax < 0 || ax as usize > s.len() {
                return Err(shape_err(node, "flatten axis".into()));
            }
            let a: usize = s[..ax as usize].iter().product();
            let b: usize = s[ax as usize..].iter().product();
            one(reshaped(x, vec![a, b]))
        }
        Op::Reshape => {
            let x = need_in(ins, 0, node)?;
            let spec = need_in(ins, 1, node)?.ints();
            let t = reshape_target(node, x.shape(), &spec)?;
            one(reshaped(x, t))
        }
        Op::Unsqueeze { axes } | Op::Squeeze { axes } => {
            let x = need_in(ins, 0, node)?;
            let axes = match axes {
                Some(a) => a.clone(),
                None => ins
                    .get(1)
                    .copied()
                    .flatten()
                    .map(|v| v.ints())
                    .unwrap_or_default(),
            };
            let s = x.shape();
            let t = if matches!(node.op, Op::Unsqueeze { .. }) {
                let r = s.len() + axes.len();
                let mut ax: Vec<usize> = axes
                    .iter()
                    .map(|&a| norm_axis(a, r, nm))
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
                    .map(|&a| norm_axis(a, s.len(), nm))
                    .collect::<Result<_, _>>()?;
                s.iter()
                    .enumerate()
                    .filter(|(i, _)| !ax.contains(i))
                    .map(|(_, &d)| d)
                    .collect()
            };
            one(reshaped(x, t))
        }
        Op::Transpose { .. } => {
            let x = need_in(ins, 0, node)?;
            let s = x.shape();
            let perm = transpose_perm(&node.op, s.len());
            let mut chk = perm.clone();
            chk.sort_unstable();
            if chk != (0..s.len()).collect::<Vec<_>>() {
                return Err(shape_err(node, format!("bad perm {perm:?}")));
            }
            match x {
                Val::F(_, d) => {
                    let (os, o) = transpose(d, s, &perm);
                    one(fval(os, o))
                }
                Val::I(_, d) => {
                    let (os, o) = transpose(d, s, &perm);
                    one(ival(os, o))
                }
            }
        }
        Op::Concat { axis } => {
            let vs: Vec<&Val> = ins.iter().flatten().copied().collect();
            let first = vs
                .first()
                .ok_or_else(|| shape_err(node, "no inputs".into()))?;
            let r = first.shape().len();
            let ax = norm_axis(*axis, r, nm)?;
            let mut os = first.shape().to_vec();
            os[ax] = 0;
            for v in &vs {
                let s = v.shape();
                if s.len() != r
                    || s.iter()
                        .enumerate()
                        .any(|(i, &d)| i != ax && d != first.shape()[i])
                {
                    return Err(shape_err(node, "concat shapes differ".into()));
                }
                os[ax] += s[ax];
            }
            checked_numel(&os, nm)?;
            let outer: usize = os[..ax].iter().product();
            let inner: usize = os[ax + 1..].iter().product();
            if vs.iter().all(|v| !v.is_float()) {
                let mut out = Vec::new();
                for o in 0..outer {
                    for v in &vs {
                        let d = v.ints();
                        let l = v.shape()[ax] * inner;
                        out.extend_from_slice(&d[o * l..(o + 1) * l]);
                    }
                }
                return one(ival(os, out));
            }
            let fs: Vec<Vec<f32>> = vs
                .iter()
                .map(|v| match v {
                    Val::F(_, d) => d.to_vec(),
                    Val::I(_, d) => d.iter().map(|&x| x as f32).collect(),
                })
                .collect();
            let mut out = Vec::with_capacity(os.iter().product());
            for o in 0..outer {
                for (v, d) in vs.iter().zip(&fs) {
                    let l = v.shape()[ax] * inner;
                    out.extend_from_slice(&d[o * l..(o + 1) * l]);
                }
            }
            one(fval(os, out))
        }
        Op::Slice { .. } => {
            let x = need_in(ins, 0, node)?;
            let s = x.shape();
            let plan = slice_plan(node, &node.op, ins, s)?;
            let os: Vec<usize> = plan.iter().map(|p| p.2).collect();
            let n = checked_numel(&os, nm)?;
            match x {
                Val::F(_, d) => {
                    let mut o = vec![0.0; n];
                    for_each_slice(s, &plan, |a, b| o[a] = d[b]);
                    one(fval(os, o))
                }
                Val::I(_, d) => {
                    let mut o = vec![0; n];
                    for_each_slice(s, &plan, |a, b| o[a] = d[b]);
                    one(ival(os, o))
                }
            }
        }
        Op::Gather { axis } => {
            let x = need_in(ins, 0, node)?;
            let ind = need_in(ins, 1, node)?;
            let (os, map) = gather_map(node, x.shape(), ind, *axis)?;
            match x {
                Val::F(_, d) => one(fval(os, map.iter().map(|&i| d[i]).collect())),
                Val::I(_, d) => one(ival(os, map.iter().map(|&i| d[i]).collect())),
            }
        }
        Op::Shape { start, end } => {
            let x = need_in(ins, 0, node)?;
            let s: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
            let r = s.len() as i64;
            let cl = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let (a, b) = (cl(*start), cl(end.unwrap_or(r)));
            let v = if a < b { s[a..b].to_vec() } else { vec![] };
            one(ival(vec![v.len()], v))
        }
        Op::ConstantOfShape(v) => {
            let s = usz(&need_in(ins, 0, node)?.ints(), "shape", nm)?;
            let n = checked_numel(&s, nm)?;
            match v {
                Val::F(_, d) => one(fval(s, vec![d.first().copied().unwrap_or(0.0); n])),
                Val::I(_, d) => one(ival(s, vec![d.first().copied().unwrap_or(0); n])),
            }
        }
        Op::Cast { to } => {
            let x = need_in(ins, 0, node)?;
            match to {
                1 | 10 | 11 | 16 => match x {
                    Val::F(..) => one(x.clone()),
                    Val::I(s, d) => one(fval(s.clone(), d.iter().map(|&v| v as f32).collect())),
                },
                2..=7 | 9 | 12 | 13 => one(ival(x.shape().to_vec(), x.ints())),
                _ => Err(ModelError::Unsupported {
                    op: format!("Cast(to={to})"),
                    node: node.name.clone(),
                }),
            }
        }
        Op::Pad { pads, value, mode } => {
            if mode != "constant" {
                return Err(ModelError::Unsupported {
                    op: format!("Pad(mode={mode})"),
                    node: node.name.clone(),
                });
            }
            let x = need_in(ins, 0, node)?;
            let pads = match pads {
                Some(p) => p.clone(),
                None => need_in(ins, 1, node)?.ints(),
            };
            let value = match ins.get(2).copied().flatten() {
                Some(v) => v
                    .f(nm)
                    .ok()
                    .and_then(|d| d.first().copied())
                    .unwrap_or(*value),
                None => *value,
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
            let n = checked_numel(&os, nm)?;
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
        Op::Reduce {
            axes,
            keep,
            mean,
            noop_empty,
        } => {
            let x = need_in(ins, 0, node)?;
            let s = x.shape();
            let Some(ax) = reduce_axes(axes, ins, s.len(), node, *noop_empty)? else {
                return one(x.clone());
            };
            let ks: Vec<usize> = s
                .iter()
                .enumerate()
                .map(|(i, &d)| if ax.contains(&i) { 1 } else { d })
                .collect();
            let cnt: usize = ax.iter().map(|&a| s[a]).product();
            let mut r = kernels::reduce_to(x.f(nm)?, s, &ks);
            if *mean {
                r.iter_mut().for_each(|v| *v /= cnt.max(1) as f32);
            }
            let os = if *keep {
                ks
            } else {
                s.iter()
                    .enumerate()
                    .filter(|(i, _)| !ax.contains(i))
                    .map(|(_, &d)| d)
                    .collect()
            };
            one(fval(os, r))
        }
        Op::Split { axis, split } => {
            let x = need_in(ins, 0, node)?;
            let s = x.shape();
            let ax = norm_axis(*axis, s.len(), nm)?;
            let parts = split_sizes(node, split, ins, s[ax])?;
            let outer: usize = s[..ax].iter().product();
            let inner: usize = s[ax + 1..].iter().product();
            let xd = x.f(nm)?;
            let mut outs = Vec::new();
            let mut off = 0;
            for &p in &parts {
                let mut d = Vec::with_capacity(outer * p * inner);
                for o in 0..outer {
                    let base = (o * s[ax] + off) * inner;
                    d.extend_from_slice(&xd[base..base + p * inner]);
                }
                let mut os = s.to_vec();
                os[ax] = p;
                outs.push(fval(os, d));
                off += p;
            }
            Ok((outs, Aux::None))
        }
        Op::Cmp(ord) => {
            let a = need_in(ins, 0, node)?;
            let b = need_in(ins, 1, node)?;
            let os = kernels::bcast_shape(a.shape(), b.shape())
                .ok_or_else(|| shape_err(node, "broadcast".into()))?;
            let n = checked_numel(&os, nm)?;
            let (sa, sb) = (
                kernels::bcast_strides(a.shape(), &os),
                kernels::bcast_strides(b.shape(), &os),
            );
            let fa: Vec<f64> = as_f64(a);
            let fb: Vec<f64> = as_f64(b);
            let mut out = vec![0i64; n];
            kernels::for_each_bcast(&os, [&sa, &sb], |o, [i, j]| {
                out[o] = i64::from(fa[i].partial_cmp(&fb[j]) == Some(*ord));
            });
            one(ival(os, out))
        }
        Op::Not => {
            let x = need_in(ins, 0, node)?;
            let v = x.ints().iter().map(|&v| i64::from(v == 0)).collect();
            one(ival(x.shape().to_vec(), v))
        }
        Op::Where => {
            let c = need_in(ins, 0, node)?;
            let a = need_in(ins, 1, node)?;
            let b = need_in(ins, 2, node)?;
            let os = kernels::bcast_shape(c.shape(), a.shape())
                .and_then(|s| kernels::bcast_shape(&s, b.shape()))
                .ok_or_else(|| shape_err(node, "broadcast".into()))?;
            let n = checked_numel(&os, nm)?;
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
            let (fa, fb) = (as_f64(a), as_f64(b));
            let mut out = vec![0.0f32; n];
            kernels::for_each_bcast(&os, [&sc, &sa, &sb], |o, [k, i, j]| {
                out[o] = if cd[k] != 0 { fa[i] } else { fb[j] } as f32;
            });
            one(fval(os, out))
        }
        Op::Range => {
            let (s, l, d) = (
                need_in(ins, 0, node)?,
                need_in(ins, 1, node)?,
                need_in(ins, 2, node)?,
            );
            let (fs, fl, fd) = (as_f64(s), as_f64(l), as_f64(d));
            let (start, limit, delta) = match (fs.first(), fl.first(), fd.first()) {
                (Some(&a), Some(&b), Some(&c)) if c != 0.0 => (a, b, c),
                _ => return Err(shape_err(node, "bad range arguments".into())),
            };
            let count = ((limit - start) / delta).ceil().max(0.0);
            if count.is_nan() || count >= MAX_ELEMS as f64 {
                return Err(shape_err(node, "range too long".into()));
            }
            let count = count as usize;
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
        Op::Expand => {
            let x = need_in(ins, 0, node)?;
            let t = usz(&need_in(ins, 1, node)?.ints(), "shape", nm)?;
            let os = kernels::bcast_shape(x.shape(), &t)
                .ok_or_else(|| shape_err(node, "expand shape".into()))?;
            let n = checked_numel(&os, nm)?;
            let st = kernels::bcast_strides(x.shape(), &os);
            match x {
                Val::F(_, d) => {
                    let mut o = vec![0.0; n];
                    kernels::for_each_bcast(&os, [&st], |i, [a]| o[i] = d[a]);
                    one(fval(os, o))
                }
                Val::I(_, d) => {
                    let mut o = vec![0; n];
                    kernels::for_each_bcast(&os, [&st], |i, [a]| o[i] = d[a]);
                    one(ival(os, o))
                }
            }
        }
        Op::ReduceX { .. }
        | Op::Variadic(_)
        | Op::PRelu
        | Op::InstanceNorm { .. }
        | Op::GlobalMaxPool
        | Op::Tile
        | Op::Size
        | Op::CmpOrEq(_)
        | Op::Logic(_)
        | Op::DepthSpace { .. }
        | Op::ArgExt { .. }
        | Op::CumSum { .. }
        | Op::Lstm { .. }
        | Op::Gru { .. } => forward_ext(node, ins),
    }
}

fn split_sizes(
    node: &Node,
    split: &Option<Vec<i64>>,
    ins: &[Option<&Val>],
    dim: usize,
) -> Result<Vec<usize>, ModelError> {
    let sp = match split {
        Some(s) => Some(s.clone()),
        None => ins.get(1).copied().flatten().map(|v| v.ints()),
    };
    let parts = match sp {
        Some(s) => usz(&s, "split", &node.name)?,
        None => {
            let k = node.outputs.len().max(1);
            let each = dim.div_ceil(k);
            (0..k)
                .map(|i| each.min(dim.saturating_sub(i * each)))
                .collect()
        }
    };
    if parts.iter().sum::<usize>() != dim || parts.len() != node.outputs.len() {
        return Err(shape_err(node, format!("split {parts:?} of {dim}")));
    }
    Ok(parts)
}

fn clip_bounds(
    min: f32,
    max: f32,
    ins: &[Option<&Val>],
    nm: &str,
) -> Result<(f32, f32), ModelError> {
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
    Ok((get(1, min)?, get(2, max)?))
}

fn as_f64(v: &Val) -> Vec<f64> {
    match v {
        Val::F(_, d) => d.iter().map(|&x| f64::from(x)).collect(),
        Val::I(_, d) => d.iter().map(|&x| x as f64).collect(),
    }
}

fn reshaped(x: &Val, s: Vec<usize>) -> Val {
    match x {
        Val::F(_, d) => Val::F(s, d.clone()),
        Val::I(_, d) => Val::I(s, d.clone()),
    }
}

/// Output shape and the flat source index of each output element.
fn gather_map(
    node: &Node,
    s: &[usize],
    ind: &Val,
    axis: i64,
) -> Result<(Vec<usize>, Vec<usize>), ModelError> {
    let ax = norm_axis(axis, s.len(), &node.name)?;
    let idx = ind.ints();
    let dim = s[ax] as i64;
    let outer: usize = s[..ax].iter().product();
    let inner: usize = s[ax + 1..].iter().product();
    let mut os = s[..ax].to_vec();
    os.extend_from_slice(ind.shape());
    os.extend_from_slice(&s[ax + 1..]);
    checked_numel(&os, &node.name)?;
    let mut map = Vec::with_capacity(os.iter().product());
    for o in 0..outer {
        for &i in &idx {
            let j = if i < 0 { i + dim } else { i };
            if j < 0 || j >= dim {
                return Err(shape_err(
                    node,
                    format!("gather index {i} out of range {dim}"),
                ));
            }
            let base = (o * s[ax] + j as usize) * inner;
            map.extend(base..base + inner);
        }
    }
    Ok((os, map))
}

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

fn backward_node(
    node: &Node,
    ins: &[Option<&Val>],
    outs: &[Option<&Val>],
    aux: &Aux,
    gouts: &[Option<Vec<f32>>],
    need: &[bool],
) -> Result<Vec<Option<Vec<f32>>>, ModelError> {
    let nm = node.name.as_str();
    let mut res: Vec<Option<Vec<f32>>> = vec![None; ins.len()];
    let nd = |i: usize| need.get(i).copied().unwrap_or(false);
    // Single-output ops: gradient of output 0 (zeros if absent).
    let y0 = outs.first().copied().flatten();
    let g0 = || -> Result<Vec<f32>, ModelError> {
        match gouts.first() {
            Some(Some(g)) => Ok(g.clone()),
            _ => Ok(vec![0.0; y0.map_or(0, Val::numel)]),
        }
    };
    // The same gradient borrowed, for ops that only read it (no copy).
    let g0r = || -> std::borrow::Cow<'_, [f32]> {
        match gouts.first() {
            Some(Some(g)) => std::borrow::Cow::Borrowed(g.as_slice()),
            _ => std::borrow::Cow::Owned(vec![0.0; y0.map_or(0, Val::numel)]),
        }
    };
    match &node.op {
        Op::Identity
        | Op::Flatten { .. }
        | Op::Reshape
        | Op::Unsqueeze { .. }
        | Op::Squeeze { .. }
        | Op::Cast { .. } => {
            if nd(0) {
                res[0] = Some(g0()?);
            }
        }
        Op::Constant(_) | Op::Shape { .. } | Op::ConstantOfShape(_) => {}
        Op::Resize { .. } => {
            if nd(0) {
                let x = need_in(ins, 0, node)?;
                let (os, taps) = resize_plan(node, ins, x.shape())?;
                let dy = g0()?;
                let mut dx = vec![0.0f32; x.numel()];
                resize_apply(&os, x.shape(), &taps, |o, i, wgt| dx[i] += wgt * dy[o]);
                res[0] = Some(dx);
            }
        }
        Op::ConvT { w, group, out_pad } => {
            let x = need_in(ins, 0, node)?;
            let wt = need_in(ins, 1, node)?;
            let (g, cin) = convt_geom(node, w, *group, out_pad, x.shape(), wt.shape())?;
            let dy = g0r();
            let (dx, dw, db) = kernels::convt_bwd(
                x.f(nm)?,
                x.shape()[0],
                &g,
                *group,
                cin,
                wt.f(nm)?,
                &dy,
                [nd(0), nd(1), nd(2)],
            );
            res[0] = dx;
            res[1] = dw;
            if res.len() > 2 {
                res[2] = db;
            }
        }
        Op::Conv { w, group } => {
            let x = need_in(ins, 0, node)?;
            let wt = need_in(ins, 1, node)?;
            let (xs, ws) = (x.shape(), wt.shape());
            let k: Vec<usize> = if w.k.is_empty() {
                ws[2..].to_vec()
            } else {
                w.k.clone()
            };
            let (g, _, _) = geom(w, xs, &k, node)?;
            let dy = g0r();
            let (dx, dw, db) = kernels::conv_bwd(
                x.f(nm)?,
                xs[0],
                &g,
                *group,
                wt.f(nm)?,
                ws[0],
                &dy,
                nd(0),
                nd(1),
                nd(2),
            );
            res[0] = dx;
            if nd(1) {
                res[1] = dw;
            }
            if res.len() > 2 && nd(2) {
                res[2] = db;
            }
        }
        Op::Gemm {
            alpha,
            beta,
            ta,
            tb,
        } => {
            let a = need_in(ins, 0, node)?;
            let b = need_in(ins, 1, node)?;
            let (sa, sb) = (a.shape(), b.shape());
            let (m, k) = if *ta { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
            let n = if *tb { sb[0] } else { sb[1] };
            let dy = g0r();
            // B'[kk][j] and A'[i][kk] as (row, column) strides of B and A.
            let (rb, cb) = if *tb { (1, sb[1]) } else { (sb[1], 1) };
            let (ra, ca) = if *ta { (1, sa[1]) } else { (sa[1], 1) };
            if nd(0) {
                // dA' = alpha dY · B'^T ([m, k]); with transA, A's own layout
                // [k, m] is B' · dY^T, written directly (no transpose copy).
                let mut da = vec![0.0f32; m * k];
                if *ta {
                    kernels::gemm(
                        k,
                        n,
                        m,
                        *alpha,
                        b.f(nm)?,
                        rb,
                        cb,
                        &dy,
                        1,
                        n,
                        0.0,
                        &mut da,
                        m,
                        1,
                    );
                } else {
                    kernels::gemm(
                        m,
                        n,
                        k,
                        *alpha,
                        &dy,
                        n,
                        1,
                        b.f(nm)?,
                        cb,
                        rb,
                        0.0,
                        &mut da,
                        k,
                        1,
                    );
                }
                res[0] = Some(da);
            }
            if nd(1) {
                // dB' = alpha A'^T · dY ([k, n]); with transB, B's own layout
                // [n, k] is dY^T · A', written directly.
                let mut db = vec![0.0f32; k * n];
                if *tb {
                    kernels::gemm(
                        n,
                        m,
                        k,
                        *alpha,
                        &dy,
                        1,
                        n,
                        a.f(nm)?,
                        ra,
                        ca,
                        0.0,
                        &mut db,
                        k,
                        1,
                    );
                } else {
                    kernels::gemm(
                        k,
                        m,
                        n,
                        *alpha,
                        a.f(nm)?,
                        ca,
                        ra,
                        &dy,
                        n,
                        1,
                        0.0,
                        &mut db,
                        n,
                        1,
                    );
                }
                res[1] = Some(db);
            }
            if nd(2) {
                if let Some(c) = ins.get(2).copied().flatten() {
                    let mut r = kernels::reduce_to(&dy, &[m, n], c.shape());
                    r.iter_mut().for_each(|v| *v *= beta);
                    res[2] = Some(r);
                }
            }
        }
        Op::MatMul => {
            let a = need_in(ins, 0, node)?;
            let b = need_in(ins, 1, node)?;
            let (ob, sa, sb, m, k, n) = matmul_plan(node, a.shape(), b.shape())?;
            let (ad, bd) = (a.f(nm)?, b.f(nm)?);
            let dy = g0r();
            let mut da = if nd(0) {
                Some(vec![0.0f32; ad.len()])
            } else {
                None
            };
            let mut dbv = if nd(1) {
                Some(vec![0.0f32; bd.len()])
            } else {
                None
            };
            if sb.iter().all(|&s| s == 0) && b.shape().len() == 2 {
                let rows = dy.len() / n.max(1);
                if let Some(da) = da.as_mut() {
                    kernels::par_gemm_rows(rows, n, k, &dy, n, 1, bd, 1, n, 0.0, da);
                }
                if let Some(db) = dbv.as_mut() {
                    kernels::gemm(k, rows, n, 1.0, ad, 1, k, &dy, n, 1, 0.0, db, n, 1);
                }
            } else {
                let mut i = 0;
                let mut body = |oa: usize, obb: usize| {
                    let g = &dy[i * m * n..(i + 1) * m * n];
                    if let Some(da) = da.as_mut() {
                        kernels::gemm(
                            m,
                            n,
                            k,
                            1.0,
                            g,
                            n,
                            1,
                            &bd[obb..],
                            1,
                            n,
                            1.0,
                            &mut da[oa..],
                            k,
                            1,
                        );
                    }
                    if let Some(db) = dbv.as_mut() {
                        kernels::gemm(
                            k,
                            m,
                            n,
                            1.0,
                            &ad[oa..],
                            1,
                            k,
                            g,
                            n,
                            1,
                            1.0,
                            &mut db[obb..],
                            n,
                            1,
                        );
                    }
                    i += 1;
                };
                if ob.is_empty() {
                    body(0, 0);
                } else {
                    kernels::for_each_bcast(&ob, [&sa, &sb], |_, [oa, obb]| body(oa, obb));
                }
            }
            res[0] = da;
            res[1] = dbv;
        }
        Op::Bin(op) => {
            let a = need_in(ins, 0, node)?;
            let b = need_in(ins, 1, node)?;
            let os = kernels::bcast_shape(a.shape(), b.shape())
                .ok_or_else(|| shape_err(node, "broadcast".into()))?;
            let sa = kernels::bcast_strides(a.shape(), &os);
            let sb = kernels::bcast_strides(b.shape(), &os);
            let dy = g0()?;
            let af: Vec<f32> = match a {
                Val::F(_, d) => d.to_vec(),
                Val::I(_, d) => d.iter().map(|&v| v as f32).collect(),
            };
            let bf: Vec<f32> = match b {
                Val::F(_, d) => d.to_vec(),
                Val::I(_, d) => d.iter().map(|&v| v as f32).collect(),
            };
            let mut ga = if nd(0) {
                Some(vec![0.0f32; af.len()])
            } else {
                None
            };
            let mut gb = if nd(1) {
                Some(vec![0.0f32; bf.len()])
            } else {
                None
            };
            let same = af.len() == dy.len() && bf.len() == dy.len();
            let mut step = |o: usize, i: usize, j: usize| {
                let (p, q, g) = (af[i], bf[j], dy[o]);
                let (dp, dq) = match op {
                    Bin::Add => (g, g),
                    Bin::Sub => (g, -g),
                    Bin::Mul => (g * q, g * p),
                    Bin::Div => (g / q, -g * p / (q * q)),
                    Bin::Pow => (
                        g * q * p.powf(q - 1.0),
                        if p > 0.0 { g * p.powf(q) * p.ln() } else { 0.0 },
                    ),
                    Bin::Mod(true) => (g, -g * (p / q).trunc()),
                    Bin::Mod(false) => (g, -g * (p / q).floor()),
                };
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
        }
        Op::Un(u) => {
            if nd(0) {
                let x = need_in(ins, 0, node)?.f(nm)?;
                let y = y0
                    .ok_or_else(|| shape_err(node, "no output".into()))?
                    .f(nm)?;
                if *u == Un::Relu {
                    // Fast path: one pass, no copy of the incoming gradient.
                    res[0] = Some(kernels::relu_bwd(&g0r(), x));
                    return Ok(res);
                }
                let mut g = g0()?;
                for ((gv, &xv), &yv) in g.iter_mut().zip(x).zip(y) {
                    let d = unary_d(*u, xv, yv);
                    *gv *= d;
                }
                res[0] = Some(g);
            }
        }
        Op::LeakyRelu(al) => {
            if nd(0) {
                let x = need_in(ins, 0, node)?.f(nm)?;
                let mut g = g0()?;
                g.iter_mut().zip(x).for_each(|(g, &x)| {
                    if x < 0.0 {
                        *g *= al
                    }
                });
                res[0] = Some(g);
            }
        }
        Op::Gelu { tanh } => {
            if nd(0) {
                let x = need_in(ins, 0, node)?.f(nm)?;
                let mut g = g0()?;
                g.iter_mut()
                    .zip(x)
                    .for_each(|(g, &x)| *g *= gelu(x, *tanh).1);
                res[0] = Some(g);
            }
        }
        Op::Clip { min, max } => {
            if nd(0) {
                let (lo, hi) = clip_bounds(*min, *max, ins, nm)?;
                let x = need_in(ins, 0, node)?.f(nm)?;
                let mut g = g0()?;
                g.iter_mut().zip(x).for_each(|(g, &x)| {
                    if x < lo || x > hi {
                        *g = 0.0
                    }
                });
                res[0] = Some(g);
            }
            // Gradients of tensor bounds (opset 11+ inputs).
            for (i, below) in [(1usize, true), (2, false)] {
                if nd(i) {
                    let x = need_in(ins, 0, node)?.f(nm)?;
                    let (lo, hi) = clip_bounds(*min, *max, ins, nm)?;
                    let dy = g0()?;
                    let s: f32 = x
                        .iter()
                        .zip(&dy)
                        .filter(|(&x, _)| if below { x < lo } else { x > hi })
                        .map(|(_, g)| g)
                        .sum();
                    res[i] = Some(vec![s]);
                }
            }
        }
        Op::Softmax { axis, legacy, log } => {
            if nd(0) {
                let y = y0.ok_or_else(|| shape_err(node, "no output".into()))?;
                let (outer, d, inner) = softmax_dims(y.shape(), *axis, *legacy, node)?;
                let yd = y.f(nm)?;
                let dy = g0()?;
                let mut dx = vec![0.0f32; yd.len()];
                for o in 0..outer {
                    for i in 0..inner {
                        let at = |j: usize| (o * d + j) * inner + i;
                        if *log {
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
        }
        Op::MaxPool(w) => {
            if nd(0) {
                let x = need_in(ins, 0, node)?;
                let xs = x.shape();
                let (g, _, _) = geom(w, xs, &w.k, node)?;
                let Aux::Idx(idx) = aux else {
                    return Err(shape_err(node, "missing pooling indices".into()));
                };
                let dy = g0r();
                let planes = xs[0] * xs[1];
                res[0] = Some(kernels::maxpool_bwd(
                    &dy,
                    idx,
                    planes,
                    g.h * g.w,
                    g.oh * g.ow,
                ));
            }
        }
        Op::AvgPool { w, cip } => {
            if nd(0) {
                let x = need_in(ins, 0, node)?;
                let xs = x.shape();
                let (g, pb, pr) = geom(w, xs, &w.k, node)?;
                let dy = g0()?;
                let hw = g.h * g.w;
                let ohw = g.oh * g.ow;
                let mut dx = vec![0.0f32; x.numel()];
                for (p, dxp) in dx.chunks_mut(hw.max(1)).enumerate() {
                    for oy in 0..g.oh {
                        for ox in 0..g.ow {
                            let (y0, y1, x0, x1, div) =
                                kernels::avg_window(&g, oy, ox, pb, pr, *cip);
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
        }
        Op::GlobalAvgPool => {
            if nd(0) {
                let x = need_in(ins, 0, node)?;
                let hw: usize = x.shape()[2..].iter().product();
                let dy = g0()?;
                let mut dx = vec![0.0f32; x.numel()];
                for (c, chunk) in dx.chunks_mut(hw.max(1)).enumerate() {
                    chunk.fill(dy[c] / hw as f32);
                }
                res[0] = Some(dx);
            }
        }
        Op::BatchNorm { eps } => {
            let x = need_in(ins, 0, node)?;
            let xs = x.shape();
            let c = xs[1];
            let p: Vec<&[f32]> = (1..5)
                .map(|i| need_in(ins, i, node).and_then(|v| v.f(nm)))
                .collect::<Result<_, _>>()?;
            let inner: usize = xs[2..].iter().product::<usize>().max(1);
            let dy = g0()?;
            let xd = x.f(nm)?;
            let mut dx = if nd(0) {
                Some(vec![0.0f32; xd.len()])
            } else {
                None
            };
            let mut dsc = vec![0.0f32; c];
            let mut dbi = vec![0.0f32; c];
            let mut dmean = vec![0.0f32; c];
            let mut dvar = vec![0.0f32; c];
            for blk in 0..xd.len() / inner {
                let ch = blk % c;
                let rs = 1.0 / (p[3][ch] + eps).sqrt();
                let sc = p[0][ch] * rs;
                let mut sxc = 0.0f32;
                let mut sg = 0.0f32;
                for j in blk * inner..(blk + 1) * inner {
                    if let Some(dx) = dx.as_mut() {
                        dx[j] = dy[j] * sc;
                    }
                    sxc += dy[j] * (xd[j] - p[2][ch]);
                    sg += dy[j];
                }
                dsc[ch] += sxc * rs;
                dbi[ch] += sg;
                dmean[ch] -= sg * sc;
                dvar[ch] += -0.5 * sxc * p[0][ch] * rs * rs * rs;
            }
            res[0] = dx;
            for (i, v) in [(1, dsc), (2, dbi), (3, dmean), (4, dvar)] {
                if nd(i) {
                    res[i] = Some(v);
                }
            }
        }
        Op::BatchNormTrain { .. } => {
            res = bn_train::backward(node, ins, aux, &g0()?, nd)?;
        }
        Op::LayerNorm { axis, .. } => {
            let x = need_in(ins, 0, node)?;
            let xs = x.shape();
            let ax = norm_axis(*axis, xs.len(), nm)?;
            let inner: usize = xs[ax..].iter().product();
            let scale = need_in(ins, 1, node)?.f(nm)?;
            let Aux::Norm(means, rstd) = aux else {
                return Err(shape_err(node, "missing statistics".into()));
            };
            let xd = x.f(nm)?;
            let dy = g0()?;
            let mut dx = vec![0.0f32; xd.len()];
            let mut dsc = vec![0.0f32; inner];
            let mut dbi = vec![0.0f32; inner];
            for r in 0..means.len() {
                let (mu, rs) = (means[r], rstd[r]);
                let base = r * inner;
                let mut s1 = 0.0f32;
                let mut s2 = 0.0f32;
                for j in 0..inner {
                    let xh = (xd[base + j] - mu) * rs;
                    let gh = dy[base + j] * scale[j];
                    s1 += gh;
                    s2 += gh * xh;
                    dsc[j] += dy[base + j] * xh;
                    dbi[j] += dy[base + j];
                }
                let nf = inner as f32;
                for j in 0..inner {
                    let xh = (xd[base + j] - mu) * rs;
                    let gh = dy[base + j] * scale[j];
                    dx[base + j] = rs * (gh - s1 / nf - xh * s2 / nf);
                }
            }
            if nd(0) {
                res[0] = Some(dx);
            }
            if nd(1) {
                res[1] = Some(dsc);
            }
            if nd(2) {
                res[2] = Some(dbi);
            }
        }
        Op::Transpose { .. } => {
            if nd(0) {
                let y = y0.ok_or_else(|| shape_err(node, "no output".into()))?;
                let perm = transpose_perm(&node.op, y.shape().len());
                let mut inv = vec![0; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    inv[p] = i;
                }
                let (_, d) = transpose(&g0()?, y.shape(), &inv);
                res[0] = Some(d);
            }
        }
        Op::Concat { axis } => {
            let dy = g0()?;
            let y = y0.ok_or_else(|| shape_err(node, "no output".into()))?;
            let os = y.shape();
            let ax = norm_axis(*axis, os.len(), nm)?;
            let outer: usize = os[..ax].iter().product();
            let inner: usize = os[ax + 1..].iter().product();
            let mut off = 0;
            for (i, v) in ins.iter().enumerate() {
                let Some(v) = v else { continue };
                let l = v.shape()[ax] * inner;
                if nd(i) {
                    let mut g = Vec::with_capacity(outer * l);
                    for o in 0..outer {
                        let base = o * os[ax] * inner + off;
                        g.extend_from_slice(&dy[base..base + l]);
                    }
                    res[i] = Some(g);
                }
                off += l;
            }
        }
        Op::Slice { .. } => {
            if nd(0) {
                let x = need_in(ins, 0, node)?;
                let plan = slice_plan(node, &node.op, ins, x.shape())?;
                let dy = g0()?;
                let mut dx = vec![0.0f32; x.numel()];
                for_each_slice(x.shape(), &plan, |a, b| dx[b] += dy[a]);
                res[0] = Some(dx);
            }
        }
        Op::Gather { axis } => {
            if nd(0) {
                let x = need_in(ins, 0, node)?;
                let (_, map) = gather_map(node, x.shape(), need_in(ins, 1, node)?, *axis)?;
                let dy = g0()?;
                let mut dx = vec![0.0f32; x.numel()];
                for (o, &i) in map.iter().enumerate() {
                    dx[i] += dy[o];
                }
                res[0] = Some(dx);
            }
        }
        Op::Pad { pads, .. } => {
            if nd(0) {
                let x = need_in(ins, 0, node)?;
                let pads = match pads {
                    Some(p) => p.clone(),
                    None => need_in(ins, 1, node)?.ints(),
                };
                let s = x.shape();
                let r = s.len();
                let os: Vec<usize> = (0..r)
                    .map(|i| s[i] + pads[i] as usize + pads[i + r] as usize)
                    .collect();
                let plan: Vec<(i64, i64, usize)> = (0..r).map(|i| (pads[i], 1, s[i])).collect();
                let dy = g0()?;
                let mut dx = vec![0.0f32; x.numel()];
                for_each_slice(&os, &plan, |a, b| dx[a] = dy[b]);
                res[0] = Some(dx);
            }
        }
        Op::Reduce {
            axes,
            mean,
            noop_empty,
            ..
        } => {
            if nd(0) {
                let x = need_in(ins, 0, node)?;
                let s = x.shape();
                let dy = g0()?;
                match reduce_axes(axes, ins, s.len(), node, *noop_empty)? {
                    None => res[0] = Some(dy),
                    Some(ax) => {
                        let ks: Vec<usize> = s
                            .iter()
                            .enumerate()
                            .map(|(i, &d)| if ax.contains(&i) { 1 } else { d })
                            .collect();
                        let cnt: usize = ax.iter().map(|&a| s[a]).product();
                        let f = if *mean { 1.0 / cnt.max(1) as f32 } else { 1.0 };
                        let st = kernels::bcast_strides(&ks, s);
                        let mut dx = vec![0.0f32; x.numel()];
                        kernels::for_each_bcast(s, [&st], |o, [i]| dx[o] = dy[i] * f);
                        res[0] = Some(dx);
                    }
                }
            }
        }
        Op::Split { axis, split } => {
            if nd(0) {
                let x = need_in(ins, 0, node)?;
                let s = x.shape();
                let ax = norm_axis(*axis, s.len(), nm)?;
                let parts = split_sizes(node, split, ins, s[ax])?;
                let outer: usize = s[..ax].iter().product();
                let inner: usize = s[ax + 1..].iter().product();
                let mut dx = vec![0.0f32; x.numel()];
                let mut off = 0;
                for (k, &p) in parts.iter().enumerate() {
                    if let Some(Some(g)) = gouts.get(k) {
                        for o in 0..outer {
                            let base = (o * s[ax] + off) * inner;
                            dx[base..base + p * inner]
                                .copy_from_slice(&g[o * p * inner..(o + 1) * p * inner]);
                        }
                    }
                    off += p;
                }
                res[0] = Some(dx);
            }
        }
        Op::Cmp(_) | Op::Not | Op::Range => {}
        Op::Where => {
            let c = need_in(ins, 0, node)?;
            let y = y0.ok_or_else(|| shape_err(node, "no output".into()))?;
            let os = y.shape().to_vec();
            let cd = c.ints();
            let sc = kernels::bcast_strides(c.shape(), &os);
            let dy = g0()?;
            for (slot, pick) in [(1usize, true), (2, false)] {
                if nd(slot) {
                    let v = need_in(ins, slot, node)?;
                    let mut masked = vec![0.0f32; dy.len()];
                    kernels::for_each_bcast(&os, [&sc], |o, [k]| {
                        if (cd[k] != 0) == pick {
                            masked[o] = dy[o];
                        }
                    });
                    res[slot] = Some(kernels::reduce_to(&masked, &os, v.shape()));
                }
            }
        }
        Op::Expand => {
            if nd(0) {
                let x = need_in(ins, 0, node)?;
                let y = y0.ok_or_else(|| shape_err(node, "no output".into()))?;
                res[0] = Some(kernels::reduce_to(&g0()?, y.shape(), x.shape()));
            }
        }
        Op::Size | Op::CmpOrEq(_) | Op::Logic(_) | Op::ArgExt { .. } => {}
        Op::ReduceX { .. }
        | Op::Variadic(_)
        | Op::PRelu
        | Op::InstanceNorm { .. }
        | Op::GlobalMaxPool
        | Op::Tile
        | Op::DepthSpace { .. }
        | Op::CumSum { .. } => {
            let y = y0.ok_or_else(|| shape_err(node, "no output".into()))?;
            backward_ext(node, ins, y, aux, g0()?, need, &mut res)?;
        }
        Op::Lstm { .. } | Op::Gru { .. } => {
            let gs = match &node.op {
                Op::Gru { hidden, dirs, lbr } => {
                    let p = lstm_plan(node, ins, *hidden, dirs.len(), 3)?;
                    gru_backward(&p, dirs, *lbr, gouts, need)
                }
                Op::Lstm { hidden, dirs } => {
                    let p = lstm_plan(node, ins, *hidden, dirs.len(), 4)?;
                    lstm_backward(&p, dirs, gouts, need)?
                }
                _ => vec![],
            };
            for (slot, g) in gs.into_iter().enumerate() {
                if let Some(g) = g {
                    if slot < res.len() {
                        res[slot] = Some(g);
                    }
                }
            }
        }
    }
    Ok(res)
}

/// Reduced shape (kept dims set to 1) and element count per group.
fn reduce_x_shape(s: &[usize], ax: &[usize]) -> (Vec<usize>, usize) {
    let ks: Vec<usize> = s
        .iter()
        .enumerate()
        .map(|(i, &d)| if ax.contains(&i) { 1 } else { d })
        .collect();
    (ks, ax.iter().map(|&a| s[a]).product())
}

/// Output shape of multidirectional broadcasting over all inputs.
fn bcast_all(node: &Node, vs: &[&Val]) -> Result<Vec<usize>, ModelError> {
    let mut os: Vec<usize> = vec![];
    for v in vs {
        os = kernels::bcast_shape(&os, v.shape()).ok_or_else(|| {
            shape_err(
                node,
                format!("cannot broadcast {os:?} with {:?}", v.shape()),
            )
        })?;
    }
    checked_numel(&os, &node.name)?;
    Ok(os)
}

/// Tile as a broadcast: input `[s0, s1, ..]` viewed as `[1, s0, 1, s1, ..]`
/// against the output `[r0, s0, r1, s1, ..]`, whose row-major order is the
/// tiled tensor's.
fn tile_plan(
    node: &Node,
    s: &[usize],
    reps: &[i64],
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>), ModelError> {
    if reps.len() != s.len() {
        return Err(shape_err(
            node,
            format!("{} repeats for rank {}", reps.len(), s.len()),
        ));
    }
    let r = usz(reps, "repeats", &node.name)?;
    let mut os2 = Vec::with_capacity(2 * s.len());
    let mut xs2 = Vec::with_capacity(2 * s.len());
    for (&d, &k) in s.iter().zip(&r) {
        os2.extend([k, d]);
        xs2.extend([1, d]);
    }
    checked_numel(&os2, &node.name)?;
    let os = s.iter().zip(&r).map(|(d, k)| d * k).collect();
    Ok((os, os2, xs2))
}

/// Forward pass of the operators added after the first executor version
/// (kept apart so the core match stays readable).
fn forward_ext(node: &Node, ins: &[Option<&Val>]) -> Result<(Vec<Val>, Aux), ModelError> {
    let nm = node.name.as_str();
    let one = |v: Val| Ok((vec![v], Aux::None));
    match &node.op {
        Op::ReduceX {
            kind,
            axes,
            keep,
            noop_empty,
        } => {
            let x = need_in(ins, 0, node)?;
            let s = x.shape();
            let xd = x.f(nm)?;
            // noop_with_empty_axes and no axes: every element is its own
            // group (the identity for Max/Min, |x| or x^2 for the norms, as
            // the ONNX reference implementation computes them).
            let ax = reduce_axes(axes, ins, s.len(), node, *noop_empty)?.unwrap_or_default();
            let (ks, _) = reduce_x_shape(s, &ax);
            let st = kernels::bcast_strides(&ks, s);
            let m: usize = ks.iter().product();
            let init = match kind {
                RedK::Max | RedK::LogSumExp => f32::NEG_INFINITY,
                RedK::Min => f32::INFINITY,
                _ => 0.0,
            };
            let mut r = vec![init; m];
            kernels::for_each_bcast(s, [&st], |o, [i]| {
                let v = xd[o];
                match kind {
                    RedK::Max | RedK::LogSumExp => r[i] = r[i].max(v),
                    RedK::Min => r[i] = r[i].min(v),
                    RedK::L1 => r[i] += v.abs(),
                    RedK::L2 | RedK::SumSquare => r[i] += v * v,
                }
            });
            match kind {
                RedK::L2 => r.iter_mut().for_each(|v| *v = v.sqrt()),
                RedK::LogSumExp => {
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
                _ => {}
            }
            let os = if *keep {
                ks
            } else {
                s.iter()
                    .enumerate()
                    .filter(|(i, _)| !ax.contains(i))
                    .map(|(_, &d)| d)
                    .collect()
            };
            one(fval(os, r))
        }
        Op::Variadic(k) => {
            let vs: Vec<&Val> = ins.iter().flatten().copied().collect();
            if vs.is_empty() {
                return Err(shape_err(node, "no inputs".into()));
            }
            let os = bcast_all(node, &vs)?;
            let n: usize = os.iter().product();
            if vs.iter().all(|v| !v.is_float()) && *k != VarK::Mean {
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
                            VarK::Max => out[o].max(d[i]),
                            VarK::Min => out[o].min(d[i]),
                            _ => out[o].wrapping_add(d[i]),
                        }
                    });
                }
                return one(ival(os, out));
            }
            let mut out = vec![0.0f32; n];
            for (j, v) in vs.iter().enumerate() {
                let st = kernels::bcast_strides(v.shape(), &os);
                let d: Vec<f32> = as_f64(v).into_iter().map(|x| x as f32).collect();
                kernels::for_each_bcast(&os, [&st], |o, [i]| {
                    let q = d[i];
                    out[o] = if j == 0 {
                        q
                    } else {
                        match k {
                            VarK::Max => out[o].max(q),
                            VarK::Min => out[o].min(q),
                            VarK::Sum | VarK::Mean => out[o] + q,
                        }
                    }
                });
            }
            if *k == VarK::Mean {
                let c = vs.len() as f32;
                out.iter_mut().for_each(|v| *v /= c);
            }
            one(fval(os, out))
        }
        Op::PRelu => {
            let x = need_in(ins, 0, node)?;
            let sl = need_in(ins, 1, node)?;
            let st = prelu_strides(node, x.shape(), sl.shape())?;
            let (xd, sd) = (x.f(nm)?, sl.f(nm)?);
            let mut y = vec![0.0f32; xd.len()];
            kernels::for_each_bcast(x.shape(), [&st], |o, [i]| {
                let v = xd[o];
                y[o] = if v < 0.0 { sd[i] * v } else { v };
            });
            one(fval(x.shape().to_vec(), y))
        }
        Op::InstanceNorm { eps } => {
            let x = need_in(ins, 0, node)?;
            let xs = x.shape();
            let (scale, bias) = (need_in(ins, 1, node)?.f(nm)?, need_in(ins, 2, node)?.f(nm)?);
            if xs.len() < 3 || scale.len() != xs[1] || bias.len() != xs[1] {
                return Err(shape_err(
                    node,
                    format!("input {xs:?}, scale {}, bias {}", scale.len(), bias.len()),
                ));
            }
            let c = xs[1];
            let inner: usize = xs[2..].iter().product();
            let xd = x.f(nm)?;
            let rows = xs[0] * c;
            let mut y = vec![0.0f32; xd.len()];
            let mut means = vec![0.0f32; rows];
            let mut rstd = vec![0.0f32; rows];
            for r in 0..rows {
                let xr = &xd[r * inner..(r + 1) * inner];
                let nf = inner.max(1) as f32;
                let mean = xr.iter().sum::<f32>() / nf;
                let var = xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / nf;
                let rs = 1.0 / (var + eps).sqrt();
                means[r] = mean;
                rstd[r] = rs;
                let ch = r % c;
                for j in 0..inner {
                    y[r * inner + j] = (xr[j] - mean) * rs * scale[ch] + bias[ch];
                }
            }
            Ok((vec![fval(xs.to_vec(), y)], Aux::Norm(means, rstd)))
        }
        Op::GlobalMaxPool => {
            let x = need_in(ins, 0, node)?;
            let xs = x.shape();
            if xs.len() < 3 {
                return Err(shape_err(node, format!("input {xs:?}")));
            }
            let hw: usize = xs[2..].iter().product();
            if hw == 0 {
                return Err(shape_err(node, "empty spatial extent".into()));
            }
            let mut y = Vec::with_capacity(xs[0] * xs[1]);
            let mut idx = Vec::with_capacity(xs[0] * xs[1]);
            for c in x.f(nm)?.chunks(hw) {
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
            let mut os = vec![xs[0], xs[1]];
            os.extend(std::iter::repeat_n(1, xs.len() - 2));
            Ok((vec![fval(os, y)], Aux::Idx(idx)))
        }
        Op::Tile => {
            let x = need_in(ins, 0, node)?;
            let reps = need_in(ins, 1, node)?.ints();
            let (os, os2, xs2) = tile_plan(node, x.shape(), &reps)?;
            let st = kernels::bcast_strides(&xs2, &os2);
            let n: usize = os.iter().product();
            match x {
                Val::F(_, d) => {
                    let mut o = vec![0.0; n];
                    kernels::for_each_bcast(&os2, [&st], |i, [a]| o[i] = d[a]);
                    one(fval(os, o))
                }
                Val::I(_, d) => {
                    let mut o = vec![0; n];
                    kernels::for_each_bcast(&os2, [&st], |i, [a]| o[i] = d[a]);
                    one(ival(os, o))
                }
            }
        }
        Op::Size => {
            let x = need_in(ins, 0, node)?;
            one(ival(vec![], vec![x.numel() as i64]))
        }
        Op::CmpOrEq(ord) => {
            let a = need_in(ins, 0, node)?;
            let b = need_in(ins, 1, node)?;
            let os = bcast_all(node, &[a, b])?;
            let (sa, sb) = (
                kernels::bcast_strides(a.shape(), &os),
                kernels::bcast_strides(b.shape(), &os),
            );
            let (fa, fb) = (as_f64(a), as_f64(b));
            let mut out = vec![0i64; os.iter().product()];
            kernels::for_each_bcast(&os, [&sa, &sb], |o, [i, j]| {
                let c = fa[i].partial_cmp(&fb[j]);
                out[o] = i64::from(c == Some(*ord) || c == Some(std::cmp::Ordering::Equal));
            });
            one(ival(os, out))
        }
        Op::Logic(kind) => {
            let a = need_in(ins, 0, node)?;
            let b = need_in(ins, 1, node)?;
            let os = bcast_all(node, &[a, b])?;
            let (sa, sb) = (
                kernels::bcast_strides(a.shape(), &os),
                kernels::bcast_strides(b.shape(), &os),
            );
            let (da, db) = (a.ints(), b.ints());
            let mut out = vec![0i64; os.iter().product()];
            kernels::for_each_bcast(&os, [&sa, &sb], |o, [i, j]| {
                let (p, q) = (da[i] != 0, db[j] != 0);
                out[o] = i64::from(match kind {
                    0 => p && q,
                    1 => p || q,
                    _ => p != q,
                });
            });
            one(ival(os, out))
        }
        Op::DepthSpace {
            block,
            to_space,
            dcr,
        } => {
            let x = need_in(ins, 0, node)?;
            let (s6, perm, os) = depth_space_plan(node, x.shape(), *block, *to_space, *dcr)?;
            match x {
                Val::F(_, d) => one(fval(os, transpose(d, &s6, &perm).1)),
                Val::I(_, d) => one(ival(os, transpose(d, &s6, &perm).1)),
            }
        }
        Op::ArgExt {
            max,
            axis,
            keep,
            last,
        } => {
            let x = need_in(ins, 0, node)?;
            let s = x.shape();
            let ax = norm_axis(*axis, s.len(), nm)?;
            let d = s[ax];
            if d == 0 {
                return Err(shape_err(node, "arg-reduction over an empty axis".into()));
            }
            let outer: usize = s[..ax].iter().product();
            let inner: usize = s[ax + 1..].iter().product();
            let v = as_f64(x);
            let mut out = Vec::with_capacity(outer * inner);
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| v[(o * d + j) * inner + i];
                    let mut best = 0usize;
                    for j in 1..d {
                        let (a, b) = (at(j), at(best));
                        let better = if *max { a > b } else { a < b };
                        if better || (*last && a == b) {
                            best = j;
                        }
                    }
                    out.push(best as i64);
                }
            }
            let mut os = s.to_vec();
            if *keep {
                os[ax] = 1;
            } else {
                os.remove(ax);
            }
            one(ival(os, out))
        }
        Op::CumSum { exclusive, reverse } => {
            let x = need_in(ins, 0, node)?;
            let ax = cumsum_axis(node, ins, x.shape().len())?;
            let y = cumsum(x.f(nm)?, x.shape(), ax, *exclusive, *reverse);
            one(fval(x.shape().to_vec(), y))
        }
        Op::Gru { hidden, dirs, lbr } => {
            let p = lstm_plan(node, ins, *hidden, dirs.len(), 3)?;
            let (t, n, h, nd) = (p.t, p.n, p.h, dirs.len());
            let mut y = vec![0.0f32; t * nd * n * h];
            let mut yh = p.h0.clone();
            for (d, &rev) in dirs.iter().enumerate() {
                let tr = gru_run(&p, d, rev, *lbr);
                for (k, st) in tr.iter().enumerate() {
                    let ti = if rev { t - 1 - k } else { k };
                    y[(ti * nd + d) * n * h..(ti * nd + d + 1) * n * h].copy_from_slice(&st.h);
                }
                if let Some(last) = tr.last() {
                    yh[d * n * h..(d + 1) * n * h].copy_from_slice(&last.h);
                }
            }
            Ok((
                vec![fval(vec![t, nd, n, h], y), fval(vec![nd, n, h], yh)],
                Aux::None,
            ))
        }
        Op::Lstm { hidden, dirs } => {
            let p = lstm_plan(node, ins, *hidden, dirs.len(), 4)?;
            let (t, n, h, nd) = (p.t, p.n, p.h, dirs.len());
            let mut y = vec![0.0f32; t * nd * n * h];
            let mut yh = vec![0.0f32; nd * n * h];
            let mut yc = vec![0.0f32; nd * n * h];
            for (d, &rev) in dirs.iter().enumerate() {
                let tr = lstm_run(&p, d, rev);
                for (k, st) in tr.iter().enumerate() {
                    let ti = if rev { t - 1 - k } else { k };
                    y[(ti * nd + d) * n * h..(ti * nd + d + 1) * n * h].copy_from_slice(&st.h);
                }
                if let Some(last) = tr.last() {
                    yh[d * n * h..(d + 1) * n * h].copy_from_slice(&last.h);
                    yc[d * n * h..(d + 1) * n * h].copy_from_slice(&last.c);
                } else {
                    yh[d * n * h..(d + 1) * n * h]
                        .copy_from_slice(&p.h0[d * n * h..(d + 1) * n * h]);
                    yc[d * n * h..(d + 1) * n * h]
                        .copy_from_slice(&p.c0[d * n * h..(d + 1) * n * h]);
                }
            }
            Ok((
                vec![
                    fval(vec![t, nd, n, h], y),
                    fval(vec![nd, n, h], yh),
                    fval(vec![nd, n, h], yc),
                ],
                Aux::None,
            ))
        }
        _ => Err(ModelError::Invalid(format!(
            "node '{nm}': internal: {} routed to the wrong evaluator",
            node.op_type
        ))),
    }
}

/// Inputs of an LSTM node, checked, with defaults filled in.
struct LstmPlan<'a> {
    t: usize,
    n: usize,
    i: usize,
    h: usize,
    x: &'a [f32],
    w: &'a [f32],
    r: &'a [f32],
    /// `[dirs, 8h]` (input then recurrent biases); zeros when absent.
    b: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
}

/// `gates`: 4 for LSTM, 3 for GRU.
fn lstm_plan<'a>(
    node: &Node,
    ins: &[Option<&'a Val>],
    h: usize,
    nd: usize,
    gates: usize,
) -> Result<LstmPlan<'a>, ModelError> {
    let nm = node.name.as_str();
    let x = need_in(ins, 0, node)?;
    let [t, n, i] = x.shape() else {
        return Err(shape_err(
            node,
            format!("X must be [seq, batch, input], got {:?}", x.shape()),
        ));
    };
    let (t, n, i) = (*t, *n, *i);
    let w = need_in(ins, 1, node)?;
    let r = need_in(ins, 2, node)?;
    if w.shape() != [nd, gates * h, i] || r.shape() != [nd, gates * h, h] {
        return Err(shape_err(
            node,
            format!(
                "W {:?} / R {:?} for hidden {h}, input {i}",
                w.shape(),
                r.shape()
            ),
        ));
    }
    let opt = |k: usize, len: usize, what: &str| -> Result<Vec<f32>, ModelError> {
        match ins.get(k).copied().flatten() {
            None => Ok(vec![0.0; len]),
            Some(v) if v.numel() == len => Ok(v.f(nm)?.to_vec()),
            Some(v) => Err(shape_err(node, format!("{what} {:?}", v.shape()))),
        }
    };
    if let Some(sl) = ins.get(4).copied().flatten() {
        if sl.ints().iter().any(|&l| l != t as i64) {
            return Err(ModelError::Unsupported {
                op: format!("{}(sequence_lens shorter than the sequence)", node.op_type),
                node: node.name.clone(),
            });
        }
    }
    checked_numel(&[t, nd, n, gates * h], nm)?;
    Ok(LstmPlan {
        t,
        n,
        i,
        h,
        x: x.f(nm)?,
        w: w.f(nm)?,
        r: r.f(nm)?,
        b: opt(3, nd * 2 * gates * h, "B")?,
        h0: opt(5, nd * n * h, "initial_h")?,
        c0: opt(6, nd * n * h, "initial_c")?,
    })
}

/// One LSTM step's state: activated gates `[n, 4h]` (i, o, f, c~), the cell
/// and hidden state after the step.
struct LstmStep {
    gates: Vec<f32>,
    c: Vec<f32>,
    h: Vec<f32>,
}

fn sigm(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Runs direction `d` over the sequence (in processing order).
fn lstm_run(p: &LstmPlan, d: usize, rev: bool) -> Vec<LstmStep> {
    let (n, i, h) = (p.n, p.i, p.h);
    let w = &p.w[d * 4 * h * i..(d + 1) * 4 * h * i];
    let r = &p.r[d * 4 * h * h..(d + 1) * 4 * h * h];
    let b = &p.b[d * 8 * h..(d + 1) * 8 * h];
    let mut hp = p.h0[d * n * h..(d + 1) * n * h].to_vec();
    let mut cp = p.c0[d * n * h..(d + 1) * n * h].to_vec();
    let mut out = Vec::with_capacity(p.t);
    for k in 0..p.t {
        let ti = if rev { p.t - 1 - k } else { k };
        let xt = &p.x[ti * n * i..(ti + 1) * n * i];
        let mut g = vec![0.0f32; n * 4 * h];
        for b_ in 0..n {
            let (xr, hr) = (&xt[b_ * i..(b_ + 1) * i], &hp[b_ * h..(b_ + 1) * h]);
            for j in 0..4 * h {
                let mut z = b[j] + b[4 * h + j];
                let wr = &w[j * i..(j + 1) * i];
                z += wr.iter().zip(xr).map(|(a, c)| a * c).sum::<f32>();
                let rr = &r[j * h..(j + 1) * h];
                z += rr.iter().zip(hr).map(|(a, c)| a * c).sum::<f32>();
                g[b_ * 4 * h + j] = if j >= 3 * h { z.tanh() } else { sigm(z) };
            }
        }
        let mut c = vec![0.0f32; n * h];
        let mut hn = vec![0.0f32; n * h];
        for b_ in 0..n {
            let gb = &g[b_ * 4 * h..(b_ + 1) * 4 * h];
            for u in 0..h {
                let (ig, og, fg, cg) = (gb[u], gb[h + u], gb[2 * h + u], gb[3 * h + u]);
                let cv = fg * cp[b_ * h + u] + ig * cg;
                c[b_ * h + u] = cv;
                hn[b_ * h + u] = og * cv.tanh();
            }
        }
        hp.clone_from(&hn);
        cp.clone_from(&c);
        out.push(LstmStep { gates: g, c, h: hn });
    }
    out
}

/// Backpropagation through time. Returns gradients for inputs
/// X, W, R, B, (sequence_lens), initial_h, initial_c.
fn lstm_backward(
    p: &LstmPlan,
    dirs: &[bool],
    gouts: &[Option<Vec<f32>>],
    need: &[bool],
) -> Result<Vec<Option<Vec<f32>>>, ModelError> {
    let (t, n, i, h, nd) = (p.t, p.n, p.i, p.h, dirs.len());
    let gy = gouts.first().cloned().flatten();
    let gyh = gouts.get(1).cloned().flatten();
    let gyc = gouts.get(2).cloned().flatten();
    let mut dx = vec![0.0f32; p.x.len()];
    let mut dw = vec![0.0f32; p.w.len()];
    let mut dr = vec![0.0f32; p.r.len()];
    let mut db = vec![0.0f32; p.b.len()];
    let mut dh0 = vec![0.0f32; p.h0.len()];
    let mut dc0 = vec![0.0f32; p.c0.len()];
    for (d, &rev) in dirs.iter().enumerate() {
        let tr = lstm_run(p, d, rev);
        let w = &p.w[d * 4 * h * i..(d + 1) * 4 * h * i];
        let r = &p.r[d * 4 * h * h..(d + 1) * 4 * h * h];
        let sl = d * n * h..(d + 1) * n * h;
        let mut dh_next = gyh
            .as_ref()
            .map_or(vec![0.0; n * h], |g| g[sl.clone()].to_vec());
        let mut dc_next = gyc
            .as_ref()
            .map_or(vec![0.0; n * h], |g| g[sl.clone()].to_vec());
        for k in (0..t).rev() {
            let ti = if rev { t - 1 - k } else { k };
            let st = &tr[k];
            let (hprev, cprev): (&[f32], &[f32]) = if k == 0 {
                (&p.h0[sl.clone()], &p.c0[sl.clone()])
            } else {
                (&tr[k - 1].h, &tr[k - 1].c)
            };
            if let Some(g) = &gy {
                let off = (ti * nd + d) * n * h;
                dh_next
                    .iter_mut()
                    .zip(&g[off..off + n * h])
                    .for_each(|(a, b)| *a += b);
            }
            let mut dz = vec![0.0f32; n * 4 * h];
            let mut dc_prev = vec![0.0f32; n * h];
            for b_ in 0..n {
                let gb = &st.gates[b_ * 4 * h..(b_ + 1) * 4 * h];
                for u in 0..h {
                    let (ig, og, fg, cg) = (gb[u], gb[h + u], gb[2 * h + u], gb[3 * h + u]);
                    let q = b_ * h + u;
                    let tc = st.c[q].tanh();
                    let dhv = dh_next[q];
                    let dcv = dc_next[q] + dhv * og * (1.0 - tc * tc);
                    let z = &mut dz[b_ * 4 * h..(b_ + 1) * 4 * h];
                    z[u] = dcv * cg * ig * (1.0 - ig);
                    z[h + u] = dhv * tc * og * (1.0 - og);
                    z[2 * h + u] = dcv * cprev[q] * fg * (1.0 - fg);
                    z[3 * h + u] = dcv * ig * (1.0 - cg * cg);
                    dc_prev[q] = dcv * fg;
                }
            }
            let xt = &p.x[ti * n * i..(ti + 1) * n * i];
            let mut dh_prev = vec![0.0f32; n * h];
            for b_ in 0..n {
                let zb = &dz[b_ * 4 * h..(b_ + 1) * 4 * h];
                for (j, &zj) in zb.iter().enumerate() {
                    if zj == 0.0 {
                        continue;
                    }
                    db[d * 8 * h + j] += zj;
                    db[d * 8 * h + 4 * h + j] += zj;
                    for a in 0..i {
                        dx[ti * n * i + b_ * i + a] += zj * w[j * i + a];
                        dw[d * 4 * h * i + j * i + a] += zj * xt[b_ * i + a];
                    }
                    for a in 0..h {
                        dh_prev[b_ * h + a] += zj * r[j * h + a];
                        dr[d * 4 * h * h + j * h + a] += zj * hprev[b_ * h + a];
                    }
                }
            }
            dh_next = dh_prev;
            dc_next = dc_prev;
        }
        dh0[sl.clone()].copy_from_slice(&dh_next);
        dc0[sl].copy_from_slice(&dc_next);
    }
    let nd_ = |k: usize| need.get(k).copied().unwrap_or(false);
    let pick = |k: usize, v: Vec<f32>| if nd_(k) { Some(v) } else { None };
    Ok(vec![
        pick(0, dx),
        pick(1, dw),
        pick(2, dr),
        pick(3, db),
        None,
        pick(5, dh0),
        pick(6, dc0),
    ])
}

/// One GRU step: gates z, r, n (`[n, h]` each, batch-major), the
/// recurrent pre-activation of the candidate `R_h h + Rb_h` (used when
/// `linear_before_reset`), and the new hidden state.
struct GruStep {
    z: Vec<f32>,
    r: Vec<f32>,
    c: Vec<f32>,
    rh: Vec<f32>,
    h: Vec<f32>,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn gru_run(p: &LstmPlan, d: usize, rev: bool, lbr: bool) -> Vec<GruStep> {
    let (n, i, h) = (p.n, p.i, p.h);
    let w = &p.w[d * 3 * h * i..(d + 1) * 3 * h * i];
    let r = &p.r[d * 3 * h * h..(d + 1) * 3 * h * h];
    let b = &p.b[d * 6 * h..(d + 1) * 6 * h];
    let mut hp = p.h0[d * n * h..(d + 1) * n * h].to_vec();
    let mut out = Vec::with_capacity(p.t);
    for k in 0..p.t {
        let ti = if rev { p.t - 1 - k } else { k };
        let xt = &p.x[ti * n * i..(ti + 1) * n * i];
        let mut st = GruStep {
            z: vec![0.0; n * h],
            r: vec![0.0; n * h],
            c: vec![0.0; n * h],
            rh: vec![0.0; n * h],
            h: vec![0.0; n * h],
        };
        for b_ in 0..n {
            let (xr, hr) = (&xt[b_ * i..(b_ + 1) * i], &hp[b_ * h..(b_ + 1) * h]);
            for u in 0..h {
                let q = b_ * h + u;
                let pre = |g: usize| {
                    let j = g * h + u;
                    dot(&w[j * i..(j + 1) * i], xr) + b[j]
                };
                let rec = |g: usize, v: &[f32]| {
                    let j = g * h + u;
                    dot(&r[j * h..(j + 1) * h], v) + b[3 * h + j]
                };
                st.z[q] = sigm(pre(0) + rec(0, hr));
                st.r[q] = sigm(pre(1) + rec(1, hr));
                if lbr {
                    st.rh[q] = rec(2, hr);
                }
            }
            for u in 0..h {
                let q = b_ * h + u;
                let j = 2 * h + u;
                let a = dot(&w[j * i..(j + 1) * i], xr) + b[j];
                let v = if lbr {
                    a + st.r[q] * st.rh[q]
                } else {
                    let gated: Vec<f32> = (0..h).map(|m| st.r[b_ * h + m] * hr[m]).collect();
                    a + dot(&r[j * h..(j + 1) * h], &gated) + b[3 * h + j]
                };
                st.c[q] = v.tanh();
                st.h[q] = (1.0 - st.z[q]) * st.c[q] + st.z[q] * hr[u];
            }
        }
        hp.clone_from(&st.h);
        out.push(st);
    }
    out
}

/// Backpropagation through time for GRU; gradients for X, W, R, B,
/// (sequence_lens), initial_h.
fn gru_backward(
    p: &LstmPlan,
    dirs: &[bool],
    lbr: bool,
    gouts: &[Option<Vec<f32>>],
    need: &[bool],
) -> Vec<Option<Vec<f32>>> {
    let (t, n, i, h, nd) = (p.t, p.n, p.i, p.h, dirs.len());
    let gy = gouts.first().cloned().flatten();
    let gyh = gouts.get(1).cloned().flatten();
    let mut dx = vec![0.0f32; p.x.len()];
    let mut dw = vec![0.0f32; p.w.len()];
    let mut dr = vec![0.0f32; p.r.len()];
    let mut db = vec![0.0f32; p.b.len()];
    let mut dh0 = vec![0.0f32; p.h0.len()];
    for (d, &rev) in dirs.iter().enumerate() {
        let tr = gru_run(p, d, rev, lbr);
        let w = &p.w[d * 3 * h * i..(d + 1) * 3 * h * i];
        let r = &p.r[d * 3 * h * h..(d + 1) * 3 * h * h];
        let (wo, ro, bo) = (d * 3 * h * i, d * 3 * h * h, d * 6 * h);
        let sl = d * n * h..(d + 1) * n * h;
        let mut dh_next = gyh
            .as_ref()
            .map_or(vec![0.0; n * h], |g| g[sl.clone()].to_vec());
        for k in (0..t).rev() {
            let ti = if rev { t - 1 - k } else { k };
            let st = &tr[k];
            let hprev: &[f32] = if k == 0 {
                &p.h0[sl.clone()]
            } else {
                &tr[k - 1].h
            };
            if let Some(g) = &gy {
                let off = (ti * nd + d) * n * h;
                dh_next
                    .iter_mut()
                    .zip(&g[off..off + n * h])
                    .for_each(|(a, b)| *a += b);
            }
            let xt = &p.x[ti * n * i..(ti + 1) * n * i];
            let mut dh_prev = vec![0.0f32; n * h];
            for b_ in 0..n {
                let hr = &hprev[b_ * h..(b_ + 1) * h];
                // Pre-activation gradients of the input side (da) and the
                // recurrent side (drec) per gate row.
                let mut da = vec![0.0f32; 3 * h];
                let mut drec = vec![0.0f32; 3 * h];
                let mut dgr = vec![0.0f32; h];
                for u in 0..h {
                    let q = b_ * h + u;
                    let dhv = dh_next[q];
                    dh_prev[q] += dhv * st.z[q];
                    let dc = dhv * (1.0 - st.z[q]) * (1.0 - st.c[q] * st.c[q]);
                    let dz = dhv * (hr[u] - st.c[q]) * st.z[q] * (1.0 - st.z[q]);
                    da[u] = dz;
                    drec[u] = dz;
                    da[2 * h + u] = dc;
                    if lbr {
                        drec[2 * h + u] = dc * st.r[q];
                        dgr[u] = dc * st.rh[q];
                    }
                }
                if !lbr {
                    // Candidate's recurrent term R_h (r * h) + Rb_h.
                    for u in 0..h {
                        let j = 2 * h + u;
                        let dc = da[j];
                        db[bo + 3 * h + j] += dc;
                        for m in 0..h {
                            let rm = st.r[b_ * h + m];
                            dr[ro + j * h + m] += dc * rm * hr[m];
                            let drh = dc * r[j * h + m];
                            dgr[m] += drh * hr[m];
                            dh_prev[b_ * h + m] += drh * rm;
                        }
                    }
                }
                for u in 0..h {
                    let q = b_ * h + u;
                    let v = dgr[u] * st.r[q] * (1.0 - st.r[q]);
                    da[h + u] = v;
                    drec[h + u] = v;
                }
                for j in 0..3 * h {
                    let a = da[j];
                    db[bo + j] += a;
                    for m in 0..i {
                        dx[ti * n * i + b_ * i + m] += a * w[j * i + m];
                        dw[wo + j * i + m] += a * xt[b_ * i + m];
                    }
                    if j >= 2 * h && !lbr {
                        continue;
                    }
                    let c = drec[j];
                    db[bo + 3 * h + j] += c;
                    for m in 0..h {
                        dh_prev[b_ * h + m] += c * r[j * h + m];
                        dr[ro + j * h + m] += c * hr[m];
                    }
                }
            }
            dh_next = dh_prev;
        }
        dh0[sl].copy_from_slice(&dh_next);
    }
    let nd_ = |k: usize| need.get(k).copied().unwrap_or(false);
    let pick = |k: usize, v: Vec<f32>| if nd_(k) { Some(v) } else { None };
    vec![
        pick(0, dx),
        pick(1, dw),
        pick(2, dr),
        pick(3, db),
        None,
        pick(5, dh0),
    ]
}

/// DepthToSpace / SpaceToDepth as a 6-D reshape + transpose (ONNX
/// operator definitions): the 6-D input shape, the permutation and the
/// output shape.
fn depth_space_plan(
    node: &Node,
    s: &[usize],
    b: usize,
    to_space: bool,
    dcr: bool,
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>), ModelError> {
    let [n, c, h, w] = s else {
        return Err(shape_err(node, format!("needs [n,c,h,w], got {s:?}")));
    };
    let (n, c, h, w) = (*n, *c, *h, *w);
    if to_space {
        if c % (b * b) != 0 {
            return Err(shape_err(node, format!("{c} channels, block {b}")));
        }
        let cc = c / (b * b);
        let os = vec![n, cc, h * b, w * b];
        Ok(if dcr {
            (vec![n, b, b, cc, h, w], vec![0, 3, 4, 1, 5, 2], os)
        } else {
            (vec![n, cc, b, b, h, w], vec![0, 1, 4, 2, 5, 3], os)
        })
    } else {
        if h % b != 0 || w % b != 0 {
            return Err(shape_err(node, format!("{h}x{w} not divisible by {b}")));
        }
        Ok((
            vec![n, c, h / b, b, w / b, b],
            vec![0, 3, 5, 1, 2, 4],
            vec![n, c * b * b, h / b, w / b],
        ))
    }
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

/// Backward pass of the operators in [`forward_ext`]; writes input
/// gradients into `res`.
fn backward_ext(
    node: &Node,
    ins: &[Option<&Val>],
    y: &Val,
    aux: &Aux,
    dy: Vec<f32>,
    need: &[bool],
    res: &mut [Option<Vec<f32>>],
) -> Result<(), ModelError> {
    let nm = node.name.as_str();
    let nd = |i: usize| need.get(i).copied().unwrap_or(false);
    match &node.op {
        Op::ReduceX {
            kind,
            axes,
            noop_empty,
            ..
        } => {
            if !nd(0) {
                return Ok(());
            }
            let x = need_in(ins, 0, node)?;
            let s = x.shape();
            let xd = x.f(nm)?;
            let yd = y.f(nm)?;
            let ax = reduce_axes(axes, ins, s.len(), node, *noop_empty)?.unwrap_or_default();
            let (ks, _) = reduce_x_shape(s, &ax);
            let st = kernels::bcast_strides(&ks, s);
            let mut dx = vec![0.0f32; xd.len()];
            match kind {
                RedK::Max | RedK::Min => {
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
                RedK::L1 => kernels::for_each_bcast(s, [&st], |o, [i]| {
                    dx[o] = dy[i] * unary_d(Un::Abs, xd[o], 0.0);
                }),
                RedK::L2 => kernels::for_each_bcast(s, [&st], |o, [i]| {
                    if yd[i] > 0.0 {
                        dx[o] = dy[i] * xd[o] / yd[i];
                    }
                }),
                RedK::SumSquare => kernels::for_each_bcast(s, [&st], |o, [i]| {
                    dx[o] = 2.0 * dy[i] * xd[o];
                }),
                RedK::LogSumExp => kernels::for_each_bcast(s, [&st], |o, [i]| {
                    if yd[i].is_finite() {
                        dx[o] = dy[i] * (xd[o] - yd[i]).exp();
                    }
                }),
            }
            res[0] = Some(dx);
        }
        Op::Variadic(k) => {
            let os = y.shape();
            let yd = y.f(nm)?;
            let vs: Vec<(usize, &Val)> = ins
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (i, v)))
                .collect();
            let n = vs.len() as f32;
            // For Max/Min: how many inputs attain the extreme per element.
            let mut ties = vec![0.0f32; yd.len()];
            let fs: Vec<Vec<f32>> = vs
                .iter()
                .map(|(_, v)| as_f64(v).into_iter().map(|x| x as f32).collect())
                .collect();
            if matches!(k, VarK::Max | VarK::Min) {
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
                if !nd(*slot) {
                    continue;
                }
                let g: Vec<f32> = match k {
                    VarK::Sum => dy.clone(),
                    VarK::Mean => dy.iter().map(|g| g / n).collect(),
                    VarK::Max | VarK::Min => {
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
        }
        Op::PRelu => {
            let x = need_in(ins, 0, node)?;
            let sl = need_in(ins, 1, node)?;
            let st = prelu_strides(node, x.shape(), sl.shape())?;
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
            if nd(0) {
                res[0] = Some(dx);
            }
            if nd(1) {
                res[1] = Some(ds);
            }
        }
        Op::InstanceNorm { .. } => {
            let x = need_in(ins, 0, node)?;
            let xs = x.shape();
            let scale = need_in(ins, 1, node)?.f(nm)?;
            let Aux::Norm(means, rstd) = aux else {
                return Err(shape_err(node, "missing statistics".into()));
            };
            let c = xs[1];
            let inner: usize = xs[2..].iter().product();
            let xd = x.f(nm)?;
            let mut dx = vec![0.0f32; xd.len()];
            let mut dsc = vec![0.0f32; c];
            let mut dbi = vec![0.0f32; c];
            let nf = inner.max(1) as f32;
            for r in 0..means.len() {
                let (mu, rs, ch) = (means[r], rstd[r], r % c);
                let base = r * inner;
                let (mut s1, mut s2) = (0.0f32, 0.0f32);
                for j in base..base + inner {
                    let xh = (xd[j] - mu) * rs;
                    let gh = dy[j] * scale[ch];
                    s1 += gh;
                    s2 += gh * xh;
                    dsc[ch] += dy[j] * xh;
                    dbi[ch] += dy[j];
                }
                for j in base..base + inner {
                    let xh = (xd[j] - mu) * rs;
                    dx[j] = rs * (dy[j] * scale[ch] - s1 / nf - xh * s2 / nf);
                }
            }
            for (i, v) in [(0, dx), (1, dsc), (2, dbi)] {
                if nd(i) {
                    res[i] = Some(v);
                }
            }
        }
        Op::GlobalMaxPool if nd(0) => {
            let x = need_in(ins, 0, node)?;
            let hw: usize = x.shape()[2..].iter().product();
            let Aux::Idx(idx) = aux else {
                return Err(shape_err(node, "missing pooling indices".into()));
            };
            let mut dx = vec![0.0f32; x.numel()];
            for (p, (&i, &g)) in idx.iter().zip(&dy).enumerate() {
                if let Some(v) = dx.get_mut(p * hw + i as usize) {
                    *v += g;
                }
            }
            res[0] = Some(dx);
        }
        Op::DepthSpace {
            block,
            to_space,
            dcr,
        } if nd(0) => {
            let x = need_in(ins, 0, node)?;
            let (s6, perm, _) = depth_space_plan(node, x.shape(), *block, *to_space, *dcr)?;
            let ts: Vec<usize> = perm.iter().map(|&p| s6[p]).collect();
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            res[0] = Some(transpose(&dy, &ts, &inv).1);
        }
        Op::CumSum { exclusive, reverse } if nd(0) => {
            let x = need_in(ins, 0, node)?;
            let ax = cumsum_axis(node, ins, x.shape().len())?;
            res[0] = Some(cumsum(&dy, x.shape(), ax, *exclusive, !*reverse));
        }
        Op::Tile if nd(0) => {
            let x = need_in(ins, 0, node)?;
            let reps = need_in(ins, 1, node)?.ints();
            let (_, os2, xs2) = tile_plan(node, x.shape(), &reps)?;
            res[0] = Some(kernels::reduce_to(&dy, &os2, &xs2));
        }
        _ => {}
    }
    Ok(())
}

#[path = "bn_train.rs"]
mod bn_train;

#[cfg(test)]
#[path = "graph_fd_tests.rs"]
mod fd_tests;
