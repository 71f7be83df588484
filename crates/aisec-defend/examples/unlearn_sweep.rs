//! Removal goal (issue 13: ASR < 2 % at <= 2 points of clean accuracy):
//! a small sweep of the unlearning settings on a backdoored model the
//! backdoor bench wrote, tuned and reported on disjoint halves of the test
//! set (the first 500 test digits choose the setting, the last 500 report
//! it), so the reported number is not tuned on.
//!
//! Usage: `cargo run --release -p aisec-defend --example unlearn_sweep --
//! DATA.npz MODEL.onnx KIND SEED OUT.json` with KIND `badnets` / `blended`
//! and SEED the poisoning seed the bench used (5 + row index), which
//! rebuilds the same trigger with aisec-attack. A sixth argument `chosen`
//! runs only the setting chosen on BadNets 10 % (NC trigger, fine-pruning
//! first, 20 epochs, 20 % stamped, gain 1-3), to check it on other models.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Instant;

use aisec_attack::poison::{make_trigger, ImageShape, PoisonConfig, PoisonKind};
use aisec_defend::model::{inspect, InspectConfig, Method};
use aisec_defend::repair::{fine_prune, score, unlearn, RepairConfig, Triggered};
use aisec_defend::trigger::MaskTrigger;
use aisec_model::data::Dataset;
use aisec_model::fit::gather;
use aisec_model::OnnxModel;
use serde_json::json;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let arrays = aisec_model::data::npy::read_npz(&a[1]).unwrap();
    let get = |n: &str| {
        arrays
            .iter()
            .find(|(k, _)| k.trim_end_matches(".npy") == n)
            .map(|(_, a)| a)
            .unwrap()
    };
    let x = get("x").to_tensor();
    let y = get("y").to_labels().unwrap();
    let pick = |r: std::ops::Range<usize>| {
        let ix: Vec<usize> = r.collect();
        Dataset::new(gather(&x, &ix), ix.iter().map(|&i| y[i]).collect()).unwrap()
    };
    let (tune, report, clean) = (pick(0..500), pick(500..1000), pick(1000..1500));
    let model = OnnxModel::load(&a[2]).unwrap();
    let kind = PoisonKind::parse(&a[3]).unwrap();
    let cfg = PoisonConfig {
        kind,
        seed: a[4].parse().unwrap(),
        ..PoisonConfig::default()
    };
    let trigger = make_trigger(&cfg, ImageShape { c: 1, h: 28, w: 28 }).unwrap();
    let trig_t = trigger.applied(&tune.x).unwrap();
    let trig_r = trigger.applied(&report.x).unwrap();
    fn tg<'a>(x: &'a aisec_model::Tensor, d: &'a Dataset) -> Triggered<'a> {
        Triggered {
            x,
            y: &d.y,
            target: 0,
        }
    }
    let base_t = score(&model, &tune, Some(tg(&trig_t, &tune))).unwrap();
    let base_r = score(&model, &report, Some(tg(&trig_r, &report))).unwrap();
    let icfg = InspectConfig {
        steps: 300,
        ..InspectConfig::default()
    };
    let mut found = Vec::new();
    for m in [Method::NeuralCleanse, Method::Blend] {
        let ins = inspect(&model, &clean.x, m, &icfg, None, &|_, _| {}).unwrap();
        println!("{}: flagged {:?}", m.as_str(), ins.flagged);
        found.push((m, ins));
    }
    let chosen = a.get(6).is_some_and(|v| v == "chosen");
    let mut rows = Vec::new();
    let mut best: Option<(f32, serde_json::Value)> = None;
    for (m, ins) in &found {
        let ts: Vec<&MaskTrigger> = ins
            .flagged
            .iter()
            .map(|&c| &ins.classes[c].trigger)
            .collect();
        if ts.is_empty() || (chosen && *m != Method::NeuralCleanse) {
            continue;
        }
        for prune in [false, true] {
            for epochs in [10usize, 20, 40] {
                for share in [0.2f32, 0.5] {
                    for gain in [1.0f32, 3.0, 6.0] {
                        if chosen && !(prune && epochs == 20 && share == 0.2 && gain == 3.0) {
                            continue;
                        }
                        let rc = RepairConfig {
                            epochs,
                            unlearn_share: share,
                            unlearn_gain: gain,
                            ..RepairConfig::default()
                        };
                        let mut f = model.clone();
                        let t0 = Instant::now();
                        if prune {
                            fine_prune(&mut f, &clean, &rc, None).unwrap();
                        }
                        unlearn(&mut f, &clean, &ts, &rc, None).unwrap();
                        let sec = t0.elapsed().as_secs_f64();
                        let st = score(&f, &tune, Some(tg(&trig_t, &tune))).unwrap();
                        let sr = score(&f, &report, Some(tg(&trig_r, &report))).unwrap();
                        let row = json!({"method": m.as_str(), "prune_first": prune, "epochs": epochs,
                            "share": share, "gain": gain, "seconds": sec,
                            "tune": {"clean_accuracy": st.clean_accuracy, "asr": st.asr},
                            "report": {"clean_accuracy": sr.clean_accuracy, "asr": sr.asr,
                                       "poisoned_accuracy": sr.poisoned_accuracy}});
                        println!("{row}");
                        // Choice on the tuning half only: lowest ASR among
                        // settings within 2 points of the clean accuracy.
                        let ok = base_t.clean_accuracy - st.clean_accuracy <= 0.02;
                        let asr = st.asr.unwrap_or(1.0);
                        if ok && best.as_ref().is_none_or(|(b, _)| asr < *b) {
                            best = Some((asr, row.clone()));
                        }
                        rows.push(row);
                    }
                }
            }
        }
    }
    let res = json!({"model": a[2], "kind": a[3],
        "before": {"tune": {"clean_accuracy": base_t.clean_accuracy, "asr": base_t.asr},
                   "report": {"clean_accuracy": base_r.clean_accuracy, "asr": base_r.asr,
                              "poisoned_accuracy": base_r.poisoned_accuracy}},
        "chosen_on_tune_half": best.map(|b| b.1), "runs": rows,
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()});
    std::fs::write(&a[5], serde_json::to_string_pretty(&res).unwrap()).unwrap();
}
