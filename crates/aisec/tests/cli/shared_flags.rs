//! The shared data flags (issue 11, "one set of flags") on the commands
//! that had their own `--scale/--lo/--hi`: attack poison, defend data |
//! model | repair | strip, explain and train now take `--scale`,
//! `--value-range`, `--channels-last`, `--bgr`, `--resize`, `--lo`, `--hi`
//! from one clap group, with the same range / NaN checks as `attack
//! evasion` (0..16 digits without a flag: exit 2 naming `--value-range`).
//! `attack inversion` takes `--mean/--std` as evasion does, and so do
//! defend data | model | repair | strip and explain (the identity
//! normalisation changes nothing, a real one changes what the model sees
//! and keeps outputs in pixel space, a wrong length is exit 2).

use std::path::Path;

use aisec_model::data::npy::{read_npy, write_npy};

use crate::util::{aisec, digits, fixture};

const MLP: &str = r#"{"input": [64], "layers": [{"type": "dense", "units": 16},
    {"type": "relu"}, {"type": "dense", "units": 10}]}"#;

/// The message of a refused run names the range found and both flags.
fn names_the_fix(stderr: &str) {
    assert!(stderr.contains("[0, 16]"), "{stderr}");
    assert!(stderr.contains("--value-range 0,16"), "{stderr}");
    assert!(stderr.contains("--scale 0.0625"), "{stderr}");
}

#[test]
fn every_data_command_offers_the_shared_flags() {
    let cmds: [&[&str]; 8] = [
        &["attack", "poison"],
        &["defend", "data"],
        &["defend", "model"],
        &["defend", "repair"],
        &["defend", "strip"],
        &["explain"],
        &["train"],
        &["attack", "inversion"],
    ];
    for cmd in cmds {
        let r = aisec(cmd).arg("--help").run();
        r.expect_code(0);
        for flag in [
            "--scale <F>",
            "--value-range <LO,HI>",
            "--channels-last",
            "--bgr",
            "--resize <HxW>",
            "--lo <LO>",
            "--hi <HI>",
        ] {
            assert!(r.stdout.contains(flag), "{cmd:?} --help lacks {flag}");
        }
    }
    for cmd in [
        &["attack", "inversion"][..],
        &["attack", "evasion"],
        &["defend", "data"],
        &["defend", "model"],
        &["defend", "repair"],
        &["defend", "strip"],
        &["explain"],
    ] {
        let r = aisec(cmd).arg("--help").run();
        assert!(
            r.stdout.contains("--mean <M,...>") && r.stdout.contains("--std <S,...>"),
            "{cmd:?} --help lacks --mean/--std"
        );
    }
    // train and poison say why they have none.
    for cmd in [&["train"][..], &["attack", "poison"]] {
        let r = aisec(cmd).arg("--help").run();
        assert!(!r.stdout.contains("--mean <"), "{cmd:?}");
        assert!(r.stdout.contains("No --mean/--std"), "{cmd:?}");
    }
}

#[test]
fn poison_checks_the_range_and_takes_value_range() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let run = |extra: &[&str]| {
        aisec(&["attack", "poison", &digits("x.npy")])
            .args(&["--labels", &digits("y.npy"), "--input-shape", "64"])
            .args(&["--kind", "blended", "--rate", "0.05", "--no-progress"])
            .arg("--out")
            .arg(&out)
            .args(&["--format", "json"])
            .args(extra)
            .run()
    };
    let r = run(&[]);
    r.expect_code(2);
    names_the_fix(&r.stderr);
    let r = run(&["--value-range", "0,16"]);
    r.expect_code(0);
    // The poisoned copy is in [--lo, --hi], mapped from 0..16.
    let arrays = aisec_model::data::npy::read_npz(out.join("poisoned.npz")).unwrap();
    let x = arrays
        .iter()
        .find(|(n, _)| n.trim_end_matches(".npy") == "x")
        .unwrap()
        .1
        .to_tensor();
    let max = x.data.iter().cloned().fold(f32::MIN, f32::max);
    assert!(max <= 1.0 && max > 0.9, "max {max}");
}

