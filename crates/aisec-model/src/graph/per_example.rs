//! Per-example weight gradients for DP-SGD (Abadi et al., "Deep Learning
//! with Differential Privacy", CCS 2016), from the hand-written backward.
//!
//! The backward pass runs once for the whole batch, as [`Graph::backward`]
//! does, for every activation gradient. At a node that consumes a weight
//! (Gemm, MatMul, Conv, a broadcasting Add ...), the weight's gradient is
//! not summed over the batch: the operator's own adjoint runs on the
//! one-row slices (input row i, output-gradient row i), which for a dense
//! layer is the outer product of example i's upstream gradient and input,
//! and for a convolution the product of its output gradient with its own
//! im2col unfolding (the per-sample rules Opacus implements in
//! `grad_sample/linear.py` and `conv.py`). Only the weight-gradient part
//! runs per example; the forward pass and the activation gradients stay
//! batched, so the cost is that of one batched backward plus the
//! per-example weight products (the same multiply count as the batched
//! weight gradient).

use rayon::prelude::*;

use super::{accumulate, Graph, Tape, Val};
use crate::classifier::ModelError;

/// One-row slice `i` of a value whose leading axis is the batch.
fn row(v: &Val, i: usize, batch: usize) -> Result<Val, ModelError> {
    let s = v.shape();
    if s.first() != Some(&batch) {
        return Err(ModelError::Shape(format!(
            "per-example gradients need the batch ({batch}) on the leading axis, got {s:?}"
        )));
    }
    let n: usize = s[1..].iter().product();
    let mut shape = s.to_vec();
    shape[0] = 1;
    Ok(match v {
        Val::F(_, d) => super::fval(shape, d[i * n..(i + 1) * n].to_vec()),
        Val::I(_, d) => super::ival(shape, d[i * n..(i + 1) * n].to_vec()),
    })
}

impl Graph {
    /// Backpropagates `gout` (the gradient of the output, batch `batch` on
    /// the leading axis) and returns, for each value id in `wanted` (the
    /// weights), its per-example gradients laid out `[batch, numel]` (None
    /// where no gradient flows). A weight must be a direct input of an
    /// operator whose rows are independent ([`super::ops::Op::rows_independent`]);
    /// anything else (batch normalisation, a weight reshaped before use) is
    /// refused with [`ModelError::Unsupported`], since its per-example
    /// gradient is not defined or not available.
    pub(crate) fn backward_per_example(
        &self,
        tape: &Tape,
        gout: Vec<f32>,
        wanted: &[usize],
        batch: usize,
    ) -> Result<Vec<Option<Vec<f32>>>, ModelError> {
        // Values computed from the input carry the batch axis.
        let (from_input, _) = self.reach(&[self.input]);
        let is_wanted = |i: usize| wanted.contains(&i);
        let mut per_ex: Vec<Option<Vec<f32>>> = vec![None; self.num_values];
        self.reverse_sweep(gout, wanted, |ni, node, gouts, live, grads| {
            let (ins, outs) = tape.node_vals(node);
            // Activation gradients, batched (weights excluded).
            let need: Vec<bool> = node
                .inputs
                .iter()
                .map(|i| {
                    i.is_some_and(|i| tape.is_float(i) && live[i] && from_input[i] && !is_wanted(i))
                })
                .collect();
            let weight_slots: Vec<usize> = node
                .inputs
                .iter()
                .enumerate()
                .filter(|(_, i)| i.is_some_and(|i| live[i] && is_wanted(i)))
                .map(|(k, _)| k)
                .collect();
            // A live input that is neither batch-carrying nor a weight is a
            // weight transformed before use: no per-example rule for it.
            if node
                .inputs
                .iter()
                .flatten()
                .any(|&i| live[i] && !from_input[i] && !is_wanted(i))
            {
                return Err(ModelError::Unsupported {
                    op: format!(
                        "{} on a transformed weight (per-example gradients)",
                        node.op_type
                    ),
                    node: node.name.clone(),
                });
            }
            if need.iter().any(|&n| n) {
                let gins = tape.node_backward(ni, node, (&ins, &outs), &gouts, &need)?;
                let gins = gins.into_iter().zip(&need).map(|(g, &n)| g.filter(|_| n));
                accumulate(grads, node, gins.collect());
            }
            if weight_slots.is_empty() {
                return Ok(());
            }
            if !node.op.rows_independent() || node.outputs.len() != 1 {
                return Err(ModelError::Unsupported {
                    op: format!("{} (per-example weight gradients)", node.op_type),
                    node: node.name.clone(),
                });
            }
            let need_w: Vec<bool> = (0..node.inputs.len())
                .map(|k| weight_slots.contains(&k))
                .collect();
            let gy = gouts[0].as_deref().unwrap_or(&[]);
            let y = outs[0].ok_or_else(|| {
                ModelError::Invalid(format!("node '{}' output was not computed", node.name))
            })?;
            if y.shape().first() != Some(&batch) || gy.len() != y.numel() {
                return Err(ModelError::Shape(format!(
                    "node '{}': per-example gradients need the batch on the output's leading axis",
                    node.name
                )));
            }
            let row_len = gy.len() / batch.max(1);
            // One adjoint call per example on its one-row slices.
            let rows: Vec<Vec<Option<Vec<f32>>>> = (0..batch)
                .into_par_iter()
                .map(|e| -> Result<Vec<Option<Vec<f32>>>, ModelError> {
                    let sliced: Vec<Option<Val>> = node
                        .inputs
                        .iter()
                        .zip(&ins)
                        .map(|(i, v)| match (i, v) {
                            (Some(i), Some(v)) if from_input[*i] => row(v, e, batch).map(Some),
                            (_, Some(v)) => Ok(Some((*v).clone())),
                            _ => Ok(None),
                        })
                        .collect::<Result<_, _>>()?;
                    let sliced_ins: Vec<Option<&Val>> = sliced.iter().map(Option::as_ref).collect();
                    let y_row = row(y, e, batch)?;
                    let outs_row = [Some(&y_row)];
                    let g_row = [Some(gy[e * row_len..(e + 1) * row_len].to_vec())];
                    tape.node_backward(ni, node, (&sliced_ins, &outs_row), &g_row, &need_w)
                })
                .collect::<Result<_, _>>()?;
            for &k in &weight_slots {
                let Some(id) = node.inputs[k] else { continue };
                let numel = tape.vals[id].as_ref().map_or(0, Val::numel);
                let acc = per_ex[id].get_or_insert_with(|| vec![0.0; batch * numel]);
                for (e, r) in rows.iter().enumerate() {
                    if let Some(Some(g)) = r.get(k) {
                        if g.len() != numel {
                            return Err(ModelError::Shape(format!(
                                "node '{}': per-example gradient of length {} for a weight of {numel}",
                                node.name,
                                g.len()
                            )));
                        }
                        acc[e * numel..(e + 1) * numel]
                            .iter_mut()
                            .zip(g)
                            .for_each(|(a, b)| *a += b);
                    }
                }
            }
            Ok(())
        })?;
        Ok(wanted.iter().map(|&w| per_ex[w].take()).collect())
    }
}
