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
//!
//! Layer types: `dense`, `conv2d`, `max_pool2d`, `avg_pool2d`,
//! `global_avg_pool`, `flatten`, `relu`, `tanh`, `sigmoid`, `batch_norm`,
//! `dropout` and `residual` (a ResNet basic block, optionally with batch
//! norm). A ResNet-style net:
//!
//! ```json
//! {"input": [1, 28, 28], "layers": [
//!   {"type": "conv2d", "filters": 16, "kernel": 3, "padding": 1},
//!   {"type": "batch_norm"}, {"type": "relu"},
//!   {"type": "residual", "filters": 16, "batch_norm": true},
//!   {"type": "residual", "filters": 32, "stride": 2, "batch_norm": true},
//!   {"type": "global_avg_pool"}, {"type": "dense", "units": 10}]}
//! ```
//!
//! Models with batch norm or dropout have a training twin (batch
//! statistics, dropout masks) that [`crate::fit`] trains; the model itself,
//! its safetensors and its ONNX export use the running statistics, and
//! dropout is the identity there (an ONNX `Dropout` node at inference).
//!
//! Initialisers: `dense`, `conv2d` and `residual` layers take an optional
//! `init`, either one name for the weights (`"init": "torch"`) or
//! `{"weight": NAME, "bias": NAME}`; see [`InitKind`]. Without it weights
//! are He-uniform and biases zero (aisec's historical default, so a seed
//! gives the same network as before). `"init": "torch"` reproduces
//! PyTorch's `nn.Linear` / `nn.Conv2d` defaults, weights and biases
//! U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which membership-inference shadow
//! models need to match a torch-trained target.

use std::path::Path;

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::classifier::{ModelError, Tensor};
use crate::onnx::proto::{AttrVal, GraphP, NodeP, TensorData, TensorP, ValueInfoP};
use crate::onnx_model::OnnxModel;

/// Default-domain opset the compiled graph follows.
pub(crate) const SPEC_OPSET: i64 = 13;
const MAX_LAYERS: usize = 256;

/// An architecture: per-example input shape and a stack of layers. Unknown
/// keys are errors (a misspelt `padding` must not silently train another
/// network), as in the scan and guard config files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// Fully connected layer on `[batch, features]` (weight `[units, in]`).
    Dense {
        /// Output features.
        units: usize,
        /// Initialisers of the weight and bias (He-uniform / zeros when
        /// absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<LayerInit>,
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
        /// Initialisers of the weight and bias (He-uniform / zeros when
        /// absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<LayerInit>,
    },
    /// Max pooling with a square window (stride = window unless given).
    MaxPool2d {
        /// Window size (and the stride when `stride` is absent).
        size: usize,
        /// Stride, e.g. 1 for the overlapping pools of the Opacus MNIST CNN.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
    },
    /// Average pooling with a square window (stride = window unless given).
    AvgPool2d {
        /// Window size (and the stride when `stride` is absent).
        size: usize,
        /// Stride.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
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
    /// Batch normalisation (Ioffe & Szegedy, ICML 2015) over the channels
    /// of `[batch, c, h, w]` or the features of `[batch, f]`: scale
    /// `layerN.weight`, shift `layerN.bias`, and the running statistics
    /// `layerN.running_mean` / `layerN.running_var` that inference (and the
    /// ONNX export, a `BatchNormalization` node) uses. Training with
    /// [`crate::fit`] normalises with batch statistics and updates the
    /// running ones as PyTorch does (`momentum` weight on the new batch,
    /// unbiased batch variance).
    BatchNorm {
        /// Added to the variance.
        #[serde(default = "bn_eps")]
        eps: f32,
        /// Weight of each new batch in the running averages.
        #[serde(default = "bn_momentum")]
        momentum: f32,
    },
    /// A basic residual block (He et al., "Deep Residual Learning for Image
    /// Recognition", CVPR 2016): 3x3 conv (stride `stride`), BN, ReLU,
    /// 3x3 conv, BN, plus the input (identity) or, when the shape changes,
    /// a 1x1 convolution of it with stride `stride` and BN; then ReLU (the
    /// BN steps only with `batch_norm`). Weights `layerN.conv1.*`,
    /// `layerN.conv2.*`, `layerN.proj.*`, and with batch norm
    /// `layerN.bn1.*`, `layerN.bn2.*`, `layerN.proj_bn.*`.
    Residual {
        /// Output channels.
        filters: usize,
        /// Stride of the first conv and the projection.
        #[serde(default = "one")]
        stride: usize,
        /// Batch normalisation after each convolution.
        #[serde(default)]
        batch_norm: bool,
        /// Initialisers of every convolution of the block (He-uniform /
        /// zeros when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<LayerInit>,
    },
    /// Inverted dropout (Srivastava et al., JMLR 2014), as `nn.Dropout`:
    /// in training each value is zeroed with probability `rate` and the
    /// rest scaled by `1 / (1 - rate)`, with a mask drawn per step from the
    /// training seed; at inference (and in the ONNX export) the identity.
    Dropout {
        /// Drop probability, in [0, 1).
        rate: f32,
    },
}

