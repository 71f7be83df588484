//! Models aisec builds and trains itself: a small architecture description
//! (JSON or TOML) plus weights in a safetensors file.
//!
//! The spec is compiled into the same graph form an ONNX file becomes, so
//! spec models get the same forward/backward executor, weight gradients and
//! optimisers, and can be exported to ONNX.
//!
//! ```json
//! {"input": [1, 8, 8], "layers": [
//!   {"type": "conv2d", "filters": 8, "kernel": 3, "padding": 1},
//!   {"type": "relu"}, {"type": "max_pool2d", "size": 2},
//!   {"type": "flatten"}, {"type": "dense", "units": 10}]}
//! ```

use std::path::Path;

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::classifier::{ModelError, Tensor};
use crate::onnx::proto::{AttrVal, GraphP, NodeP, TensorData, TensorP, ValueInfoP};
use crate::onnx_model::OnnxModel;

/// Default-domain opset the compiled graph follows.
pub(crate) const SPEC_OPSET: i64 = 13;
const MAX_LAYERS: usize = 256;

/// An architecture: per-example input shape and a stack of layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchSpec {
    /// Shape of one example, e.g. `[64]` or `[1, 28, 28]`.
    pub input: Vec<usize>,
    /// Layers, applied in order; the last one's output is the logits.
    pub layers: Vec<LayerSpec>,
}

fn one() -> usize {
    1
}

/// One layer of an [`ArchSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    /// Fully connected layer on `[batch, features]` (weight `[units, in]`).
    Dense {
        /// Output features.
        units: usize,
    },
    /// 2-D convolution on `[batch, c, h, w]` (weight `[filters, c, k, k]`).
    Conv2d {
        /// Output channels.
        filters: usize,
        /// Square kernel size.
        kernel: usize,
        /// Stride.
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding on every side.
        #[serde(default)]
        padding: usize,
    },
    /// Max pooling with a square window and equal stride.
    MaxPool2d {
        /// Window size and stride.
        size: usize,
    },
    /// Average pooling with a square window and equal stride.
    AvgPool2d {
        /// Window size and stride.
        size: usize,
    },
    /// Mean over spatial positions, to `[batch, c]`.
    GlobalAvgPool,
    /// Flatten to `[batch, features]`.
    Flatten,
    /// Rectified linear unit.
    Relu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
}

