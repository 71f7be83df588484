//! BERT-style sentence encoders (e.g. all-MiniLM-L6-v2) run by the graph
//! executor.
//!
//! The weights come from a Hugging Face safetensors file (`BertModel`
//! names: `embeddings.*`, `encoder.layer.N.*`); the architecture from its
//! `config.json`. The token, position and token-type embedding lookups are
//! done here (three row reads per token); everything after them (embedding
//! layer norm, the encoder layers, mean pooling) is an ONNX graph that the
//! executor of [`crate::graph`] runs, built from the standard operators a
//! `torch.onnx` export of BERT uses: `Gemm`, `Reshape`, `Transpose`,
//! `MatMul`, `Mul`, `Softmax`, `Add`, `LayerNormalization`, `Gelu` (erf
//! form) and `ReduceMean`. One sequence runs at a time, so no attention
//! mask or padding is needed. Architecture: Devlin et al. 2019, "BERT";
//! the sentence embedding (mean of the last layer's token states, then L2
//! normalisation) is the one of Reimers & Gurevych 2019, "Sentence-BERT".

use std::path::Path;
use std::sync::Arc;

use crate::classifier::{ModelError, Tensor};
use crate::graph::{Graph, Val};
use crate::onnx::proto::{AttrVal, GraphP, NodeP, TensorData, TensorP, ValueInfoP};

const OPSET: i64 = 17;
/// Largest architecture accepted from a config file (BERT-large is 1024 / 24 / 4096).
const MAX_HIDDEN: usize = 4096;
const MAX_LAYERS: usize = 48;

/// The architecture fields of a Hugging Face BERT `config.json`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct BertConfig {
    /// Width of the token states.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (`hidden_size` must divide by it).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Longest sequence the position embeddings cover.
    pub max_position_embeddings: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Layer-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    /// Activation; only `gelu` (erf form) is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_eps() -> f32 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

impl BertConfig {
    /// Parses a `config.json` and checks that the architecture is one this
    /// module runs.
    pub fn from_json(text: &str) -> Result<BertConfig, ModelError> {
        let c: BertConfig = serde_json::from_str(text)
            .map_err(|e| ModelError::Invalid(format!("BERT config: {e}")))?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Invalid(format!("BERT config: {m}")));
        if self.hidden_size == 0 || self.hidden_size > MAX_HIDDEN {
            return bad(format!("hidden_size {}", self.hidden_size));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return bad(format!(
                "{} heads do not divide hidden_size {}",
                self.num_attention_heads, self.hidden_size
            ));
        }
        if self.num_hidden_layers == 0 || self.num_hidden_layers > MAX_LAYERS {
            return bad(format!("{} layers", self.num_hidden_layers));
        }
        if self.intermediate_size == 0 || self.intermediate_size > 4 * MAX_HIDDEN {
            return bad(format!("intermediate_size {}", self.intermediate_size));
        }
        if self.max_position_embeddings == 0 || self.max_position_embeddings > 8192 {
            return bad(format!(
                "max_position_embeddings {}",
                self.max_position_embeddings
            ));
        }
        if self.vocab_size == 0 || self.vocab_size > 1 << 20 {
            return bad(format!("vocab_size {}", self.vocab_size));
        }
        if self.hidden_act != "gelu" {
            return bad(format!("activation '{}' (only gelu)", self.hidden_act));
        }
        if !self.layer_norm_eps.is_finite() || self.layer_norm_eps <= 0.0 {
            return bad("layer_norm_eps".into());
        }
        Ok(())
    }
}

/// A BERT encoder with mean pooling.
#[derive(Debug, Clone)]
pub struct BertEncoder {
    cfg: BertConfig,
    word: Vec<f32>,
    pos: Vec<f32>,
    type0: Vec<f32>,
    graph: Graph,
}

struct Build<'a> {
    ws: &'a [(String, Tensor)],
    nodes: Vec<NodeP>,
    inits: Vec<TensorP>,
}

