//! Reading ONNX node attributes with their defaults.

use crate::classifier::ModelError;
use crate::onnx::proto::{AttrVal, NodeP};

pub(super) fn attr<'a>(n: &'a NodeP, name: &str) -> Option<&'a AttrVal> {
    n.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Integer attribute, `d` when absent.
pub(super) fn int(n: &NodeP, name: &str, d: i64) -> i64 {
    match attr(n, name) {
        Some(AttrVal::I(v)) => *v,
        _ => d,
    }
}

/// Float attribute (an integer is accepted), `d` when absent.
pub(super) fn float(n: &NodeP, name: &str, d: f32) -> f32 {
    match attr(n, name) {
        Some(AttrVal::F(v)) => *v,
        Some(AttrVal::I(v)) => *v as f32,
        _ => d,
    }
}

/// Integer-list attribute.
pub(super) fn ints(n: &NodeP, name: &str) -> Option<Vec<i64>> {
    match attr(n, name) {
        Some(AttrVal::Is(v)) => Some(v.clone()),
        _ => None,
    }
}

/// String attribute, empty when absent.
pub(super) fn string(n: &NodeP, name: &str) -> String {
    match attr(n, name) {
        Some(AttrVal::S(v)) => v.clone(),
        _ => String::new(),
    }
}

/// Sizes from an attribute or input, each below 2^20.
pub(super) fn sizes(v: &[i64], what: &str, node: &str) -> Result<Vec<usize>, ModelError> {
    v.iter()
        .map(|&x| {
            usize::try_from(x)
                .ok()
                .filter(|&x| x < 1 << 20)
                .ok_or_else(|| ModelError::Invalid(format!("node '{node}': bad {what} value {x}")))
        })
        .collect()
}

/// The error for a form of an operator the executor does not run.
pub(super) fn unsupported(n: &NodeP, what: &str) -> ModelError {
    ModelError::Unsupported {
        op: format!("{}({what})", n.op_type),
        node: n.name.clone(),
    }
}
