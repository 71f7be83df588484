//! [`OnnxModel`]: an ONNX file run by the built-in executor, with input and
//! weight gradients, weight updates, and re-export to ONNX.

use std::path::Path;
use std::sync::Arc;

use crate::classifier::{Classifier, Differentiable, Loss, ModelError, Tensor};
use crate::graph::{Graph, Val};
use crate::loss::loss_and_grad;
use crate::onnx::proto::{self, GraphP};
use crate::onnx::wire::{self, fields};

/// Largest ONNX file accepted (external-data models are refused anyway).
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

/// Which intermediate value [`OnnxModel::forward_at`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tap {
    /// The input of the last `Gemm` or `MatMul` node: the penultimate
    /// features of a classifier whose last layer is fully connected.
    Penultimate,
    /// Output of layer `i` of a spec model (node `layer{i}`).
    Layer(usize),
    /// Output `output` of the node named `name`.
    Node {
        /// Node name in the ONNX graph.
        name: String,
        /// Which output of the node (0 for most operators).
        output: usize,
    },
}

/// A model loaded from ONNX (or built from a spec), ready for forward and
/// backward passes.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    pub(crate) graph: Graph,
    raw: Option<Vec<u8>>,
    spec_graph: Option<Box<GraphP>>,
    input_shape: Vec<usize>,
    num_classes: usize,
    opset: i64,
}

impl OnnxModel {
    /// Loads an ONNX file. The input's non-batch dimensions must be fixed in
    /// the file; otherwise use [`OnnxModel::from_bytes_with_shape`].
    pub fn load(path: impl AsRef<Path>) -> Result<OnnxModel, ModelError> {
        let bytes = read_bounded(path.as_ref())?;
        OnnxModel::from_bytes(bytes)
    }

