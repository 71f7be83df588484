//! Loss values and their gradients with respect to the logits.

use crate::classifier::{Loss, ModelError, Tensor};

fn check(name: &str, v: &[usize], b: usize, c: usize) -> Result<(), ModelError> {
    if v.len() != b {
        return Err(ModelError::Shape(format!(
            "{name}: {} entries for a batch of {b}",
            v.len()
        )));
    }
    if let Some(&bad) = v.iter().find(|&&x| x >= c) {
        return Err(ModelError::Shape(format!(
            "{name}: class {bad} out of range for {c} classes"
        )));
    }
    Ok(())
}

/// Indices of the `k` largest values, largest first.
fn top(z: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..z.len()).collect();
    idx.sort_by(|&a, &b| z[b].total_cmp(&z[a]));
    idx.truncate(k);
    idx
}

fn best_other(z: &[f32], y: usize) -> usize {
    let mut m = usize::MAX;
    for (i, &v) in z.iter().enumerate() {
        if i != y && (m == usize::MAX || v > z[m]) {
            m = i;
        }
    }
    m
}

/// Per-example loss values and `d(sum of losses)/d logits`.
pub fn loss_and_grad(z: &Tensor, loss: &Loss) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
    if z.shape.len() != 2 {
        return Err(ModelError::Shape(format!(
            "losses need logits [batch, classes], got {:?}",
            z.shape
        )));
    }
    let (b, c) = (z.shape[0], z.shape[1]);
    let mut vals = vec![0.0f32; b];
    let mut g = vec![0.0f32; b * c];
    const EPS: f32 = 1e-12;
    match loss {
        Loss::CrossEntropy { labels } => {
            check("labels", labels, b, c)?;
            for i in 0..b {
                let r = z.row(i);
                let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let s: f32 = r.iter().map(|v| (v - m).exp()).sum();
                let lse = m + s.ln();
                vals[i] = lse - r[labels[i]];
                for j in 0..c {
                    g[i * c + j] = (r[j] - lse).exp();
                }
                g[i * c + labels[i]] -= 1.0;
            }
        }
        Loss::Dlr { labels } => {
            check("labels", labels, b, c)?;
            if c < 3 {
                return Err(ModelError::Shape("DLR needs at least 3 classes".into()));
            }
            for i in 0..b {
                let r = z.row(i);
                let y = labels[i];
                let o = best_other(r, y);
                let t = top(r, 3);
                let num = r[y] - r[o];
                let den = r[t[0]] - r[t[2]] + EPS;
                vals[i] = -num / den;
                let gi = &mut g[i * c..(i + 1) * c];
                gi[y] -= 1.0 / den;
                gi[o] += 1.0 / den;
                gi[t[0]] += num / (den * den);
                gi[t[2]] -= num / (den * den);
            }
        }
        Loss::DlrTargeted { labels, targets } => {
            check("labels", labels, b, c)?;
            check("targets", targets, b, c)?;
            if c < 4 {
                return Err(ModelError::Shape(
                    "targeted DLR needs at least 4 classes".into(),
                ));
            }
            for i in 0..b {
                let r = z.row(i);
                let (y, tg) = (labels[i], targets[i]);
                let t = top(r, 4);
                let num = r[y] - r[tg];
                let den = r[t[0]] - 0.5 * (r[t[2]] + r[t[3]]) + EPS;
                vals[i] = -num / den;
                let gi = &mut g[i * c..(i + 1) * c];
                gi[y] -= 1.0 / den;
                gi[tg] += 1.0 / den;
                let q = num / (den * den);
                gi[t[0]] += q;
                gi[t[2]] -= 0.5 * q;
                gi[t[3]] -= 0.5 * q;
            }
        }
        Loss::CwMargin { labels, kappa } => {
            check("labels", labels, b, c)?;
            if c < 2 {
                return Err(ModelError::Shape(
                    "CW margin needs at least 2 classes".into(),
                ));
            }
            for i in 0..b {
                let r = z.row(i);
                let y = labels[i];
                let o = best_other(r, y);
                let m = r[y] - r[o];
                if m > -kappa {
                    vals[i] = m;
                    g[i * c + y] = 1.0;
                    g[i * c + o] = -1.0;
                } else {
                    vals[i] = -kappa;
                }
            }
        }
        Loss::Logit { classes } => {
            check("classes", classes, b, c)?;
            for i in 0..b {
                vals[i] = z.row(i)[classes[i]];
                g[i * c + classes[i]] = 1.0;
            }
        }
        Loss::SoftCrossEntropy { targets } => {
            if targets.len() != b * c {
                return Err(ModelError::Shape(format!(
                    "soft targets: {} values for a batch of {b} x {c} classes",
                    targets.len()
                )));
            }
            if targets.iter().any(|t| !t.is_finite() || *t < 0.0) {
                return Err(ModelError::Shape(
                    "soft targets must be finite and non-negative".into(),
                ));
            }
            for i in 0..b {
                let r = z.row(i);
                let q = &targets[i * c..(i + 1) * c];
                let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let s: f32 = r.iter().map(|v| (v - m).exp()).sum();
                let lse = m + s.ln();
                let mass: f32 = q.iter().sum();
                vals[i] = q.iter().zip(r).map(|(qj, zj)| qj * (lse - zj)).sum();
                for j in 0..c {
                    g[i * c + j] = mass * (r[j] - lse).exp() - q[j];
                }
            }
        }
    }
    Ok((vals, g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Tensor {
        // Distinct values so the ranking is stable under small perturbations.
        let v = [
            0.3, -1.2, 2.0, 0.9, -0.4, 1.4, 0.1, -2.1, 1.1, 0.6, -0.8, 2.6,
        ];
        Tensor::new(vec![2, 6], v.to_vec()).unwrap()
    }

    fn fd_check(loss: &Loss) {
        let z = logits();
        let (_, g) = loss_and_grad(&z, loss).unwrap();
        let h = 1e-3f32;
        for (i, &gi) in g.iter().enumerate() {
            let mut p = z.clone();
            p.data[i] += h;
            let mut m = z.clone();
            m.data[i] -= h;
            let fp: f32 = loss_and_grad(&p, loss).unwrap().0.iter().sum();
            let fm: f32 = loss_and_grad(&m, loss).unwrap().0.iter().sum();
            let fd = (fp - fm) / (2.0 * h);
            assert!(
                (fd - gi).abs() < 2e-2 * fd.abs().max(1.0),
                "{loss:?} [{i}]: {gi} vs {fd}"
            );
        }
    }

    #[test]
    fn every_loss_gradient_matches_finite_differences() {
        fd_check(&Loss::CrossEntropy { labels: vec![2, 5] });
        fd_check(&Loss::Dlr { labels: vec![0, 3] });
        fd_check(&Loss::DlrTargeted {
            labels: vec![0, 3],
            targets: vec![1, 4],
        });
        fd_check(&Loss::CwMargin {
            labels: vec![2, 0],
            kappa: 0.5,
        });
        fd_check(&Loss::CwMargin {
            labels: vec![1, 1],
            kappa: 0.1,
        });
        fd_check(&Loss::Logit {
            classes: vec![4, 1],
        });
        fd_check(&Loss::SoftCrossEntropy {
            targets: vec![
                0.1, 0.0, 0.5, 0.2, 0.0, 0.2, //
                0.0, 0.3, 0.3, 0.0, 0.0, 0.4,
            ],
        });
    }

    #[test]
    fn soft_cross_entropy_on_one_hot_targets_is_cross_entropy() {
        let z = logits();
        let mut q = vec![0.0; 12];
        q[2] = 1.0;
        q[6 + 5] = 1.0;
        let (vs, gs) = loss_and_grad(&z, &Loss::SoftCrossEntropy { targets: q }).unwrap();
        let (vh, gh) = loss_and_grad(&z, &Loss::CrossEntropy { labels: vec![2, 5] }).unwrap();
        for (a, b) in vs.iter().zip(&vh).chain(gs.iter().zip(&gh)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert!(loss_and_grad(
            &z,
            &Loss::SoftCrossEntropy {
                targets: vec![0.5; 6]
            }
        )
        .is_err());
    }

    #[test]
    fn values_and_label_checks() {
        let z = logits();
        let (v, _) = loss_and_grad(
            &z,
            &Loss::CwMargin {
                labels: vec![2, 5],
                kappa: 0.0,
            },
        )
        .unwrap();
        // Example 0: z_2 = 2.0 is the top logit, next best 1.4 -> margin 0.6.
        assert!((v[0] - 0.6).abs() < 1e-6);
        assert!(loss_and_grad(&z, &Loss::CrossEntropy { labels: vec![6, 0] }).is_err());
        assert!(loss_and_grad(&z, &Loss::Logit { classes: vec![0] }).is_err());
    }
}