/// A named weight initialiser. `fan_in` / `fan_out` are PyTorch's:
/// `in * k * k` and `out * k * k` for a convolution with a `k x k` kernel,
/// `in` and `out` for a dense layer; a bias uses its layer's fans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitKind {
    /// PyTorch's default for `nn.Linear` / `nn.Conv2d`:
    /// `kaiming_uniform_(a = sqrt(5))`, i.e. U(-b, b) with
    /// `b = 1 / sqrt(fan_in)`, for weights and biases alike.
    Torch,
    /// He et al. (ICCV 2015) uniform: U(-b, b), `b = sqrt(6 / fan_in)`.
    HeUniform,
    /// He normal: N(0, 2 / fan_in).
    HeNormal,
    /// Glorot & Bengio (AISTATS 2010) uniform: U(-b, b),
    /// `b = sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform,
    /// Glorot normal: N(0, 2 / (fan_in + fan_out)).
    GlorotNormal,
    /// All zeros.
    Zeros,
}

/// The `init` of a layer: one initialiser for the weights (the bias then
/// follows the usual pairing: `torch` biases for `torch` weights, zeros
/// otherwise), or both named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayerInit {
    /// `"init": "torch"`.
    Weight(InitKind),
    /// `"init": {"weight": "he_normal", "bias": "zeros"}`.
    Both {
        /// Weight initialiser.
        weight: InitKind,
        /// Bias initialiser.
        #[serde(default = "zeros_init")]
        bias: InitKind,
    },
}

fn zeros_init() -> InitKind {
    InitKind::Zeros
}

impl LayerInit {
    /// `(weight, bias)` initialisers of a layer with `init` (the defaults
    /// when `None`).
    fn pair(init: Option<LayerInit>) -> (InitKind, InitKind) {
        match init {
            None => (InitKind::HeUniform, InitKind::Zeros),
            Some(LayerInit::Weight(InitKind::Torch)) => (InitKind::Torch, InitKind::Torch),
            Some(LayerInit::Weight(w)) => (w, InitKind::Zeros),
            Some(LayerInit::Both { weight, bias }) => (weight, bias),
        }
    }
}

fn bn_eps() -> f32 {
    1e-5
}
fn bn_momentum() -> f32 {
    0.1
}

/// A batch-norm layer of a spec: its weight prefix and settings, for the
/// training loop's running-statistics update.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BnSite {
    /// Weight prefix, e.g. `layer3` or `layer4.bn1`.
    pub prefix: String,
    /// Running-average weight of a new batch.
    pub momentum: f32,
    /// Values per channel per example (h*w, or 1 for features).
    pub spatial: usize,
}

