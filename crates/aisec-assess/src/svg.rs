//! Small inline SVG charts for the assessment report (no scripts, no
//! fonts beyond the reader's sans-serif): line charts (robust accuracy
//! against budget, extraction fidelity against queries), horizontal bars
//! with 95% confidence intervals (probe success per family) and a
//! severity histogram.

use std::fmt::Write as _;

use aisec_core::render::html::html_entity;

/// Escapes text for SVG/HTML content and attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match html_entity(c) {
            Some(e) => o.push_str(e),
            None if c.is_control() && c != '\n' => o.push(' '),
            None => o.push(c),
        }
    }
    o
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One series of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points (x, y); y in [0, 1].
    pub points: Vec<(f64, f64)>,
}

/// A line chart with y in [0, 1] shown as percent; `log_x` puts x on a
/// log10 axis (non-positive x values are dropped there).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> String {
    let (w, h, l, r, t, b) = (560.0, 300.0, 60.0, 20.0, 34.0, 70.0);
    let tx = |x: f64| if log_x { x.log10() } else { x };
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite() && (!log_x || *x > 0.0))
        .map(tx)
        .collect();
    let (mut x0, mut x1) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if !log_x {
        x0 = x0.min(0.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let px = |x: f64| l + (tx(x) - x0) / (x1 - x0) * (w - l - r);
    let py = |y: f64| t + (1.0 - y.clamp(0.0, 1.0)) * (h - t - b);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}" font-family="sans-serif" font-size="11">"#,
        esc(title)
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        l,
        esc(title)
    );
    for i in 0..=4 {
        let y = i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{}" y1="{py}" y2="{py}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{:.0}%</text>"##,
            w - r,
            l - 6.0,
            py(y) + 4.0,
            y * 100.0,
            py = py(y)
        );
    }
    // x ticks: the distinct x values of the data (at most 8).
    let mut ticks: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite() && (!log_x || *x > 0.0))
        .collect();
    ticks.sort_by(|a, b| a.total_cmp(b));
    ticks.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
    let step = ticks.len().div_ceil(8).max(1);
    for x in ticks.iter().step_by(step) {
        let _ = write!(
            s,
            r##"<line x1="{px}" x2="{px}" y1="{}" y2="{}" stroke="#999"/><text x="{px}" y="{}" text-anchor="middle">{}</text>"##,
            h - b,
            h - b + 4.0,
            h - b + 16.0,
            trim_num(*x),
            px = px(*x)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{l}" x2="{}" y1="{y}" y2="{y}" stroke="#333"/><line x1="{l}" x2="{l}" y1="{t}" y2="{y}" stroke="#333"/>"##,
        w - r,
        y = h - b
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}{}</text>"#,
        (l + w - r) / 2.0,
        h - b + 32.0,
        esc(x_label),
        if log_x { " (log scale)" } else { "" }
    );
    let _ = write!(
        s,
        r#"<text transform="translate(14,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (t + h - b) / 2.0,
        esc(y_label)
    );
    for (i, ser) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts: Vec<String> = ser
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite() && (!log_x || p.0 > 0.0))
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(s, r#"<circle cx="{x}" cy="{y}" r="3" fill="{c}"/>"#);
        }
        let ly = h - 22.0 + 0.0 * i as f64;
        let lx = l + 180.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="{}" width="12" height="4" fill="{c}"/><text x="{}" y="{ly}">{}</text>"#,
            ly - 6.0,
            lx + 16.0,
            esc(&ser.name)
        );
    }
    s.push_str("</svg>");
    s
}