/// The 16 digits of the MLP fixture as 0..16 values, in `dir`.
fn raw_digits(dir: &Path) -> String {
    let mut x = read_npy(fixture("digits_mlp.x.npy")).unwrap().to_tensor();
    x.data.iter_mut().for_each(|v| *v = (*v * 16.0).round());
    let p = dir.join("raw.npy");
    write_npy(&p, &x).unwrap();
    p.display().to_string()
}

#[test]
fn defend_checks_the_range_and_takes_value_range() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = raw_digits(tmp.path());
    let y = fixture("digits_mlp.y.npy");
    let model = fixture("digits_mlp.onnx");
    let strip = |extra: &[&str]| {
        aisec(&["defend", "strip", &model, "--clean", &raw, "--labels", &y])
            .args(&["--inputs", &raw, "--format", "json", "--no-fail"])
            .args(extra)
            .run()
    };
    let r = strip(&[]);
    r.expect_code(2);
    names_the_fix(&r.stderr);
    // With the flag the data passes the range check (16 examples are then
    // too few for STRIP's threshold: the next check speaks).
    let r = strip(&["--value-range", "0,16"]);
    r.expect_code(2);
    assert!(!r.stderr.contains("[0, 16]"), "{}", r.stderr);
    assert!(r.stderr.contains("at least 20"), "{}", r.stderr);
    let nc = |extra: &[&str]| {
        aisec(&["defend", "model", &model, "--clean", &raw, "--labels", &y])
            .args(&["--methods", "nc", "--steps", "2", "--no-progress"])
            .args(&["--format", "json", "--no-fail"])
            .args(extra)
            .run()
    };
    let r = nc(&[]);
    r.expect_code(2);
    names_the_fix(&r.stderr);
    let r = nc(&["--value-range", "0,16"]);
    r.expect_code(0);
    assert_eq!(r.json()["command"], "defend model");
}

#[test]
fn train_checks_the_range_and_resume_keeps_the_preprocessing() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("mlp.json");
    std::fs::write(&spec, MLP).unwrap();
    let run_dir = tmp.path().join("run");
    let train = |extra: &[&str]| {
        aisec(&["train", &digits("x.npy"), "--labels", &digits("y.npy")])
            .arg("--arch")
            .arg(&spec)
            .arg("--out")
            .arg(tmp.path().join("m.safetensors"))
            .arg("--checkpoint-dir")
            .arg(&run_dir)
            .args(&["--epochs", "1", "--format", "json", "--no-progress"])
            .args(extra)
            .run()
    };
    // Today's main trains on 0..16 values without a word.
    let r = train(&[]);
    r.expect_code(2);
    names_the_fix(&r.stderr);
    let r = train(&["--value-range", "0,16"]);
    r.expect_code(0);
    let resume = |extra: &[&str]| {
        aisec(&["train", "--resume"])
            .arg(&run_dir)
            .args(&["--epochs", "2", "--format", "json", "--no-progress"])
            .arg("--out")
            .arg(tmp.path().join("m2.safetensors"))
            .args(extra)
            .run()
    };
    // Another preprocessing than the run's is refused by name ...
    let r = resume(&["--value-range", "0,255"]);
    r.expect_code(2);
    assert!(r.stderr.contains("--value-range"), "{}", r.stderr);
    // ... and without flags the run's own is kept (0..16 data would be
    // refused by the range check otherwise).
    let r = resume(&[]);
    r.expect_code(0);
    let epochs = r.json()["data"]["train"]["history"]["epochs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(epochs, 2);
}