impl Build<'_> {
    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<String, ModelError> {
        let data = take(self.ws, name, shape)?;
        self.inits.push(TensorP {
            name: name.into(),
            dims: shape.to_vec(),
            data: TensorData::F32(data),
        });
        Ok(name.into())
    }

    fn ints(&mut self, name: &str, v: Vec<i64>) -> String {
        self.inits.push(TensorP {
            name: name.into(),
            dims: vec![v.len()],
            data: TensorData::I64(v),
        });
        name.into()
    }

    fn node(&mut self, op: &str, ins: Vec<String>, out: &str, attrs: Vec<(String, AttrVal)>) {
        self.nodes.push(NodeP {
            name: out.into(),
            op_type: op.into(),
            domain: String::new(),
            inputs: ins,
            outputs: vec![out.into()],
            attrs,
        });
    }

    fn dense(
        &mut self,
        x: &str,
        prefix: &str,
        n_in: usize,
        n_out: usize,
        out: &str,
    ) -> Result<(), ModelError> {
        let w = self.weight(&format!("{prefix}.weight"), &[n_out, n_in])?;
        let b = self.weight(&format!("{prefix}.bias"), &[n_out])?;
        self.node(
            "Gemm",
            vec![x.into(), w, b],
            out,
            vec![("transB".into(), AttrVal::I(1))],
        );
        Ok(())
    }

    fn layer_norm(
        &mut self,
        x: &str,
        prefix: &str,
        h: usize,
        eps: f32,
        out: &str,
    ) -> Result<(), ModelError> {
        let g = self.weight(&format!("{prefix}.weight"), &[h])?;
        let b = self.weight(&format!("{prefix}.bias"), &[h])?;
        self.node(
            "LayerNormalization",
            vec![x.into(), g, b],
            out,
            vec![
                ("axis".into(), AttrVal::I(-1)),
                ("epsilon".into(), AttrVal::F(eps)),
            ],
        );
        Ok(())
    }
}

fn perm(p: &[i64]) -> Vec<(String, AttrVal)> {
    vec![("perm".into(), AttrVal::Is(p.to_vec()))]
}

fn take(ws: &[(String, Tensor)], name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
    let t = ws
        .iter()
        .find(|(n, _)| n == name || n.strip_prefix("bert.") == Some(name))
        .map(|(_, t)| t)
        .ok_or_else(|| ModelError::Invalid(format!("BERT weights lack '{name}'")))?;
    if t.shape != shape {
        return Err(ModelError::Shape(format!(
            "BERT weight '{name}' has shape {:?}, expected {shape:?}",
            t.shape
        )));
    }
    Ok(t.data.clone())
}

/// What a built graph ends with.
#[derive(Debug, Clone, Copy)]
enum Tail {
    /// The mean of the last layer's token states (`[1, hidden]`).
    Pooled,
    /// That mean L2-normalised, then a linear layer (`head.weight`,
    /// `head.bias`) of this many logits (`[1, k]`).
    Head(usize),
}

