//! ONNX protobuf decoding and re-encoding.

pub(crate) mod proto;
pub(crate) mod wire;
