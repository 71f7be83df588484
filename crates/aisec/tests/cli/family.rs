//! One family of commands (issue 11): the same model forms everywhere
//! (train -> attack), `--resume` that keeps its run's options, JSON Lines
//! and colour, the evasion curve in HTML, extraction budgets above the
//! pool, Hugging Face cache names, and the probe config file.

use std::path::Path;

use aisec_model::test_support::{serve, Reply};

use crate::util::{aisec, digits, fixture};

const MLP: &str = r#"{"input": [64], "layers": [{"type": "dense", "units": 32},
    {"type": "relu"}, {"type": "dense", "units": 10}]}"#;

/// Trains a small MLP on the bundled digits into `dir/m.safetensors`.
fn train(dir: &Path, extra: &[&str]) -> crate::util::Run {
    let spec = dir.join("mlp.json");
    std::fs::write(&spec, MLP).unwrap();
    aisec(&["train", &digits("x.npy")])
        .args(&["--labels", &digits("y.npy"), "--scale", "0.0625"])
        .arg("--arch")
        .arg(&spec)
        .arg("--out")
        .arg(dir.join("m.safetensors"))
        .args(&["--format", "json", "--no-progress"])
        .args(extra)
        .run()
}

/// `aisec train` writes safetensors + spec; `attack evasion` takes that
/// model as it is (the spec found beside it), and with --spec.
#[test]
fn train_then_attack_evasion_on_the_safetensors_it_wrote() {
    let d = tempfile::tempdir().unwrap();
    train(d.path(), &["--lr", "0.01", "--epochs", "3"]).expect_code(0);
    let m = d.path().join("m.safetensors");
    assert!(d.path().join("m.spec.json").is_file());
    let run = |extra: &[&str]| {
        aisec(&["attack", "evasion"])
            .arg(&m)
            .args(&["--inputs", &digits("x.npy"), "--labels", &digits("y.npy")])
            .args(&["--scale", "0.0625", "--limit", "64", "--eps", "0.3"])
            .args(&["--steps", "10", "--format", "json", "--no-progress"])
            .args(extra)
            .run()
    };
    let r = run(&[]);
    assert!(matches!(r.code, Some(0) | Some(1)), "{}", r.stderr);
    let ev = &r.json()["data"]["evasion"];
    assert_eq!(ev["n"], 64);
    let clean = ev["clean_accuracy"].as_f64().unwrap();
    let robust = ev["worst_case_robust_accuracy"].as_f64().unwrap();
    assert!(clean > 0.7, "clean accuracy {clean}");
    assert!(
        robust < clean,
        "PGD at 0.3 lowers accuracy: {robust} vs {clean}"
    );
    // The same with the spec named explicitly.
    let spec = d.path().join("m.spec.json");
    let r2 = run(&["--spec", spec.to_str().unwrap()]);
    assert_eq!(
        r2.json()["data"]["evasion"]["worst_case_robust_accuracy"],
        ev["worst_case_robust_accuracy"]
    );
    // Without the spec beside it, the error says which flag is missing.
    std::fs::remove_file(&spec).unwrap();
    let r3 = run(&[]);
    r3.expect_code(2);
    assert!(r3.stderr.contains("--spec"), "{}", r3.stderr);
}

