//! One module per subcommand.

pub mod demo;
pub mod rules;
pub mod scan;
