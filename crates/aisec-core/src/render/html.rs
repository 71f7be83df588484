//! A self-contained HTML page: summary, findings table, errors and the
//! command's data as JSON. Every string from the report is HTML-escaped.

use std::fmt::Write as _;

use super::escape::{escape_terminal, is_dangerous};
use super::metrics_line;
use crate::report::Report;
use crate::taxonomy::{atlas_label, owasp_label};

/// The entity for a character that HTML content or a quoted attribute
/// value cannot hold as itself (`&`, `<`, `>`, `"`, `'`), else `None`.
/// The one table behind [`escape_html`] and other crates' SVG escaping.
pub fn html_entity(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        _ => None,
    }
}

/// Escapes text for HTML element content and attribute values. Control
/// and bidirectional formatting characters (other than newline and tab,
/// which `pre-wrap` shows as layout) are written visibly, as in the text
/// report, so a right-to-left override cannot reorder a name on the page.
pub fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if let Some(e) = html_entity(c) {
            o.push_str(e);
            continue;
        }
        match c {
            '\n' | '\t' => o.push(c),
            c if is_dangerous(c) => {
                let mut b = [0u8; 4];
                o.push_str(&escape_terminal(c.encode_utf8(&mut b)));
            }
            c => o.push(c),
        }
    }
    o
}

/// A self-contained HTML page: summary, findings table, errors and the
/// command's data as JSON.
pub fn html(report: &Report) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>aisec {cmd} report</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}}\
th{{background:#f4f4f4}}.critical{{background:#fdd}}.high{{background:#fee}}.medium{{background:#ffe}}\
code,pre{{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}}\
</style></head><body>\n<h1>aisec {cmd} report</h1>\n",
        cmd = escape_html(&report.command)
    );
    let counts = super::severity_counts(report);
    let _ = writeln!(
        o,
        "<p>aisec {} &middot; {} item(s) &middot; {} finding(s) {} &middot; {} error(s) &middot; {:.2}s</p>",
        escape_html(&report.version),
        report.summary.items,
        report.findings.len(),
        escape_html(&if counts.is_empty() {
            String::new()
        } else {
            format!("({})", counts.join(", "))
        }),
        report.errors.len(),
        report.summary.seconds
    );
    if !report.findings.is_empty() {
        o.push_str("<table>\n<tr><th>Severity</th><th>Rule</th><th>Location</th><th>Evidence</th><th>ATLAS / OWASP</th><th>Remediation</th></tr>\n");
        for f in &report.findings {
            let taxa: Vec<String> = f
                .atlas
                .iter()
                .map(|a| atlas_label(a))
                .chain(f.owasp.iter().map(|x| owasp_label(x)))
                .collect();
            let mut evidence = escape_html(&f.evidence);
            if let Some(m) = metrics_line(f) {
                let _ = write!(evidence, "<br><small>{}</small>", escape_html(&m));
            }
            let _ = writeln!(
                o,
                "<tr class=\"{sev}\"><td>{sev} ({conf})</td><td><b>{id}</b><br>{title}</td><td><code>{loc}</code></td><td><code>{ev}</code></td><td>{tax}</td><td>{fix}</td></tr>",
                sev = f.severity.as_str(),
                conf = f.confidence.as_str(),
                id = escape_html(&f.rule_id),
                title = escape_html(&f.title),
                loc = escape_html(&f.location.to_string()),
                ev = evidence,
                tax = escape_html(&taxa.join("; ")),
                fix = escape_html(&f.remediation),
            );
        }
        o.push_str("</table>\n");
    } else {
        o.push_str("<p>No findings.</p>\n");
    }
    if !report.errors.is_empty() {
        o.push_str("<h2>Errors</h2>\n<ul>\n");
        for e in &report.errors {
            let _ = writeln!(
                o,
                "<li><code>{}</code>: {}</li>",
                escape_html(&e.subject),
                escape_html(&e.message)
            );
        }
        o.push_str("</ul>\n");
    }
    if !report.data.is_empty() {
        let data = super::pretty(&report.data);
        let _ = writeln!(o, "<h2>Data</h2>\n<pre>{}</pre>", escape_html(&data));
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Location;

    #[test]
    fn html_escapes_hostile_evidence() {
        let mut r = Report::new("probe");
        let rule = crate::render::tests::RULES[0];
        r.extend([rule.finding(Location::path("x"), "<script>alert(1)</script>")]);
        r.finish();
        let h = html(&r);
        assert!(!h.contains("<script>alert"));
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn html_shows_controls_and_bidi_visibly() {
        let h = html(&crate::render::tests::hostile());
        assert!(!h.chars().any(|c| c != '\n' && is_dangerous(c)), "{h}");
        assert!(h.contains(r"a\u{9b}31m\u{202e}lkp.txt"), "{h}");
        assert_eq!(escape_html("a\nb\tc"), "a\nb\tc");
    }
}
