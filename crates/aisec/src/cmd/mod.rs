//! One module per subcommand.

pub mod attack;
pub mod demo;
pub mod rules;
pub mod scan;
