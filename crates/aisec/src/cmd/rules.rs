//! `aisec rules`: the rule catalogue, or one rule in full.

use std::io::Write;

use aisec_core::rule::{catalogue_markdown, catalogue_text, rule_text};

use crate::registry;

/// How `aisec rules` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesFormat {
    /// One line per rule (or one rule in full).
    Text,
    /// The rules as a JSON array (or one rule as an object).
    Json,
    /// A Markdown page, as in docs/rules.md.
    Markdown,
}

/// Arguments of `aisec rules`.
#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// Show only this rule, in full (its id, e.g. AISEC-PICKLE-001, or its name).
    pub rule: Option<String>,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: RulesFormat,

    /// Same as --format json (kept for scripts written before --format).
    #[arg(long, hide = true, conflicts_with = "format")]
    pub json: bool,
}

/// Prints the catalogue or one rule.
pub fn run(args: RulesArgs) -> anyhow::Result<i32> {
    let format = if args.json {
        RulesFormat::Json
    } else {
        args.format
    };
    let out = match &args.rule {
        Some(key) => {
            let Some(r) = registry::find(key) else {
                anyhow::bail!("unknown rule '{key}' (`aisec rules` lists them all)");
            };
            match format {
                RulesFormat::Text => rule_text(r),
                RulesFormat::Json => serde_json::to_string_pretty(r)? + "\n",
                RulesFormat::Markdown => catalogue_markdown(&[r]),
            }
        }
        None => {
            let rules = registry::all();
            match format {
                RulesFormat::Text => catalogue_text(&rules),
                RulesFormat::Json => serde_json::to_string_pretty(&rules)? + "\n",
                RulesFormat::Markdown => catalogue_markdown(&rules),
            }
        }
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`aisec rules | head`) is not an error worth reporting.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    Ok(0)
}
