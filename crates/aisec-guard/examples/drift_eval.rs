//! Evaluation of the guard's model monitor (`aisec_guard::modelmon`) on the
//! MNIST fixture model and the data `scripts/guard/drift_data.py` writes:
//! per-input detectors (energy, Mahalanobis on logits, feature squeezing)
//! and window-level drift (mean PSI over pixels, predicted-class PSI), each
//! with its threshold chosen on the clean validation part at 1% false
//! alarms, then measured on the clean test part (false alarms) and on its
//! shifted and adversarial versions (detection rate).
//!
//! Usage: cargo run --release -p aisec-guard --example drift_eval -- MODEL.onnx DIR [ADV.npz...]

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use aisec_guard::modelmon::{
    calibrate, score_inputs, threshold_at_fpr, Detectors, DriftConfig, InputThresholds,
    Mahalanobis, Reference, Squeezer,
};
use aisec_model::data::npy::{read_npy, read_npz};
use aisec_model::{Classifier, OnnxModel, Tensor};

const WINDOW: usize = 50;
const WINDOWS: usize = 300;

fn load(dir: &str, name: &str) -> anyhow::Result<Tensor> {
    Ok(read_npy(format!("{dir}/{name}.x.npy"))?.to_tensor())
}

fn rows(t: &Tensor, idx: &[usize]) -> Tensor {
    let n = t.row_len();
    let mut data = Vec::with_capacity(idx.len() * n);
    for &i in idx {
        data.extend_from_slice(t.row(i));
    }
    let mut shape = t.shape.clone();
    shape[0] = idx.len();
    Tensor { shape, data }
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// Window scores (mean PSI, class PSI) of `WINDOWS` windows drawn with replacement from `t`.
fn window_scores(
    reference: &Reference,
    cfg: &DriftConfig,
    t: &Tensor,
    preds: &[usize],
    seed: u64,
) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Lcg(seed);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..WINDOWS {
        let idx: Vec<usize> = (0..WINDOW).map(|_| rng.next(t.batch())).collect();
        let rs: Vec<&[f32]> = idx.iter().map(|&i| t.row(i)).collect();
        let ps: Vec<usize> = idx.iter().map(|&i| preds[i]).collect();
        let r = reference.compare(&rs, &ps, cfg);
        a.push(r.mean_psi);
        b.push(r.class_psi);
    }
    (a, b)
}

