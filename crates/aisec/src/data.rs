//! Checks every command runs on the data it reads, so that a mistake in
//! the data is an error that names the fix instead of a wrong number.
//!
//! The failure these guard against: uint8 images stored as 0..255 given to
//! an attack whose budgets are in [0, 1] (`--lo 0 --hi 1`, the default).
//! Without a check every budget is 255 times too small, the attack finds
//! nothing, and the report says the model is robust. aisec does not guess
//! a scale silently; it stops (exit 2) with the range it found and the flag
//! that fixes it.

use aisec_model::Tensor;
use anyhow::bail;

/// Which preprocessing flags a command offers, for the hint in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// `--scale` and `--value-range` (attack evasion).
    ScaleOrValueRange,
    /// A scale flag only (`--scale`, or `--query-scale` for a query set).
    Scale(&'static str),
}

/// Fails when `x` holds NaN or infinite values, or values outside
/// `[lo, hi]` (the command's `--lo` / `--hi`). `what` names the data in
/// the message ("inputs", "--members").
pub fn check_inputs(x: &Tensor, what: &str, lo: f32, hi: f32, fix: Fix) -> anyhow::Result<()> {
    check_finite(x, what)?;
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in &x.data {
        min = min.min(v);
        max = max.max(v);
    }
    if x.data.is_empty() {
        return Ok(());
    }
    let tol = 1e-4 * (hi - lo).abs().max(1e-6);
    if min >= lo - tol && max <= hi + tol {
        return Ok(());
    }
    let hint = hint(min, max, lo, hi, fix);
    bail!(
        "{what}: values range over [{}, {}], outside the valid input range [--lo, --hi] = [{}, {}]; \
         budgets and clipping would be wrong. {hint}",
        short(min),
        short(max),
        short(lo),
        short(hi)
    )
}

/// Fails when `x` holds NaN or infinite values.
pub fn check_finite(x: &Tensor, what: &str) -> anyhow::Result<()> {
    let row = x.row_len().max(1);
    if let Some(i) = x.data.iter().position(|v| !v.is_finite()) {
        let n = x.data.iter().filter(|v| !v.is_finite()).count();
        bail!(
            "{what}: {n} value(s) are NaN or infinite (first in example {}); clean the data first",
            i / row
        );
    }
    Ok(())
}

/// The flag that maps the range found onto `[lo, hi]`.
fn hint(min: f32, max: f32, lo: f32, hi: f32, fix: Fix) -> String {
    // Stored ranges people use: 0..1, 0..16 (digits), 0..255 (uint8), 0..65535.
    let stored_hi = [1.0, 16.0, 255.0, 65535.0]
        .into_iter()
        .find(|&m| max <= m)
        .unwrap_or(max);
    let stored_lo = if min >= 0.0 { 0.0 } else { min };
    let range = format!("--value-range {},{}", short(stored_lo), short(stored_hi));
    let scale = (stored_lo == 0.0 && lo == 0.0 && stored_hi > 0.0)
        .then(|| format!("--scale {}", (hi / stored_hi) as f64));
    match (fix, scale) {
        (Fix::ScaleOrValueRange, Some(s)) => format!(
            "If the data is stored as {}..{}, pass {range} (or {s}); if the model really takes this range, set --lo/--hi to it.",
            short(stored_lo),
            short(stored_hi)
        ),
        (Fix::ScaleOrValueRange, None) => format!(
            "Pass {range} to map it onto [--lo, --hi], or set --lo/--hi to the range the model takes."
        ),
        (Fix::Scale(flag), Some(s)) => format!(
            "If the data is stored as {}..{}, pass {}; if the model really takes this range, set --lo/--hi to it.",
            short(stored_lo),
            short(stored_hi),
            s.replacen("--scale", flag, 1)
        ),
        (Fix::Scale(flag), None) => {
            format!("Rescale it with {flag}, or set --lo/--hi to the range the model takes.")
        }
    }
}

fn short(v: f32) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Fails when a label is not a class of a model with `classes` outputs.
pub fn check_labels(y: &[usize], classes: usize, what: &str) -> anyhow::Result<()> {
    if let Some((i, &c)) = y.iter().enumerate().find(|(_, &c)| c >= classes) {
        let n = y.iter().filter(|&&c| c >= classes).count();
        bail!(
            "{what}: label {c} (example {i}) is out of range for a model with {classes} classes \
             (0..={}); {n} label(s) are; check that the labels belong to this model",
            classes.saturating_sub(1)
        );
    }
    Ok(())
}

/// Fails when the number of labels differs from the number of examples.
pub fn check_lengths(x: &Tensor, y: &[usize], what: &str) -> anyhow::Result<()> {
    if x.batch() != y.len() {
        bail!("{what}: {} examples but {} labels", x.batch(), y.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint8_data_names_the_range_and_the_flag() {
        let x = Tensor::new(vec![2, 2], vec![0.0, 255.0, 12.0, 3.0]).unwrap();
        let e = check_inputs(&x, "inputs", 0.0, 1.0, Fix::ScaleOrValueRange)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[0, 255]"), "{e}");
        assert!(e.contains("--value-range 0,255"), "{e}");
        assert!(e.contains("--scale 0.00392"), "{e}");
        let e = check_inputs(&x, "inputs", 0.0, 1.0, Fix::Scale("--scale"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--scale 0.00392"), "{e}");
        assert!(!e.contains("--value-range"), "{e}");
    }

    #[test]
    fn in_range_data_and_negative_ranges_pass() {
        let x = Tensor::new(vec![1, 3], vec![0.0, 0.5, 1.0]).unwrap();
        check_inputs(&x, "inputs", 0.0, 1.0, Fix::Scale("--scale")).unwrap();
        let x = Tensor::new(vec![1, 3], vec![-1.0, 0.0, 1.0]).unwrap();
        check_inputs(&x, "inputs", -1.0, 1.0, Fix::Scale("--scale")).unwrap();
        let e = check_inputs(&x, "inputs", 0.0, 1.0, Fix::ScaleOrValueRange)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--value-range -1,1"), "{e}");
    }

    #[test]
    fn nan_and_labels() {
        let x = Tensor::new(vec![2, 2], vec![0.0, 0.1, f32::NAN, 0.2]).unwrap();
        let e = check_inputs(&x, "inputs", 0.0, 1.0, Fix::Scale("--scale"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("NaN") && e.contains("example 1"), "{e}");
        let e = check_labels(&[1, 10, 3], 10, "labels")
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 10") && e.contains("10 classes"), "{e}");
        check_labels(&[0, 9], 10, "labels").unwrap();
    }
}