/// `--resume` used to drop `--val-split` (and so trained on the
/// validation examples too). The data options are stored in the
/// checkpoint; giving one again with another value is an error.
#[test]
fn resume_keeps_the_validation_split_and_data_options() {
    let d = tempfile::tempdir().unwrap();
    let ck = d.path().join("ck");
    let r = train(
        d.path(),
        &[
            "--val-split",
            "0.25",
            "--epochs",
            "1",
            "--checkpoint-dir",
            ck.to_str().unwrap(),
        ],
    );
    r.expect_code(0);
    assert_eq!(r.json()["data"]["train"]["validation_examples"], 449);
    // Resume with only --resume (no DATA, no --labels, no --val-split).
    let r = aisec(&["train", "--resume"])
        .arg(&ck)
        .arg("--out")
        .arg(d.path().join("r.safetensors"))
        .args(&["--epochs", "2", "--format", "json", "--no-progress"])
        .run();
    r.expect_code(0);
    let t = &r.json()["data"]["train"];
    assert_eq!(t["examples"], 1348, "{t}");
    assert_eq!(t["validation_examples"], 449, "{t}");
    assert_eq!(t["options"]["val_split"], 0.25, "{t}");
    assert_eq!(t["options"]["scale"], 0.0625, "{t}");
    let epochs = t["history"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    assert!(epochs[1]["val_accuracy"].as_f64().is_some(), "{t}");
    // A different split on resume is refused, not silently used.
    let r = aisec(&["train", "--resume"])
        .arg(&ck)
        .args(&["--val-split", "0.1", "--no-progress"])
        .arg("--out")
        .arg(d.path().join("x.safetensors"))
        .run();
    r.expect_code(2);
    assert!(
        r.stderr.contains("--val-split") && r.stderr.contains("resumed"),
        "{}",
        r.stderr
    );
}

/// A budget above the query pool used to be capped without a word.
#[test]
fn extraction_budget_above_the_pool_is_said_on_stderr_and_in_the_report() {
    let d = tempfile::tempdir().unwrap();
    let arch = d.path().join("mlp.json");
    std::fs::write(
        &arch,
        r#"{"input": [1, 8, 8], "layers": [{"type": "flatten"}, {"type": "dense", "units": 10}]}"#,
    )
    .unwrap();
    let base = |fmt: &str| {
        aisec(&["attack", "extraction", &fixture("digits_cnn.onnx")])
            .args(&["--test-inputs", &fixture("digits_cnn.x.npy")])
            .args(&["--test-labels", &fixture("digits_cnn.y.npy")])
            .args(&["--query-set", &fixture("digits_cnn.x.npy")])
            .args(&["--budgets", "50", "--epochs", "1", "--min-steps", "5"])
            .arg("--surrogate-arch")
            .arg(&arch)
            .args(&["--no-progress", "--no-fail", "--format", fmt])
            .run()
    };
    let r = base("json");
    r.expect_code(0);
    assert!(
        r.stderr.contains("warning")
            && r.stderr
                .contains("16 inputs, fewer than the largest budget (50)"),
        "{}",
        r.stderr
    );
    let v = r.json();
    assert_eq!(v["data"]["extraction"]["queries_used"], 16);
    assert!(v["data"]["extraction"]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("fewer than the largest budget"));
    let t = base("text");
    assert!(
        t.stdout.contains("warning: the query pool holds 16 inputs"),
        "{}",
        t.stdout
    );
}

/// The robust-accuracy-versus-budget curve is an inline SVG in HTML.
#[test]
fn evasion_curve_is_an_inline_svg_in_html() {
    let r = aisec(&["attack", "evasion", &fixture("digits_mlp.onnx")])
        .args(&["--inputs", &fixture("digits_mlp.x.npy")])
        .args(&["--labels", &fixture("digits_mlp.y.npy")])
        .args(&["--attacks", "fgsm", "--curve", "0,0.1,0.3", "--no-fail"])
        .args(&["--format", "html", "--no-progress"])
        .run();
    r.expect_code(0);
    let h = &r.stdout;
    let svg = h.find("<svg").expect("an inline svg");
    assert!(h[svg..].contains("</svg>"));
    assert!(h.contains("Robust accuracy versus budget"));
    // One marker per point, each naming its attack.
    assert_eq!(h[svg..].matches("<circle").count(), 3, "{h}");
    assert!(h.contains("fgsm"));
    assert!(
        svg < h.find("<h2>Data</h2>").unwrap(),
        "the chart comes before the raw data"
    );
}

/// `--format jsonl`: one JSON object a line, findings then a summary.
#[test]
fn jsonl_is_one_finding_a_line_and_a_summary() {
    let d = tempfile::tempdir().unwrap();
    let samples = d.path().join("s");
    aisec(&["demo", "--only", "scan", "--keep"])
        .arg(&samples)
        .run()
        .expect_code(0);
    let r = aisec(&["scan", "--no-fail", "--format", "jsonl"])
        .arg(&samples)
        .run();
    r.expect_code(0);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 3, "{}", r.stdout);
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "summary");
    let findings: Vec<_> = lines.iter().filter(|l| l["type"] == "finding").collect();
    assert!(!findings.is_empty());
    assert!(findings
        .iter()
        .all(|f| f["rule_id"].is_string() && !f["atlas"].as_array().unwrap().is_empty()));
    assert_eq!(
        last["summary"]["by_severity"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        findings.len() as u64
    );
}

