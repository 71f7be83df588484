//! The operators, one file per family.
//!
//! Each operator is a type implementing [`Op`]: its attribute parsing (a
//! `compile` function registered under its ONNX name), its forward pass
//! and its backward pass sit together in its family's file. `backward` has
//! no default, so an operator without an adjoint does not compile; an
//! operator with integer outputs says so in its `backward` and returns no
//! gradients. Adding an operator is one `impl Op`, one line in its
//! family's `register`, and its finite-difference test.
//!
//! The layout follows tract (`onnx/src/ops/mod.rs` registering each
//! family's module) and candle (`CustomOp1`: forward and backward of one
//! operator on one trait).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::{need_in, shape_err, Cx, Node, Saved, Val};
use crate::classifier::ModelError;
use crate::onnx::proto::NodeP;

mod activation;
mod conv;
mod elementwise;
mod layout;
mod matmul;
mod norm;
mod pad;
mod pool;
mod reduce;
mod resize;
mod rnn;
mod shape;
mod window;

/// Input gradients, one slot per node input (`None`: no gradient flows or
/// none was asked for).
pub(crate) type Grads = Vec<Option<Vec<f32>>>;

/// A forward pass's outputs and what it keeps for the backward pass.
pub(crate) type Outputs = (Vec<Val>, Saved);

/// One compiled operator: forward and backward on one trait.
pub(crate) trait Op: std::fmt::Debug + Send + Sync {
    /// Computes the outputs from the inputs (`None` for an omitted
    /// optional input). Allocations go through [`Cx::alloc`].
    fn forward(&self, cx: &Cx<'_>) -> Result<Outputs, ModelError>;
    /// Gradients of the inputs from the gradients of the outputs.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, ModelError>;
    /// Whether output row `i` depends only on row `i` (leading axis) of the
    /// batch-carrying inputs, so that `backward` on one-row slices gives one
    /// example's share of a weight gradient (DP-SGD's per-example
    /// gradients, [`crate::graph::Graph::backward_per_example`]).
    fn rows_independent(&self) -> bool {
        false
    }
}

/// Everything a backward pass reads.
pub(crate) struct Backward<'a> {
    pub node: &'a Node,
    pub ins: &'a [Option<&'a Val>],
    pub outs: &'a [Option<&'a Val>],
    pub saved: &'a Saved,
    /// Gradient of each output (`None` where nothing downstream used it).
    pub gouts: &'a [Option<Vec<f32>>],
    /// Per input: whether its gradient is wanted.
    pub need: &'a [bool],
}

impl<'a> Backward<'a> {
    /// Whether input `i`'s gradient is wanted.
    pub(crate) fn need(&self, i: usize) -> bool {
        self.need.get(i).copied().unwrap_or(false)
    }
    /// No gradients (one `None` per input), to fill in.
    pub(crate) fn none(&self) -> Grads {
        vec![None; self.ins.len()]
    }
    /// [`Backward::place`], keeping only the gradients that were asked for.
    pub(crate) fn place_needed(&self, gs: impl IntoIterator<Item = Option<Vec<f32>>>) -> Grads {
        self.place(
            gs.into_iter()
                .enumerate()
                .map(|(i, g)| g.filter(|_| self.need(i))),
        )
    }
    /// Gradients `gs` in input order, one slot per input: a gradient past
    /// the node's inputs (an omitted trailing optional input) is dropped,
    /// an input without one gets `None`.
    pub(crate) fn place(&self, gs: impl IntoIterator<Item = Option<Vec<f32>>>) -> Grads {
        let mut res = self.none();
        for (r, g) in res.iter_mut().zip(gs) {
            *r = g;
        }
        res
    }
    pub(crate) fn input(&self, i: usize) -> Result<&'a Val, ModelError> {
        need_in(self.ins, i, self.node)
    }
    /// Input `i`, or `None` when it is omitted.
    pub(crate) fn opt(&self, i: usize) -> Option<&'a Val> {
        self.ins.get(i).copied().flatten()
    }
    /// Output 0.
    pub(crate) fn y(&self) -> Result<&'a Val, ModelError> {
        self.outs
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| shape_err(self.node, "no output".into()))
    }
    fn y_len(&self) -> usize {
        self.outs.first().copied().flatten().map_or(0, Val::numel)
    }
    /// Gradient of output 0, copied (zeros when absent).
    pub(crate) fn dy(&self) -> Vec<f32> {
        match self.gouts.first() {
            Some(Some(g)) => g.clone(),
            _ => vec![0.0; self.y_len()],
        }
    }
    /// Gradient of output 0, borrowed when present.
    pub(crate) fn dy_ref(&self) -> Cow<'a, [f32]> {
        match self.gouts.first() {
            Some(Some(g)) => Cow::Borrowed(g.as_slice()),
            _ => Cow::Owned(vec![0.0; self.y_len()]),
        }
    }
    pub(crate) fn name(&self) -> &'a str {
        &self.node.name
    }
}

