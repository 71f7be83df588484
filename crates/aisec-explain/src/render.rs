//! Pictures of attributions: a PNG per image example (the input beside a
//! signed heat-map overlay, with predicted and true label), an SVG bar
//! chart per tabular example and a mean |value| summary, and an HTML page
//! that shows them all.

use std::path::Path;

use aisec_core::render::escape_html;

use crate::security::{image_dims, pixel_map};
use crate::{ExplainError, Result};

/// What one picture is about.
#[derive(Debug, Clone)]
pub struct Caption {
    /// Predicted class.
    pub predicted: usize,
    /// True class, when known.
    pub truth: Option<usize>,
    /// The class whose score is explained.
    pub target: usize,
    /// Pixels (`H * W`) to outline in yellow on the overlay, e.g. a known
    /// backdoor trigger.
    pub outline: Option<Vec<bool>>,
}

/// 3x5 glyphs (rows top to bottom, 3 bits each, high bit left).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'P' => [6, 5, 6, 4, 4],
        'R' => [6, 5, 6, 5, 5],
        'E' => [7, 4, 6, 4, 7],
        'D' => [6, 5, 5, 5, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        '?' => [7, 1, 3, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        _ => [0; 5],
    }
}

/// Draws `text` at (`x0`, `y0`) with pixel size `s` into an RGB buffer.
fn draw_text(buf: &mut [u8], width: usize, x0: usize, y0: usize, s: usize, text: &str) {
    let height = buf.len() / (3 * width).max(1);
    for (n, ch) in text.chars().enumerate() {
        let g = glyph(ch.to_ascii_uppercase());
        for (r, bits) in g.iter().enumerate() {
            for col in 0..3 {
                if bits >> (2 - col) & 1 == 1 {
                    for dy in 0..s {
                        for dx in 0..s {
                            let x = x0 + (n * 4 + col) * s + dx;
                            let y = y0 + r * s + dy;
                            if x < width && y < height {
                                let p = 3 * (y * width + x);
                                buf[p..p + 3].copy_from_slice(&[255, 255, 255]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Grey or RGB colour of pixel `p` of an input row, with values mapped
/// from `[lo, hi]` to 0..255.
fn input_rgb(row: &[f32], shape: &[usize], p: usize, lo: f32, hi: f32) -> [f32; 3] {
    let (c, h, w) = image_dims(shape);
    let hw = h * w;
    let span = if hi > lo { hi - lo } else { 1.0 };
    let at =
        |ch: usize| ((row.get(ch * hw + p).copied().unwrap_or(0.0) - lo) / span).clamp(0.0, 1.0);
    if c == 3 {
        [at(0), at(1), at(2)]
    } else {
        let g = (0..c).map(at).sum::<f32>() / c.max(1) as f32;
        [g, g, g]
    }
}

/// Writes a PNG with the input on the left and, on the right, the input
/// in grey with the attribution laid over it (red: raises the target
/// score, blue: lowers it; opacity by magnitude relative to the largest),
/// and a strip below with `PRED p TRUE t`. Pixels are enlarged so the
/// longer side is at least 128 pixels.
pub fn heatmap_png(
    path: &Path,
    input: &[f32],
    attribution: &[f32],
    shape: &[usize],
    caption: &Caption,
) -> Result<()> {
    let (_, h, w) = image_dims(shape);
    if h == 0 || w == 0 || input.len() != attribution.len() {
        return Err(ExplainError::Invalid(format!(
            "cannot draw an image of shape {shape:?}"
        )));
    }
    let scale = (128 / h.max(w)).max(1);
    let text_scale = 2usize;
    let strip = 7 * text_scale;
    let gap = 4usize;
    let (pw, ph) = (w * scale, h * scale);
    let width = 2 * pw + gap;
    let height = ph + strip;
    let mut buf = vec![0u8; width * height * 3];
    let lo = input.iter().copied().fold(f32::INFINITY, f32::min).min(0.0);
    let hi = input
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
        .max(1.0);
    let map = pixel_map(attribution, shape, false);
    let amax = map.iter().fold(
        0.0f32,
        |m, v| if v.is_finite() { m.max(v.abs()) } else { m },
    );
    for y in 0..h {
        for x in 0..w {
            let p = y * w + x;
            let rgb = input_rgb(input, shape, p, lo, hi);
            let grey = (rgb[0] + rgb[1] + rgb[2]) / 3.0 * 0.6;
            let a = if amax > 0.0 && map[p].is_finite() {
                map[p] / amax
            } else {
                0.0
            };
            let col = if a >= 0.0 {
                [1.0, 0.1, 0.1]
            } else {
                [0.1, 0.35, 1.0]
            };
            let alpha = a.abs().sqrt();
            let over: Vec<f32> = (0..3)
                .map(|k| grey * (1.0 - alpha) + col[k] * alpha)
                .collect();
            for dy in 0..scale {
                for dx in 0..scale {
                    let yy = y * scale + dy;
                    let left = 3 * (yy * width + x * scale + dx);
                    let right = 3 * (yy * width + pw + gap + x * scale + dx);
                    for k in 0..3 {
                        buf[left + k] = (rgb[k] * 255.0).round() as u8;
                        buf[right + k] = (over[k] * 255.0).round() as u8;
                    }
                }
            }
        }
    }
    if let Some(mask) = caption.outline.as_deref().filter(|m| m.len() == h * w) {
        // A pixel-wide yellow edge wherever a marked pixel meets an unmarked one.
        let on = |y: isize, x: isize| {
            y >= 0
                && x >= 0
                && (y as usize) < h
                && (x as usize) < w
                && mask[y as usize * w + x as usize]
        };
        for y in 0..h as isize {
            for x in 0..w as isize {
                if !on(y, x) {
                    continue;
                }
                let (py, px) = (y as usize * scale, pw + gap + x as usize * scale);
                let mut paint = |yy: usize, xx: usize| {
                    let p = 3 * (yy * width + xx);
                    buf[p..p + 3].copy_from_slice(&[255, 220, 0]);
                };
                for k in 0..scale {
                    if !on(y - 1, x) {
                        paint(py, px + k);
                    }
                    if !on(y + 1, x) {
                        paint(py + scale - 1, px + k);
                    }
                    if !on(y, x - 1) {
                        paint(py + k, px);
                    }
                    if !on(y, x + 1) {
                        paint(py + k, px + scale - 1);
                    }
                }
            }
        }
    }
    let truth = caption
        .truth
        .map(|t| t.to_string())
        .unwrap_or_else(|| "?".into());
    let label = format!("PRED {} TRUE {}", caption.predicted, truth);
    draw_text(&mut buf, width, 2, ph + text_scale, text_scale, &label);
    let img = image::RgbImage::from_raw(width as u32, height as u32, buf).ok_or_else(|| {
        ExplainError::Encode {
            path: path.display().to_string(),
            message: "buffer size".into(),
        }
    })?;
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| ExplainError::Encode {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// A horizontal bar chart of signed values (red positive, blue negative),
/// the `top` largest in magnitude, largest first.
pub fn bar_chart_svg(title: &str, names: &[String], values: &[f32], top: usize) -> String {
    let mut order: Vec<usize> = (0..values.len())
        .filter(|&i| values[i].is_finite())
        .collect();
    order.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()).then(a.cmp(&b)));
    order.truncate(top);
    let row_h = 18.0;
    let label_w = 170.0;
    let bar_w = 360.0;
    let width = label_w + bar_w + 90.0;
    let height = 40.0 + row_h * order.len() as f64 + 10.0;
    let vmax = order
        .iter()
        .map(|&i| values[i].abs() as f64)
        .fold(0.0, f64::max)
        .max(1e-12);
    let any_neg = order.iter().any(|&i| values[i] < 0.0);
    let zero = if any_neg {
        label_w + bar_w / 2.0
    } else {
        label_w
    };
    let span = if any_neg { bar_w / 2.0 } else { bar_w };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"8\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        escape_html(title)
    );
    for (r, &i) in order.iter().enumerate() {
        let y = 34.0 + row_h * r as f64;
        let v = values[i] as f64;
        let len = v.abs() / vmax * span;
        let x = if v >= 0.0 { zero } else { zero - len };
        let colour = if v >= 0.0 { "#d62728" } else { "#1f77b4" };
        let name = names.get(i).cloned().unwrap_or_else(|| format!("f{i}"));
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{len:.2}\" height=\"{:.2}\" fill=\"{colour}\"/>\
             <text x=\"{:.2}\" y=\"{}\" fill=\"#333\">{:+.4}</text>\n",
            label_w - 6.0,
            y + 12.0,
            escape_html(&name),
            y + 2.0,
            row_h - 4.0,
            if v >= 0.0 {
                x + len + 4.0
            } else {
                (zero + 4.0).max(x + len + 4.0)
            },
            y + 12.0,
            v
        ));
    }
    s.push_str(&format!(
        "<line x1=\"{zero}\" y1=\"30\" x2=\"{zero}\" y2=\"{}\" stroke=\"#444\"/>\n</svg>\n",
        height - 8.0
    ));
    s
}

/// Mean absolute value per feature over the rows of `values` (`n x m`).
pub fn mean_abs(values: &[f32], m: usize) -> Vec<f32> {
    if m == 0 {
        return Vec::new();
    }
    let n = values.len() / m;
    let mut acc = vec![0.0f64; m];
    for row in values.chunks(m) {
        for (a, v) in acc.iter_mut().zip(row) {
            *a += v.abs() as f64;
        }
    }
    acc.iter().map(|&a| (a / n.max(1) as f64) as f32).collect()
}

/// One example's entry on the HTML page.
#[derive(Debug, Clone)]
pub struct PageItem {
    /// Picture file, relative to the page.
    pub picture: String,
    /// Text under it.
    pub caption: String,
}

/// An HTML page with a heading, a table of key numbers, an optional
/// summary picture and one figure per example. Pictures are linked by
/// relative path, so the page goes with its folder.
pub fn html_page(
    title: &str,
    facts: &[(String, String)],
    summary: Option<&str>,
    items: &[PageItem],
) -> String {
    let mut s = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
         body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin-bottom:16px}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         .grid{{display:flex;flex-wrap:wrap;gap:14px}}figure{{margin:0;border:1px solid #ddd;padding:6px}}\
         figcaption{{font-size:12px;max-width:420px}}img{{image-rendering:pixelated}}</style></head><body>\n\
         <h1>{t}</h1>\n<p>Red raises the explained class's score, blue lowers it.</p>\n<table>\n",
        t = escape_html(title)
    );
    for (k, v) in facts {
        s.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            escape_html(k),
            escape_html(v)
        ));
    }
    s.push_str("</table>\n");
    if let Some(p) = summary {
        s.push_str(&format!(
            "<h2>Summary</h2>\n<img src=\"{}\" alt=\"summary\">\n",
            escape_html(p)
        ));
    }
    s.push_str("<h2>Examples</h2>\n<div class=\"grid\">\n");
    for it in items {
        s.push_str(&format!(
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
            escape_html(&it.picture),
            escape_html(&it.caption),
            escape_html(&it.caption)
        ));
    }
    s.push_str("</div>\n</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_png_has_both_panels_and_the_label_strip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("h.png");
        let input: Vec<f32> = (0..64).map(|v| v as f32 / 64.0).collect();
        let mut attr = vec![0.0f32; 64];
        attr[9] = 2.0;
        attr[54] = -1.0;
        let mut cap = Caption {
            predicted: 3,
            truth: Some(8),
            target: 3,
            outline: None,
        };
        heatmap_png(&p, &input, &attr, &[1, 8, 8], &cap).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        // 8x8 enlarged 16 times, two panels 4 apart, a 14-pixel strip.
        assert_eq!(img.dimensions(), (260, 142));
        // Pixel (1, 1) of the overlay is pure red (largest positive).
        let red = img.get_pixel(132 + 16 + 8, 16 + 8);
        assert_eq!(red.0, [255, 26, 26]);
        // Pixel (6, 6) is mostly blue.
        let blue = img.get_pixel(132 + 96 + 8, 96 + 8);
        assert!(blue.0[2] > 200 && blue.0[0] < 100, "{:?}", blue.0);
        // The input panel is the grey input: pixel 63 is the brightest.
        assert!(img.get_pixel(7 * 16 + 8, 7 * 16 + 8).0[0] > 240);
        // Some white label text in the strip.
        assert!((0..260).any(|x| img.get_pixel(x, 131).0 == [255, 255, 255]));
        assert!(heatmap_png(&p, &input, &attr[..3], &[1, 8, 8], &cap).is_err());
        // An outlined 2x2 block gets a yellow edge on the overlay only.
        cap.outline = Some((0..64).map(|q| q / 8 >= 6 && q % 8 >= 6).collect());
        heatmap_png(&p, &input, &attr, &[1, 8, 8], &cap).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.get_pixel(132 + 96, 96 + 5).0, [255, 220, 0]);
        assert_eq!(img.get_pixel(132 + 127, 127).0, [255, 220, 0]);
        assert_ne!(img.get_pixel(132 + 104, 104).0, [255, 220, 0]);
        assert_ne!(img.get_pixel(96, 96 + 5).0, [255, 220, 0]);
    }

    #[test]
    fn bar_chart_orders_by_magnitude_and_escapes_names() {
        let names: Vec<String> = ["a<b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let svg = bar_chart_svg("t & u", &names, &[0.1, -0.5, 0.3], 2);
        assert!(svg.contains("t &amp; u"));
        assert!(!svg.contains("a&lt;b"), "only the top 2 are drawn");
        let c = svg.find(">c<").unwrap();
        let d = svg.find(">d<").unwrap();
        assert!(c < d);
        assert!(svg.contains("-0.5000") && svg.contains("#1f77b4"));
        assert_eq!(mean_abs(&[1.0, -2.0, -3.0, 4.0], 2), vec![2.0, 3.0]);
    }

    #[test]
    fn page_links_every_picture() {
        let html = html_page(
            "IG <x>",
            &[("method".into(), "ig".into())],
            Some("summary.svg"),
            &[PageItem {
                picture: "0.png".into(),
                caption: "pred 1".into(),
            }],
        );
        assert!(html.contains("IG &lt;x&gt;"));
        assert!(html.contains("src=\"0.png\"") && html.contains("src=\"summary.svg\""));
    }
}