/// Colour only on a terminal: never in a pipe, never with NO_COLOR, and
/// on request with --color always.
#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("evil.pkl");
    std::fs::write(&p, b"cos\nsystem\n(S'id'\ntR.").unwrap();
    let piped = aisec(&["scan", "--no-fail"]).arg(&p).run();
    assert!(!piped.stdout.contains('\u{1b}'), "{}", piped.stdout);
    let mut no_env = std::process::Command::new(env!("CARGO_BIN_EXE_aisec"));
    no_env
        .args(["scan", "--no-fail"])
        .arg(&p)
        .env_remove("NO_COLOR");
    let out = no_env.output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
    let forced = aisec(&["scan", "--no-fail", "--color", "always"])
        .arg(&p)
        .run();
    assert!(forced.stdout.contains("\u{1b}["), "{}", forced.stdout);
}

/// In a Hugging Face cache, files are named by their snapshot path and
/// each blob is scanned once, with or without --follow-links.
#[cfg(unix)]
#[test]
fn hugging_face_cache_is_named_by_snapshot_and_scanned_once() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("hub/models--org--name");
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    for rev in ["r1", "r2"] {
        std::fs::create_dir_all(repo.join("snapshots").join(rev)).unwrap();
        std::os::unix::fs::symlink(
            "../../blobs/9f1c",
            repo.join("snapshots").join(rev).join("pytorch_model.bin"),
        )
        .unwrap();
    }
    std::fs::write(repo.join("blobs/9f1c"), b"cos\nsystem\n(S'id'\ntR.").unwrap();
    for follow in [false, true] {
        let mut a = aisec(&["scan", "--format", "json", "--no-fail"]).arg(d.path().join("hub"));
        if follow {
            a = a.arg("--follow-links");
        }
        let r = a.run();
        r.expect_code(0);
        let v = r.json();
        assert_eq!(v["summary"]["items"], 1, "follow {follow}: {v}");
        let locs: Vec<String> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["location"]["path"].as_str().unwrap().to_string())
            .collect();
        assert!(!locs.is_empty(), "follow {follow}: the pickle is flagged");
        assert!(
            locs.iter()
                .all(|l| l.ends_with("models--org--name/snapshots/r1/pytorch_model.bin")),
            "follow {follow}: {locs:?}"
        );
    }
}

/// `aisec probe --config FILE`: target, probes, concurrency and budgets
/// from TOML; flags on the command line win; unknown keys are errors.
#[test]
fn probe_config_file_sets_the_run_and_flags_win() {
    let app = serve(|_| {
        Reply::raw(
            200,
            r#"{"choices": [{"message": {"role": "assistant", "content": "Happy to help with your order."}}]}"#,
        )
    });
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("probe.toml");
    std::fs::write(
        &cfg,
        format!(
            "[target]\nurl = \"{}/v1\"\nmodel = \"m\"\n\n[probes]\nids = [\"injection.admin-rule\"]\nfamilies = [\"injection\"]\nrepeats = 3\n\n[run]\nconcurrency = 2\nretries = 0\n\n[budgets]\ntimeout = 5.0\n",
            app.url
        ),
    )
    .unwrap();
    let r = aisec(&["probe", "--config"])
        .arg(&cfg)
        .args(&["--format", "json"])
        .run();
    r.expect_code(0);
    assert_eq!(r.json()["data"]["probe"]["attempts"], 3, "{}", r.stdout);
    // --repeats on the command line wins over the file's 3.
    let r = aisec(&["probe", "--config"])
        .arg(&cfg)
        .args(&["--repeats", "1", "--format", "json"])
        .run();
    r.expect_code(0);
    assert_eq!(r.json()["data"]["probe"]["attempts"], 1);
    assert_eq!(app.requests().len(), 4);
    // A typo is an error naming the file and the key, before any request.
    std::fs::write(&cfg, "[run]\nconcurency = 4\n").unwrap();
    let r = aisec(&["probe", "--config"]).arg(&cfg).run();
    r.expect_code(2);
    assert!(
        r.stderr.contains("probe.toml") && r.stderr.contains("concurency"),
        "{}",
        r.stderr
    );
    assert_eq!(app.requests().len(), 4);
}

