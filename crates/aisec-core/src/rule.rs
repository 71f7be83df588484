//! Detection rules: the one way every crate declares them, and the checks
//! every rule list passes.
//!
//! A rule is declared once, with [`declare_rules!`](crate::declare_rules), in
//! its crate's `rules.rs`. The declaration carries everything a report or the
//! `aisec rules` catalogue needs: the stable id, a kebab-case name, the
//! one-line title, the default severity, the MITRE ATLAS and OWASP LLM ids,
//! the remediation, a help URI, and a description written as documentation
//! (the doc comment of the rule, in Markdown, with the sections
//! `## What it detects`, `## Why it matters` and `## Example`, the way ruff
//! documents its rules). The macro also emits the crate's `RULES` slice, so
//! no hand-kept list can forget a rule; the `aisec` binary collects every
//! crate's `RULES` into the one registry, and [`problems`] is the check its
//! workspace test runs over all of them.
//!
//! ```
//! aisec_core::declare_rules! {
//!     /// ## What it detects
//!     /// A file that says hello.
//!     ///
//!     /// ## Why it matters
//!     /// Greetings are rarely hostile, which is what makes them a good disguise.
//!     ///
//!     /// ## Example
//!     /// A file containing `hello`.
//!     pub static HELLO = {
//!         id: "AISEC-DOC-001",
//!         name: "hello",
//!         title: "File says hello",
//!         severity: Info,
//!         atlas: &["AML.T0074"],
//!         owasp: &[],
//!         remediation: "Say hello back.",
//!     };
//! }
//!
//! assert_eq!(RULES.len(), 1);
//! assert!(HELLO.description.starts_with("## What it detects\nA file that says hello."));
//! assert!(HELLO.help_uri.ends_with("#AISEC-DOC-001"));
//! assert!(aisec_core::rule::problems(RULES).is_empty());
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::finding::{Confidence, Finding, Location, Severity};
use crate::taxonomy::{atlas, atlas_label, owasp, owasp_label};

/// Where the rule catalogue (`docs/rules.md`, written by
/// `aisec rules --format markdown`) is published; a rule's default help URI
/// is this plus `#` and its id.
pub const RULE_DOCS: &str = crate::__rule_docs!();

/// The sections every rule description has, in this order.
pub const DOC_SECTIONS: [&str; 3] = ["## What it detects", "## Why it matters", "## Example"];

/// A detection rule: the static description every finding of that kind shares.
///
/// Rules are only made by [`declare_rules!`](crate::declare_rules) (the
/// struct is `non_exhaustive`), so every rule has the same parts and lands in
/// its crate's `RULES` list. Findings are built with [`Rule::finding`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Rule {
    /// Stable identifier, e.g. `AISEC-PICKLE-001`.
    pub id: &'static str,
    /// Short kebab-case name, e.g. `pickle-dangerous-call`.
    pub name: &'static str,
    /// One-line summary used as the finding title by default.
    pub title: &'static str,
    /// The rule's documentation in Markdown: what it detects, why it
    /// matters, an example (see [`DOC_SECTIONS`]).
    pub description: &'static str,
    /// Severity a finding of this rule has unless the producer overrides it.
    pub default_severity: Severity,
    /// MITRE ATLAS technique ids, e.g. `AML.T0011.000`.
    pub atlas: &'static [&'static str],
    /// OWASP Top 10 for LLM Applications (2025) ids, e.g. `LLM03`.
    pub owasp: &'static [&'static str],
    /// What to do about it.
    pub remediation: &'static str,
    /// Where the rule is documented for people (SARIF `helpUri`).
    pub help_uri: &'static str,
}

