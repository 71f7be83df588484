//! End-to-end runs of `aisec attack membership` on a slice of the bundled
//! 8x8 digits: a target trained here memorises half of it.

use std::path::PathBuf;

use aisec_attack::membership::{shadow, SpecTrainer};
use aisec_model::data::npy::{read_npy, write_npy};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::{OnnxModel, Tensor};

use crate::util::digits;

const SPEC: &str = r#"{"input": [1, 8, 8], "layers": [{"type": "flatten"},
  {"type": "dense", "units": 32}, {"type": "relu"}, {"type": "dense", "units": 10}]}"#;
const N: usize = 120;

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    model: OnnxModel,
}

impl Setup {
    fn p(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// Writes members / non-members / all-with-mask files, a trained target as
/// ONNX and as spec + safetensors, and the spec.
fn setup() -> Setup {
    let x = read_npy(digits("x.npy")).unwrap().to_tensor();
    let y = read_npy(digits("y.npy")).unwrap().to_labels().unwrap();
    let mut x = Tensor::new(vec![N, 1, 8, 8], x.data[..N * 64].to_vec()).unwrap();
    x.data.iter_mut().for_each(|v| *v /= 16.0);
    let y = y[..N].to_vec();
    let member: Vec<bool> = (0..N).map(|i| i % 2 == 0).collect();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let tr = SpecTrainer {
        spec: ArchSpec::parse(SPEC).unwrap(),
        epochs: 25,
        batch_size: 15,
        optimizer: Optimizer::adam(0.01),
    };
    let model = tr
        .fit(&shadow::subset(&x, &y, &member).unwrap(), 5)
        .unwrap();
    model.save_onnx(dir.join("target.onnx")).unwrap();
    model
        .save_safetensors(dir.join("target.safetensors"))
        .unwrap();
    std::fs::write(dir.join("spec.json"), SPEC).unwrap();
    let write = |name: &str, keep: &dyn Fn(usize) -> bool| {
        let d = shadow::subset(&x, &y, &(0..N).map(keep).collect::<Vec<_>>()).unwrap();
        write_npy(dir.join(format!("{name}.x.npy")), &d.x).unwrap();
        let labels = Tensor::new(vec![d.len()], d.y.iter().map(|&v| v as f32).collect()).unwrap();
        write_npy(dir.join(format!("{name}.y.npy")), &labels).unwrap();
    };
    write("members", &|i| member[i]);
    write("non_members", &|i| !member[i]);
    write("all", &|_| true);
    let mask = Tensor::new(vec![N], member.iter().map(|&m| m as u8 as f32).collect()).unwrap();
    write_npy(dir.join("mask.npy"), &mask).unwrap();
    Setup {
        _dir: tmp,
        dir,
        model,
    }
}

fn aisec(args: &[&str]) -> (Option<i32>, String, String) {
    let r = crate::util::aisec(args).run();
    (r.code, r.stdout, r.stderr)
}

fn json(s: &str, err: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}\n{err}"))
}

#[test]
fn lira_and_loss_on_a_spec_target_with_roc_and_scores() {
    let s = setup();
    let (roc, scores) = (s.p("roc.svg"), s.p("scores.json"));
    let args = [
        "attack",
        "membership",
        &s.p("target.safetensors"),
        "--spec",
        &s.p("spec.json"),
        "--members",
        &s.p("members.x.npy"),
        "--member-labels",
        &s.p("members.y.npy"),
        "--non-members",
        &s.p("non_members.x.npy"),
        "--non-member-labels",
        &s.p("non_members.y.npy"),
        "--shadow-arch",
        &s.p("spec.json"),
        "--shadows",
        "4",
        "--shadow-epochs",
        "25",
        "--shadow-batch-size",
        "15",
        "--shadow-lr",
        "0.01",
        "--bootstrap",
        "50",
        "--seed",
        "3",
        "--save-roc",
        &roc,
        "--save-scores",
        &scores,
        "--format",
        "json",
        "--no-progress",
    ];
    let (code, out, err) = aisec(&args);
    assert!(matches!(code, Some(0) | Some(1)), "{err}");
    let r = json(&out, &err);
    let m = &r["data"]["membership"];
    assert_eq!(m["members"], 60);
    assert_eq!(m["non_members"], 60);
    assert_eq!(m["shadows"], 4);
    assert_eq!(m["queries"], 120);
    let attacks = m["attacks"].as_array().unwrap();
    assert_eq!(attacks.len(), 3);
    for a in attacks {
        let auc = a["metrics"]["auc"].as_f64().unwrap();
        assert!(auc > 0.55, "{}: AUC {auc}", a["attack"]);
    }
    let f = r["findings"].as_array().unwrap();
    assert_eq!(f.len(), 3);
    assert!(f
        .iter()
        .all(|f| f["rule_id"] == "AISEC-PRIVACY-001" && f["atlas"][0] == "AML.T0024.000"));
    assert!(f[0]["metrics"]["tpr_at_0.1pct_fpr"].is_number());
    let svg = std::fs::read_to_string(&roc).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 3);
    let sc: serde_json::Value = serde_json::from_slice(&std::fs::read(&scores).unwrap()).unwrap();
    assert_eq!(sc["member"].as_array().unwrap().len(), 120);
    assert_eq!(sc["shadows"]["keep"].as_array().unwrap().len(), 4);
    assert_eq!(sc["scores"]["lira-online"].as_array().unwrap().len(), 120);
}