fn trim_num(x: f64) -> String {
    if x >= 100.0 || x == x.round() {
        format!("{x:.0}")
    } else {
        let t = format!("{x:.3}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// One bar with its 95% confidence interval.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label.
    pub label: String,
    /// Rate in [0, 1].
    pub rate: f64,
    /// Interval low end.
    pub lo: f64,
    /// Interval high end.
    pub hi: f64,
    /// Attempts behind it.
    pub n: u64,
}

/// Horizontal bars (rate as percent) with confidence-interval whiskers and
/// an optional threshold line.
pub fn bar_ci_chart(title: &str, bars: &[Bar], threshold: Option<f64>) -> String {
    let (w, l, r, t, row) = (560.0, 130.0, 70.0, 34.0, 24.0);
    let h = t + row * bars.len() as f64 + 34.0;
    let px = |x: f64| l + x.clamp(0.0, 1.0) * (w - l - r);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}" font-family="sans-serif" font-size="11">"#,
        esc(title)
    );
    let _ = write!(
        s,
        r#"<text x="{l}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for i in 0..=4 {
        let x = i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{px}" x2="{px}" y1="{t}" y2="{}" stroke="#ddd"/><text x="{px}" y="{}" text-anchor="middle">{:.0}%</text>"##,
            h - 30.0,
            h - 16.0,
            x * 100.0,
            px = px(x)
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = t + row * i as f64;
        let color = match threshold {
            Some(th) if b.rate > th => "#d62728",
            _ => "#1f77b4",
        };
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{l}" y="{}" width="{:.1}" height="{}" fill="{color}" opacity="0.85"/><line x1="{:.1}" x2="{:.1}" y1="{cy}" y2="{cy}" stroke="#000"/><line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}" stroke="#000"/><line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}" stroke="#000"/><text x="{}" y="{}">{:.0}% (n={})</text>"##,
            l - 6.0,
            y + row * 0.6,
            esc(&b.label),
            y + 4.0,
            px(b.rate) - l,
            row - 8.0,
            px(b.lo),
            px(b.hi),
            px(b.lo),
            px(b.lo),
            y + 7.0,
            y + row - 7.0,
            px(b.hi),
            px(b.hi),
            y + 7.0,
            y + row - 7.0,
            w - r + 4.0,
            y + row * 0.6,
            b.rate * 100.0,
            b.n,
            cy = y + row / 2.0
        );
    }
    if let Some(th) = threshold {
        let _ = write!(
            s,
            r##"<line x1="{x}" x2="{x}" y1="{t}" y2="{}" stroke="#d62728" stroke-dasharray="4 3"/><text x="{x}" y="{}" fill="#d62728" text-anchor="middle">threshold {:.0}%</text>"##,
            h - 30.0,
            t - 4.0,
            th * 100.0,
            x = px(th)
        );
    }
    s.push_str("</svg>");
    s
}

/// Findings per severity (info .. critical), as vertical bars.
pub fn severity_chart(counts: &[(&str, u64)]) -> String {
    let (w, h, l, t, b) = (360.0, 200.0, 30.0, 24.0, 28.0);
    let max = counts.iter().map(|c| c.1).max().unwrap_or(0).max(1) as f64;
    let bw = (w - l - 10.0) / counts.len().max(1) as f64;
    let colors = ["#7f7f7f", "#2ca02c", "#ff7f0e", "#d62728", "#7b0000"];
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="Findings by severity" font-family="sans-serif" font-size="11"><text x="{l}" y="14" font-size="13" font-weight="bold">Findings by severity</text>"#
    );
    for (i, (name, n)) in counts.iter().enumerate() {
        let bh = (*n as f64 / max) * (h - t - b);
        let x = l + bw * i as f64 + 6.0;
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{n}</text><text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            h - b - bh,
            bw - 12.0,
            colors[i % colors.len()],
            x + (bw - 12.0) / 2.0,
            h - b - bh - 3.0,
            x + (bw - 12.0) / 2.0,
            h - 10.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed_and_escaped() {
        let l = line_chart(
            "Robust <accuracy>",
            "eps",
            "accuracy",
            &[Series {
                name: "pgd".into(),
                points: vec![(0.0, 1.0), (0.05, 0.6), (0.1, 0.2)],
            }],
            false,
        );
        assert!(l.starts_with("<svg") && l.ends_with("</svg>"));
        assert!(l.contains("Robust &lt;accuracy&gt;"));
        assert_eq!(l.matches("<circle").count(), 3);
        let lg = line_chart(
            "x",
            "q",
            "y",
            &[Series {
                name: "a".into(),
                points: vec![(0.0, 0.1), (10.0, 0.5), (100.0, 0.9)],
            }],
            true,
        );
        assert_eq!(
            lg.matches("<circle").count(),
            2,
            "x = 0 has no place on a log axis"
        );
        let b = bar_ci_chart(
            "p",
            &[Bar {
                label: "injection".into(),
                rate: 0.5,
                lo: 0.3,
                hi: 0.7,
                n: 10,
            }],
            Some(0.05),
        );
        assert!(b.contains("#d62728") && b.contains("50% (n=10)"));
        let s = severity_chart(&[("info", 1), ("high", 3)]);
        assert!(s.contains(">3<"));
        assert_eq!(esc("a\"b'<"), "a&quot;b&#39;&lt;");
    }
}
