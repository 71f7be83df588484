//! `aisec rules`: the rule catalogue.

use aisec_core::taxonomy::{atlas_label, owasp_label};

/// Arguments of `aisec rules`.
#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints every rule.
pub fn run(args: RulesArgs) -> anyhow::Result<i32> {
    let mut rules = aisec_scan::all_rules();
    rules.extend(aisec_attack::rules());
    rules.extend(aisec_probe::rules());
    rules.extend(aisec_guard::rules());
    rules.sort_by_key(|r| r.id);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rules)?);
        return Ok(0);
    }
    for r in rules {
        println!(
            "{:<24} {:<8} {}",
            r.id,
            r.default_severity.as_str(),
            r.title
        );
        let taxa: Vec<String> = r
            .atlas
            .iter()
            .map(|a| atlas_label(a))
            .chain(r.owasp.iter().map(|o| owasp_label(o)))
            .collect();
        if !taxa.is_empty() {
            println!("{:<24} {}", "", taxa.join("; "));
        }
    }
    Ok(0)
}
