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

use super::Node;
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

/// What an operator's forward pass sees besides its inputs: its node and
/// the pass's budget.
pub(crate) struct Cx<'a> {
    pub node: &'a Node,
    budget: &'a Budget,
}

/// Product of `dims`, saturating at `u64::MAX`.
pub(crate) fn product(dims: &[usize]) -> u64 {
    dims.iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .unwrap_or(u64::MAX)
}

impl<'a> Cx<'a> {
    pub(crate) fn new(node: &'a Node, budget: &'a Budget) -> Cx<'a> {
        Cx { node, budget }
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
