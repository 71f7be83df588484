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
//!
//! This file holds the tape and the dispatch. Operators live in [`ops`],
//! one file per family, each operator's attribute parsing, forward and
//! backward side by side behind the [`ops::Op`] trait (the layout follows
//! tract's per-family `onnx/src/ops/*` registration and candle's
//! `CustomOp`, where forward and backward are one trait). Every forward
//! pass runs under [`ExecLimits`]: each operator checks its output (and
//! workspace) size against them before it allocates.

use std::collections::HashMap;
use std::sync::Arc;

use crate::classifier::ModelError;
use crate::onnx::proto::{GraphP, TensorData, TensorP, MAX_ELEMS};

mod attrs;
mod bn_train;
mod dropout;
mod limits;
pub(crate) mod ops;
mod per_example;

#[cfg(test)]
mod fd_tests;

use limits::Budget;
pub(crate) use limits::Cx;
pub use limits::ExecLimits;
use ops::{Backward, Op};

/// A runtime value: float data (differentiable) or integer data (shapes,
/// indices).
#[derive(Debug, Clone)]
pub(crate) enum Val {
    F(Vec<usize>, Arc<Vec<f32>>),
    I(Vec<usize>, Arc<Vec<i64>>),
}

impl Val {
    pub(crate) fn shape(&self) -> &[usize] {
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
    /// The values widened to `f64` (integers converted).
    fn as_f64(&self) -> Vec<f64> {
        match self {
            Val::F(_, d) => d.iter().map(|&x| f64::from(x)).collect(),
            Val::I(_, d) => d.iter().map(|&x| x as f64).collect(),
        }
    }
    /// The values as `f32` (integers converted).
    fn to_f32(&self) -> Vec<f32> {
        match self {
            Val::F(_, d) => d.to_vec(),
            Val::I(_, d) => d.iter().map(|&v| v as f32).collect(),
        }
    }
    /// The same data under another shape (no copy).
    fn reshaped(&self, s: Vec<usize>) -> Val {
        match self {
            Val::F(_, d) => Val::F(s, d.clone()),
            Val::I(_, d) => Val::I(s, d.clone()),
        }
    }
}

fn fval(shape: Vec<usize>, d: Vec<f32>) -> Val {
    Val::F(shape, Arc::new(d))
}
fn ival(shape: Vec<usize>, d: Vec<i64>) -> Val {
    Val::I(shape, Arc::new(d))
}

/// What an operator's forward pass keeps for its backward pass.
#[derive(Debug, Clone)]
pub(crate) enum Saved {
    Nothing,
    /// Flat in-plane index of the winning element per output (max pools).
    ArgIndices(Vec<u32>),
    /// Per-row mean and reciprocal standard deviation (normalisations).
    NormStats {
        mean: Vec<f32>,
        rstd: Vec<f32>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub op_type: String,
    op: Arc<dyn Op>,
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
    /// Bounds every forward pass runs under.
    pub limits: ExecLimits,
}

/// Values and saved data from one forward pass.
pub(crate) struct Tape {
    pub vals: Vec<Option<Val>>,
    saved: Vec<Saved>,
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

/// Element count of `shape`, refused past the load-time bound
/// ([`MAX_ELEMS`]). Shape plans shared by forward and backward use it;
/// allocations in a forward pass go through [`Cx::alloc`], which also
/// applies the run's [`ExecLimits`].
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

impl Graph {
    /// Compiles a decoded ONNX graph.
    pub(crate) fn compile(g: &GraphP, opset: i64) -> Result<Graph, ModelError> {
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
            let op = ops::compile(n, opset)?;
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
            limits: ExecLimits::default(),
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
        let budget = Budget::new(self.limits);
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
                let (outs, _) = node.op.forward(&Cx::new(&node, &ins, &budget))?;
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
    pub(crate) fn forward(&self, x: Val) -> Result<Tape, ModelError> {
        let mut vals: Vec<Option<Val>> = self.consts.clone();
        let mut saved = vec![Saved::Nothing; self.nodes.len()];
        vals[self.input] = Some(x);
        let budget = Budget::new(self.limits);
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
            let (outs, s) = node.op.forward(&Cx::new(node, &ins, &budget))?;
            saved[ni] = s;
            for (o, v) in node.outputs.iter().zip(outs) {
                vals[*o] = Some(v);
            }
        }
        Ok(Tape { vals, saved })
    }

    /// Output `k` of the node named `node_name` on a tape (for reading
    /// intermediate values such as batch-norm batch statistics).
    pub(crate) fn node_value<'a>(
        &self,
        tape: &'a Tape,
        node_name: &str,
        k: usize,
    ) -> Option<&'a Val> {
        let n = self.nodes.iter().find(|n| n.name == node_name)?;
        tape.vals.get(*n.outputs.get(k)?)?.as_ref()
    }

    /// Value id of input `k` of the last node whose operator is one of
    /// `ops` (the features a final `Gemm`/`MatMul` classifies).
    pub(crate) fn last_node_input(&self, ops: &[&str], k: usize) -> Option<usize> {
        let n = self
            .nodes
            .iter()
            .rev()
            .find(|n| ops.contains(&n.op_type.as_str()))?;
        n.inputs.get(k).copied().flatten()
    }

    /// Value id of output `k` of the node named `node_name`.
    pub(crate) fn node_output_id(&self, node_name: &str, k: usize) -> Option<usize> {
        let n = self.nodes.iter().find(|n| n.name == node_name)?;
        n.outputs.get(k).copied()
    }

