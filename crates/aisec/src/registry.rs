//! The one registry of rules: every crate's `RULES` slice (declared with
//! [`aisec_core::declare_rules!`] in its `rules.rs`), collected here because
//! the binary is the lowest crate that depends on all of them. `aisec
//! rules`, the rule catalogue in `docs/rules.md` and the workspace-wide
//! checks read it.

use aisec_core::Rule;

/// Each crate that declares rules, with its `RULES`.
pub static SOURCES: &[(&str, &[&Rule])] = &[
    ("aisec-archive", aisec_archive::RULES),
    ("aisec-assess", aisec_assess::RULES),
    ("aisec-attack", aisec_attack::RULES),
    ("aisec-defend", aisec_defend::RULES),
    ("aisec-formats", aisec_formats::RULES),
    ("aisec-guard", aisec_guard::RULES),
    ("aisec-pickle", aisec_pickle::RULES),
    ("aisec-probe", aisec_probe::RULES),
    ("aisec-provenance", aisec_provenance::RULES),
    ("aisec-scan", aisec_scan::RULES),
];

/// Every rule aisec can report, sorted by id.
pub fn all() -> Vec<&'static Rule> {
    let mut v: Vec<&'static Rule> = SOURCES
        .iter()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    v.sort_by_key(|r| r.id);
    v
}

/// The rule with this id or name (ids compared without regard to case).
pub fn find(key: &str) -> Option<&'static Rule> {
    all()
        .into_iter()
        .find(|r| r.id.eq_ignore_ascii_case(key) || r.name == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn workspace() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .and_then(Path::parent)
            .expect("crates/aisec sits two levels below the workspace root")
    }

    /// The workspace-wide rule check: ids and names unique across every
    /// crate, every ATLAS / OWASP id in aisec-core's taxonomy tables, every
    /// description documented with the required sections.
    #[test]
    fn every_rule_is_unique_documented_and_mapped() {
        let rules = all();
        assert!(rules.len() >= 100, "only {} rules registered", rules.len());
        let problems = aisec_core::rule::problems(&rules);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// A crate that declares rules (has `src/rules.rs`) must be in
    /// [`SOURCES`], or its rules would be missing from `aisec rules`.
    #[test]
    fn every_crate_with_rules_is_registered() {
        let crates = workspace().join("crates");
        let mut declaring = Vec::new();
        for entry in std::fs::read_dir(&crates).unwrap() {
            let dir = entry.unwrap().path();
            if dir.join("src/rules.rs").is_file() {
                declaring.push(dir.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
        declaring.sort();
        let registered: Vec<String> = SOURCES.iter().map(|(c, _)| c.to_string()).collect();
        assert_eq!(declaring, registered);
    }

    /// `docs/rules.md` is what every rule's help URI points at; it is
    /// generated from the registry. Regenerate with
    /// `AISEC_BLESS=1 cargo test -p aisec registry` or
    /// `aisec rules --format markdown > docs/rules.md`.
    #[test]
    fn rules_doc_is_current() {
        let path = workspace().join("docs/rules.md");
        let want = aisec_core::rule::catalogue_markdown(&all());
        if std::env::var_os("AISEC_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/rules.md is out of date: run `AISEC_BLESS=1 cargo test -p aisec registry`"
        );
    }

    #[test]
    fn find_by_id_or_name() {
        assert_eq!(
            find("aisec-pickle-001").map(|r| r.id),
            Some("AISEC-PICKLE-001")
        );
        assert_eq!(
            find("pickle-dangerous-call").map(|r| r.id),
            Some("AISEC-PICKLE-001")
        );
        assert!(find("AISEC-NOPE-001").is_none());
    }
}