/// The ONNX graph of encoder layers `layers` (with the embedding layer
/// norm when they start at 0; otherwise the input is the token states
/// that layer `layers.start - 1` wrote), ending as `tail` says.
fn graph_p(
    cfg: &BertConfig,
    ws: &[(String, Tensor)],
    layers: std::ops::Range<usize>,
    tail: Tail,
) -> Result<GraphP, ModelError> {
    let h = cfg.hidden_size;
    let heads = cfg.num_attention_heads;
    let dh = h / heads;
    let mut b = Build {
        ws,
        nodes: Vec::new(),
        inits: Vec::new(),
    };
    let heads_shape = b.ints("shape.heads", vec![-1, heads as i64, dh as i64]);
    let flat_shape = b.ints("shape.flat", vec![-1, h as i64]);
    b.inits.push(TensorP {
        name: "scale".into(),
        dims: vec![1],
        data: TensorData::F32(vec![1.0 / (dh as f32).sqrt()]),
    });
    let mut cur = if layers.start == 0 {
        b.layer_norm("x", "embeddings.LayerNorm", h, cfg.layer_norm_eps, "emb")?;
        "emb".to_string()
    } else {
        "x".to_string()
    };
    for i in layers {
        let p = format!("encoder.layer.{i}");
        let n = |s: &str| format!("l{i}.{s}");
        for (w, t) in [("query", "q"), ("key", "k"), ("value", "v")] {
            b.dense(&cur, &format!("{p}.attention.self.{w}"), h, h, &n(t))?;
            b.node(
                "Reshape",
                vec![n(t), heads_shape.clone()],
                &n(&format!("{t}r")),
                vec![],
            );
        }
        b.node("Transpose", vec![n("qr")], &n("qt"), perm(&[1, 0, 2]));
        b.node("Transpose", vec![n("kr")], &n("kt"), perm(&[1, 2, 0]));
        b.node("Transpose", vec![n("vr")], &n("vt"), perm(&[1, 0, 2]));
        b.node("MatMul", vec![n("qt"), n("kt")], &n("s"), vec![]);
        b.node("Mul", vec![n("s"), "scale".into()], &n("ss"), vec![]);
        b.node(
            "Softmax",
            vec![n("ss")],
            &n("p"),
            vec![("axis".into(), AttrVal::I(-1))],
        );
        b.node("MatMul", vec![n("p"), n("vt")], &n("c"), vec![]);
        b.node("Transpose", vec![n("c")], &n("ct"), perm(&[1, 0, 2]));
        b.node(
            "Reshape",
            vec![n("ct"), flat_shape.clone()],
            &n("cf"),
            vec![],
        );
        b.dense(
            &n("cf"),
            &format!("{p}.attention.output.dense"),
            h,
            h,
            &n("ao"),
        )?;
        b.node("Add", vec![n("ao"), cur.clone()], &n("r1"), vec![]);
        b.layer_norm(
            &n("r1"),
            &format!("{p}.attention.output.LayerNorm"),
            h,
            cfg.layer_norm_eps,
            &n("h1"),
        )?;
        b.dense(
            &n("h1"),
            &format!("{p}.intermediate.dense"),
            h,
            cfg.intermediate_size,
            &n("f"),
        )?;
        b.node("Gelu", vec![n("f")], &n("fg"), vec![]);
        b.dense(
            &n("fg"),
            &format!("{p}.output.dense"),
            cfg.intermediate_size,
            h,
            &n("fo"),
        )?;
        b.node("Add", vec![n("fo"), n("h1")], &n("r2"), vec![]);
        b.layer_norm(
            &n("r2"),
            &format!("{p}.output.LayerNorm"),
            h,
            cfg.layer_norm_eps,
            &n("out"),
        )?;
        cur = n("out");
    }
    b.node(
        "ReduceMean",
        vec![cur],
        "pooled",
        vec![
            ("axes".into(), AttrVal::Is(vec![0])),
            ("keepdims".into(), AttrVal::I(1)),
        ],
    );
    let (out, width) = match tail {
        Tail::Pooled => ("pooled", h),
        Tail::Head(k) => {
            // The sentence-transformers embedding (L2-normalised mean),
            // then a linear layer of `k` logits.
            b.node(
                "ReduceL2",
                vec!["pooled".into()],
                "norm",
                vec![
                    ("axes".into(), AttrVal::Is(vec![1])),
                    ("keepdims".into(), AttrVal::I(1)),
                ],
            );
            b.node(
                "Div",
                vec!["pooled".into(), "norm".into()],
                "embedding",
                vec![],
            );
            b.dense("embedding", "head", h, k, "logits")?;
            ("logits", k)
        }
    };
    Ok(GraphP {
        nodes: b.nodes,
        initializers: b.inits,
        inputs: vec![ValueInfoP {
            name: "x".into(),
            dims: vec![None, Some(h)],
        }],
        outputs: vec![ValueInfoP {
            name: out.into(),
            dims: vec![Some(1), Some(width)],
        }],
    })
}

