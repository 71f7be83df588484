//! `aisec-defend`: finding and removing poisoning and backdoors.
//!
//! This crate owns the defending side of issue 13, written against
//! aisec-model's traits so it runs on the user's own ONNX and spec models:
//! inspection of a training set for poisoned examples, inspection of a model
//! for a planted backdoor without its training data, repair of a backdoored
//! model, and STRIP for trojaned inputs at run time. The attacks that plant
//! poison live in `aisec-attack` (`poison`); the CLI wires both into
//! `aisec attack poison` and `aisec defend`.
//!
//! * [`data`]: dataset inspection (activation clustering, spectral
//!   signatures, early-loss isolation) with precision/recall against the
//!   ground truth `aisec attack poison` writes.
//! * [`rules`]: the rules the defences' findings cite ([`RULES`]).

pub mod data;
pub mod rules;

pub use rules::RULES;