#[test]
fn explain_adversarial_uses_lo_hi_and_value_range() {
    let tmp = tempfile::tempdir().unwrap();
    // The CNN fixture's inputs mapped to [-1, 1].
    let mut x = read_npy(fixture("digits_cnn.x.npy")).unwrap().to_tensor();
    x.data.iter_mut().for_each(|v| *v = *v * 2.0 - 1.0);
    let signed = tmp.path().join("signed.npy");
    write_npy(&signed, &x).unwrap();
    let run = |data: &Path, extra: &[&str]| {
        aisec(&["explain", &fixture("digits_cnn.onnx")])
            .arg("--data")
            .arg(data)
            .args(&["--labels", &fixture("digits_cnn.y.npy")])
            .args(&["--limit", "2", "--method", "saliency"])
            .args(&["--adversarial", "0.1", "--format", "json", "--no-fail"])
            .arg("--out")
            .arg(tmp.path().join("o"))
            .args(extra)
            .run()
    };
    // Data in [-1, 1] with a model range of [-1, 1]: PGD runs there (it
    // was fixed to [0, 1] before).
    let r = run(&signed, &["--lo", "-1", "--hi", "1"]);
    r.expect_code(0);
    // The same data without --lo/--hi: refused, with the fix named.
    let r = run(&signed, &[]);
    r.expect_code(2);
    assert!(r.stderr.contains("[-1, 1]"), "{}", r.stderr);
    assert!(r.stderr.contains("--value-range -1,1"), "{}", r.stderr);
    // --value-range maps it back onto [0, 1].
    run(&signed, &["--value-range=-1,1"]).expect_code(0);
}

#[test]
fn inversion_takes_mean_and_std_inside_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let npz = tmp.path().join(name);
        let r = aisec(&["attack", "inversion", &fixture("digits_mlp.onnx")])
            .args(&["--classes", "3", "--max-iters", "20", "--patience", "0"])
            .args(&["--no-progress", "--format", "json", "--no-fail"])
            .arg("--save-npz")
            .arg(&npz)
            .args(extra)
            .run();
        r.expect_code(0);
        let arrays = aisec_model::data::npy::read_npz(&npz).unwrap();
        let rec = arrays
            .iter()
            .find(|(n, _)| n.trim_end_matches(".npy") == "reconstructions")
            .unwrap()
            .1
            .to_tensor();
        (r.json()["data"]["inversion"].clone(), rec.data)
    };
    let (plain, plain_x) = run("plain.npz", &[]);
    // The identity normalisation changes nothing.
    let (identity, identity_x) = run("id.npz", &["--mean", "0", "--std", "1"]);
    assert_eq!(plain["classes"], identity["classes"]);
    assert_eq!(plain_x, identity_x);
    // A real normalisation changes what the model sees, and the
    // reconstruction stays in pixel space [--lo, --hi].
    let (_, norm_x) = run("norm.npz", &["--mean", "0.5", "--std", "0.25"]);
    assert_eq!(norm_x.len(), 64);
    assert_ne!(plain_x, norm_x);
    assert!(norm_x.iter().all(|v| (0.0..=1.0).contains(v)), "{norm_x:?}");
    // A normalisation that does not fit the model is an error.
    let r = aisec(&["attack", "inversion", &fixture("digits_mlp.onnx")])
        .args(&["--classes", "3", "--max-iters", "2", "--format", "json"])
        .args(&["--mean", "0.1,0.2", "--std", "1"])
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("--mean"), "{}", r.stderr);
}

/// `defend data` takes a model in the forms every command takes: the
/// safetensors + spec that `aisec train` writes (it read ONNX only).
#[test]
fn defend_data_takes_the_model_aisec_train_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("mlp.json");
    std::fs::write(&spec, MLP).unwrap();
    let m = tmp.path().join("m.safetensors");
    aisec(&["train", &digits("x.npy"), "--labels", &digits("y.npy")])
        .args(&["--value-range", "0,16", "--epochs", "1", "--no-progress"])
        .arg("--arch")
        .arg(&spec)
        .arg("--out")
        .arg(&m)
        .run()
        .expect_code(0);
    let r = aisec(&[
        "defend",
        "data",
        &digits("x.npy"),
        "--labels",
        &digits("y.npy"),
    ])
    .args(&["--value-range", "0,16", "--methods", "ac,ss"])
    .arg("--model")
    .arg(&m)
    .args(&["--format", "json", "--no-fail"])
    .run();
    r.expect_code(0);
    assert_eq!(r.json()["command"], "defend data");
}

