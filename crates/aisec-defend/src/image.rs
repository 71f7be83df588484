//! PNG pictures of reversed triggers: one column per class, the mask on top
//! (white where the trigger sits) and the masked pattern `m * p` below, each
//! tile scaled up by a whole factor so 8x8 triggers are visible.

use aisec_model::data::images::encode_png;

use crate::trigger::MaskTrigger;
use crate::DefendError;

fn to_byte(v: f32, lo: f32, hi: f32) -> u8 {
    let span = (hi - lo).max(f32::MIN_POSITIVE);
    (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8
}

/// A grid of triggers (one column each, mask above masked pattern) with a
/// 1-tile-pixel grey gutter; pattern values are mapped from `[lo, hi]`.
pub fn trigger_grid(triggers: &[&MaskTrigger], lo: f32, hi: f32) -> Result<Vec<u8>, DefendError> {
    let first = triggers
        .first()
        .ok_or_else(|| DefendError::Invalid("no triggers to draw".into()))?;
    let (c, h, w) = (first.c, first.h, first.w);
    if triggers.iter().any(|t| (t.c, t.h, t.w) != (c, h, w)) {
        return Err(DefendError::Invalid("triggers of different sizes".into()));
    }
    let oc = if c == 3 { 3 } else { 1 };
    let scale = (48 / h.max(w)).clamp(1, 16);
    let (th, tw) = (h * scale, w * scale);
    let gut = 2;
    let gw = triggers.len() * (tw + gut) + gut;
    let gh = 2 * (th + gut) + gut;
    let mut img = vec![128u8; gw * gh * oc];
    for (k, t) in triggers.iter().enumerate() {
        let x0 = gut + k * (tw + gut);
        for yy in 0..th {
            for xx in 0..tw {
                let (y, x) = (yy / scale, xx / scale);
                let m = t.mask[y * w + x];
                for ch in 0..oc {
                    let top = ((gut + yy) * gw + x0 + xx) * oc + ch;
                    img[top] = to_byte(m, 0.0, 1.0);
                    let pv = t.pattern[(ch.min(c - 1) * h + y) * w + x];
                    let bottom = ((2 * gut + th + yy) * gw + x0 + xx) * oc + ch;
                    img[bottom] = to_byte(lo + m * (pv - lo), lo, hi);
                }
            }
        }
    }
    Ok(encode_png(&img, gw, gh, oc)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_a_png() {
        let t = MaskTrigger::new((1, 2, 2), vec![1.0, 0.0, 0.0, 0.5], vec![1.0; 4]).unwrap();
        let b = trigger_grid(&[&t, &t], 0.0, 1.0).unwrap();
        assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
        let d = png::Decoder::new(std::io::Cursor::new(b));
        let r = d.read_info().unwrap();
        let info = r.info();
        // 2 tiles of 32 px (2x2 scaled by the largest factor, 16) with 2 px gutters.
        assert_eq!(info.width, 2 * (32 + 2) + 2);
        assert_eq!(info.height, 2 * (32 + 2) + 2);
        assert!(trigger_grid(&[], 0.0, 1.0).is_err());
        assert!(encode_png(&[0; 3], 2, 2, 1).is_err());
    }
}