impl Rule {
    /// Builds a rule; only [`declare_rules!`](crate::declare_rules) calls this.
    #[doc(hidden)]
    // One parameter per field: `Rule` is `non_exhaustive`, so the macro's
    // expansion in other crates cannot write the struct literal itself.
    #[allow(clippy::too_many_arguments)]
    pub const fn __declare(
        id: &'static str,
        name: &'static str,
        title: &'static str,
        description: &'static str,
        default_severity: Severity,
        atlas: &'static [&'static str],
        owasp: &'static [&'static str],
        remediation: &'static str,
        help_uri: &'static str,
    ) -> Rule {
        Rule {
            id,
            name,
            title,
            description,
            default_severity,
            atlas,
            owasp,
            remediation,
            help_uri,
        }
    }

    /// Starts a finding of this rule at `location`, with the rule's default
    /// severity, high confidence and the rule's taxonomy and remediation.
    pub fn finding(&'static self, location: Location, evidence: impl Into<String>) -> Finding {
        Finding {
            rule_id: self.id.to_string(),
            title: self.title.to_string(),
            severity: self.default_severity,
            confidence: Confidence::High,
            location,
            evidence: evidence.into(),
            atlas: self.atlas.iter().map(|s| s.to_string()).collect(),
            owasp: self.owasp.iter().map(|s| s.to_string()).collect(),
            remediation: self.remediation.to_string(),
            metrics: BTreeMap::new(),
        }
    }

    /// The text of one documentation section (`"## Why it matters"`...),
    /// without its heading; empty when the description lacks it.
    pub fn section(&self, heading: &str) -> &'static str {
        let d = self.description;
        let Some(start) = d.find(heading) else {
            return "";
        };
        let body = &d[start + heading.len()..];
        let end = body.find("\n## ").unwrap_or(body.len());
        body[..end].trim()
    }

    /// The first paragraph of "What it detects": a one-paragraph summary
    /// for places that show no Markdown (SARIF `fullDescription.text`).
    pub fn summary(&self) -> &'static str {
        let what = self.section(DOC_SECTIONS[0]);
        what.split("\n\n").next().unwrap_or("").trim()
    }

    /// What it detects and why it matters, as plain paragraphs of at most
    /// 1,000 characters (SARIF `fullDescription`; GitHub code scanning
    /// truncates longer ones).
    pub fn full_description(&self) -> String {
        let mut s = format!(
            "{}\n\n{}",
            self.section(DOC_SECTIONS[0]),
            self.section(DOC_SECTIONS[1])
        );
        if s.len() > 1000 {
            let mut cut = 997;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("...");
        }
        s
    }

    /// The rule's ATLAS and OWASP ids with their names.
    pub fn taxonomy_labels(&self) -> Vec<String> {
        self.atlas
            .iter()
            .map(|a| atlas_label(a))
            .chain(self.owasp.iter().map(|o| owasp_label(o)))
            .collect()
    }

    /// Full help in Markdown: the description, the remediation and the
    /// taxonomy (SARIF `help.markdown`, `aisec rules ID`).
    pub fn help_markdown(&self) -> String {
        let mut s = format!(
            "{}\n\n## Remediation\n{}\n",
            self.description, self.remediation
        );
        let taxa = self.taxonomy_labels();
        if !taxa.is_empty() {
            s.push_str("\n## Taxonomy\n");
            for t in taxa {
                let _ = writeln!(s, "- {t}");
            }
        }
        s
    }
}

/// [`problems`] of one crate's rules, plus one message per rule whose id
/// is not in one of the crate's `areas` (id prefixes such as
/// `"AISEC-EVASION-"`): the check every crate's `rules.rs` runs on its
/// own `RULES` before the workspace registry test sees them together.
pub fn problems_in_areas(rules: &[&Rule], areas: &[&str]) -> Vec<String> {
    let mut out = problems(rules);
    for r in rules {
        if !areas.iter().any(|a| r.id.starts_with(a)) {
            out.push(format!(
                "{}: id is outside this crate's areas {areas:?}",
                r.id
            ));
        }
    }
    out
}