    /// Parses ONNX bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<OnnxModel, ModelError> {
        OnnxModel::from_bytes_with_shape(bytes, None)
    }

    /// Parses ONNX bytes, overriding the per-example input shape.
    pub fn from_bytes_with_shape(
        bytes: Vec<u8>,
        input_shape: Option<Vec<usize>>,
    ) -> Result<OnnxModel, ModelError> {
        let m = proto::parse_model(&bytes)?;
        let mut model = OnnxModel::from_graph(&m.graph, m.opset, input_shape)?;
        model.raw = Some(bytes);
        Ok(model)
    }

    pub(crate) fn from_graph_owned(
        g: GraphP,
        opset: i64,
        input_shape: Option<Vec<usize>>,
    ) -> Result<OnnxModel, ModelError> {
        let mut m = OnnxModel::from_graph(&g, opset, input_shape)?;
        m.spec_graph = Some(Box::new(g));
        Ok(m)
    }

    pub(crate) fn from_graph(
        g: &GraphP,
        opset: i64,
        input_shape: Option<Vec<usize>>,
    ) -> Result<OnnxModel, ModelError> {
        let graph = Graph::compile(g, opset)?;
        let input_shape = match input_shape {
            Some(s) => s,
            None => graph
                .input_dims
                .iter()
                .skip(1)
                .map(|d| {
                    d.ok_or_else(|| {
                        ModelError::Shape(format!(
                            "input '{}' has a symbolic non-batch dimension; give the input shape",
                            graph.input_name
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let mut model = OnnxModel {
            graph,
            raw: None,
            spec_graph: None,
            input_shape,
            num_classes: 0,
            opset,
        };
        let mut shape = vec![1];
        shape.extend_from_slice(&model.input_shape);
        let z = model.forward(&Tensor::zeros(shape))?;
        model.num_classes = z.row_len();
        Ok(model)
    }

    /// The bounds every forward pass runs under.
    pub fn exec_limits(&self) -> crate::ExecLimits {
        self.graph.limits
    }

    /// Sets the bounds every forward pass runs under (allocation per
    /// tensor and per pass, multiply-accumulates per pass); a pass past
    /// one ends with [`ModelError::Limit`] before allocating.
    pub fn set_exec_limits(&mut self, limits: crate::ExecLimits) {
        self.graph.limits = limits;
    }

    /// The default-domain opset the model was exported with.
    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// Runs the model: the graph's first output for a batch.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let tape = self.graph.forward(self.input_val(x)?)?;
        out_tensor(self.graph.output_of(&tape)?)
    }

    /// Runs the model and returns an intermediate value, flattened to
    /// `[batch, features]`: the penultimate features (the input of the last
    /// `Gemm`/`MatMul`, what activation clustering and spectral signatures
    /// read), a spec model's layer `i` output, or any node's output.
    pub fn forward_at(&self, x: &Tensor, at: &Tap) -> Result<Tensor, ModelError> {
        let id = match at {
            Tap::Penultimate => self.graph.last_node_input(&["Gemm", "MatMul"], 0),
            Tap::Layer(i) => self.graph.node_output_id(&format!("layer{i}"), 0),
            Tap::Node { name, output } => self.graph.node_output_id(name, *output),
        }
        .ok_or_else(|| ModelError::Invalid(format!("the model has no value for {at:?}")))?;
        let tape = self.graph.forward(self.input_val(x)?)?;
        let v = tape.vals[id]
            .as_ref()
            .ok_or_else(|| ModelError::Invalid(format!("{at:?} was not computed")))?;
        let mut t = out_tensor(v)?;
        let n = x.batch();
        if t.batch() != n || t.data.len() % n.max(1) != 0 {
            return Err(ModelError::Shape(format!(
                "{at:?} has shape {:?}, not batch-first for {n} examples",
                t.shape
            )));
        }
        t.shape = vec![n, t.data.len() / n.max(1)];
        Ok(t)
    }

    pub(crate) fn input_val(&self, x: &Tensor) -> Result<Val, ModelError> {
        if x.shape.len() != self.input_shape.len() + 1 || x.shape[1..] != self.input_shape[..] {
            return Err(ModelError::Shape(format!(
                "input {:?} does not match the model's [batch, {:?}]",
                x.shape, self.input_shape
            )));
        }
        // The checks of `Tensor::new`, without copying the data for them.
        let n: usize = x.shape.iter().product();
        if n != x.data.len() {
            return Err(ModelError::Shape(format!(
                "shape {:?} needs {n} values, got {}",
                x.shape,
                x.data.len()
            )));
        }
        Ok(Val::F(x.shape.clone(), Arc::new(x.data.clone())))
    }

    /// Names of the trainable float weights (initializers), in file order.
    pub fn weight_names(&self) -> Vec<String> {
        self.graph.weights.iter().map(|w| w.0.clone()).collect()
    }

    /// One weight's current value.
    pub fn weight(&self, name: &str) -> Option<Tensor> {
        let id = self.weight_id(name)?;
        match self.graph.consts[id].as_ref()? {
            Val::F(s, d) => Some(Tensor {
                shape: s.clone(),
                data: d.to_vec(),
            }),
            Val::I(..) => None,
        }
    }

    fn weight_id(&self, name: &str) -> Option<usize> {
        self.graph.weights.iter().find(|w| w.0 == name).map(|w| w.1)
    }

    /// One float weight's data, to update in place (copied first only if
    /// a tape still shares it). Optimiser steps use it instead of a
    /// [`OnnxModel::weight`] copy and a [`OnnxModel::set_weight`] copy back.
    pub(crate) fn weight_data_mut(&mut self, name: &str) -> Option<&mut [f32]> {
        let id = self.weight_id(name)?;
        match self.graph.consts[id].as_mut()? {
            Val::F(_, d) => Some(Arc::make_mut(d).as_mut_slice()),
            Val::I(..) => None,
        }
    }

    /// Replaces one weight (same shape required).
    pub fn set_weight(&mut self, name: &str, value: &Tensor) -> Result<(), ModelError> {
        let id = self
            .weight_id(name)
            .ok_or_else(|| ModelError::Invalid(format!("no weight named '{name}'")))?;
        let old = self.graph.consts[id]
            .as_ref()
            .map(|v| v.shape().to_vec())
            .unwrap_or_default();
        if old != value.shape || value.data.len() != old.iter().product::<usize>() {
            return Err(ModelError::Shape(format!(
                "weight '{name}' has shape {old:?}, got {:?}",
                value.shape
            )));
        }
        self.graph.consts[id] = Some(Val::F(value.shape.clone(), Arc::new(value.data.clone())));
        Ok(())
    }

    /// Per-example losses, the input gradient and the gradient of the summed
    /// loss with respect to every weight (in [`OnnxModel::weight_names`] order).
    #[allow(clippy::type_complexity)]
    pub fn weight_grads(
        &self,
        x: &Tensor,
        loss: &Loss,
    ) -> Result<(Vec<f32>, Vec<(String, Tensor)>), ModelError> {
        let (vals, grads, _) = self.weight_grads_probed(x, loss, &[])?;
        Ok((vals, grads))
    }

    /// [`OnnxModel::weight_grads`], also returning output `k` of each node
    /// `(name, k)` in `probes` (None where no such node ran).
    #[allow(clippy::type_complexity)]
    pub(crate) fn weight_grads_probed(
        &self,
        x: &Tensor,
        loss: &Loss,
        probes: &[(String, usize)],
    ) -> Result<(Vec<f32>, Vec<(String, Tensor)>, Vec<Option<Tensor>>), ModelError> {
        let tape = self.graph.forward(self.input_val(x)?)?;
        let probed = probes
            .iter()
            .map(|(p, k)| match self.graph.node_value(&tape, p, *k) {
                Some(Val::F(s, d)) => Some(Tensor {
                    shape: s.clone(),
                    data: d.to_vec(),
                }),
                _ => None,
            })
            .collect();
        let z = out_tensor(self.graph.output_of(&tape)?)?;
        let (vals, gz) = loss_and_grad(&z, loss)?;
        let ids: Vec<usize> = self.graph.weights.iter().map(|w| w.1).collect();
        let grads = self.graph.backward(&tape, gz, &ids)?;
        Ok((vals, self.named_weight_grads(grads, None), probed))
    }

    /// Names the weight gradients of a backward pass (in `graph.weights`
    /// order), shaped like their weights, behind a leading `batch` axis
    /// for per-example gradients; zeros where no gradient flowed.
    pub(crate) fn named_weight_grads(
        &self,
        grads: Vec<Option<Vec<f32>>>,
        batch: Option<usize>,
    ) -> Vec<(String, Tensor)> {
        self.graph
            .weights
            .iter()
            .zip(grads)
            .map(|((name, id), g)| {
                let wshape = self.graph.consts[*id]
                    .as_ref()
                    .map(|v| v.shape().to_vec())
                    .unwrap_or_default();
                let shape: Vec<usize> = batch.into_iter().chain(wshape).collect();
                let n = shape.iter().product();
                let data = g.unwrap_or_else(|| vec![0.0; n]);
                (name.clone(), Tensor { shape, data })
            })
            .collect()
    }

    /// One plain SGD step on the mean loss over the batch; returns the mean
    /// loss before the step.
    pub fn sgd_step(&mut self, x: &Tensor, loss: &Loss, lr: f32) -> Result<f32, ModelError> {
        let (vals, grads) = self.weight_grads(x, loss)?;
        let b = vals.len().max(1) as f32;
        for (name, g) in grads {
            if let Some(mut w) = self.weight(&name) {
                w.data
                    .iter_mut()
                    .zip(&g.data)
                    .for_each(|(w, g)| *w -= lr * g / b);
                self.set_weight(&name, &w)?;
            }
        }
        Ok(vals.iter().sum::<f32>() / b)
    }

    /// Encodes the model as ONNX with the current weights. Every other part
    /// of the original file is copied byte for byte.
    pub fn to_onnx_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let Some(raw) = self.raw.as_ref() else {
            let g = self
                .spec_graph
                .as_ref()
                .ok_or_else(|| ModelError::Invalid("model has no graph to encode".into()))?;
            return Ok(proto::encode_model(g, self.opset, &|n| self.weight(n)));
        };
        let mut out = Vec::with_capacity(raw.len());
        for f in fields(raw) {
            let f = f?;
            if f.num != 7 {
                out.extend_from_slice(f.raw);
                continue;
            }
            let mut g = Vec::with_capacity(f.bytes()?.len());
            for gf in fields(f.bytes()?) {
                let gf = gf?;
                if gf.num == 5 {
                    let t = proto::parse_tensor(gf.bytes()?)?;
                    if let Some(w) = self.weight(&t.name) {
                        wire::put_bytes_field(&mut g, 5, &encode_tensor(&t.name, &w));
                        continue;
                    }
                }
                g.extend_from_slice(gf.raw);
            }
            wire::put_bytes_field(&mut out, 7, &g);
        }
        Ok(out)
    }

    /// Writes the model as ONNX with the current weights.
    pub fn save_onnx(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        std::fs::write(path, self.to_onnx_bytes()?)?;
        Ok(())
    }
}

/// Encodes a float `TensorProto` with raw little-endian data.
pub(crate) fn encode_tensor(name: &str, t: &Tensor) -> Vec<u8> {
    let mut b = Vec::with_capacity(t.data.len() * 4 + name.len() + 32);
    for &d in &t.shape {
        wire::put_int_field(&mut b, 1, d as i64);
    }
    wire::put_int_field(&mut b, 2, 1);
    wire::put_bytes_field(&mut b, 8, name.as_bytes());
    let mut raw = Vec::with_capacity(t.data.len() * 4);
    for v in &t.data {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    wire::put_bytes_field(&mut b, 9, &raw);
    b
}

pub(crate) fn out_tensor(v: &Val) -> Result<Tensor, ModelError> {
    match v {
        Val::F(s, d) => {
            let shape = if s.len() == 1 {
                vec![s[0], 1]
            } else {
                s.clone()
            };
            let b = shape.first().copied().unwrap_or(1);
            let rest: usize = shape.iter().skip(1).product();
            Tensor::new(vec![b, rest], d.to_vec())
        }
        Val::I(..) => Err(ModelError::Invalid(
            "model output is not a float tensor".into(),
        )),
    }
}

pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>, ModelError> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_MODEL_BYTES {
        return Err(ModelError::Invalid(format!(
            "{} is {len} bytes, over the {MAX_MODEL_BYTES}-byte limit",
            path.display()
        )));
    }
    Ok(std::fs::read(path)?)
}

impl Classifier for OnnxModel {
    fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }
    fn num_classes(&self) -> usize {
        self.num_classes
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        self.forward(x)
    }
}

impl Differentiable for OnnxModel {
    fn loss_grad(&self, x: &Tensor, loss: &Loss) -> Result<(Vec<f32>, Tensor, Tensor), ModelError> {
        let tape = self.graph.forward(self.input_val(x)?)?;
        let z = out_tensor(self.graph.output_of(&tape)?)?;
        let (vals, gz) = loss_and_grad(&z, loss)?;
        let mut g = self.graph.backward(&tape, gz, &[self.graph.input])?;
        let gx = g.pop().flatten().unwrap_or_else(|| vec![0.0; x.data.len()]);
        Ok((vals, Tensor::new(x.shape.clone(), gx)?, z))
    }
}

#[cfg(test)]
impl OnnxModel {
    /// A model built from the architecture spec `json` with weights from
    /// `seed` (this crate's tests).
    pub(crate) fn test_from_spec(json: &str, seed: u64) -> OnnxModel {
        let spec = crate::spec::ArchSpec::parse(json).unwrap();
        OnnxModel::from_spec(&spec, seed).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_at_reads_penultimate_and_layer_outputs() {
        let m = OnnxModel::test_from_spec(
            r#"{"input": [4], "layers": [{"type": "dense", "units": 5}, {"type": "relu"}, {"type": "dense", "units": 3}]}"#,
            1,
        );
        let x = Tensor::new(vec![2, 4], vec![0.1, -0.2, 0.3, 0.4, 1.0, 0.0, -1.0, 0.5]).unwrap();
        let pen = m.forward_at(&x, &Tap::Penultimate).unwrap();
        let relu = m.forward_at(&x, &Tap::Layer(1)).unwrap();
        assert_eq!(pen.shape, vec![2, 5]);
        assert_eq!(pen, relu);
        assert!(pen.data.iter().all(|&v| v >= 0.0));
        // Layer 0 is the pre-activation: relu of it is the penultimate value.
        let pre = m.forward_at(&x, &Tap::Layer(0)).unwrap();
        let r: Vec<f32> = pre.data.iter().map(|v| v.max(0.0)).collect();
        assert_eq!(r, pen.data);
        let named = m
            .forward_at(
                &x,
                &Tap::Node {
                    name: "layer2".into(),
                    output: 0,
                },
            )
            .unwrap();
        assert_eq!(named, m.forward(&x).unwrap());
        assert!(m.forward_at(&x, &Tap::Layer(9)).is_err());
    }
}