#[test]
fn loss_only_from_onnx_with_a_mask_gates_and_renders_sarif() {
    let s = setup();
    let base = [
        "attack",
        "membership",
        &s.p("target.onnx"),
        "--data",
        &s.p("all.x.npy"),
        "--labels",
        &s.p("all.y.npy"),
        "--membership-mask",
        &s.p("mask.npy"),
        "--bootstrap",
        "20",
    ];
    let (code, out, err) =
        aisec(&[&base[..], &["--format", "sarif", "--fail-on", "info"]].concat());
    assert_eq!(code, Some(1), "{err}");
    let v = json(&out, &err);
    assert_eq!(v["runs"][0]["results"][0]["ruleId"], "AISEC-PRIVACY-001");
    let (code, out, _) = aisec(&[&base[..], &["--no-fail"]].concat());
    assert_eq!(code, Some(0));
    assert!(
        out.contains("AISEC-PRIVACY-001") && out.contains("loss: AUC"),
        "{out}"
    );
    // LiRA without a shadow architecture, bad attack names, bad masks.
    let (code, _, err) = aisec(&[&base[..], &["--attacks", "lira-online"]].concat());
    assert_eq!(code, Some(2));
    assert!(err.contains("--shadow-arch"), "{err}");
    let (code, _, err) = aisec(&[&base[..], &["--attacks", "telepathy"]].concat());
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown attack"), "{err}");
    let mut bad = base.to_vec();
    let labels = s.p("all.y.npy");
    bad[8] = &labels;
    let (code, _, err) = aisec(&bad);
    assert_eq!(code, Some(2));
    assert!(err.contains("0/1"), "{err}");
}

#[test]
fn a_remote_endpoint_gives_the_same_numbers_as_the_local_file() {
    let s = setup();
    let common = |target: &[&str]| -> serde_json::Value {
        let mut a: Vec<&str> = vec!["attack", "membership"];
        a.extend_from_slice(target);
        let (m, ml, n, nl) = (
            s.p("members.x.npy"),
            s.p("members.y.npy"),
            s.p("non_members.x.npy"),
            s.p("non_members.y.npy"),
        );
        a.extend_from_slice(&[
            "--members",
            &m,
            "--member-labels",
            &ml,
            "--non-members",
            &n,
            "--non-member-labels",
            &nl,
            "--batch-size",
            "50",
            "--bootstrap",
            "20",
            "--format",
            "json",
            "--no-fail",
        ]);
        let (code, out, err) = aisec(&a);
        assert_eq!(code, Some(0), "{err}");
        json(&out, &err)
    };
    let local = common(&[&s.p("target.onnx")]);
    // 120 examples in batches of 50: three requests.
    let server = aisec_model::test_support::serve_model(s.model.clone());
    let remote = common(&[
        "--url",
        &server.url,
        "--input-shape",
        "1,8,8",
        "--classes",
        "10",
    ]);
    let auc = |v: &serde_json::Value| {
        v["data"]["membership"]["attacks"][0]["metrics"]["auc"]
            .as_f64()
            .unwrap()
    };
    assert!((auc(&local) - auc(&remote)).abs() < 1e-9);
    assert_eq!(remote["data"]["membership"]["queries"], 120);
    assert_eq!(server.requests().len(), 3);
    assert!(remote["findings"][0]["location"]["path"]
        .as_str()
        .unwrap()
        .contains("/v2/models/model/infer"));
}
