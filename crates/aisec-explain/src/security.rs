//! Security uses of attributions: where a backdoor trigger acts, and where
//! an adversarial perturbation moves the logit.

use aisec_model::{Differentiable, Tensor};

use crate::gradient::{integrated_gradients, IgConfig, PathAttribution};
use crate::{ExplainError, Result};

/// Height and width of an example of shape `[C, H, W]`, `[H, W]` or `[N]`
/// (the last treated as one row of `N`), and its channel count.
pub fn image_dims(shape: &[usize]) -> (usize, usize, usize) {
    match shape {
        [c, h, w] => (*c, *h, *w),
        [h, w] => (1, *h, *w),
        _ => (1, 1, shape.iter().product()),
    }
}

/// One value per pixel: the sum over channels of the attribution, in
/// absolute value when `abs` (channel-first layout).
pub fn pixel_map(row: &[f32], shape: &[usize], abs: bool) -> Vec<f32> {
    let (c, h, w) = image_dims(shape);
    let hw = h * w;
    let mut out = vec![0.0f32; hw];
    for ch in 0..c {
        for (p, o) in out.iter_mut().enumerate() {
            let v = row.get(ch * hw + p).copied().unwrap_or(0.0);
            *o += if abs { v.abs() } else { v };
        }
    }
    out
}

/// The `k` largest entries of `values` as a mask (ties broken by position;
/// NaN counts as smallest).
pub fn top_k_mask(values: &[f32], k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| {
        let (va, vb) = (values[a], values[b]);
        let va = if va.is_nan() { f32::NEG_INFINITY } else { va };
        let vb = if vb.is_nan() { f32::NEG_INFINITY } else { vb };
        vb.total_cmp(&va).then(a.cmp(&b))
    });
    let mut mask = vec![false; values.len()];
    for &i in order.iter().take(k) {
        mask[i] = true;
    }
    mask
}

/// Intersection over union of two masks of the same length (1 when both
/// are empty).
pub fn iou(a: &[bool], b: &[bool]) -> f32 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    if union == 0 {
        1.0
    } else {
        inter as f32 / union as f32
    }
}

/// Trigger localisation: for each example, the pixels with the largest
/// absolute attribution (as many as the trigger has) against the true
/// trigger mask (`H * W` pixels), as intersection over union. The measure
/// follows the localisation scores of backdoor-explanation studies
/// (e.g. Tang et al. 2020's trigger-recovery IoU); 1 means the attribution
/// points at exactly the trigger.
pub fn trigger_iou(attributions: &Tensor, trigger: &[bool]) -> Result<Vec<f32>> {
    let shape = &attributions.shape[1..];
    let (_, h, w) = image_dims(shape);
    if trigger.len() != h * w {
        return Err(ExplainError::Invalid(format!(
            "trigger mask has {} pixels, the inputs {h}x{w}",
            trigger.len()
        )));
    }
    let k = trigger.iter().filter(|&&t| t).count();
    if k == 0 {
        return Err(ExplainError::Invalid("the trigger mask is empty".into()));
    }
    Ok((0..attributions.batch())
        .map(|i| {
            let map = pixel_map(attributions.row(i), shape, true);
            iou(&top_k_mask(&map, k), trigger)
        })
        .collect())
}

/// The attribution of an adversarial perturbation: Integrated Gradients
/// along the straight path from the clean input to the adversarial one,
/// for the target class. By completeness the values add up to the change
/// of that class's score, `f(x_adv) - f(x)`, so they say which perturbed
/// values carry the change (the "attack attribution" use of IG that
/// Sundararajan et al. 2017 suggest for debugging).
#[derive(Debug, Clone)]
pub struct PerturbationAttribution {
    /// Integrated Gradients from clean to adversarial input.
    pub path: PathAttribution,
    /// Per example: the share of the total absolute attribution carried by
    /// the 10% of input values the attack changed most.
    pub top_decile_share: Vec<f32>,
}