/// The normalisations every `--mean/--std` test runs: none, the identity,
/// a real one, and one of the wrong length for the 64-input MLP.
const IDENTITY: &[&str] = &["--mean", "0", "--std", "1"];
const REAL: &[&str] = &["--mean", "0.5", "--std", "0.25"];
const WRONG: &[&str] = &["--mean", "0.1,0.2", "--std", "1"];

/// A wrong-length normalisation is refused by name, with exit 2.
fn refuses_wrong_length(r: crate::util::Run) {
    r.expect_code(2);
    assert!(r.stderr.contains("--mean/--std"), "{}", r.stderr);
}

/// The digits as 0..16 values, the first `n` of them, with labels.
fn digit_args(n: &str) -> Vec<String> {
    [
        digits("x.npy"),
        "--labels".into(),
        digits("y.npy"),
        "--value-range".into(),
        "0,16".into(),
        "--limit".into(),
        n.into(),
    ]
    .to_vec()
}

#[test]
fn defend_repair_normalises_inside_and_writes_the_bare_model() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |model: &str, out: &str, extra: &[&str]| {
        let c = aisec(&["defend", "repair", model, "--clean"]).args(&digit_args("60"));
        c.args(&["--method", "fine-prune", "--epochs", "1", "--quiet"])
            .args(&["--format", "json", "--no-fail", "--out"])
            .arg(tmp.path().join(out))
            .args(extra)
            .run()
    };
    let mlp = fixture("digits_mlp.onnx");
    let score = |r: &crate::util::Run| {
        r.expect_code(0);
        let rep = r.json()["data"]["repair"].clone();
        (
            rep["before"].clone(),
            rep["after"].clone(),
            rep["fine_pruning"]["pruned"].clone(),
        )
    };
    let plain = score(&run(&mlp, "plain.onnx", &[]));
    assert_eq!(plain, score(&run(&mlp, "id.onnx", IDENTITY)));
    let real = score(&run(&mlp, "real.onnx", REAL));
    // The model now sees other inputs: its clean accuracy differs.
    assert_ne!(plain.0, real.0);
    // The written model is the user's model, without the normalisation:
    // repaired again behind the same --mean/--std, it starts where the
    // first repair ended (baked in, the data would be normalised twice).
    let again = score(&run(
        &tmp.path().join("real.onnx").display().to_string(),
        "again.onnx",
        REAL,
    ));
    assert_eq!(again.0["clean_accuracy"], real.1["clean_accuracy"]);
    refuses_wrong_length(run(&mlp, "wrong.onnx", WRONG));
    assert!(!tmp.path().join("wrong.onnx").exists());
}