    /// Output value of a tape.
    pub(crate) fn output_of<'a>(&self, tape: &'a Tape) -> Result<&'a Val, ModelError> {
        tape.vals[self.output]
            .as_ref()
            .ok_or_else(|| ModelError::Invalid("graph output was not computed".into()))
    }

    /// Backpropagates `gout` (gradient of the output) through the tape.
    /// Returns gradients for the value ids in `wanted` (None where no
    /// gradient flows).
    pub(crate) fn backward(
        &self,
        tape: &Tape,
        gout: Vec<f32>,
        wanted: &[usize],
    ) -> Result<Vec<Option<Vec<f32>>>, ModelError> {
        let mut grads = self.reverse_sweep(gout, wanted, |ni, node, gouts, live, grads| {
            let (ins, outs) = tape.node_vals(node);
            let need: Vec<bool> = node
                .inputs
                .iter()
                .map(|i| i.is_some_and(|i| live[i] && tape.is_float(i)))
                .collect();
            let gins = tape.node_backward(ni, node, (&ins, &outs), &gouts, &need)?;
            accumulate(grads, node, gins);
            Ok(())
        })?;
        Ok(wanted.iter().map(|&w| grads[w].take()).collect())
    }

    /// The reverse sweep of both backward passes: seeds the output's
    /// gradient `gout`, then visits, last node first, every node on a path
    /// from a `wanted` value that receives a gradient, with the gradients
    /// of its outputs (taken out of the accumulators), which values are
    /// live (on such a path) and the accumulators. Returns the
    /// accumulators.
    pub(crate) fn reverse_sweep(
        &self,
        gout: Vec<f32>,
        wanted: &[usize],
        mut visit: impl FnMut(
            usize,
            &Node,
            Vec<Option<Vec<f32>>>,
            &[bool],
            &mut [Option<Vec<f32>>],
        ) -> Result<(), ModelError>,
    ) -> Result<Vec<Option<Vec<f32>>>, ModelError> {
        let (live, node_live) = self.reach(wanted);
        let mut grads: Vec<Option<Vec<f32>>> = vec![None; self.num_values];
        grads[self.output] = Some(gout);
        for (ni, node) in self.nodes.iter().enumerate().rev() {
            if !node_live[ni] {
                continue;
            }
            if let Some(gouts) = take_gouts(node, &mut grads) {
                visit(ni, node, gouts, &live, &mut grads)?;
            }
        }
        Ok(grads)
    }

    /// Values reachable from `seeds` through the nodes, and the nodes that
    /// read one of them.
    pub(crate) fn reach(&self, seeds: &[usize]) -> (Vec<bool>, Vec<bool>) {
        let mut vals = vec![false; self.num_values];
        for &s in seeds {
            vals[s] = true;
        }
        let mut nodes = vec![false; self.nodes.len()];
        for (ni, node) in self.nodes.iter().enumerate() {
            if node.inputs.iter().flatten().any(|&i| vals[i]) {
                nodes[ni] = true;
                for &o in &node.outputs {
                    vals[o] = true;
                }
            }
        }
        (vals, nodes)
    }
}

impl Tape {
    /// The values a node read and wrote on this tape.
    pub(crate) fn node_vals(&self, node: &Node) -> (Vec<Option<&Val>>, Vec<Option<&Val>>) {
        let ins = node
            .inputs
            .iter()
            .map(|i| i.and_then(|i| self.vals[i].as_ref()))
            .collect();
        let outs = node
            .outputs
            .iter()
            .map(|&o| self.vals[o].as_ref())
            .collect();
        (ins, outs)
    }

    /// Node `ni`'s backward pass on values `(ins, outs)` (its taped values,
    /// or one example's rows of them) and what its forward pass saved.
    pub(crate) fn node_backward(
        &self,
        ni: usize,
        node: &Node,
        (ins, outs): (&[Option<&Val>], &[Option<&Val>]),
        gouts: &[Option<Vec<f32>>],
        need: &[bool],
    ) -> Result<ops::Grads, ModelError> {
        node.op.backward(&Backward {
            node,
            ins,
            outs,
            saved: &self.saved[ni],
            gouts,
            need,
        })
    }

    /// Whether value `i` was computed and is a float tensor.
    pub(crate) fn is_float(&self, i: usize) -> bool {
        self.vals[i].as_ref().is_some_and(Val::is_float)
    }
}

/// Takes the gradients of `node`'s outputs out of `grads` (`None` when no
/// gradient reaches any of them).
pub(crate) fn take_gouts(
    node: &Node,
    grads: &mut [Option<Vec<f32>>],
) -> Option<Vec<Option<Vec<f32>>>> {
    let gouts: Vec<Option<Vec<f32>>> = node.outputs.iter().map(|&o| grads[o].take()).collect();
    gouts.iter().any(Option::is_some).then_some(gouts)
}

/// Adds a backward pass's input gradients into `grads`.
pub(crate) fn accumulate(grads: &mut [Option<Vec<f32>>], node: &Node, gins: ops::Grads) {
    for (i, g) in node.inputs.iter().zip(gins) {
        if let (Some(i), Some(g)) = (i, g) {
            match &mut grads[*i] {
                Some(acc) => crate::kernels::add_assign(acc, &g),
                slot => *slot = Some(g),
            }
        }
    }
}