/// Everything wrong with a list of rules, one message per problem; empty
/// when the list is sound. Checks: ids are unique and shaped
/// `AISEC-…-NNN`, names unique kebab-case, a title without a final period,
/// a description with the [`DOC_SECTIONS`] in order, a remediation, at least
/// one ATLAS id, every ATLAS and OWASP id known to [`crate::taxonomy`], and
/// an `https` help URI.
pub fn problems(rules: &[&Rule]) -> Vec<String> {
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for r in rules {
        let id = r.id;
        if !ids.insert(id) {
            out.push(format!("{id}: duplicate rule id"));
        }
        if !names.insert(r.name) {
            out.push(format!("{id}: duplicate rule name '{}'", r.name));
        }
        let digits = id.rsplit('-').next().unwrap_or("");
        if !id.starts_with("AISEC-")
            || digits.len() != 3
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || !id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            out.push(format!("{id}: id is not of the form AISEC-<AREA>-NNN"));
        }
        if r.name.is_empty()
            || r.name.starts_with('-')
            || r.name.ends_with('-')
            || !r
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            out.push(format!("{id}: name '{}' is not kebab-case", r.name));
        }
        if r.title.trim().is_empty() || r.title.ends_with('.') {
            out.push(format!("{id}: title is empty or ends with a period"));
        }
        let mut at = 0;
        for s in DOC_SECTIONS {
            match r.description[at..].find(s) {
                Some(p) => {
                    at += p + s.len();
                    if r.section(s).is_empty() {
                        out.push(format!("{id}: description section '{s}' is empty"));
                    }
                }
                None => out.push(format!(
                    "{id}: description lacks '{s}' (or has it out of order)"
                )),
            }
        }
        if r.remediation.trim().is_empty() {
            out.push(format!("{id}: no remediation"));
        }
        if r.atlas.is_empty() {
            out.push(format!("{id}: names no ATLAS technique"));
        }
        for a in r.atlas {
            if atlas(a).is_none() {
                out.push(format!("{id}: ATLAS id {a} is not in the taxonomy table"));
            }
        }
        for o in r.owasp {
            if owasp(o).is_none() {
                out.push(format!("{id}: OWASP id {o} is not in the taxonomy table"));
            }
        }
        if !r.help_uri.starts_with("https://") {
            out.push(format!("{id}: help URI '{}' is not https", r.help_uri));
        }
    }
    out
}

/// The catalogue as text: one line per rule (id, severity, title) and its
/// taxonomy below.
pub fn catalogue_text(rules: &[&Rule]) -> String {
    let mut s = String::new();
    for r in rules {
        let _ = writeln!(
            s,
            "{:<24} {:<8} {}",
            r.id,
            r.default_severity.as_str(),
            r.title
        );
        let taxa = r.taxonomy_labels();
        if !taxa.is_empty() {
            let _ = writeln!(s, "{:<24} {}", "", taxa.join("; "));
        }
    }
    s
}

/// One rule in full, as text for a terminal: title, id, name, severity,
/// the documentation, remediation, taxonomy and help URI.
pub fn rule_text(r: &Rule) -> String {
    format!(
        "{id} {name}: {title}\ndefault severity: {sev}\n\n{help}\nMore: {uri}\n",
        id = r.id,
        name = r.name,
        title = r.title,
        sev = r.default_severity,
        help = r.help_markdown(),
        uri = r.help_uri,
    )
}

/// The catalogue as one Markdown page (`docs/rules.md`): an index table,
/// then every rule with an anchor named by its id (what
/// [`Rule::help_uri`] points at).
pub fn catalogue_markdown(rules: &[&Rule]) -> String {
    let mut s = String::from(
        "# aisec rules\n\n\
         <!-- Generated by `aisec rules --format markdown`; do not edit by hand. -->\n\n\
         Every rule aisec can report, with what it detects, why it matters, an example, \
         the remediation and the MITRE ATLAS / OWASP LLM Top 10 ids.\n\n\
         | id | name | severity | title |\n|---|---|---|---|\n",
    );
    for r in rules {
        let _ = writeln!(
            s,
            "| [{id}](#{id}) | `{name}` | {sev} | {title} |",
            id = r.id,
            name = r.name,
            sev = r.default_severity,
            title = r.title.replace('|', "\\|"),
        );
    }
    for r in rules {
        // Demote the rule's own `##` sections below the rule heading.
        let help = r.help_markdown().replace("\n## ", "\n#### ");
        let help = help
            .strip_prefix("## ")
            .map_or(help.clone(), |h| format!("#### {h}"));
        let _ = write!(
            s,
            "\n<a id=\"{id}\"></a>\n\n### {id} `{name}`\n\n**{title}** (default severity: {sev})\n\n{help}",
            id = r.id,
            name = r.name,
            title = r.title,
            sev = r.default_severity,
        );
    }
    s
}

