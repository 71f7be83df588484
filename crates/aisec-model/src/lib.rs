//! `aisec-model`: the model substrate every attack and defence uses.
//!
//! The contract other crates program against is in [`classifier`]: a
//! [`Tensor`](classifier::Tensor) of `f32` values, the [`Classifier`]
//! (query-only) and [`Differentiable`] (gradients) traits, and the
//! [`Loss`](classifier::Loss) functions attacks ask gradients of.
//!
//! [`OnnxModel`] loads ONNX files (opset 11+, as exported by `torch.onnx`)
//! and runs them with a built-in executor: hand-written forward and backward
//! kernels per operator over contiguous `f32` buffers, a static tape in the
//! graph's topological order, constant folding of shape subgraphs at load
//! time, and rayon across the batch. No Python or native runtime is needed.
//! After weight updates the model can be written back as ONNX. Operators
//! live one family per file under `graph/ops/`; every forward pass runs
//! under [`ExecLimits`] (tensor size, pass size, multiply-accumulates),
//! checked before each allocation.

pub mod bert;
pub mod blackbox;
pub mod checkpoint;
pub mod classifier;
pub mod data;
pub mod dp;
pub mod fit;
mod graph;
mod kernels;
pub mod loss;
mod onnx;
pub mod onnx_model;
pub mod safetensors;
mod simd;
pub mod spec;
pub mod special;
mod tapconv;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod train;

pub use classifier::{Classifier, Differentiable, Loss, ModelError, Tensor};
pub use graph::ExecLimits;
pub use kernels::{release_free_memory, tune_allocator};
pub use onnx_model::{OnnxModel, Tap};
