//! End-to-end tests of the `aisec` binary, in one test binary (one link,
//! one place for the helpers). Each module covers one command family;
//! [`util`] builds and runs `aisec` and parses its JSON.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

mod util;

mod assess;
mod assess_checks;
mod attack;
mod data_checks;
mod defend;
mod exit_codes;
mod explain;
mod family;
mod harden;
mod membership;
mod poison;
mod privacy;
mod probe;
mod probe_bounds;
mod provenance;
mod readme;
mod remote;
mod scan;
mod shared_flags;
mod streaming;
mod train;