/// Encoder layers `first_layer..` of a BERT, mean-pooled and
/// L2-normalised, then a linear head (`head.weight` `[k, hidden]` and
/// `head.bias` `[k]`, taken from `ws` like the encoder's weights): a
/// classifier whose input is the token states that layer `first_layer - 1`
/// wrote ([`BertEncoder::states_after`]), one sequence per call
/// (`[tokens, hidden]`), with output `[1, k]`. Made to fine-tune the top
/// layers on cached states ([`crate::train::Trainer::step_summed`]); the
/// constant `scale` (1/sqrt(head width)) is among its weights and should
/// be frozen.
pub fn top_classifier(
    cfg: &BertConfig,
    ws: &[(String, Tensor)],
    first_layer: usize,
    k: usize,
) -> Result<crate::OnnxModel, ModelError> {
    cfg.check()?;
    if first_layer >= cfg.num_hidden_layers || k == 0 {
        return Err(ModelError::Invalid(format!(
            "top classifier from layer {first_layer} of {} with {k} outputs",
            cfg.num_hidden_layers
        )));
    }
    let g = graph_p(cfg, ws, first_layer..cfg.num_hidden_layers, Tail::Head(k))?;
    crate::OnnxModel::from_graph_owned(g, OPSET, Some(vec![cfg.hidden_size]))
}

