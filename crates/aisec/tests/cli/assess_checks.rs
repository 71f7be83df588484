//! `aisec assess` checks beyond the example system: the poisoning checks
//! (training-data inspection with a poison manifest, Neural Cleanse on a
//! backdoored model), the explain check, and the black-box checks of a
//! remote KServe endpoint (the shared loopback test server of aisec-model).

use std::path::Path;

use serde_json::Value;

use crate::util::aisec;

fn assets(name: &str) -> String {
    format!("{}/assets/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> String {
    format!(
        "{}/../../examples/digits-service/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn status(report: &Value, id: &str) -> String {
    report["data"]["assess"]["threats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["threat"]["id"] == id)
        .unwrap_or_else(|| panic!("no threat {id}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn result<'a>(report: &'a Value, kind: &str, comp: &str) -> &'a Value {
    report["data"]["assess"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"]["kind"] == kind && r["check"]["component"] == comp)
        .unwrap_or_else(|| panic!("no {kind} check on {comp}"))
}

#[test]
fn poisoning_checks_set_the_poisoning_threats_and_explain_feeds_the_transparency_controls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // BadNets (10 % of the digits relabelled to 0) with its manifest, and
    // the demo's backdoored MLP with its clean sample.
    let spec = format!(
        "{}/../../docs/specs/digits_mlp.json",
        env!("CARGO_MANIFEST_DIR")
    );
    aisec(&["-q", "attack", "poison"])
        .arg(assets("digits.x.npy"))
        .args(&["--labels", &assets("digits.y.npy"), "--scale", "0.0625"])
        .args(&["--arch", &spec, "--test", &assets("digits.x.npy")])
        .args(&["--test-labels", &assets("digits.y.npy"), "--epochs", "8"])
        .args(&[
            "--kind",
            "badnets",
            "--rate",
            "0.1",
            "--target",
            "0",
            "--no-fail",
        ])
        .arg("--out")
        .arg(d.join("poisoned"))
        .run()
        .expect_code(0);
    aisec(&["-q", "demo", "--only", "poisoning", "--keep"])
        .arg(d.join("demo"))
        .run()
        .expect_code(0);
    let desc = d.join("aisec.toml");
    std::fs::write(
        &desc,
        format!(
            r#"[system]
name = "poisoning"

[[component]]
id = "uploads"
kind = "training-data"
source = "user-contributed"
inputs = "poisoned/poisoned.npz"
poison_manifest = "poisoned/indices.json"

[[component]]
id = "victim"
kind = "model"
name = "MLP trained on the uploads"
path = "poisoned/victim.onnx"
inputs = "{x}"
labels = "{y}"
scale = 16.0

[[component]]
id = "planted"
kind = "model"
path = "demo/poisoning/badnets_mlp.onnx"
inputs = "demo/poisoning/clean.npz"

[[component]]
id = "cnn"
kind = "model"
path = "{cnn}"
inputs = "{x}"
labels = "{y}"
scale = 16.0

[[flow]]
from = "uploads"
to = "victim"

[budget]
backdoor_steps = 150
explain_examples = 3
ig_steps = 24
"#,
            cnn = example("models/digits_cnn.onnx"),
            x = assets("digits.x.npy"),
            y = assets("digits.y.npy"),
        ),
    )
    .unwrap();
    let html = d.join("report.html");
    let run = aisec(&["assess", "-f", "json", "--no-fail", "--only"])
        .arg("poison-data,backdoor,explain")
        .arg("--html")
        .arg(&html)
        .arg("--state")
        .arg(d.join("state.json"))
        .arg(&desc)
        .run();
    run.expect_code(0);
    let r = run.json();

    // Data inspection ran through the model trained on the data, scored
    // against the manifest; its flags decide the data-poisoning threat.
    let data = result(&r, "poison-data", "uploads");
    assert_eq!(data["outcome"]["state"], "done", "{data}");
    assert_eq!(data["metrics"]["examples"], 1797.0);
    for k in ["ac_precision", "ac_recall"] {
        let v = data["metrics"][k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} {v}");
    }
    let flagged = data["metrics"]["ac_flagged"].as_f64().unwrap();
    assert_eq!(
        status(&r, "TM-DATA-POISON@uploads"),
        if flagged > 0.0 { "open" } else { "mitigated" }
    );
    assert_eq!(data["findings"][0]["rule_id"], "AISEC-BACKDOOR-004");

    // Neural Cleanse flags the planted target class 0: the backdoor threat is open.
    let nc = result(&r, "backdoor", "planted");
    assert_eq!(nc["metrics"]["flagged_classes"], 1.0, "{nc}");
    let f = &nc["findings"][0];
    assert_eq!(f["rule_id"], "AISEC-BACKDOOR-001");
    assert_eq!(f["metrics"]["class"], 0);
    assert_eq!(status(&r, "TM-MODEL-BACKDOOR@planted"), "open");
    // The bundled CNN (trained on clean digits) shows no backdoor: measured clean.
    let clean = result(&r, "backdoor", "cnn");
    assert_eq!(clean["metrics"]["flagged_classes"], 0.0, "{clean}");
    assert_eq!(status(&r, "TM-MODEL-BACKDOOR@cnn"), "mitigated");

    // Integrated Gradients on both models, with a small completeness delta.
    for m in ["planted", "cnn"] {
        let e = result(&r, "explain", m);
        assert_eq!(e["metrics"]["examples"], 3.0);
        let rel = e["metrics"]["max_relative_delta"].as_f64().unwrap();
        assert!(rel < 0.05, "{m}: relative delta {rel}");
        // The pictures stay in the HTML, the numbers in the JSON.
        assert!(e["data"]["explain"].get("heatmaps").is_none());
        assert_eq!(
            e["data"]["explain"]["examples"].as_array().unwrap().len(),
            3
        );
    }
    let page = std::fs::read_to_string(&html).unwrap();
    for needle in [
        "Training-data inspection",
        "Reversed triggers",
        "Attributions: integrated-gradients",
        "MEASURE 2.9",
        "EU AI Act Art. 13",
        "15(5) model poisoning",
        "15(5) data poisoning",
    ] {
        assert!(page.contains(needle), "report lacks {needle}");
    }
    // Heat maps of the CNN's 8x8 inputs and the MLP's feature bars.
    assert!(page.matches("alt=\"attribution heat map\"").count() >= 3);
    assert!(!page.contains("<script"));
}

/// A description with a KServe endpoint serving the example's MLP and,
/// beside it, the same MLP as a local model.
fn remote_description(dir: &Path, url: &str) -> std::path::PathBuf {
    let p = dir.join("aisec.toml");
    std::fs::write(
        &p,
        format!(
            r#"[system]
name = "remote"

[[component]]
id = "users"
kind = "actor"
exposure = "public"

[[component]]
id = "endpoint"
kind = "inference-endpoint"
url = "{url}"
inputs = "{x}"
labels = "{y}"
members = "{members}"
scale = 16.0
classes = 10

[[component]]
id = "local"
kind = "model"
path = "{mlp}"
inputs = "{x}"
labels = "{y}"
members = "{members}"
scale = 16.0

[[flow]]
from = "users"
to = "endpoint"
public_network = true

[[flow]]
from = "users"
to = "local"
public_network = true

[budget]
remote_examples = 8
remote_queries = 100
membership_examples = 400
extraction_queries = [100]
"#,
            x = assets("digits.x.npy"),
            y = assets("digits.y.npy"),
            members = example("data/members.npy"),
            mlp = example("models/digits_mlp.onnx"),
        ),
    )
    .unwrap();
    p
}

#[test]
fn a_remote_endpoint_gets_black_box_checks_within_the_query_budget() {
    let model = aisec_model::OnnxModel::load(example("models/digits_mlp.onnx")).unwrap();
    let server = aisec_model::test_support::serve_model(model);
    let dir = tempfile::tempdir().unwrap();
    let desc = remote_description(dir.path(), &server.url);
    let plan = aisec(&["assess", "--plan", "-f", "json"]).arg(&desc).run();
    plan.expect_code(0);
    let checks: Vec<String> = plan.json()["data"]["plan"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["kind"].as_str().unwrap(),
                c["component"].as_str().unwrap()
            )
        })
        .collect();
    for c in [
        "evasion:endpoint",
        "membership:endpoint",
        "extraction:endpoint",
    ] {
        assert!(checks.contains(&c.to_string()), "{checks:?}");
    }
    let run = aisec(&["assess", "-f", "json", "--no-fail", "--only"])
        .arg("evasion,membership,extraction")
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .arg(&desc)
        .run();
    run.expect_code(0);
    let r = run.json();
    let ev = result(&r, "evasion", "endpoint");
    assert_eq!(ev["outcome"]["state"], "done", "{ev}");
    assert_eq!(ev["data"]["remote"], true);
    assert_eq!(ev["data"]["evasion"]["attacks"][0]["attack"], "square");
    assert_eq!(ev["metrics"]["examples"], 8.0);
    let q = ev["metrics"]["queries"].as_f64().unwrap();
    assert!(q > 0.0 && q <= 8.0 * 101.0, "square spent {q} queries");
    assert_ne!(status(&r, "TM-MODEL-EVASION@endpoint"), "not-tested");
    // Extraction and membership through the endpoint: the same library
    // calls as on the local copy of the same model give the same numbers.
    for kind in ["membership", "extraction"] {
        let remote = result(&r, kind, "endpoint");
        let local = result(&r, kind, "local");
        assert_eq!(remote["outcome"]["state"], "done", "{remote}");
        assert_ne!(
            status(&r, &format!("TM-MODEL-{}@endpoint", kind.to_uppercase())),
            "not-tested"
        );
        let key = if kind == "membership" {
            "auc"
        } else {
            "victim_accuracy"
        };
        let (a, b) = (
            remote["metrics"][key].as_f64().unwrap(),
            local["metrics"][key].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-6, "{kind} {key}: remote {a} local {b}");
    }
    // Every example the endpoint answered was a query of these checks.
    assert!(server.examples() > 400, "{}", server.examples());
}

#[test]
fn an_unreachable_endpoint_leaves_its_threats_not_tested() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let desc = remote_description(dir.path(), &format!("http://127.0.0.1:{port}"));
    let run = aisec(&[
        "assess",
        "-f",
        "json",
        "--no-fail",
        "--only",
        "evasion",
        "--state",
    ])
    .arg(dir.path().join("state.json"))
    .arg(&desc)
    .run();
    let r = run.json();
    let ev = result(&r, "evasion", "endpoint");
    assert_eq!(ev["outcome"]["state"], "failed", "{ev}");
    assert_eq!(status(&r, "TM-MODEL-EVASION@endpoint"), "not-tested");
    // The local model's evasion check still ran: the job as a whole was done.
    assert_eq!(result(&r, "evasion", "local")["outcome"]["state"], "done");
    run.expect_code(0);
}

/// action.yml's run step (scripts/ci/action-run.sh) with the environment
/// GitHub gives a composite step: it writes the SARIF and `exit-code=N` to
/// $GITHUB_OUTPUT and exits 0, so the upload step runs before the job fails.
#[cfg(unix)]
#[test]
fn the_action_run_step_writes_sarif_and_its_exit_code_output() {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("workspace");
    std::fs::create_dir_all(ws.join("models")).unwrap();
    std::fs::copy(
        example("models/legacy_checkpoint.pt"),
        ws.join("models/legacy_checkpoint.pt"),
    )
    .unwrap();
    std::fs::write(
        ws.join("aisec.toml"),
        "[system]\nname = \"ci\"\n\n[[component]]\nid = \"store\"\nkind = \"model-artifact\"\npath = \"models\"\n",
    )
    .unwrap();
    let output = dir.path().join("github_output");
    for (command, want) in [
        ("scan", "exit-code=1"),
        ("assess", "exit-code=1"),
        ("lint", "exit-code=2"),
    ] {
        std::fs::write(&output, "").unwrap();
        let _ = std::fs::remove_file(ws.join("aisec.sarif"));
        let st = std::process::Command::new("bash")
            .arg(format!("{root}/scripts/ci/action-run.sh"))
            .current_dir(&ws)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", &ws)
            .env("RUNNER_TEMP", dir.path())
            .env("GITHUB_ACTION_PATH", &root)
            .env("GITHUB_OUTPUT", &output)
            .env("AISEC_BIN", env!("CARGO_BIN_EXE_aisec"))
            .env("AISEC_COMMAND", command)
            .env("AISEC_PATHS", "models")
            .env("AISEC_SYSTEM", "aisec.toml")
            .env("AISEC_BASELINE", "")
            .env("AISEC_FAIL_ON", "high")
            .env("AISEC_SARIF", "aisec.sarif")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let out = std::fs::read_to_string(&output).unwrap();
        assert_eq!(
            out.trim(),
            want,
            "{command}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        if command == "lint" {
            assert_eq!(st.status.code(), Some(2));
            continue;
        }
        assert_eq!(st.status.code(), Some(0), "{command}");
        let sarif: Value =
            serde_json::from_str(&std::fs::read_to_string(ws.join("aisec.sarif")).unwrap())
                .unwrap();
        assert_eq!(sarif["version"], "2.1.0");
        assert!(sarif["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ruleId"] == "AISEC-PICKLE-001"));
    }
    for f in [
        "aisec-report.html",
        "aisec-threat-dragon.json",
        "aisec-baseline.json",
    ] {
        assert!(ws.join(f).is_file(), "assess wrote no {f}");
    }
}
