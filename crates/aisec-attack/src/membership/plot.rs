//! The ROC on log-log axes as a self-contained SVG, the plot Carlini et al.
//! (2022, Fig. 1) made the standard for membership inference: the low-FPR
//! corner, where a privacy attack matters, gets most of the picture.

use std::fmt::Write;

use super::Roc;

const W: f64 = 560.0;
const H: f64 = 460.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Lowest decade shown: one below `1 / negatives`, between 1e-6 and 1e-2.
pub fn lowest_decade(negatives: usize) -> i32 {
    let f = 1.0 / negatives.max(1) as f64;
    (f.log10().floor() as i32).clamp(-6, -2)
}

fn tick_label(d: i32) -> String {
    match d {
        0 => "1".into(),
        -1 => "0.1".into(),
        -2 => "0.01".into(),
        -3 => "0.001".into(),
        d => format!("1e{d}"),
    }
}

/// Draws one curve per `(label, roc)` on log-log axes from `10^low` to 1
/// (see [`lowest_decade`]), with the random-guess diagonal, decade ticks,
/// axis labels and a legend. Points at zero are drawn on the lowest tick.
pub fn roc_svg(title: &str, curves: &[(String, &Roc)], low: i32) -> String {
    let low = low.clamp(-9, -1) as f64;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |f: f64| LEFT + (f.max(10f64.powf(low)).log10() - low) / -low * pw;
    let sy = |t: f64| TOP + ph - (t.max(10f64.powf(low)).log10() - low) / -low * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n"
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>",
        LEFT + pw / 2.0,
        esc(title)
    );
    // Grid and ticks per decade (minor ticks at 2..9).
    for d in (low as i32)..=0 {
        let v = 10f64.powi(d);
        let (x, y) = (sx(v), sy(v));
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>",
            TOP + ph,
            LEFT + pw
        );
        let _ = writeln!(
            s,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            TOP + ph + 18.0,
            tick_label(d),
            LEFT - 6.0,
            y + 4.0,
            tick_label(d)
        );
        if d < 0 {
            for m in 2..10 {
                let v = m as f64 * 10f64.powi(d);
                let (x, y) = (sx(v), sy(v));
                let _ = writeln!(
                    s,
                    "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#000\"/>\
<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#000\"/>",
                    TOP + ph,
                    TOP + ph - 4.0,
                    LEFT + 4.0
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#000\"/>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">False positive rate</text>\
<text x=\"18\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {:.1})\">True positive rate</text>",
        LEFT + pw / 2.0,
        H - 18.0,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    // Random guessing: TPR = FPR.
    let _ = writeln!(
        s,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>",
        sx(0.0),
        sy(0.0),
        sx(1.0),
        sy(1.0)
    );
    for (k, (_, r)) in curves.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        // Vertices closer than half a pixel to the last one drawn add
        // nothing visible (thousands crowd the right end on log axes).
        let mut pts = String::new();
        let mut last = (f64::NAN, f64::NAN);
        let k_end = r.fpr.len().saturating_sub(1);
        for (k, (f, t)) in r.fpr.iter().zip(&r.tpr).enumerate() {
            let (px, py) = (sx(*f), sy(*t));
            if k == 0 || k == k_end || (px - last.0).abs() >= 0.5 || (py - last.1).abs() >= 0.5 {
                let _ = write!(pts, "{px:.1},{py:.1} ");
                last = (px, py);
            }
        }
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"1.8\"/>",
            pts.trim_end()
        );
    }
    // Legend, bottom right inside the plot: below the diagonal, where ROC
    // curves rarely go.
    let lw = curves
        .iter()
        .map(|(l, _)| l.len())
        .max()
        .unwrap_or(6)
        .max(12) as f64
        * 6.4
        + 48.0;
    let lh = 18.0 * (curves.len() + 1) as f64 + 8.0;
    let (lx, ly0) = (LEFT + pw - lw - 8.0, TOP + ph - lh - 8.0);
    let _ = writeln!(
        s,
        "<rect x=\"{lx:.1}\" y=\"{ly0:.1}\" width=\"{lw:.1}\" height=\"{lh:.1}\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#999\"/>"
    );
    let entries = curves
        .iter()
        .enumerate()
        .map(|(k, (label, _))| (label.as_str(), COLOURS[k % COLOURS.len()], ""))
        .chain(std::iter::once((
            "random guess",
            "#888",
            " stroke-dasharray=\"5,4\"",
        )));
    let mut ly = ly0 + 18.0;
    for (label, c, dash) in entries {
        let _ = writeln!(
            s,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-width=\"2\"{dash}/>\
<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 8.0,
            ly - 4.0,
            lx + 30.0,
            ly - 4.0,
            lx + 36.0,
            ly,
            esc(label)
        );
        ly += 18.0;
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_axes_curves_and_legend() {
        let r = Roc {
            fpr: vec![0.0, 0.0, 0.001, 0.1, 1.0],
            tpr: vec![0.0, 0.05, 0.2, 0.6, 1.0],
        };
        let s = roc_svg(
            "digits <MLP>",
            &[("lira-online (AUC 0.80)".into(), &r), ("loss".into(), &r)],
            lowest_decade(2500),
        );
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("digits &lt;MLP&gt;"));
        assert!(s.contains(">0.001<") && s.contains(">1e-4<"));
        assert!(s.contains("False positive rate") && s.contains("random guess"));
        assert_eq!(lowest_decade(2500), -4);
        assert_eq!(lowest_decade(50), -2);
    }
}
