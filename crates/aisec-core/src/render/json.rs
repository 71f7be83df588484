//! The report as JSON: the serde form of [`Report`], pretty-printed.

use crate::report::Report;

/// The report as pretty JSON.
pub fn json_string(report: &Report) -> String {
    super::pretty(report)
}