/// The same words for the same things: every command that reads data has
/// the same preprocessing and range flags (one shared clap group), every
/// command with findings `--fail-on`, and train/demo (nothing to fail on)
/// none.
#[test]
fn data_commands_share_one_family_of_flags() {
    for cmd in ["evasion", "inversion", "extraction", "membership"] {
        let r = aisec(&["attack", cmd, "--help"]).run();
        r.expect_code(0);
        for flag in [
            "--scale",
            "--value-range",
            "--channels-last",
            "--bgr",
            "--resize",
            "--lo",
            "--hi",
            "--format",
            "--output",
            "--fail-on",
            "--color",
            "--spec",
        ] {
            assert!(r.stdout.contains(flag), "attack {cmd} --help lacks {flag}");
        }
    }
    for cmd in [&["train", "--help"][..], &["demo", "--help"][..]] {
        let r = aisec(cmd).run();
        r.expect_code(0);
        assert!(r.stdout.contains("--format"), "{cmd:?}");
        assert!(!r.stdout.contains("--fail-on"), "{cmd:?} offers --fail-on");
    }
    let r = aisec(&["demo", "--fail-on", "high"]).run();
    r.expect_code(2);
    assert!(r.stderr.contains("--fail-on"), "{}", r.stderr);
    for cmd in [&["scan", "--help"][..], &["probe", "--help"][..]] {
        let r = aisec(cmd).run();
        assert!(r.stdout.contains("-j, --"), "{cmd:?}: -j");
        assert!(r.stdout.contains("jobs"), "{cmd:?}: --jobs");
    }
}

/// `--value-range` now works on every command that reads data (it was
/// evasion's alone): uint8 digits (0..16) as inversion's reference data.
#[test]
fn value_range_maps_stored_data_on_every_data_command() {
    let base = || {
        aisec(&["attack", "inversion", &fixture("digits_cnn.onnx")])
            .args(&["--reference-inputs", &digits("x.npy")])
            .args(&["--reference-labels", &digits("y.npy")])
            .args(&["--classes", "0,1", "--max-iters", "5", "--no-progress"])
            .args(&["--format", "json", "--no-fail"])
    };
    let r = base().run();
    r.expect_code(2);
    assert!(
        r.stderr.contains("[0, 16]") && r.stderr.contains("--value-range 0,16"),
        "{}",
        r.stderr
    );
    let r = base().args(&["--value-range", "0,16"]).run();
    r.expect_code(0);
    assert_eq!(
        r.json()["data"]["inversion"]["classes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// `explain --adversarial` runs PGD in [0, 1]: 0..16 digits without
/// --scale are an error naming the flag, not a silently tiny budget.
#[test]
fn explain_adversarial_refuses_data_outside_its_range() {
    let d = tempfile::tempdir().unwrap();
    let base = || {
        aisec(&["explain", &fixture("digits_cnn.onnx")])
            .args(&["--data", &digits("x.npy"), "--labels", &digits("y.npy")])
            .args(&[
                "--limit",
                "4",
                "--method",
                "saliency",
                "--adversarial",
                "0.1",
            ])
            .arg("--out")
            .arg(d.path().join("o"))
            .args(&["--format", "json", "--no-fail"])
    };
    let r = base().run();
    r.expect_code(2);
    assert!(
        r.stderr.contains("[0, 16]") && r.stderr.contains("--scale 0.0625"),
        "{}",
        r.stderr
    );
    base().args(&["--scale", "0.0625"]).run().expect_code(0);
}