fn rate(v: &[f64], th: f64) -> f64 {
    v.iter().filter(|&&x| x > th).count() as f64 / v.len().max(1) as f64
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (model_path, dir) = match (args.first(), args.get(1)) {
        (Some(m), Some(d)) => (m.clone(), d.clone()),
        _ => anyhow::bail!("usage: drift_eval MODEL.onnx DIR [ADV.npz]"),
    };
    let model = OnnxModel::load(&model_path)?;
    let cfg = DriftConfig {
        window: WINDOW,
        ..Default::default()
    };
    let ref_x = load(&dir, "ref")?;
    let ref_y = read_npy(format!("{dir}/ref.y.npy"))?.to_labels()?;
    let val = load(&dir, "val")?;
    let test = load(&dir, "test")?;
    let ref_logits = model.logits(&ref_x)?;
    let ref_pred = model.predict(&ref_x)?;
    let reference = Reference::fit(&ref_x, &ref_pred, model.num_classes(), &cfg)?;
    let maha = Mahalanobis::fit(&ref_logits, &ref_y)?;
    let detectors = Detectors {
        temperature: 1.0,
        maha: Some(maha),
        squeezers: vec![
            Squeezer::BitDepth {
                bits: 1,
                lo: 0.0,
                hi: 1.0,
            },
            Squeezer::Median2x2,
        ],
    };
    let score = |x: &Tensor| score_inputs(&model, x, &detectors);
    let sv = score(&val)?;
    let th = InputThresholds {
        energy: threshold_at_fpr(&sv.energy, 0.01),
        mahalanobis: threshold_at_fpr(&sv.mahalanobis, 0.01),
        squeeze: threshold_at_fpr(&sv.squeeze, 0.01),
    };
    let val_pred = sv.pred.clone();
    let (vw_psi, vw_cls) = window_scores(&reference, &cfg, &val, &val_pred, 11);
    let th_psi = threshold_at_fpr(&vw_psi, 0.01);
    let th_cls = threshold_at_fpr(&vw_cls, 0.01);
    // The monitor's own alert rule, calibrated as `KServeMonitor` does it
    // (each window threshold at 0.5% on other clean validation windows).
    let (mt, ct) = calibrate(&reference, &val, &val_pred, &cfg, 0.005, 400, 1);
    let mon_cfg = DriftConfig {
        mean_psi_alert: Some(mt),
        class_psi_alert: Some(ct),
        ..cfg.clone()
    };

    let mut sets: Vec<(String, Tensor)> = vec![("clean test (false alarms)".into(), test.clone())];
    for (name, file) in [
        ("Gaussian noise sigma 0.3", "noise"),
        ("brightness +0.4", "bright"),
        ("another data set (sklearn 8x8 digits, upscaled)", "other"),
    ] {
        sets.push((name.into(), load(&dir, file)?));
    }
    for adv in args.iter().skip(2) {
        for (k, a) in read_npz(adv)? {
            if k.starts_with("adv") || k == "x_adv" {
                let t = a.to_tensor();
                // Only successful adversarial examples count as attacks.
                let clean_pred = model.predict(&test)?;
                let adv_pred = model.predict(&t)?;
                let idx: Vec<usize> = (0..t.batch().min(clean_pred.len()))
                    .filter(|&i| adv_pred[i] != clean_pred[i])
                    .collect();
                sets.push((
                    format!(
                        "adversarial ({}, {} of {} flip the prediction)",
                        adv.rsplit('/').next().unwrap_or(adv),
                        idx.len(),
                        t.batch()
                    ),
                    rows(&t, &idx),
                ));
            }
        }
    }
    println!("Thresholds at 1% false alarms on the clean validation part (300 digits; windows of {WINDOW} drawn {WINDOWS} times):");
    println!(
        "energy {:.3}, Mahalanobis {:.1}, squeezing L1 {:.3}, window mean PSI {:.4}, window class PSI {:.4}\n",
        th.energy, th.mahalanobis, th.squeeze, th_psi, th_cls
    );
    println!("| data (300 digits unless said) | energy | Mahalanobis | squeezing | any per-input | window mean PSI | window class PSI | monitor drift alert (calibrated, either) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (i, (name, x)) in sets.iter().enumerate() {
        if x.batch() == 0 {
            println!("| {name} | - | - | - | - | - | - | - |");
            continue;
        }
        let s = score(x)?;
        let e = rate(&s.energy, th.energy);
        let m = rate(&s.mahalanobis, th.mahalanobis);
        let q = rate(&s.squeeze, th.squeeze);
        let any = (0..x.batch())
            .filter(|&k| {
                s.energy[k] > th.energy
                    || s.mahalanobis[k] > th.mahalanobis
                    || s.squeeze[k] > th.squeeze
            })
            .count() as f64
            / x.batch() as f64;
        let (wp, wc) = window_scores(&reference, &cfg, x, &s.pred, 100 + i as u64);
        // The monitor's own alert rule with its default thresholds, on the same windows.
        let mut rng = Lcg(100 + i as u64);
        let mut alerts = 0;
        for _ in 0..WINDOWS {
            let idx: Vec<usize> = (0..WINDOW).map(|_| rng.next(x.batch())).collect();
            let rs: Vec<&[f32]> = idx.iter().map(|&k| x.row(k)).collect();
            let ps: Vec<usize> = idx.iter().map(|&k| s.pred[k]).collect();
            let r = reference.compare(&rs, &ps, &mon_cfg);
            alerts += (r.input_alert || r.prediction_alert) as usize;
        }
        println!(
            "| {name}{} | {e:.3} | {m:.3} | {q:.3} | {any:.3} | {:.3} | {:.3} | {:.3} |",
            if x.batch() != 300 {
                format!(" ({} inputs)", x.batch())
            } else {
                String::new()
            },
            rate(&wp, th_psi),
            rate(&wc, th_cls),
            alerts as f64 / WINDOWS as f64
        );
    }
    Ok(())
}
