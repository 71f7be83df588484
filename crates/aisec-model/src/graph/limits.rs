//! Bounds on one forward pass.
//!
//! A graph that loads cleanly can still ask for more than the machine
//! holds once it meets a real batch: a Conv or pool with huge pads passes
//! the batch-1 dry run at load and then wants gigabytes at batch 16. So
//! every operator sizes its output (and any large workspace) with the
//! actual input before it allocates, through [`Cx::alloc`], and charges
//! its multiply-accumulates through [`Cx::work`]; one [`Budget`] per pass
//! adds them up. Past a limit the pass stops with
//! [`ModelError::Limit`], a typed error, instead of aborting on a failed
//! allocation or running for hours.

use std::cell::Cell;

use super::{Node, Val};
use crate::classifier::ModelError;
use crate::onnx::proto::MAX_ELEMS;

/// Bounds on what one forward pass may allocate and compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecLimits {
    /// Most elements in any one tensor an operator allocates (its output
    /// or a workspace such as a convolution's unfolded columns).
    pub max_tensor_elems: u64,
    /// Most elements all operators of one pass may allocate together
    /// (the tape keeps every intermediate value).
    pub max_pass_elems: u64,
    /// Most multiply-accumulates of one pass (convolutions, matrix
    /// products, pooling windows).
    pub max_pass_macs: u64,
}

impl Default for ExecLimits {
    /// 2^28 elements per tensor (1 GiB of `f32`, the same bound the loader
    /// puts on stored tensors), 2^32 elements per pass (16 GiB) and 2^45
    /// multiply-accumulates per pass (minutes of CPU time; a ResNet-50
    /// forward pass at 224x224 is about 2^32 per image).
    fn default() -> Self {
        ExecLimits {
            max_tensor_elems: MAX_ELEMS as u64,
            max_pass_elems: 1 << 32,
            max_pass_macs: 1 << 45,
        }
    }
}

/// Running totals of one pass.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: ExecLimits,
    elems: Cell<u64>,
    macs: Cell<u64>,
}

impl Budget {
    pub(crate) fn new(limits: ExecLimits) -> Budget {
        Budget {
            limits,
            elems: Cell::new(0),
            macs: Cell::new(0),
        }
    }
}

/// What an operator's forward pass sees: its node, its inputs (`None` for
/// an omitted optional input) and the pass's budget.
pub(crate) struct Cx<'a> {
    pub node: &'a Node,
    pub ins: &'a [Option<&'a Val>],
    budget: &'a Budget,
}

/// Product of `dims`, saturating at `u64::MAX`.
pub(crate) fn product(dims: &[usize]) -> u64 {
    dims.iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .unwrap_or(u64::MAX)
}

impl<'a> Cx<'a> {
    pub(crate) fn new(node: &'a Node, ins: &'a [Option<&'a Val>], budget: &'a Budget) -> Cx<'a> {
        Cx { node, ins, budget }
    }