impl BnSite {
    /// The training-graph node whose outputs 1 and 2 are the batch mean and
    /// the biased batch variance.
    pub(crate) fn stats_node(&self) -> String {
        format!("{}.batch_stats", self.prefix)
    }
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
        if s.input.is_empty() || s.input.len() > 3 {
            return Err(ModelError::Invalid(
                "spec: input must be [features] or [c, h, w]".into(),
            ));
        }
        for l in &s.layers {
            if let LayerSpec::BatchNorm { eps, momentum } = l {
                if !(eps.is_finite() && *eps > 0.0 && (0.0..=1.0).contains(momentum)) {
                    return Err(ModelError::Invalid(
                        "spec: batch_norm needs eps > 0 and momentum in [0, 1]".into(),
                    ));
                }
            }
            if let LayerSpec::Dropout { rate } = l {
                if !(0.0..1.0).contains(rate) {
                    return Err(ModelError::Invalid(format!(
                        "spec: dropout rate {rate} is not in [0, 1)"
                    )));
                }
            }
        }
        Ok(s)
    }

    /// The spec as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// True when some layer behaves differently in training (batch norm,
    /// dropout with a positive rate).
    pub fn has_train_mode(&self) -> bool {
        self.has_dropout() || !self.bn_sites().is_empty()
    }

    /// True when the spec has a dropout layer with a positive rate.
    pub fn has_dropout(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l, LayerSpec::Dropout { rate } if *rate > 0.0))
    }

    /// The batch-norm layers, in graph order.
    pub(crate) fn bn_sites(&self) -> Vec<BnSite> {
        self.build(None, 0, true)
            .map(|(_, s)| s)
            .unwrap_or_default()
    }

    /// Compiles the spec into its inference graph; see
    /// [`ArchSpec::to_graph_mode`].
    pub(crate) fn to_graph(
        &self,
        weights: Option<&[(String, Tensor)]>,
        seed: u64,
    ) -> Result<GraphP, ModelError> {
        self.to_graph_mode(weights, seed, false)
    }

    /// Compiles the spec into a graph; weights come from `weights` when
    /// given (by name, `layerN.weight` / `layerN.bias` ...), otherwise they
    /// are initialised with He-uniform values from `seed` (He et al., ICCV
    /// 2015). With `train`, batch norm uses batch statistics (the fused
    /// `ai.aisec::BatchNormTrain` operator, which also outputs them) and the
    /// running statistics stay unused initializers; the weight list and
    /// order are the same in both modes.
    pub(crate) fn to_graph_mode(
        &self,
        weights: Option<&[(String, Tensor)]>,
        seed: u64,
        train: bool,
    ) -> Result<GraphP, ModelError> {
        Ok(self.build_modes(weights, seed, train, train)?.0)
    }

    fn build(
        &self,
        weights: Option<&[(String, Tensor)]>,
        seed: u64,
        train: bool,
    ) -> Result<(GraphP, Vec<BnSite>), ModelError> {
        self.build_modes(weights, seed, train, train)
    }

    /// [`ArchSpec::build`] with batch norm (`train_bn`) and dropout
    /// (`train_dropout`) switched to training mode separately.
    fn build_modes(
        &self,
        weights: Option<&[(String, Tensor)]>,
        seed: u64,
        train: bool,
        train_dropout: bool,
    ) -> Result<(GraphP, Vec<BnSite>), ModelError> {
        let mut b = Builder {
            sites: Vec::new(),
            names: Default::default(),
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            weights,
            nodes: Vec::new(),
            inits: Vec::new(),
            train,
            train_dropout,
            total_params: 0,
            init: LayerInit::pair(None),
        };
        let mut shape = self.input.clone();
        let mut cur = "x".to_string();
        for (i, l) in self.layers.iter().enumerate() {
            let out = format!("h{i}");
            let name = format!("layer{i}");
            let bad = |what: &str| {
                ModelError::Shape(format!(
                    "spec layer {i} ({what}) cannot take input {shape:?}"
                ))
            };
            match l {
                LayerSpec::Dense { units, init } => {
                    if shape.len() != 1 {
                        return Err(bad("dense"));
                    }
                    let u = lim(*units)?;
                    let (wi, bi) = LayerInit::pair(*init);
                    let fans = (shape[0], u);
                    let w = b.param(
                        format!("{name}.weight"),
                        vec![u, shape[0]],
                        Init::Draw(wi, fans),
                    )?;
                    let bias = b.param(format!("{name}.bias"), vec![u], Init::Draw(bi, fans))?;
                    b.node(
                        &name,
                        "Gemm",
                        vec![cur.clone(), w, bias],
                        &out,
                        vec![("transB".into(), AttrVal::I(1))],
                    );
                    shape = vec![u];
                }
                LayerSpec::Conv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                    init,
                } => {
                    if shape.len() != 3 {
                        return Err(bad("conv2d"));
                    }
                    b.init = LayerInit::pair(*init);
                    shape = b
                        .conv(
                            &name,
                            &name,
                            &cur,
                            &out,
                            &shape,
                            ConvShape::new(*filters, *kernel, *stride, *padding),
                        )
                        .map_err(|_| bad("conv2d"))?;
                }
                LayerSpec::Dropout { rate } => b.dropout(&name, &cur, &out, *rate),
                LayerSpec::MaxPool2d { size, stride } | LayerSpec::AvgPool2d { size, stride } => {
                    let k = lim(*size)?;
                    let st = lim(stride.unwrap_or(*size))?;
                    if shape.len() != 3 || shape[1] < k || shape[2] < k {
                        return Err(bad("pool"));
                    }
                    let op = if matches!(l, LayerSpec::MaxPool2d { .. }) {
                        "MaxPool"
                    } else {
                        "AveragePool"
                    };
                    b.node(
                        &name,
                        op,
                        vec![cur.clone()],
                        &out,
                        vec![
                            ("kernel_shape".into(), AttrVal::Is(vec![k as i64; 2])),
                            ("strides".into(), AttrVal::Is(vec![st as i64; 2])),
                        ],
                    );
                    shape = vec![shape[0], (shape[1] - k) / st + 1, (shape[2] - k) / st + 1];
                }
                LayerSpec::GlobalAvgPool => {
                    if shape.len() != 3 {
                        return Err(bad("global_avg_pool"));
                    }
                    // Flatten right away so a dense layer can follow.
                    let pooled = format!("{out}_pooled");
                    b.node(
                        &name,
                        "GlobalAveragePool",
                        vec![cur.clone()],
                        &pooled,
                        vec![],
                    );
                    b.node(&name, "Flatten", vec![pooled], &out, vec![]);
                    shape = vec![shape[0]];
                }
                LayerSpec::Flatten => {
                    b.node(&name, "Flatten", vec![cur.clone()], &out, vec![]);
                    shape = vec![shape.iter().product()];
                }
                LayerSpec::Relu => b.node(&name, "Relu", vec![cur.clone()], &out, vec![]),
                LayerSpec::Tanh => b.node(&name, "Tanh", vec![cur.clone()], &out, vec![]),
                LayerSpec::Sigmoid => b.node(&name, "Sigmoid", vec![cur.clone()], &out, vec![]),
                LayerSpec::BatchNorm { eps, momentum } => {
                    if shape.len() != 1 && shape.len() != 3 {
                        return Err(bad("batch_norm"));
                    }
                    b.batch_norm(&name, &cur, &out, &shape, *eps, *momentum)?;
                }
                LayerSpec::Residual {
                    filters,
                    stride,
                    batch_norm,
                    init,
                } => {
                    if shape.len() != 3 {
                        return Err(bad("residual"));
                    }
                    b.init = LayerInit::pair(*init);
                    let (f, s) = (lim(*filters)?, lim(*stride)?);
                    let c1 = format!("{name}.c1");
                    let mut sh = b
                        .conv(
                            &name,
                            &format!("{name}.conv1"),
                            &cur,
                            &c1,
                            &shape,
                            ConvShape::new(f, 3, s, 1),
                        )
                        .map_err(|_| bad("residual"))?;
                    let mut a = c1;
                    if *batch_norm {
                        let o = format!("{name}.n1");
                        b.batch_norm(&format!("{name}.bn1"), &a, &o, &sh, 1e-5, 0.1)?;
                        a = o;
                    }
                    let r1 = format!("{name}.r1");
                    b.node(&name, "Relu", vec![a], &r1, vec![]);
                    let c2 = format!("{name}.c2");
                    sh = b
                        .conv(
                            &name,
                            &format!("{name}.conv2"),
                            &r1,
                            &c2,
                            &sh,
                            ConvShape::new(f, 3, 1, 1),
                        )
                        .map_err(|_| bad("residual"))?;
                    let mut main = c2;
                    if *batch_norm {
                        let o = format!("{name}.n2");
                        b.batch_norm(&format!("{name}.bn2"), &main, &o, &sh, 1e-5, 0.1)?;
                        main = o;
                    }
                    let skip = if f == shape[0] && s == 1 {
                        cur.clone()
                    } else {
                        let p = format!("{name}.p");
                        let psh = b
                            .conv(
                                &name,
                                &format!("{name}.proj"),
                                &cur,
                                &p,
                                &shape,
                                ConvShape::new(f, 1, s, 0),
                            )
                            .map_err(|_| bad("residual"))?;
                        if psh != sh {
                            return Err(bad("residual"));
                        }
                        if *batch_norm {
                            let o = format!("{name}.pn");
                            b.batch_norm(&format!("{name}.proj_bn"), &p, &o, &sh, 1e-5, 0.1)?;
                            o
                        } else {
                            p
                        }
                    };
                    let sum = format!("{name}.sum");
                    b.node(&name, "Add", vec![main, skip], &sum, vec![]);
                    b.node(&name, "Relu", vec![sum], &out, vec![]);
                    shape = sh;
                }
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
        let g = GraphP {
            nodes: b.nodes,
            initializers: b.inits,
            inputs: vec![ValueInfoP {
                name: "x".into(),
                dims: in_dims,
            }],
            outputs: vec![ValueInfoP {
                name: cur,
                dims: vec![None, Some(shape[0])],
            }],
        };
        Ok((g, b.sites))
    }
}