/// One output, nothing saved.
fn one(v: Val) -> Result<Outputs, ModelError> {
    Ok((vec![v], Saved::Nothing))
}

/// Builds an operator from a node and the model's opset.
type Compile = Arc<dyn Fn(&NodeP, i64) -> Result<Arc<dyn Op>, ModelError> + Send + Sync>;

/// Operator names (domain-qualified outside the ONNX domain) to their
/// compile functions.
pub(crate) struct Registry {
    map: HashMap<&'static str, Compile>,
    /// Names registered twice (a unit test keeps this empty).
    duplicates: Vec<&'static str>,
}

impl Registry {
    /// Registers `f` as the compile function of each of `names`.
    pub(super) fn add(
        &mut self,
        names: &[&'static str],
        f: impl Fn(&NodeP, i64) -> Result<Arc<dyn Op>, ModelError> + Send + Sync + 'static,
    ) {
        let f: Compile = Arc::new(f);
        for &n in names {
            if self.map.insert(n, f.clone()).is_some() {
                self.duplicates.push(n);
            }
        }
    }

    /// Registers an operator without attributes under `name`.
    fn add_op(&mut self, name: &'static str, op: impl Op + 'static) {
        let op: Arc<dyn Op> = Arc::new(op);
        self.add(&[name], move |_, _| Ok(op.clone()));
    }

    /// Registers an operator whose one attribute is an `axis` with
    /// default `default`.
    fn add_with_axis<T: Op + 'static>(
        &mut self,
        name: &'static str,
        default: i64,
        make: fn(i64) -> T,
    ) {
        self.add(&[name], move |n, _| {
            Ok(Arc::new(make(super::attrs::int(n, "axis", default))))
        });
    }
}

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut r = Registry {
            map: HashMap::new(),
            duplicates: Vec::new(),
        };
        activation::register(&mut r);
        conv::register(&mut r);
        elementwise::register(&mut r);
        layout::register(&mut r);
        matmul::register(&mut r);
        norm::register(&mut r);
        super::bn_train::register(&mut r);
        super::dropout::register(&mut r);
        pad::register(&mut r);
        pool::register(&mut r);
        reduce::register(&mut r);
        resize::register(&mut r);
        rnn::register(&mut r);
        shape::register(&mut r);
        r
    })
}

/// Compiles one node into its operator.
pub(crate) fn compile(n: &NodeP, opset: i64) -> Result<Arc<dyn Op>, ModelError> {
    let standard = n.domain.is_empty() || n.domain == "ai.onnx";
    let key = if standard {
        n.op_type.clone()
    } else {
        format!("{}::{}", n.domain, n.op_type)
    };
    match registry().map.get(key.as_str()) {
        Some(f) => f(n, opset),
        None => Err(ModelError::Unsupported {
            op: if n.domain.is_empty() {
                n.op_type.clone()
            } else {
                format!("{}::{}", n.domain, n.op_type)
            },
            node: n.name.clone(),
        }),
    }
}

/// The `Unsupported` error for node `n` as a whole.
fn refuse(n: &NodeP) -> ModelError {
    ModelError::Unsupported {
        op: n.op_type.clone(),
        node: n.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_registered_once() {
        let r = registry();
        assert!(r.duplicates.is_empty(), "{:?}", r.duplicates);
        // A few names from each family resolve.
        for name in [
            "Conv",
            "MaxPool",
            "LSTM",
            "Relu",
            "Add",
            "MatMul",
            "ReduceMax",
            "Pad",
            "Reshape",
            "Resize",
            "ai.aisec::BatchNormTrain",
            "ai.aisec::DropoutTrain",
        ] {
            assert!(r.map.contains_key(name), "{name} is not registered");
        }
    }
}