impl BertEncoder {
    /// Loads `config.json` and `model.safetensors` from a model directory
    /// (the layout of a sentence-transformers package).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<BertEncoder, ModelError> {
        let dir = dir.as_ref();
        let cfg = std::fs::read_to_string(dir.join("config.json")).map_err(|e| {
            ModelError::Invalid(format!("{}: {e}", dir.join("config.json").display()))
        })?;
        let cfg = BertConfig::from_json(&cfg)?;
        let ws = crate::safetensors::read_safetensors(dir.join("model.safetensors"))?;
        BertEncoder::from_weights(cfg, &ws)
    }

    /// Builds the encoder from named weights.
    pub fn from_weights(
        cfg: BertConfig,
        ws: &[(String, Tensor)],
    ) -> Result<BertEncoder, ModelError> {
        cfg.check()?;
        let h = cfg.hidden_size;
        let word = take(
            ws,
            "embeddings.word_embeddings.weight",
            &[cfg.vocab_size, h],
        )?;
        let pos = take(
            ws,
            "embeddings.position_embeddings.weight",
            &[cfg.max_position_embeddings, h],
        )?;
        let types = ws
            .iter()
            .find(|(n, _)| n.ends_with("embeddings.token_type_embeddings.weight"))
            .map(|(_, t)| t)
            .ok_or_else(|| ModelError::Invalid("BERT weights lack token_type_embeddings".into()))?;
        if types.shape.len() != 2 || types.shape[1] != h || types.shape[0] == 0 {
            return Err(ModelError::Shape(format!(
                "token_type_embeddings {:?}",
                types.shape
            )));
        }
        let type0 = types.data[..h].to_vec();
        let g = graph_p(&cfg, ws, 0..cfg.num_hidden_layers, Tail::Pooled)?;
        let graph = Graph::compile(&g, OPSET)?;
        Ok(BertEncoder {
            cfg,
            word,
            pos,
            type0,
            graph,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &BertConfig {
        &self.cfg
    }

    /// Mean of the last layer's token states over `ids` (which should
    /// include the `[CLS]` and `[SEP]` tokens), L2-normalised: the
    /// sentence-transformers embedding.
    pub fn embed(&self, ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        let h = self.cfg.hidden_size;
        let tape = self.graph.forward(self.input(ids)?)?;
        let mut v = match self.graph.output_of(&tape)? {
            Val::F(_, d) => d.to_vec(),
            Val::I(..) => return Err(ModelError::Invalid("encoder output is not float".into())),
        };
        if v.len() != h {
            return Err(ModelError::Shape(format!(
                "pooled output has {} values",
                v.len()
            )));
        }
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
        v.iter_mut().for_each(|a| *a /= n);
        Ok(v)
    }

    /// The token states that encoder layer `layer` writes for `ids`
    /// (`ids.len() x hidden`, row-major): the input of
    /// [`top_classifier`] when it starts at `layer + 1`. Runs the whole
    /// graph; layers above `layer` are wasted work.
    pub fn states_after(&self, ids: &[u32], layer: usize) -> Result<Vec<f32>, ModelError> {
        if layer >= self.cfg.num_hidden_layers {
            return Err(ModelError::Invalid(format!(
                "layer {layer} of {}",
                self.cfg.num_hidden_layers
            )));
        }
        let tape = self.graph.forward(self.input(ids)?)?;
        match self.graph.node_value(&tape, &format!("l{layer}.out"), 0) {
            Some(Val::F(_, d)) => Ok(d.to_vec()),
            _ => Err(ModelError::Invalid(format!("no states of layer {layer}"))),
        }
    }

    /// The graph's input for `ids` (`ids.len() x hidden`, row-major): the
    /// token, position and type embeddings summed, before the embeddings'
    /// LayerNorm. The input of [`top_classifier`] when it starts at layer 0
    /// (then the LayerNorm is part of the classifier).
    pub fn input_states(&self, ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        match self.input(ids)? {
            Val::F(_, d) => Ok(d.to_vec()),
            Val::I(..) => Err(ModelError::Invalid("encoder input is not float".into())),
        }
    }

    /// The graph's input for `ids`: token, position and type embeddings summed.
    fn input(&self, ids: &[u32]) -> Result<Val, ModelError> {
        let h = self.cfg.hidden_size;
        if ids.is_empty() || ids.len() > self.cfg.max_position_embeddings {
            return Err(ModelError::Shape(format!(
                "{} tokens (1..={} allowed)",
                ids.len(),
                self.cfg.max_position_embeddings
            )));
        }
        let mut x = Vec::with_capacity(ids.len() * h);
        for (i, &id) in ids.iter().enumerate() {
            let id = id as usize;
            if id >= self.cfg.vocab_size {
                return Err(ModelError::Invalid(format!(
                    "token id {id} outside the vocabulary"
                )));
            }
            let w = &self.word[id * h..(id + 1) * h];
            let p = &self.pos[i * h..(i + 1) * h];
            x.extend(
                w.iter()
                    .zip(p)
                    .zip(&self.type0)
                    .map(|((a, b), c)| a + b + c),
            );
        }
        Ok(Val::F(vec![ids.len(), h], Arc::new(x)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_cfg() -> BertConfig {
        BertConfig {
            hidden_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 16,
            max_position_embeddings: 16,
            vocab_size: 20,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
        }
    }

    fn rand_weights(cfg: &BertConfig, seed: u64) -> Vec<(String, Tensor)> {
        let mut s = seed;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.4
        };
        let (h, f) = (cfg.hidden_size, cfg.intermediate_size);
        let mut shapes: Vec<(String, Vec<usize>)> = vec![
            (
                "embeddings.word_embeddings.weight".into(),
                vec![cfg.vocab_size, h],
            ),
            (
                "embeddings.position_embeddings.weight".into(),
                vec![cfg.max_position_embeddings, h],
            ),
            ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
            ("embeddings.LayerNorm.weight".into(), vec![h]),
            ("embeddings.LayerNorm.bias".into(), vec![h]),
        ];
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            for w in ["query", "key", "value"] {
                shapes.push((format!("{p}.attention.self.{w}.weight"), vec![h, h]));
                shapes.push((format!("{p}.attention.self.{w}.bias"), vec![h]));
            }
            shapes.push((format!("{p}.attention.output.dense.weight"), vec![h, h]));
            shapes.push((format!("{p}.attention.output.dense.bias"), vec![h]));
            shapes.push((format!("{p}.attention.output.LayerNorm.weight"), vec![h]));
            shapes.push((format!("{p}.attention.output.LayerNorm.bias"), vec![h]));
            shapes.push((format!("{p}.intermediate.dense.weight"), vec![f, h]));
            shapes.push((format!("{p}.intermediate.dense.bias"), vec![f]));
            shapes.push((format!("{p}.output.dense.weight"), vec![h, f]));
            shapes.push((format!("{p}.output.dense.bias"), vec![h]));
            shapes.push((format!("{p}.output.LayerNorm.weight"), vec![h]));
            shapes.push((format!("{p}.output.LayerNorm.bias"), vec![h]));
        }
        shapes
            .into_iter()
            .map(|(n, s)| {
                let len = s.iter().product();
                let data = if n.ends_with("LayerNorm.weight") {
                    (0..len).map(|_| 1.0 + next()).collect()
                } else {
                    (0..len).map(|_| next()).collect()
                };
                (n, Tensor { shape: s, data })
            })
            .collect()
    }

    /// The same computation written out directly (no graph), as a reference.
    fn reference(cfg: &BertConfig, ws: &[(String, Tensor)], ids: &[u32]) -> Vec<f32> {
        let get = |n: &str| {
            ws.iter()
                .find(|(k, _)| k == n)
                .map(|(_, t)| t.data.clone())
                .unwrap_or_default()
        };
        let (h, f, nh) = (
            cfg.hidden_size,
            cfg.intermediate_size,
            cfg.num_attention_heads,
        );
        let dh = h / nh;
        let l = ids.len();
        let ln = |x: &mut [f32], g: &[f32], b: &[f32]| {
            for r in x.chunks_mut(h) {
                let m = r.iter().sum::<f32>() / h as f32;
                let v = r.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / h as f32;
                let s = 1.0 / (v + cfg.layer_norm_eps).sqrt();
                for (j, a) in r.iter_mut().enumerate() {
                    *a = (*a - m) * s * g[j] + b[j];
                }
            }
        };
        let dense = |x: &[f32], w: &[f32], b: &[f32], n_in: usize, n_out: usize| -> Vec<f32> {
            let rows = x.len() / n_in;
            let mut y = vec![0.0; rows * n_out];
            for r in 0..rows {
                for o in 0..n_out {
                    y[r * n_out + o] = b[o]
                        + (0..n_in)
                            .map(|k| x[r * n_in + k] * w[o * n_in + k])
                            .sum::<f32>();
                }
            }
            y
        };
        let (we, pe, te) = (
            get("embeddings.word_embeddings.weight"),
            get("embeddings.position_embeddings.weight"),
            get("embeddings.token_type_embeddings.weight"),
        );
        let mut x: Vec<f32> = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            for j in 0..h {
                x.push(we[id as usize * h + j] + pe[i * h + j] + te[j]);
            }
        }
        ln(
            &mut x,
            &get("embeddings.LayerNorm.weight"),
            &get("embeddings.LayerNorm.bias"),
        );
        for li in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{li}");
            let g = |s: &str| get(&format!("{p}.{s}"));
            let lin = |x: &[f32], name: &str, n_in: usize, n_out: usize| {
                dense(
                    x,
                    &g(&format!("{name}.weight")),
                    &g(&format!("{name}.bias")),
                    n_in,
                    n_out,
                )
            };
            let norm = |x: &mut [f32], name: &str| {
                ln(
                    x,
                    &g(&format!("{name}.weight")),
                    &g(&format!("{name}.bias")),
                );
            };
            let q = lin(&x, "attention.self.query", h, h);
            let k = lin(&x, "attention.self.key", h, h);
            let v = lin(&x, "attention.self.value", h, h);
            let mut ctx = vec![0.0; l * h];
            for hd in 0..nh {
                for a in 0..l {
                    let sc: Vec<f32> = (0..l)
                        .map(|b2| {
                            (0..dh)
                                .map(|d| q[a * h + hd * dh + d] * k[b2 * h + hd * dh + d])
                                .sum::<f32>()
                                / (dh as f32).sqrt()
                        })
                        .collect();
                    let mx = sc.iter().cloned().fold(f32::MIN, f32::max);
                    let e: Vec<f32> = sc.iter().map(|s| (s - mx).exp()).collect();
                    let z: f32 = e.iter().sum();
                    for d in 0..dh {
                        ctx[a * h + hd * dh + d] =
                            (0..l).map(|b2| e[b2] / z * v[b2 * h + hd * dh + d]).sum();
                    }
                }
            }
            let ao = lin(&ctx, "attention.output.dense", h, h);
            let mut h1: Vec<f32> = ao.iter().zip(&x).map(|(a, b)| a + b).collect();
            norm(&mut h1, "attention.output.LayerNorm");
            let ff = lin(&h1, "intermediate.dense", h, f);
            let ff: Vec<f32> = ff
                .iter()
                .map(|&a| {
                    let z = f64::from(a) / std::f64::consts::SQRT_2;
                    let erf = (1.0 - crate::special::log_erfc_pos(z.abs()).exp()) * z.signum();
                    0.5 * a * (1.0 + erf as f32)
                })
                .collect();
            let fo = lin(&ff, "output.dense", f, h);
            let mut h2: Vec<f32> = fo.iter().zip(&h1).map(|(a, b)| a + b).collect();
            norm(&mut h2, "output.LayerNorm");
            x = h2;
        }
        let mut m: Vec<f32> = (0..h)
            .map(|j| (0..l).map(|i| x[i * h + j]).sum::<f32>() / l as f32)
            .collect();
        let n = m.iter().map(|a| a * a).sum::<f32>().sqrt();
        m.iter_mut().for_each(|a| *a /= n);
        m
    }

    #[test]
    fn graph_matches_a_direct_implementation() {
        let cfg = tiny_cfg();
        let ws = rand_weights(&cfg, 3);
        let enc = BertEncoder::from_weights(cfg.clone(), &ws).expect("builds");
        for ids in [vec![1u32, 5, 7, 2], vec![1, 19], vec![3; 16]] {
            let got = enc.embed(&ids).expect("runs");
            let want = reference(&cfg, &ws, &ids);
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-4, "{ids:?}: max error {err}");
            let norm: f32 = got.iter().map(|a| a * a).sum();
            assert!((norm - 1.0).abs() < 1e-4);
        }
    }

    fn with_head(cfg: &BertConfig, seed: u64) -> Vec<(String, Tensor)> {
        let mut ws = rand_weights(cfg, seed);
        let h = cfg.hidden_size;
        let w: Vec<f32> = (0..2 * h)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
            .collect();
        ws.push((
            "head.weight".into(),
            Tensor::new(vec![2, h], w).expect("shape"),
        ));
        ws.push((
            "head.bias".into(),
            Tensor::new(vec![2], vec![0.1, -0.2]).expect("shape"),
        ));
        ws
    }

    #[test]
    fn top_classifier_continues_the_encoder_from_cached_states() {
        let cfg = tiny_cfg();
        let ws = with_head(&cfg, 5);
        let enc = BertEncoder::from_weights(cfg.clone(), &ws).expect("builds");
        let top = top_classifier(&cfg, &ws, 1, 2).expect("builds");
        // from layer 0 the classifier holds the embeddings' LayerNorm too and
        // reads the summed embeddings (every layer trainable)
        let whole = top_classifier(&cfg, &ws, 0, 2).expect("builds");
        let (hw, hb) = (&ws[ws.len() - 2].1.data, &ws[ws.len() - 1].1.data);
        for ids in [vec![1u32, 5, 7, 2], vec![4, 9, 3]] {
            let e = enc.embed(&ids).expect("runs");
            let inputs = [
                (&top, enc.states_after(&ids, 0).expect("runs")),
                (&whole, enc.input_states(&ids).expect("runs")),
            ];
            for (model, states) in inputs {
                assert_eq!(states.len(), ids.len() * cfg.hidden_size);
                let x = Tensor::new(vec![ids.len(), cfg.hidden_size], states).expect("shape");
                let got = model.forward(&x).expect("runs").data;
                for (k, g) in got.iter().enumerate() {
                    let row = &hw[k * cfg.hidden_size..(k + 1) * cfg.hidden_size];
                    let want = hb[k] + row.iter().zip(&e).map(|(a, b)| a * b).sum::<f32>();
                    assert!((g - want).abs() < 1e-4, "{ids:?} logit {k}: {g} vs {want}");
                }
            }
        }
        assert!(enc.states_after(&[1, 2], 2).is_err());
        assert!(top_classifier(&cfg, &ws, 2, 2).is_err());
    }

    #[test]
    fn fine_tuning_the_top_layer_on_cached_states_lowers_the_loss() {
        use crate::classifier::Loss;
        use crate::train::{Optimizer, Trainer};
        let cfg = tiny_cfg();
        let ws = with_head(&cfg, 6);
        let enc = BertEncoder::from_weights(cfg.clone(), &ws).expect("builds");
        let mut top = top_classifier(&cfg, &ws, 1, 2).expect("builds");
        // Label 1 when token 3 appears: sequences of different lengths.
        let data: Vec<(Vec<u32>, usize)> = (0..16u32)
            .map(|i| {
                let mut ids = vec![1, 4 + i % 9, 5 + i % 7];
                if i % 2 == 0 {
                    ids.push(3);
                }
                ids.extend(std::iter::repeat_n(6, (i % 3) as usize));
                (ids, (i % 2 == 0) as usize)
            })
            .collect();
        let xs: Vec<Tensor> = data
            .iter()
            .map(|(ids, _)| {
                let s = enc.states_after(ids, 0).expect("runs");
                Tensor::new(vec![ids.len(), cfg.hidden_size], s).expect("shape")
            })
            .collect();
        let loss = |top: &crate::OnnxModel| -> f32 {
            xs.iter()
                .zip(&data)
                .map(|(x, (_, y))| {
                    let z = top.forward(x).expect("runs").data;
                    let m = z[0].max(z[1]);
                    let lse = m + ((z[0] - m).exp() + (z[1] - m).exp()).ln();
                    lse - z[*y]
                })
                .sum::<f32>()
                / xs.len() as f32
        };
        let before = loss(&top);
        let mut tr = Trainer::new(Optimizer::adam(0.01));
        tr.freeze(["scale".to_string()]);
        let scale = top.weight("scale").expect("scale").data;
        for _ in 0..30 {
            let mut sum: Option<Vec<(String, Tensor)>> = None;
            for (x, (_, y)) in xs.iter().zip(&data) {
                let (_, g) = top
                    .weight_grads(x, &Loss::CrossEntropy { labels: vec![*y] })
                    .expect("grads");
                match &mut sum {
                    None => sum = Some(g),
                    Some(acc) => {
                        for ((_, a), (_, b)) in acc.iter_mut().zip(&g) {
                            a.data.iter_mut().zip(&b.data).for_each(|(a, b)| *a += b);
                        }
                    }
                }
            }
            tr.step_summed(&mut top, xs.len(), sum.expect("grads"))
                .expect("step");
        }
        let after = loss(&top);
        assert!(after < 0.5 * before, "loss {before} -> {after}");
        assert_eq!(top.weight("scale").expect("scale").data, scale);
    }

    #[test]
    fn refuses_bad_inputs_and_configs() {
        let cfg = tiny_cfg();
        let ws = rand_weights(&cfg, 4);
        let enc = BertEncoder::from_weights(cfg.clone(), &ws).expect("builds");
        assert!(enc.embed(&[]).is_err());
        assert!(enc.embed(&[20]).is_err());
        assert!(enc.embed(&[1; 17]).is_err());
        let mut bad = cfg.clone();
        bad.num_attention_heads = 3;
        assert!(BertEncoder::from_weights(bad, &ws).is_err());
        let missing: Vec<_> = ws
            .iter()
            .filter(|(n, _)| !n.contains("layer.1.output.dense.bias"))
            .cloned()
            .collect();
        assert!(BertEncoder::from_weights(cfg.clone(), &missing).is_err());
        assert!(BertConfig::from_json("{\"hidden_size\": 8}").is_err());
        let text = r#"{"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16,
            "max_position_embeddings": 16, "vocab_size": 20, "hidden_act": "relu"}"#;
        assert!(BertConfig::from_json(text).is_err());
    }
}