/// A square convolution's filters, kernel size, stride and zero padding.
#[derive(Debug, Clone, Copy)]
struct ConvShape {
    filters: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
}

impl ConvShape {
    fn new(filters: usize, kernel: usize, stride: usize, pad: usize) -> ConvShape {
        ConvShape {
            filters,
            kernel,
            stride,
            pad,
        }
    }
}

fn lim(v: usize) -> Result<usize, ModelError> {
    if v == 0 || v > 1 << 20 {
        Err(ModelError::Invalid(format!("spec: bad size {v}")))
    } else {
        Ok(v)
    }
}

/// How a parameter without given weights starts.
#[derive(Clone, Copy)]
enum Init {
    /// Drawn by an initialiser with the layer's `(fan_in, fan_out)`.
    Draw(InitKind, (usize, usize)),
    Zero,
    One,
}

impl InitKind {
    /// `n` values drawn from `rng`; `fans` is `(fan_in, fan_out)`.
    /// He-uniform draws exactly as aisec always has (one
    /// `gen_range(-b..b)` per value), so old seeds give old networks.
    pub(crate) fn draw(self, n: usize, fans: (usize, usize), rng: &mut impl Rng) -> Vec<f32> {
        let fi = fans.0.max(1) as f32;
        let fio = (fans.0 + fans.1).max(1) as f32;
        let uniform = |b: f32, rng: &mut dyn rand::RngCore| -> Vec<f32> {
            (0..n).map(|_| rng.gen_range(-b..b)).collect()
        };
        let normal = |std: f32, rng: &mut dyn rand::RngCore| -> Vec<f32> {
            (0..n).map(|_| std * std_normal(rng)).collect()
        };
        match self {
            InitKind::Torch => uniform(1.0 / fi.sqrt(), rng),
            InitKind::HeUniform => uniform((6.0 / fi).sqrt(), rng),
            InitKind::HeNormal => normal((2.0 / fi).sqrt(), rng),
            InitKind::GlorotUniform => uniform((6.0 / fio).sqrt(), rng),
            InitKind::GlorotNormal => normal((2.0 / fio).sqrt(), rng),
            InitKind::Zeros => vec![0.0; n],
        }
    }
}

