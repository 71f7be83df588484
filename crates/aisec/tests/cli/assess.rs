//! End-to-end runs of `aisec assess` on the example system in
//! `examples/digits-service/` (pickle-bearing model folder, the bundled
//! digits CNN and an MLP with known training members, the built-in weak
//! chat app with a system prompt and tools, aisec guard in front of it).
//! The example's own budget is small (32 evasion examples, 10 PGD steps,
//! 400 membership examples, 100 and 400 extraction queries, 100 inversion
//! steps per class, 300 Neural Cleanse steps per class, 4 explained inputs),
//! so the whole assessment is one short test.

use std::path::PathBuf;

use serde_json::Value;

use crate::util::aisec;

fn example() -> String {
    format!(
        "{}/../../examples/digits-service/aisec.toml",
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

#[test]
fn plan_lists_threats_with_checks_and_manual_controls() {
    let dir = tempfile::tempdir().unwrap();
    let td = dir.path().join("td.json");
    let run = aisec(&["assess", "--plan", "-f", "json", "--threat-dragon"])
        .arg(&td)
        .arg(example())
        .run();
    run.expect_code(0);
    let plan = &run.json()["data"]["plan"];
    let threats = plan["threats"].as_array().unwrap();
    let find = |id: &str| threats.iter().find(|t| t["id"] == id).unwrap();
    assert_eq!(find("TM-ART-EXEC@model-store")["stride"], "tampering");
    assert_eq!(find("TM-ART-EXEC@model-store")["check"]["kind"], "scan");
    assert!(find("TM-MODEL-EXTRACTION@digits-cnn")["atlas"]
        .as_array()
        .unwrap()
        .contains(&"AML.T0024.002".into()));
    assert_eq!(find("TM-LLM-AGENCY@shopbot")["owasp"][0], "LLM06");
    assert!(find("TM-LLM-AGENCY@shopbot")["check"].is_null());
    // The Threat Dragon export imports back into a description aisec reads.
    let toml_out = dir.path().join("imported.toml");
    aisec(&["assess", "--import"])
        .arg(&td)
        .arg("-o")
        .arg(&toml_out)
        .run()
        .expect_code(0);
    let text = std::fs::read_to_string(&toml_out).unwrap();
    assert!(
        text.contains("id = \"shopbot\"") && text.contains("kind = \"llm-endpoint\""),
        "{text}"
    );
    assert!(text.contains("[Open] Excessive agency"), "{text}");
}

#[test]
fn the_example_system_is_assessed_end_to_end_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { dir.path().join(n) };
    let run = aisec(&["assess", "-f", "json", "--state"])
        .arg(p("state.json"))
        .arg("--html")
        .arg(p("report.html"))
        .arg("--navigator")
        .arg(p("layer.json"))
        .arg("--write-baseline")
        .arg(p("baseline.json"))
        .arg(example())
        .run();
    run.expect_code(1);
    let r = run.json();
    let results = r["data"]["assess"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 15, "every applicable check ran");
    for c in results {
        let failed = c["outcome"]["state"] == "failed";
        // The CNN was trained on every digit: no member list, no membership check.
        assert_eq!(
            failed,
            c["check"]["component"] == "digits-cnn" && c["check"]["kind"] == "membership",
            "{c}"
        );
    }
    // Measured: the malicious checkpoint, the weak chat app, the memorising MLP.
    assert_eq!(status(&r, "TM-ART-EXEC@model-store"), "open");
    assert_eq!(status(&r, "TM-LLM-INJECTION@shopbot"), "open");
    assert_eq!(status(&r, "TM-MODEL-MEMBERSHIP@digits-mlp"), "open");
    // Measured clean: Neural Cleanse finds no backdoor in either model.
    assert_eq!(status(&r, "TM-MODEL-BACKDOOR@digits-cnn"), "mitigated");
    assert_eq!(status(&r, "TM-MODEL-BACKDOOR@digits-mlp"), "mitigated");
    // The MLP's training data is inspected through the MLP.
    assert_ne!(status(&r, "TM-DATA-POISON@digits-data"), "not-tested");
    // Not measured: no check exists, or its check could not run.
    assert_eq!(status(&r, "TM-LLM-AGENCY@shopbot"), "not-tested");
    assert_eq!(status(&r, "TM-MODEL-MEMBERSHIP@digits-cnn"), "not-tested");
    // The gateway blocks what the bare app falls for.
    let metric = |kind: &str, k: &str| {
        results.iter().find(|c| c["check"]["kind"] == kind).unwrap()["metrics"][k]
            .as_f64()
            .unwrap()
    };
    assert!(metric("probe", "asr_injection") > 0.5);
    assert_eq!(metric("guard-replay", "asr_injection"), 0.0);
    assert!(metric("guard-replay", "audit_events") > 0.0);
    // Fairness over the example's proxy attribute: small gaps, within 0.1.
    assert!(metric("fairness", "demographic_parity_difference") < 0.1);
    assert!(r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule_id"] == "AISEC-ASSESS-003" && f["severity"] == "info"));
    let html = std::fs::read_to_string(p("report.html")).unwrap();
    for needle in [
        "Executive summary",
        "Risk matrix",
        "data:image/png;base64,",
        "<svg",
        "EU AI Act Art. 15",
        "15(5) confidentiality attacks",
        "15(5) model poisoning",
        "Reversed triggers",
        "Training-data inspection",
        "alt=\"attribution heat map\"",
        "MEASURE 2.9",
    ] {
        assert!(html.contains(needle), "report lacks {needle}");
    }
    assert!(!html.contains("<script"));
    let layer: Value =
        serde_json::from_str(&std::fs::read_to_string(p("layer.json")).unwrap()).unwrap();
    assert!(layer["techniques"]
        .as_array()
        .is_some_and(|t| !t.is_empty()));

    // A second run resumes: nothing runs again, the statuses are the same,
    // and against its own baseline nothing is new, so --fail-on passes.
    let again = aisec(&["assess", "-f", "json", "--state"])
        .arg(p("state.json"))
        .arg("--baseline")
        .arg(p("baseline.json"))
        .arg(example())
        .run();
    again.expect_code(0);
    assert!(
        again.stderr.contains("resuming: 15 of 15 checks"),
        "{}",
        again.stderr
    );
    let r2 = again.json();
    assert_eq!(status(&r2, "TM-ART-EXEC@model-store"), "open");
    assert_eq!(
        r2["data"]["assess"]["changes"]["new_findings"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert!(r2["data"]["baselined_findings"].as_u64().unwrap() > 0);
    assert!(r2["findings"].as_array().unwrap().is_empty());
}

#[test]
fn a_bad_description_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("aisec.toml");
    std::fs::write(&p, "[system]\nname = \"x\"\n\n[[component]]\nid = \"m\"\nkind = \"model\"\npaht = \"m.onnx\"\n").unwrap();
    let run = aisec(&["assess"]).arg(&p).run();
    run.expect_code(2);
    assert!(run.stderr.contains("paht"), "{}", run.stderr);
}

#[cfg(unix)]
#[test]
fn ctrl_c_keeps_finished_checks_and_the_next_run_resumes() {
    let ex = format!(
        "{}/../../examples/digits-service",
        env!("CARGO_MANIFEST_DIR")
    );
    let assets = format!("{}/assets", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let desc = dir.path().join("aisec.toml");
    // A scan that finishes at once and an evasion run far too long to finish.
    std::fs::write(
        &desc,
        format!(
            r#"[system]
name = "interrupt"

[[component]]
id = "store"
kind = "model-artifact"
path = "{ex}/models"

[[component]]
id = "cnn"
kind = "model"
path = "{ex}/models/digits_cnn.onnx"
inputs = "{assets}/digits.x.npy"
labels = "{assets}/digits.y.npy"
scale = 16.0

[budget]
evasion_examples = 256
pgd_steps = 10000
evasion_curve = [0.01, 0.02, 0.03, 0.05, 0.1, 0.2]
"#
        ),
    )
    .unwrap();
    let state = dir.path().join("state.json");
    let child = aisec(&["assess", "-f", "json", "--state"])
        .arg(&state)
        .arg(&desc)
        .spawn();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let r = crate::util::Run::from(child.wait_with_output().unwrap());
    r.expect_code(130);
    let v = r.json();
    assert_eq!(v["data"]["incomplete"], true);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let kinds: Vec<&str> = saved["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["check"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["scan"], "only the finished check is kept");
    let again = aisec(&[
        "assess",
        "-f",
        "json",
        "--only",
        "scan",
        "--no-fail",
        "--state",
    ])
    .arg(&state)
    .arg(&desc)
    .run();
    again.expect_code(0);
    assert!(
        again.stderr.contains("resuming: 1 of 1 checks"),
        "{}",
        again.stderr
    );
}