impl ArchSpec {
    /// Parses a spec from JSON or TOML text (JSON if it starts with `{`).
    pub fn parse(text: &str) -> Result<ArchSpec, ModelError> {
        let s: ArchSpec = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| ModelError::Invalid(format!("spec: {e}")))?
        } else {
            toml::from_str(text).map_err(|e| ModelError::Invalid(format!("spec: {e}")))?
        };
        if s.layers.len() > MAX_LAYERS {
            return Err(ModelError::Invalid("spec: too many layers".into()));
        }
        Ok(s)
    }

    /// Compiles the spec into a graph; weights come from `weights` when
    /// given (by name, `layerN.weight` / `layerN.bias`), otherwise they are
    /// initialised with He-uniform values from `seed`.
    pub(crate) fn to_graph(
        &self,
        weights: Option<&[(String, Tensor)]>,
        seed: u64,
    ) -> Result<GraphP, ModelError> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut shape = self.input.clone();
        let mut nodes = Vec::new();
        let mut inits = Vec::new();
        let mut cur = "x".to_string();
        let lim = |v: usize| -> Result<usize, ModelError> {
            if v == 0 || v > 1 << 20 {
                Err(ModelError::Invalid(format!("spec: bad size {v}")))
            } else {
                Ok(v)
            }
        };
        let param = |name: String,
                     dims: Vec<usize>,
                     fan_in: usize,
                     bias: bool,
                     rng: &mut rand::rngs::StdRng|
         -> Result<TensorP, ModelError> {
            let n: usize = dims.iter().product();
            if n > 1 << 26 {
                return Err(ModelError::Invalid(format!(
                    "spec: parameter {name} too large"
                )));
            }
            let data = match weights {
                Some(ws) => {
                    let t = ws
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, t)| t)
                        .ok_or_else(|| ModelError::Invalid(format!("weights lack '{name}'")))?;
                    if t.shape != dims {
                        return Err(ModelError::Shape(format!(
                            "weight '{name}' has shape {:?}, spec needs {dims:?}",
                            t.shape
                        )));
                    }
                    t.data.clone()
                }
                None if bias => vec![0.0; n],
                None => {
                    let b = (6.0 / fan_in.max(1) as f32).sqrt();
                    (0..n).map(|_| rng.gen_range(-b..b)).collect()
                }
            };
            Ok(TensorP {
                name,
                dims,
                data: TensorData::F32(data),
            })
        };
        for (i, l) in self.layers.iter().enumerate() {
            let out = format!("h{i}");
            let name = format!("layer{i}");
            let mk = |op: &str, ins: Vec<String>, attrs: Vec<(String, AttrVal)>| NodeP {
                name: name.clone(),
                op_type: op.into(),
                domain: String::new(),
                inputs: ins,
                outputs: vec![out.clone()],
                attrs,
            };
            let bad = |what: &str| {
                ModelError::Shape(format!(
                    "spec layer {i} ({what}) cannot take input {shape:?}"
                ))
            };
            match l {
                LayerSpec::Dense { units } => {
                    if shape.len() != 1 {
                        return Err(bad("dense"));
                    }
                    let u = lim(*units)?;
                    let w = param(
                        format!("{name}.weight"),
                        vec![u, shape[0]],
                        shape[0],
                        false,
                        &mut rng,
                    )?;
                    let b = param(format!("{name}.bias"), vec![u], 1, true, &mut rng)?;
                    nodes.push(mk(
                        "Gemm",
                        vec![cur.clone(), w.name.clone(), b.name.clone()],
                        vec![("transB".into(), AttrVal::I(1))],
                    ));
                    inits.push(w);
                    inits.push(b);
                    shape = vec![u];
                }
                LayerSpec::Conv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                } => {
                    if shape.len() != 3 {
                        return Err(bad("conv2d"));
                    }
                    let (f, k, s, p) = (lim(*filters)?, lim(*kernel)?, lim(*stride)?, *padding);
                    if shape[1] + 2 * p < k || shape[2] + 2 * p < k || p > 1 << 10 {
                        return Err(bad("conv2d"));
                    }
                    let fan = shape[0] * k * k;
                    let w = param(
                        format!("{name}.weight"),
                        vec![f, shape[0], k, k],
                        fan,
                        false,
                        &mut rng,
                    )?;
                    let b = param(format!("{name}.bias"), vec![f], 1, true, &mut rng)?;
                    nodes.push(mk(
                        "Conv",
                        vec![cur.clone(), w.name.clone(), b.name.clone()],
                        vec![
                            ("kernel_shape".into(), AttrVal::Is(vec![k as i64; 2])),
                            ("strides".into(), AttrVal::Is(vec![s as i64; 2])),
                            ("pads".into(), AttrVal::Is(vec![p as i64; 4])),
                        ],
                    ));
                    inits.push(w);
                    inits.push(b);
                    shape = vec![
                        f,
                        (shape[1] + 2 * p - k) / s + 1,
                        (shape[2] + 2 * p - k) / s + 1,
                    ];
                }
                LayerSpec::MaxPool2d { size } | LayerSpec::AvgPool2d { size } => {
                    let k = lim(*size)?;
                    if shape.len() != 3 || shape[1] < k || shape[2] < k {
                        return Err(bad("pool"));
                    }
                    let op = if matches!(l, LayerSpec::MaxPool2d { .. }) {
                        "MaxPool"
                    } else {
                        "AveragePool"
                    };
                    nodes.push(mk(
                        op,
                        vec![cur.clone()],
                        vec![
                            ("kernel_shape".into(), AttrVal::Is(vec![k as i64; 2])),
                            ("strides".into(), AttrVal::Is(vec![k as i64; 2])),
                        ],
                    ));
                    shape = vec![shape[0], shape[1] / k, shape[2] / k];
                }
                LayerSpec::GlobalAvgPool => {
                    if shape.len() != 3 {
                        return Err(bad("global_avg_pool"));
                    }
                    nodes.push(mk("GlobalAveragePool", vec![cur.clone()], vec![]));
                    // Flatten right away so a dense layer can follow.
                    let pooled = format!("{out}_pooled");
                    if let Some(n) = nodes.last_mut() {
                        n.outputs = vec![pooled.clone()];
                    }
                    nodes.push(mk("Flatten", vec![pooled], vec![]));
                    shape = vec![shape[0]];
                }
                LayerSpec::Flatten => {
                    nodes.push(mk("Flatten", vec![cur.clone()], vec![]));
                    shape = vec![shape.iter().product()];
                }
                LayerSpec::Relu => nodes.push(mk("Relu", vec![cur.clone()], vec![])),
                LayerSpec::Tanh => nodes.push(mk("Tanh", vec![cur.clone()], vec![])),
                LayerSpec::Sigmoid => nodes.push(mk("Sigmoid", vec![cur.clone()], vec![])),
            }
            cur = out;
        }
        if shape.len() != 1 {
            return Err(ModelError::Shape(format!(
                "spec output {shape:?} is not [batch, classes]; end with flatten/dense"
            )));
        }
        let mut in_dims = vec![None];
        in_dims.extend(self.input.iter().map(|&d| Some(d)));
        Ok(GraphP {
            nodes,
            initializers: inits,
            inputs: vec![ValueInfoP {
                name: "x".into(),
                dims: in_dims,
            }],
            outputs: vec![ValueInfoP {
                name: cur,
                dims: vec![None, Some(shape[0])],
            }],
        })
    }
}

impl OnnxModel {
    /// Builds a model from a spec with freshly initialised weights.
    pub fn from_spec(spec: &ArchSpec, seed: u64) -> Result<OnnxModel, ModelError> {
        let g = spec.to_graph(None, seed)?;
        OnnxModel::from_graph_owned(g, SPEC_OPSET, Some(spec.input.clone()))
    }

    /// Builds a model from a spec and a safetensors file of its weights.
    pub fn from_spec_safetensors(
        spec: &ArchSpec,
        weights: impl AsRef<Path>,
    ) -> Result<OnnxModel, ModelError> {
        let ws = crate::safetensors::read_safetensors(weights)?;
        let g = spec.to_graph(Some(&ws), 0)?;
        OnnxModel::from_graph_owned(g, SPEC_OPSET, Some(spec.input.clone()))
    }

    /// Writes every weight to a safetensors file (F32).
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let ws: Vec<(String, Tensor)> = self
            .weight_names()
            .into_iter()
            .filter_map(|n| self.weight(&n).map(|t| (n, t)))
            .collect();
        crate::safetensors::write_safetensors(path, &ws)
    }
}