#[test]
fn defend_model_and_strip_take_mean_and_std() {
    let tmp = tempfile::tempdir().unwrap();
    let mlp = fixture("digits_mlp.onnx");
    let nc = |out: &str, extra: &[&str]| {
        let c = aisec(&["defend", "model", &mlp, "--clean"]).args(&digit_args("20"));
        c.args(&["--methods", "nc", "--steps", "3", "--no-progress"])
            .args(&["--format", "json", "--no-fail", "--save-triggers"])
            .arg(tmp.path().join(out))
            .args(extra)
            .run()
    };
    // (size, success) per class, and the saved triggers' patterns.
    let result = |out: &str, extra: &[&str]| {
        let r = nc(out, extra);
        r.expect_code(0);
        let j = r.json();
        let sizes: Vec<(f64, f64)> = j["data"]["inspections"][0]["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["size"].as_f64().unwrap(), c["success"].as_f64().unwrap()))
            .collect();
        let saved: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join(out).join("triggers.json")).unwrap(),
        )
        .unwrap();
        let patterns: Vec<f64> = saved
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["trigger"]["pattern"].as_array().unwrap().clone())
            .map(|v| v.as_f64().unwrap())
            .collect();
        (sizes, patterns)
    };
    let plain = result("plain", &[]);
    assert_eq!(plain, result("id", IDENTITY));
    let real = result("real", REAL);
    assert_ne!(plain.0, real.0);
    // Reversed triggers stay in pixel space, [--lo, --hi].
    assert_eq!(real.1.len(), 10 * 64);
    assert!(real.1.iter().all(|v| (0.0..=1.0).contains(v)));
    refuses_wrong_length(nc("wrong", WRONG));

    let strip = |extra: &[&str]| {
        let c = aisec(&["defend", "strip", &mlp, "--clean"]).args(&digit_args("40"));
        c.args(&["--inputs", &digits("x.npy"), "--overlays", "8"])
            .args(&["--format", "json", "--no-fail"])
            .args(extra)
            .run()
    };
    let threshold = |r: crate::util::Run| {
        r.expect_code(0);
        r.json()["data"]["strip"]["threshold_bits"]
            .as_f64()
            .unwrap()
    };
    let plain = threshold(strip(&[]));
    assert_eq!(plain, threshold(strip(IDENTITY)));
    let real = threshold(strip(REAL));
    assert!(
        real.is_finite() && real >= 0.0 && real != plain,
        "{plain} {real}"
    );
    refuses_wrong_length(strip(WRONG));
}

#[test]
fn defend_data_and_explain_take_mean_and_std() {
    let tmp = tempfile::tempdir().unwrap();
    let mlp = fixture("digits_mlp.onnx");
    let data = |out: &str, extra: &[&str]| {
        let dir = tmp.path().join(out);
        // All 1797 digits (defend data reads a whole training set).
        let c = aisec(&[
            "defend",
            "data",
            &digits("x.npy"),
            "--labels",
            &digits("y.npy"),
        ])
        .args(&["--value-range", "0,16"]);
        let r = c
            .args(&["--model", &mlp, "--methods", "ac,ss,loss"])
            .args(&["--format", "json", "--no-fail", "--remove-by", "ss"])
            .arg("--write-filtered")
            .arg(dir.join("kept.npz"))
            .arg("--out")
            .arg(&dir)
            .args(extra)
            .run();
        if r.code != Some(0) {
            return (r, serde_json::Value::Null, vec![]);
        }
        let scores: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("scores.json")).unwrap())
                .unwrap();
        let arrays = aisec_model::data::npy::read_npz(dir.join("kept.npz")).unwrap();
        let kept = arrays
            .iter()
            .find(|(n, _)| n.trim_end_matches(".npy") == "x")
            .unwrap()
            .1
            .to_tensor()
            .data;
        let scores = scores
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["scores"].clone())
            .collect::<Vec<_>>();
        (r, serde_json::Value::Array(scores), kept)
    };
    let (r, plain, _) = data("plain", &[]);
    r.expect_code(0);
    let (r, identity, _) = data("id", IDENTITY);
    r.expect_code(0);
    assert_eq!(plain, identity);
    let (r, real, kept) = data("real", REAL);
    r.expect_code(0);
    assert_ne!(plain, real);
    // The filtered copy is the data in pixel space, not normalised.
    assert!(!kept.is_empty());
    assert!(kept.iter().all(|v| (0.0..=1.0).contains(v)));
    refuses_wrong_length(data("wrong", WRONG).0);

    let explain = |out: &str, extra: &[&str]| {
        let dir = tmp.path().join(out);
        let r = aisec(&["explain", &mlp, "--data", &fixture("digits_mlp.x.npy")])
            .args(&["--limit", "2", "--method", "ig", "--steps", "8"])
            .args(&["--format", "json", "--no-fail", "--out"])
            .arg(&dir)
            .args(extra)
            .run();
        if r.code != Some(0) {
            return (r, vec![]);
        }
        let a = read_npy(dir.join("attributions.npy")).unwrap().to_tensor();
        (r, a.data)
    };
    let (r, plain) = explain("e_plain", &[]);
    r.expect_code(0);
    let (r, identity) = explain("e_id", IDENTITY);
    r.expect_code(0);
    assert_eq!(plain, identity);
    let (r, real) = explain("e_real", REAL);
    r.expect_code(0);
    assert_eq!(real.len(), plain.len());
    assert_ne!(plain, real);
    assert!(real.iter().all(|v| v.is_finite()));
    refuses_wrong_length(explain("e_wrong", WRONG).0);
}