/// See [`PerturbationAttribution`].
pub fn attribute_perturbation(
    model: &dyn Differentiable,
    clean: &Tensor,
    adversarial: &Tensor,
    targets: &[usize],
    cfg: &IgConfig,
) -> Result<PerturbationAttribution> {
    if clean.shape != adversarial.shape {
        return Err(ExplainError::Invalid(format!(
            "clean inputs {:?} and adversarial inputs {:?} differ in shape",
            clean.shape, adversarial.shape
        )));
    }
    let path = integrated_gradients(model, adversarial, clean, targets, cfg)?;
    let d = clean.row_len();
    let k = d.div_ceil(10);
    let top_decile_share = (0..clean.batch())
        .map(|i| {
            let pert: Vec<f32> = clean
                .row(i)
                .iter()
                .zip(adversarial.row(i))
                .map(|(a, b)| (a - b).abs())
                .collect();
            let mask = top_k_mask(&pert, k);
            let a = path.attributions.row(i);
            let total: f32 = a.iter().map(|v| v.abs()).sum();
            let top: f32 = a
                .iter()
                .zip(&mask)
                .filter(|(_, m)| **m)
                .map(|(v, _)| v.abs())
                .sum();
            if total > 0.0 {
                top / total
            } else {
                0.0
            }
        })
        .collect();
    Ok(PerturbationAttribution {
        path,
        top_decile_share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testmodels::Poly;

    #[test]
    fn iou_and_top_k() {
        let m = top_k_mask(&[0.1, 5.0, f32::NAN, 3.0, 3.0], 3);
        assert_eq!(m, vec![false, true, false, true, true]);
        assert_eq!(iou(&[true, true, false], &[true, false, true]), 1.0 / 3.0);
        assert_eq!(iou(&[false], &[false]), 1.0);
    }

    #[test]
    fn a_model_that_only_looks_at_the_trigger_localises_it_exactly() {
        // 4x4 single-channel images; the model's class 1 weights the 2x2
        // bottom-right corner only, as a backdoor would.
        let mut w1 = vec![0.0f32; 16];
        for p in [10, 11, 14, 15] {
            w1[p] = 2.0;
        }
        let m = Poly::linear(vec![1, 4, 4], vec![vec![0.1; 16], w1]);
        let mut x =
            Tensor::new(vec![1, 1, 4, 4], (0..16).map(|v| v as f32 / 20.0).collect()).unwrap();
        for p in [10, 11, 14, 15] {
            x.data[p] = 1.0;
        }
        let trigger: Vec<bool> = (0..16).map(|p| [10, 11, 14, 15].contains(&p)).collect();
        let r = integrated_gradients(
            &m,
            &x,
            &Tensor::zeros(vec![1, 1, 4, 4]),
            &[1],
            &IgConfig::default(),
        )
        .unwrap();
        assert_eq!(trigger_iou(&r.attributions, &trigger).unwrap(), vec![1.0]);
        assert!(trigger_iou(&r.attributions, &[true; 3]).is_err());
        assert!(trigger_iou(&r.attributions, &[false; 16]).is_err());
    }

    #[test]
    fn perturbation_attribution_adds_up_to_the_logit_change() {
        let m = Poly::linear(vec![4], vec![vec![1.0, -2.0, 0.5, 3.0]]);
        let clean = Tensor::new(vec![1, 4], vec![0.2, 0.4, 0.6, 0.8]).unwrap();
        let adv = Tensor::new(vec![1, 4], vec![0.2, 0.4, 0.6, 0.9]).unwrap();
        let r = attribute_perturbation(&m, &clean, &adv, &[0], &IgConfig::default()).unwrap();
        let change = r.path.score[0] - r.path.baseline_score[0];
        assert!((change - 0.3).abs() < 1e-5);
        let s: f32 = r.path.attributions.data.iter().sum();
        assert!((s - change).abs() < 1e-5);
        // Only feature 3 was perturbed, and it carries all the change.
        assert!((r.top_decile_share[0] - 1.0).abs() < 1e-6);
        assert!(attribute_perturbation(
            &m,
            &clean,
            &Tensor::zeros(vec![2, 4]),
            &[0],
            &IgConfig::default()
        )
        .is_err());
    }

    #[test]
    fn pixel_maps_sum_channels() {
        let row = [1.0, -2.0, 3.0, -4.0, 0.5, 0.5, 0.5, 0.5];
        assert_eq!(
            pixel_map(&row, &[2, 2, 2], false),
            vec![1.5, -1.5, 3.5, -3.5]
        );
        assert_eq!(pixel_map(&row, &[2, 2, 2], true), vec![1.5, 2.5, 3.5, 4.5]);
        assert_eq!(image_dims(&[7]), (1, 1, 7));
    }
}