/// The default documentation address; `declare_rules!` appends `#<id>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __rule_docs {
    () => {
        "https://github.com/aisec/aisec/blob/main/docs/rules.md"
    };
}

/// Declares a crate's rules and its `RULES` slice.
///
/// Each rule is a `static` whose doc comment is its description (Markdown,
/// with the [`DOC_SECTIONS`](crate::rule::DOC_SECTIONS)); the fields are the
/// id, kebab-case name, title, default severity (a [`Severity`](crate::Severity)
/// variant name), ATLAS and OWASP id slices, remediation and, optionally, a
/// `help_uri` (by default the rule's anchor in the published catalogue).
/// The macro ends by declaring `pub static RULES: &[&Rule]` listing every
/// rule in declaration order; a crate has one `declare_rules!`, in its
/// `rules.rs`. See the [module docs](crate::rule) for an example.
#[macro_export]
macro_rules! declare_rules {
    ($(
        $(#[doc = $doc:literal])*
        $vis:vis static $ident:ident = {
            id: $id:literal,
            name: $name:literal,
            title: $title:literal,
            severity: $sev:ident,
            atlas: $atlas:expr,
            owasp: $owasp:expr,
            remediation: $rem:expr
            $(, help_uri: $help:literal)?
            $(,)?
        };
    )+) => {
        $(
            $(#[doc = $doc])*
            $vis static $ident: $crate::Rule = $crate::Rule::__declare(
                $id,
                $name,
                $title,
                {
                    const RAW: &str = concat!($($doc, "\n"),*);
                    const LEN: usize = $crate::rule::__dedent::<0>(RAW.as_bytes()).1;
                    const BYTES: [u8; LEN] = $crate::rule::__dedent::<LEN>(RAW.as_bytes()).0;
                    const TEXT: &str = match ::core::str::from_utf8(&BYTES) {
                        Ok(s) => s,
                        Err(_) => panic!("rule documentation is not UTF-8"),
                    };
                    TEXT
                },
                $crate::Severity::$sev,
                $atlas,
                $owasp,
                $rem,
                $crate::__rule_help_uri!($id $(, $help)?),
            );
        )+

        /// Every rule this crate declares, in declaration order.
        // Reachable from a crate's root in every real use; a test module
        // that declares rules of its own keeps it private.
        #[allow(unreachable_pub)]
        pub static RULES: &[&$crate::Rule] = &[$(&$ident),+];
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_help_uri {
    ($id:literal) => {
        concat!($crate::__rule_docs!(), "#", $id)
    };
    ($id:literal, $help:literal) => {
        $help
    };
}

/// Turns the text of a doc comment (`#[doc = " line"]` per line, joined with
/// newlines) into its Markdown: one leading space dropped from each line,
/// blank lines at both ends dropped. Returns the bytes (as many as fit in
/// `N`) and the full length, so a first call with `N = 0` sizes the second.
#[doc(hidden)]
pub const fn __dedent<const N: usize>(raw: &[u8]) -> ([u8; N], usize) {
    let mut out = [0u8; N];
    // Trim whitespace at both ends (the text starts with a heading).
    let mut start = 0;
    while start < raw.len() && raw[start].is_ascii_whitespace() {
        start += 1;
    }
    let mut end = raw.len();
    while end > start && raw[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    let mut i = start;
    let mut n = 0;
    let mut line_start = false;
    while i < end {
        let b = raw[i];
        i += 1;
        if line_start && b == b' ' {
            line_start = false;
            continue;
        }
        line_start = b == b'\n';
        if n < N {
            out[n] = b;
        }
        n += 1;
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::declare_rules! {
        /// ## What it detects
        /// A pickle that calls `os.system`.
        ///
        /// Second paragraph.
        ///
        /// ## Why it matters
        /// Loading it runs a command.
        ///
        /// ## Example
        /// ```text
        ///     indented
        /// ```
        static GOOD = {
            id: "AISEC-TEST-001",
            name: "test-good",
            title: "A test rule",
            severity: High,
            atlas: &["AML.T0011.000"],
            owasp: &["LLM03"],
            remediation: "Do not.",
        };
        /// No sections at all.
        static BAD = {
            id: "AISEC-TEST-1",
            name: "Test_Bad",
            title: "Ends with a period.",
            severity: Low,
            atlas: &["AML.T9999"],
            owasp: &["LLM99"],
            remediation: "",
            help_uri: "http://example.invalid/bad",
        };
    }

    #[test]
    fn doc_comment_becomes_the_description() {
        assert_eq!(
            GOOD.description,
            "## What it detects\nA pickle that calls `os.system`.\n\nSecond paragraph.\n\n\
             ## Why it matters\nLoading it runs a command.\n\n\
             ## Example\n```text\n    indented\n```"
        );
        assert_eq!(GOOD.summary(), "A pickle that calls `os.system`.");
        assert_eq!(
            GOOD.section("## Why it matters"),
            "Loading it runs a command."
        );
        assert_eq!(GOOD.help_uri, format!("{RULE_DOCS}#AISEC-TEST-001"));
        assert_eq!(BAD.help_uri, "http://example.invalid/bad");
        assert_eq!(RULES.len(), 2);
        assert_eq!(RULES[0].id, "AISEC-TEST-001");
    }

    #[test]
    fn problems_in_areas_names_a_rule_outside_them() {
        assert!(problems_in_areas(&[&GOOD], &["AISEC-TEST-"]).is_empty());
        let p = problems_in_areas(&[&GOOD], &["AISEC-SCAN-", "AISEC-LLM-"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(GOOD.id) && p[0].contains("outside"),
            "{p:?}"
        );
    }

    #[test]
    fn problems_name_every_defect() {
        assert!(problems(&[&GOOD]).is_empty(), "{:?}", problems(&[&GOOD]));
        let p = problems(&[&GOOD, &GOOD, &BAD]).join("\n");
        for want in [
            "AISEC-TEST-001: duplicate rule id",
            "duplicate rule name",
            "AISEC-TEST-1: id is not of the form",
            "name 'Test_Bad' is not kebab-case",
            "title is empty or ends with a period",
            "lacks '## What it detects'",
            "lacks '## Example'",
            "no remediation",
            "ATLAS id AML.T9999 is not in the taxonomy table",
            "OWASP id LLM99 is not in the taxonomy table",
            "is not https",
        ] {
            assert!(p.contains(want), "missing '{want}' in:\n{p}");
        }
    }

    #[test]
    fn rule_builds_finding_with_taxonomy() {
        let f = GOOD
            .finding(
                Location::path("a.pkl").with_member("x/data.pkl"),
                "os.system",
            )
            .severity(Severity::Critical)
            .metric("n", 3);
        assert_eq!(f.rule_id, "AISEC-TEST-001");
        assert_eq!(f.atlas, vec!["AML.T0011.000"]);
        assert_eq!(f.owasp, vec!["LLM03"]);
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.location.to_string(), "a.pkl!x/data.pkl");
        assert_eq!(f.metrics["n"], serde_json::json!(3));
    }

    #[test]
    fn catalogues_list_every_rule() {
        let t = catalogue_text(&[&GOOD]);
        assert!(
            t.starts_with("AISEC-TEST-001           high     A test rule\n"),
            "{t}"
        );
        assert!(t.contains("LLM03 Supply Chain"), "{t}");
        let md = catalogue_markdown(&[&GOOD]);
        assert!(md.contains("| [AISEC-TEST-001](#AISEC-TEST-001) | `test-good` | high |"));
        assert!(md.contains("<a id=\"AISEC-TEST-001\"></a>"));
        assert!(md.contains("#### What it detects\nA pickle"), "{md}");
        assert!(md.contains("#### Remediation\nDo not."), "{md}");
        let one = rule_text(&GOOD);
        assert!(
            one.contains("## Why it matters\nLoading it runs a command."),
            "{one}"
        );
        assert!(one.contains("AML.T0011.000 User Execution: Unsafe AI Artifacts"));
    }
}