/// `explain --url` with `--mean/--std` normalises before each query: on a
/// loopback KServe model `z = [x . w, 0]` the exact Shapley values become
/// `w / std * (x - mean of the background)`, in pixel space.
#[test]
fn explain_normalises_before_querying_a_remote_model() {
    let w = [1.5f32, -2.0, 0.5];
    let server = aisec_model::test_support::serve(move |req| {
        let Some(x) = &req.input else {
            return aisec_model::test_support::Reply::raw(400, "{}");
        };
        let out: Vec<f32> = x
            .data
            .chunks(3)
            .flat_map(|x| [x[0] * w[0] + x[1] * w[1] + x[2] * w[2], 0.0])
            .collect();
        let z = aisec_model::Tensor::new(vec![out.len() / 2, 2], out).unwrap();
        aisec_model::test_support::Reply::logits(&z)
    });
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("x.npy");
    let bg = tmp.path().join("bg.npy");
    write_npy(
        &x,
        &aisec_model::Tensor::new(vec![2, 3], vec![1.0, 0.75, 0.0, 0.25, 0.5, 1.0]).unwrap(),
    )
    .unwrap();
    write_npy(
        &bg,
        &aisec_model::Tensor::new(vec![2, 3], vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap(),
    )
    .unwrap();
    let run = |out: &str, extra: &[&str]| {
        let dir = tmp.path().join(out);
        let r = aisec(&["explain", "--url", &server.url, "--input-shape", "3"])
            .args(&[
                "--classes",
                "2",
                "--method",
                "exact-shapley",
                "--target",
                "0",
            ])
            .arg("--data")
            .arg(&x)
            .arg("--background")
            .arg(&bg)
            .arg("--out")
            .arg(&dir)
            .args(&["--format", "json", "--no-fail"])
            .args(extra)
            .run();
        r.expect_code(0);
        read_npy(dir.join("attributions.npy"))
            .unwrap()
            .to_tensor()
            .data
    };
    let xs = [[1.0f32, 0.75, 0.0], [0.25, 0.5, 1.0]];
    for (out, extra, std) in [
        ("plain", &[][..], [1.0f32; 3]),
        ("real", REAL, [0.25; 3]),
        (
            "per-channel",
            &["--mean", "0.1,0.2,0.3", "--std", "0.5,2,4"][..],
            [0.5, 2.0, 4.0],
        ),
    ] {
        let a = run(out, extra);
        assert_eq!(a.len(), 6, "{out}");
        for (i, xi) in xs.iter().enumerate() {
            for k in 0..3 {
                // The mean cancels: background mean 0.5 in pixel space.
                let want = w[k] / std[k] * (xi[k] - 0.5);
                assert!((a[i * 3 + k] - want).abs() < 1e-4, "{out} {i} {k}: {a:?}");
            }
        }
    }
    let r = aisec(&["explain", "--url", &server.url, "--input-shape", "3"])
        .args(&["--classes", "2", "--method", "occlusion", "--data"])
        .arg(&x)
        .args(WRONG)
        .run();
    refuses_wrong_length(r);
}