    /// Input `i`, which must be present.
    pub(crate) fn input(&self, i: usize) -> Result<&'a Val, ModelError> {
        super::need_in(self.ins, i, self.node)
    }

    /// Input `i`, or `None` when it is omitted.
    pub(crate) fn opt(&self, i: usize) -> Option<&'a Val> {
        self.ins.get(i).copied().flatten()
    }

    /// The float data of input `i`.
    pub(crate) fn f(&self, i: usize) -> Result<&'a [f32], ModelError> {
        self.input(i)?.f(&self.node.name)
    }

    /// Optional float input `i` (a bias), which must hold `len` elements
    /// when present.
    pub(crate) fn opt_f(&self, i: usize, len: usize) -> Result<Option<&'a [f32]>, ModelError> {
        let Some(v) = self.opt(i) else {
            return Ok(None);
        };
        let d = v.f(&self.node.name)?;
        if d.len() != len {
            return Err(super::shape_err(
                self.node,
                format!("input {i} has {} elements, expected {len}", d.len()),
            ));
        }
        Ok(Some(d))
    }

    /// The node's name (for error messages).
    pub(crate) fn name(&self) -> &'a str {
        &self.node.name
    }

    fn refuse(&self, what: &str, size: u64, limit: u64) -> ModelError {
        ModelError::Limit {
            node: format!("{} ({})", self.node.name, self.node.op_type),
            what: what.into(),
            size,
            limit,
        }
    }

    /// Checks a tensor of `shape` about to be allocated against the
    /// per-tensor and per-pass bounds, charges it, and returns its element
    /// count.
    pub(crate) fn alloc(&self, shape: &[usize]) -> Result<usize, ModelError> {
        self.alloc_named("output", shape)
    }

    /// [`Cx::alloc`] for a tensor other than the output (`what` names it).
    pub(crate) fn alloc_named(&self, what: &str, shape: &[usize]) -> Result<usize, ModelError> {
        let n = product(shape);
        let l = &self.budget.limits;
        if n > l.max_tensor_elems {
            return Err(self.refuse(
                &format!("{what} {shape:?} (elements)"),
                n,
                l.max_tensor_elems,
            ));
        }
        let total = self.budget.elems.get().saturating_add(n);
        if total > l.max_pass_elems {
            return Err(self.refuse(
                "elements allocated by this forward pass",
                total,
                l.max_pass_elems,
            ));
        }
        self.budget.elems.set(total);
        usize::try_from(n).map_err(|_| self.refuse(what, n, l.max_tensor_elems))
    }

    /// Charges `macs` multiply-accumulates (a product of factors,
    /// saturating) to the pass.
    pub(crate) fn work(&self, factors: &[usize]) -> Result<(), ModelError> {
        let total = self.budget.macs.get().saturating_add(product(factors));
        let l = self.budget.limits.max_pass_macs;
        if total > l {
            return Err(self.refuse("multiply-accumulates of this forward pass", total, l));
        }
        self.budget.macs.set(total);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Issue 19: windowed ops with huge pads asked for 160-480 GB, and a
    //! pad that passed the batch-1 dry run at load wanted 12 GB at batch
    //! 16. These graphs are built here, a few nodes each.

    use std::sync::Arc;

    use super::super::{Graph, Val};
    use super::ExecLimits;
    use crate::classifier::ModelError;
    use crate::onnx::proto::{AttrVal, GraphP, NodeP, TensorData, TensorP, ValueInfoP};

    fn node(op: &str, ins: &[&str], out: &str, attrs: Vec<(&str, AttrVal)>) -> NodeP {
        NodeP {
            name: format!("{op}_{out}"),
            op_type: op.into(),
            domain: String::new(),
            inputs: ins.iter().map(|s| s.to_string()).collect(),
            outputs: vec![out.into()],
            attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    fn graph(nodes: Vec<NodeP>, inits: Vec<TensorP>, out: &str) -> Graph {
        let gp = GraphP {
            nodes,
            initializers: inits,
            inputs: vec![ValueInfoP {
                name: "x".into(),
                dims: vec![None, Some(1), Some(4), Some(4)],
            }],
            outputs: vec![ValueInfoP {
                name: out.into(),
                dims: vec![],
            }],
        };
        Graph::compile(&gp, 13).unwrap()
    }

    fn ones(name: &str, dims: &[usize]) -> TensorP {
        TensorP {
            name: name.into(),
            dims: dims.to_vec(),
            data: TensorData::F32(vec![1.0; dims.iter().product()]),
        }
    }

    fn input(batch: usize) -> Val {
        Val::F(vec![batch, 1, 4, 4], Arc::new(vec![0.5; batch * 16]))
    }

    fn pads(p: i64) -> (&'static str, AttrVal) {
        ("pads", AttrVal::Is(vec![p; 4]))
    }

    /// Conv, MaxPool and AveragePool with the largest pads the loader
    /// accepts (2^20 - 1 per side): 4.4e12 outputs per image.
    fn huge_pad_graphs() -> Vec<Graph> {
        let p = (1 << 20) - 1;
        let k = || ("kernel_shape", AttrVal::Is(vec![3, 3]));
        vec![
            graph(
                vec![node("Conv", &["x", "w"], "y", vec![pads(p)])],
                vec![ones("w", &[1, 1, 3, 3])],
                "y",
            ),
            graph(
                vec![node("MaxPool", &["x"], "y", vec![k(), pads(p)])],
                vec![],
                "y",
            ),
            graph(
                vec![node("AveragePool", &["x"], "y", vec![k(), pads(p)])],
                vec![],
                "y",
            ),
        ]
    }

    fn expect_limit(r: Result<impl std::fmt::Debug, ModelError>, what: &str) -> String {
        match r {
            Err(e @ ModelError::Limit { .. }) => e.to_string(),
            other => panic!("{what}: expected a Limit error, got {other:?}"),
        }
    }

    #[test]
    fn huge_pads_are_refused_before_allocating() {
        for g in huge_pad_graphs() {
            let op = g.nodes[0].op_type.clone();
            let msg = expect_limit(g.forward(input(1)).map(|_| ()), &op);
            assert!(msg.contains("output") && msg.contains(&op), "{msg}");
        }
    }

    #[test]
    fn the_check_uses_the_real_batch() {
        // 20 pads per side: a 42x42 output per image (1,764 elements;
        // Conv's unfolded input 9 times that). Under a 20,000-element
        // tensor bound batch 1 runs and batch 16 (28,224 output elements)
        // is refused, for each windowed op.
        let limits = ExecLimits {
            max_tensor_elems: 20_000,
            ..ExecLimits::default()
        };
        let k = || ("kernel_shape", AttrVal::Is(vec![3, 3]));
        for mut g in [
            graph(
                vec![node("Conv", &["x", "w"], "y", vec![pads(20)])],
                vec![ones("w", &[1, 1, 3, 3])],
                "y",
            ),
            graph(
                vec![node("MaxPool", &["x"], "y", vec![k(), pads(20)])],
                vec![],
                "y",
            ),
            graph(
                vec![node("AveragePool", &["x"], "y", vec![k(), pads(20)])],
                vec![],
                "y",
            ),
        ] {
            g.limits = limits;
            let op = g.nodes[0].op_type.clone();
            let t = g.forward(input(1)).unwrap();
            assert_eq!(g.output_of(&t).unwrap().shape(), &[1, 1, 42, 42], "{op}");
            let msg = expect_limit(g.forward(input(16)).map(|_| ()), &op);
            assert!(msg.contains("28224"), "{op}: {msg}");
        }
    }

    #[test]
    fn the_whole_pass_is_bounded() {
        // Ten Relus, 16 * 16 elements each: every tensor fits a 1,000
        // bound, the pass (2,560 elements) does not fit 2,000.
        let mut nodes = Vec::new();
        let mut prev = "x".to_string();
        for i in 0..10 {
            let out = format!("r{i}");
            nodes.push(node("Relu", &[&prev], &out, vec![]));
            prev = out;
        }
        let mut g = graph(nodes, vec![], &prev);
        g.limits = ExecLimits {
            max_tensor_elems: 1_000,
            max_pass_elems: 2_000,
            ..ExecLimits::default()
        };
        let msg = expect_limit(g.forward(input(16)).map(|_| ()), "relu chain");
        assert!(msg.contains("forward pass"), "{msg}");
        // Within the bound it runs.
        g.limits.max_pass_elems = 3_000;
        assert!(g.forward(input(16)).is_ok());
    }

    #[test]
    fn multiply_accumulates_are_bounded() {
        // [b, 1, 4, 4] x [4, 4] is 64 MACs per image.
        let w = TensorP {
            name: "w".into(),
            dims: vec![4, 4],
            data: TensorData::F32(vec![0.25; 16]),
        };
        let mut g = graph(vec![node("MatMul", &["x", "w"], "y", vec![])], vec![w], "y");
        g.limits.max_pass_macs = 1_000;
        assert!(g.forward(input(15)).is_ok());
        let msg = expect_limit(g.forward(input(16)).map(|_| ()), "matmul");
        assert!(
            msg.contains("1024") && msg.contains("multiply-accumulates"),
            "{msg}"
        );
    }
}