/// One standard normal draw (Box & Muller 1958), in f64 then rounded.
fn std_normal(rng: &mut dyn rand::RngCore) -> f32 {
    let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.gen();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

struct Builder<'a> {
    rng: rand::rngs::StdRng,
    weights: Option<&'a [(String, Tensor)]>,
    nodes: Vec<NodeP>,
    inits: Vec<TensorP>,
    /// Batch norm by batch statistics (the training twin).
    train: bool,
    /// Dropout active (the training twin, and the dropout-only twin of
    /// adversarial training).
    train_dropout: bool,
    sites: Vec<BnSite>,
    names: std::collections::HashSet<String>,
    total_params: usize,
    /// `(weight, bias)` initialisers of the convolutions being built.
    init: (InitKind, InitKind),
}

impl Builder<'_> {
    fn node(
        &mut self,
        name: &str,
        op: &str,
        ins: Vec<String>,
        out: &str,
        attrs: Vec<(String, AttrVal)>,
    ) {
        // ONNX requires unique node names; later nodes of a layer get a
        // suffix.
        let mut unique = name.to_string();
        let mut k = 1;
        while self.names.contains(&unique) {
            unique = format!("{name}/{k}");
            k += 1;
        }
        self.names.insert(unique.clone());
        self.nodes.push(NodeP {
            name: unique,
            op_type: op.into(),
            domain: String::new(),
            inputs: ins,
            outputs: vec![out.into()],
            attrs,
        });
    }

    /// Adds a float initializer (from the given weights or initialised)
    /// and returns its name.
    fn param(&mut self, name: String, dims: Vec<usize>, init: Init) -> Result<String, ModelError> {
        // Hostile specs: a checked product (four dims of up to 2^20 would
        // overflow), at most 2^26 values per parameter and 2^28 in total.
        let n = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= 1 << 26)
            .ok_or_else(|| ModelError::Invalid(format!("spec: parameter {name} too large")))?;
        self.total_params = self.total_params.saturating_add(n);
        if self.total_params > 1 << 28 {
            return Err(ModelError::Invalid(
                "spec: more than 2^28 parameters in total".into(),
            ));
        }
        let data = match self.weights {
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
            None => match init {
                Init::Zero => vec![0.0; n],
                Init::One => vec![1.0; n],
                Init::Draw(kind, fans) => kind.draw(n, fans, &mut self.rng),
            },
        };
        self.inits.push(TensorP {
            name: name.clone(),
            dims,
            data: TensorData::F32(data),
        });
        Ok(name)
    }

    /// A convolution `prefix.weight` / `prefix.bias`; returns the output
    /// shape.
    fn conv(
        &mut self,
        node: &str,
        prefix: &str,
        input: &str,
        out: &str,
        shape: &[usize],
        c: ConvShape,
    ) -> Result<Vec<usize>, ModelError> {
        let (f, k, s, p) = (lim(c.filters)?, lim(c.kernel)?, lim(c.stride)?, c.pad);
        if shape[1] + 2 * p < k || shape[2] + 2 * p < k || p > 1 << 10 {
            return Err(ModelError::Shape("conv does not fit".into()));
        }
        let fans = (shape[0] * k * k, f * k * k);
        let (wi, bi) = self.init;
        let w = self.param(
            format!("{prefix}.weight"),
            vec![f, shape[0], k, k],
            Init::Draw(wi, fans),
        )?;
        let b = self.param(format!("{prefix}.bias"), vec![f], Init::Draw(bi, fans))?;
        self.node(
            node,
            "Conv",
            vec![input.into(), w, b],
            out,
            vec![
                ("kernel_shape".into(), AttrVal::Is(vec![k as i64; 2])),
                ("strides".into(), AttrVal::Is(vec![s as i64; 2])),
                ("pads".into(), AttrVal::Is(vec![p as i64; 4])),
            ],
        );
        Ok(vec![
            f,
            (shape[1] + 2 * p - k) / s + 1,
            (shape[2] + 2 * p - k) / s + 1,
        ])
    }

    /// Dropout at `rate`: the ONNX `Dropout` node (the identity at
    /// inference, its ratio a `Constant`) or, in the training graph, the
    /// seeded `ai.aisec::DropoutTrain` with its integer seed initializer
    /// `prefix.dropout_seed` (not a weight; the training loop sets it per
    /// step).
    fn dropout(&mut self, prefix: &str, input: &str, out: &str, rate: f32) {
        if !self.train_dropout {
            let ratio = format!("{prefix}.ratio");
            self.node(
                &ratio,
                "Constant",
                vec![],
                &ratio,
                vec![("value_float".into(), AttrVal::F(rate))],
            );
            self.node(prefix, "Dropout", vec![input.into(), ratio], out, vec![]);
            return;
        }
        let seed = format!("{prefix}.dropout_seed");
        self.inits.push(TensorP {
            name: seed.clone(),
            dims: vec![1],
            data: TensorData::I64(vec![0]),
        });
        self.node(
            prefix,
            "DropoutTrain",
            vec![input.into(), seed],
            out,
            vec![("ratio".into(), AttrVal::F(rate))],
        );
        if let Some(n) = self.nodes.last_mut() {
            n.domain = "ai.aisec".into();
        }
    }

    /// Batch norm over the channel (first non-batch) axis of a value of
    /// per-example `shape`.
    fn batch_norm(
        &mut self,
        prefix: &str,
        input: &str,
        out: &str,
        shape: &[usize],
        eps: f32,
        momentum: f32,
    ) -> Result<(), ModelError> {
        let c = shape[0];
        let g = self.param(format!("{prefix}.weight"), vec![c], Init::One)?;
        let bta = self.param(format!("{prefix}.bias"), vec![c], Init::Zero)?;
        let rm = self.param(format!("{prefix}.running_mean"), vec![c], Init::Zero)?;
        let rv = self.param(format!("{prefix}.running_var"), vec![c], Init::One)?;
        self.sites.push(BnSite {
            prefix: prefix.into(),
            momentum,
            spatial: shape[1..].iter().product(),
        });
        if !self.train {
            self.node(
                prefix,
                "BatchNormalization",
                vec![input.into(), g, bta, rm, rv],
                out,
                vec![
                    ("epsilon".into(), AttrVal::F(eps)),
                    ("momentum".into(), AttrVal::F(1.0 - momentum)),
                ],
            );
            return Ok(());
        }
        // Fused training-mode batch norm (graph/bn_train.rs): outputs y and
        // the batch mean and variance the training loop reads.
        let name = BnSite {
            prefix: prefix.into(),
            momentum,
            spatial: 1,
        }
        .stats_node();
        self.names.insert(name.clone());
        self.nodes.push(NodeP {
            name,
            op_type: "BatchNormTrain".into(),
            domain: "ai.aisec".into(),
            inputs: vec![input.into(), g, bta],
            outputs: vec![
                out.into(),
                format!("{prefix}.mean"),
                format!("{prefix}.var"),
            ],
            attrs: vec![("epsilon".into(), AttrVal::F(eps))],
        });
        Ok(())
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

    /// The training-mode twin of a spec model: the same weights (taken
    /// from `model`), with batch norm normalising by batch statistics and
    /// dropout active (its masks drawn from the seed given to
    /// [`OnnxModel::set_dropout_seed`]; 0 until one is set). Training
    /// loops outside [`crate::fit`] (DP-SGD) step the twin and copy its
    /// weights back with [`OnnxModel::set_weight`].
    pub fn spec_train_twin(spec: &ArchSpec, model: &OnnxModel) -> Result<OnnxModel, ModelError> {
        let ws: Vec<(String, Tensor)> = model
            .weight_names()
            .into_iter()
            .filter_map(|n| model.weight(&n).map(|t| (n, t)))
            .collect();
        let g = spec.to_graph_mode(Some(&ws), 0, true)?;
        let twin = OnnxModel::from_graph_owned(g, SPEC_OPSET, Some(spec.input.clone()))?;
        if twin.weight_names() != model.weight_names() {
            return Err(ModelError::Invalid(
                "model's weights do not match the spec".into(),
            ));
        }
        Ok(twin)
    }

    /// The dropout-only twin of a spec model: like
    /// [`OnnxModel::spec_train_twin`] with dropout active, but batch norm
    /// kept in inference form (running statistics). Adversarial
    /// fine-tuning steps this twin (dropout regularises the weight update)
    /// while its inner attack runs on the inference model.
    pub fn spec_dropout_twin(spec: &ArchSpec, model: &OnnxModel) -> Result<OnnxModel, ModelError> {
        let ws: Vec<(String, Tensor)> = model
            .weight_names()
            .into_iter()
            .filter_map(|n| model.weight(&n).map(|t| (n, t)))
            .collect();
        let g = spec.build_modes(Some(&ws), 0, false, true)?.0;
        let twin = OnnxModel::from_graph_owned(g, SPEC_OPSET, Some(spec.input.clone()))?;
        if twin.weight_names() != model.weight_names() {
            return Err(ModelError::Invalid(
                "model's weights do not match the spec".into(),
            ));
        }
        Ok(twin)
    }

    /// Sets the mask seed of every training-mode dropout layer (each layer
    /// mixes in its position, so layers drop independently); a given seed
    /// always gives the same masks. Models without training-mode dropout
    /// (inference graphs, ONNX files) are unchanged.
    pub fn set_dropout_seed(&mut self, seed: u64) {
        self.graph.set_dropout_seed(seed);
    }

    /// Whether the model has training-mode dropout (a spec model's
    /// training twin with a `dropout` layer).
    pub fn has_train_dropout(&self) -> bool {
        self.graph.has_dropout()
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

#[cfg(test)]
#[path = "spec_train_tests.rs"]
mod train_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_spec_keys_are_errors() {
        let ok = r#"{"input": [4], "layers": [{"type": "dense", "units": 2}]}"#;
        assert!(ArchSpec::parse(ok).is_ok());
        for bad in [
            r#"{"input": [4], "layers": [{"type": "dense", "units": 2, "unit": 3}]}"#,
            r#"{"input": [4], "layers": [{"type": "dense", "units": 2}], "classes": 2}"#,
            "input = [4]\nlayer = []\nlayers = [{ type = \"relu\" }]\n",
        ] {
            let e = ArchSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains("unknown field"), "{bad}: {e}");
        }
    }
    use crate::classifier::{Classifier, Loss};

    #[test]
    fn oversized_specs_are_errors_not_allocations() {
        // A 2^20 x 2^20 dense layer would be 2^40 weights; a conv with 2^20
        // filters over 2^10 channels with a 2^5 kernel would be 2^45.
        for text in [
            r#"{"input": [1048576], "layers": [{"type": "dense", "units": 1048576}]}"#,
            r#"{"input": [1024, 32, 32], "layers": [{"type": "conv2d", "filters": 1048576, "kernel": 32}]}"#,
        ] {
            let spec = ArchSpec::parse(text).unwrap();
            // Refused before anything is allocated (the error names the layer).
            assert!(OnnxModel::from_spec(&spec, 0).is_err(), "{text}");
        }
    }

    fn vals(n: usize, seed: u64) -> Vec<f32> {
        let mut r = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n).map(|_| r.gen_range(-1.0..1.0)).collect()
    }

    const RES_BN: &str = r#"{"input": [2, 6, 6], "layers": [
        {"type": "residual", "filters": 3, "stride": 2, "batch_norm": true},
        {"type": "residual", "filters": 3, "batch_norm": true},
        {"type": "global_avg_pool"},
        {"type": "batch_norm"},
        {"type": "dense", "units": 4}]}"#;

    /// Central differences of the summed loss against the weight gradients
    /// of the training-mode graph (batch-norm statistics depend on every
    /// example, so this checks the cross-example terms too).
    #[test]
    fn train_mode_residual_batchnorm_gradients_match_finite_differences() {
        fd_check(RES_BN, vec![5, 2, 6, 6]);
        // Residual blocks without batch norm.
        fd_check(
            r#"{"input": [2, 6, 6], "layers": [
        {"type": "residual", "filters": 3, "stride": 2},
        {"type": "residual", "filters": 3},
        {"type": "global_avg_pool"},
        {"type": "dense", "units": 4}]}"#,
            vec![5, 2, 6, 6],
        );
    }

    #[test]
    fn train_mode_batchnorm_gradients_match_finite_differences() {
        fd_check(
            r#"{"input": [2, 3, 3], "layers": [{"type": "conv2d", "filters": 3, "kernel": 3, "padding": 1},
            {"type": "batch_norm"}, {"type": "flatten"}, {"type": "dense", "units": 4}]}"#,
            vec![5, 2, 3, 3],
        );
        fd_check(
            r#"{"input": [6], "layers": [{"type": "dense", "units": 5}, {"type": "batch_norm"},
            {"type": "tanh"}, {"type": "dense", "units": 4}]}"#,
            vec![5, 6],
        );
    }

    fn fd_check(text: &str, xs: Vec<usize>) {
        let spec = ArchSpec::parse(text).unwrap();
        let m0 = OnnxModel::from_spec(&spec, 5).unwrap();
        let mut m = OnnxModel::spec_train_twin(&spec, &m0).unwrap();
        // Non-trivial scales and shifts.
        for n in m.weight_names() {
            if n.ends_with("bn1.weight")
                || n.ends_with("layer3.bias")
                || n.ends_with("layer1.weight")
            {
                let mut w = m.weight(&n).unwrap();
                let k = w.data.len();
                w.data = vals(k, 9).iter().map(|v| 1.0 + 0.5 * v).collect();
                m.set_weight(&n, &w).unwrap();
            }
        }
        let n: usize = xs.iter().product();
        let x = Tensor::new(xs, vals(n, 1)).unwrap();
        let loss = Loss::CrossEntropy {
            labels: vec![0, 1, 2, 3, 1],
        };
        let (_, grads) = m.weight_grads(&x, &loss).unwrap();
        let f = |m: &OnnxModel| -> f64 {
            let (v, _) = m.weight_grads(&x, &loss).unwrap();
            v.iter().map(|&v| f64::from(v)).sum()
        };
        let mut checked = 0;
        for (name, g) in &grads {
            if name.contains("running") {
                assert!(g.data.iter().all(|&v| v == 0.0), "{name} gets a gradient");
                continue;
            }
            let w0 = m.weight(name).unwrap();
            for i in (0..w0.data.len()).step_by((w0.data.len() / 3).max(1)) {
                // Small enough that ReLU kinks are rarely crossed.
                let h = 1e-3f32;
                let mut w = w0.clone();
                w.data[i] += h;
                m.set_weight(name, &w).unwrap();
                let up = f(&m);
                w.data[i] -= 2.0 * h;
                m.set_weight(name, &w).unwrap();
                let dn = f(&m);
                m.set_weight(name, &w0).unwrap();
                let fd = (up - dn) / (2.0 * f64::from(h));
                let an = f64::from(g.data[i]);
                assert!(
                    (fd - an).abs() <= 2e-2 * (1.0 + fd.abs().max(an.abs())),
                    "{name}[{i}]: finite difference {fd}, backward {an}"
                );
                checked += 1;
            }
        }
        assert!(checked > 10, "{checked} checks");
    }

    #[test]
    fn train_mode_batchnorm_normalises_by_batch_statistics() {
        let spec = ArchSpec::parse(
            r#"{"input": [3], "layers": [{"type": "batch_norm"}, {"type": "flatten"}]}"#,
        )
        .unwrap();
        let m0 = OnnxModel::from_spec(&spec, 0).unwrap();
        let t = OnnxModel::spec_train_twin(&spec, &m0).unwrap();
        let x = Tensor::new(
            vec![4, 3],
            vals(12, 3).iter().map(|v| 3.0 * v + 2.0).collect(),
        )
        .unwrap();
        let y = t.forward(&x).unwrap();
        for c in 0..3 {
            let col: Vec<f32> = (0..4).map(|i| y.data[i * 3 + c]).collect();
            let mean = col.iter().sum::<f32>() / 4.0;
            let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 4.0;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
                "{mean} {var}"
            );
        }
        // Eval mode with fresh running statistics (0, 1) is the identity.
        let e = m0.forward(&x).unwrap();
        for (a, b) in e.data.iter().zip(&x.data) {
            assert!((a - b / (1.0f32 + 1e-5).sqrt()).abs() < 1e-5);
        }
    }

    #[test]
    fn residual_bn_spec_exports_to_onnx_and_reloads_with_the_same_outputs() {
        let spec = ArchSpec::parse(RES_BN).unwrap();
        let mut m = OnnxModel::from_spec(&spec, 2).unwrap();
        // Non-default running statistics so the export has to carry them.
        for n in m.weight_names() {
            if n.contains("running") {
                let mut w = m.weight(&n).unwrap();
                let k = w.data.len();
                w.data = vals(k, 4).iter().map(|v| 1.0 + 0.5 * v).collect();
                m.set_weight(&n, &w).unwrap();
            }
        }
        assert_eq!(m.num_classes(), 4);
        let names = m.weight_names();
        for want in [
            "layer0.conv1.weight",
            "layer0.bn1.running_var",
            "layer0.proj.weight",
            "layer0.proj_bn.bias",
            "layer1.conv2.bias",
            "layer3.running_mean",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
        // The identity block has no projection.
        assert!(!names.iter().any(|n| n.starts_with("layer1.proj")));
        let x = Tensor::new(vec![3, 2, 6, 6], vals(3 * 72, 8)).unwrap();
        let a = m.forward(&x).unwrap();
        let back = OnnxModel::from_bytes(m.to_onnx_bytes().unwrap()).unwrap();
        let b = back.forward(&x).unwrap();
        assert_eq!(a.shape, b.shape);
        for (p, q) in a.data.iter().zip(&b.data) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
        assert_eq!(spec.bn_sites().len(), 6);
        // ONNX needs unique node names (onnxruntime refuses duplicates).
        for train in [false, true] {
            let g = spec.to_graph_mode(None, 0, train).unwrap();
            let mut names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "duplicate node names (train = {train})");
        }
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("w.safetensors");
        m.save_safetensors(&st).unwrap();
        let c = OnnxModel::from_spec_safetensors(&spec, &st)
            .unwrap()
            .forward(&x)
            .unwrap();
        assert_eq!(c.data, a.data);
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in [
            r#"{"input": [4], "layers": [{"type": "residual", "filters": 2}]}"#,
            r#"{"input": [], "layers": []}"#,
            r#"{"input": [4], "layers": [{"type": "batch_norm", "momentum": 2.0}]}"#,
            r#"{"input": [1, 2, 2], "layers": [{"type": "residual", "filters": 0}, {"type": "flatten"}]}"#,
        ] {
            let r = ArchSpec::parse(bad).and_then(|s| OnnxModel::from_spec(&s, 0));
            assert!(r.is_err(), "{bad}");
        }
    }
}
