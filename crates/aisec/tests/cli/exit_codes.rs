//! The exit codes every command shares (0 clean, 1 findings, 2 could not
//! do the job, 130 interrupted with a partial report), `--quiet`, and
//! errors that name their cause once.

use crate::util::{aisec, fixture};

#[cfg(unix)]
fn interrupt_after(child: &std::process::Child, ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_an_attack_writes_an_incomplete_report_and_exits_130() {
    let child = aisec(&[
        "attack",
        "evasion",
        &fixture("digits_mlp.onnx"),
        "--inputs",
        &fixture("digits_mlp.x.npy"),
        "--labels",
        &fixture("digits_mlp.y.npy"),
        "--attacks",
        "pgd",
        "--steps",
        "100000000",
        "--format",
        "json",
    ])
    .spawn();
    interrupt_after(&child, 1500);
    let r = crate::util::Run::from(child.wait_with_output().unwrap());
    r.expect_code(130);
    let v = r.json();
    assert_eq!(v["data"]["incomplete"], true, "{v}");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(
        errors.len(),
        1,
        "the interruption is named once: {errors:?}"
    );
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("interrupted"));
}

#[test]
fn a_probe_target_that_refuses_every_connection_exits_2_and_says_why() {
    // A port nothing listens on once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let r = aisec(&[
        "probe",
        "--url",
        &url,
        "-p",
        "injection",
        "--retries",
        "0",
        "--format",
        "json",
    ])
    .run();
    r.expect_code(2);
    let v = r.json();
    assert_eq!(v["data"]["failed"], true);
    let msg = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subject"] == url.as_str())
        .map(|e| e["message"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no run-level error: {v}"));
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("Connection refused"), "{msg}");
    // every probe failed the same way: that one line, not one per probe
    assert_eq!(v["errors"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn errors_name_their_cause_once() {
    let r = aisec(&[
        "attack",
        "evasion",
        "/no/model.onnx",
        "--inputs",
        "x",
        "--labels",
        "y",
    ])
    .run();
    r.expect_code(2);
    assert!(r.stderr.contains("/no/model.onnx"), "{}", r.stderr);
    assert_eq!(r.stderr.matches("os error 2").count(), 1, "{}", r.stderr);
}

#[test]
fn quiet_leaves_only_the_report() {
    let (_d, dir) = {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().to_path_buf();
        (d, p)
    };
    let r = aisec(&["demo", "--only", "scan", "--quiet", "--format", "json"])
        .arg("--keep")
        .arg(dir.join("samples"))
        .run();
    r.expect_code(0);
    assert_eq!(r.stderr, "", "--quiet printed notes");
    assert!(r.json()["findings"].as_array().unwrap().len() > 3);
    // Without --quiet the demo narrates on stderr.
    let r = aisec(&["demo", "--only", "scan", "--format", "json"])
        .arg("--keep")
        .arg(dir.join("samples2"))
        .run();
    assert!(r.stderr.contains("aisec demo:"), "{}", r.stderr);
    // The narration's own line breaks are real, not shown escaped.
    assert!(!r.stderr.contains("\\n"), "{}", r.stderr);
}

#[cfg(unix)]
#[test]
fn guard_rejects_a_bad_upstream_override_with_2() {
    // --upstream alone, and --upstream over a valid policy file: both checked like the file
    // (with --check: the same validation runs before serving, and a regression must not hang the test)
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aisec-guard/policy.example.toml"
    );
    for args in [
        vec!["guard", "--upstream", "notaurl", "--check"],
        vec!["guard", "--upstream", "ftp://x", "--check"],
        vec!["guard", "--policy", example, "--upstream", "bad", "--check"],
    ] {
        let r = aisec(&args).run();
        r.expect_code(2);
        assert!(
            r.stderr.contains("server.upstream"),
            "{args:?}: {}",
            r.stderr
        );
    }
    aisec(&["guard", "--upstream", "http://127.0.0.1:9", "--check"])
        .run()
        .expect_code(0);
}

#[test]
fn guard_check_says_the_built_in_second_stage_is_on_or_off() {
    // the example policy (and a policy without the section) runs the built-in
    // encoder; `enabled = false` is the fast path alone, and --check says so
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aisec-guard/policy.example.toml"
    );
    let r = aisec(&["guard", "--check", "--policy", example]).run();
    r.expect_code(0);
    assert!(
        r.stdout
            .contains("second stage OK (encoder built in with fine-tuned weights"),
        "{}",
        r.stdout
    );
    // the built-in head weighs the fast score inside its band (candidate BX)
    assert!(
        r.stdout.contains("with the fast score weighed in"),
        "{}",
        r.stdout
    );
    let dir = tempfile::tempdir().unwrap();
    let off = dir.path().join("off.toml");
    std::fs::write(
        &off,
        "[server]\nupstream = \"http://127.0.0.1:9\"\n[input.second_stage]\nenabled = false\n",
    )
    .unwrap();
    let r = aisec(&["guard", "--check", "--policy"]).arg(&off).run();
    r.expect_code(0);
    assert!(r.stdout.contains("second stage off"), "{}", r.stdout);
}

#[test]
fn guard_check_loads_the_second_stage_or_exits_2() {
    // --check loads the second stage the policy enables: the tiny test BERT
    // with a head file of its width loads; a missing model folder is exit 2
    // (the guard itself would start without the stage)
    let dir = tempfile::tempdir().unwrap();
    let tiny = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aisec-guard/tests/data/tiny_bert"
    );
    let head = dir.path().join("head.json");
    std::fs::write(
        &head,
        r#"{"format": "aisec-guard-encoder-head/1", "weights": [0.5, -0.25, 0, 0.1, 0, 0.3, -0.2, 0.05],
            "bias": 0, "threshold": 0.5, "band_low": 0.7, "band_high": 0.9, "indirect_low": 0.6,
            "context_words": 8, "max_tokens": 32}"#,
    )
    .unwrap();
    let policy = |model_dir: &str| {
        let p = dir.path().join("policy.toml");
        std::fs::write(
            &p,
            format!(
                "[server]\nupstream = \"http://127.0.0.1:9\"\n[input.second_stage]\nenabled = true\n\
                 model_dir = '{model_dir}'\nhead = '{}'\n",
                head.display()
            ),
        )
        .unwrap();
        p
    };
    let ok = aisec(&["guard", "--check", "--policy"])
        .arg(policy(tiny))
        .run();
    ok.expect_code(0);
    assert!(ok.stdout.contains("second stage OK"), "{}", ok.stdout);
    assert!(ok.stdout.contains("band [0.7, 0.9)"), "{}", ok.stdout);
    // a folder without the model: the policy is invalid
    let gone = dir.path().join("no-model");
    let r = aisec(&["guard", "--check", "--policy"])
        .arg(policy(&gone.display().to_string()))
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("no-model"), "{}", r.stderr);
    // the files there but the weights broken: the stage does not load
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for f in ["config.json", "vocab.txt"] {
        std::fs::copy(std::path::Path::new(tiny).join(f), broken.join(f)).unwrap();
    }
    std::fs::write(
        broken.join("model.safetensors"),
        b"\x08\0\0\0\0\0\0\0{}      ",
    )
    .unwrap();
    let r = aisec(&["guard", "--check", "--policy"])
        .arg(policy(&broken.display().to_string()))
        .run();
    r.expect_code(2);
    assert!(
        r.stderr.contains("second stage does not load"),
        "{}",
        r.stderr
    );
}

#[test]
fn guard_policy_naming_a_classifier_file_checks_it() {
    // [input.injection] model: a real classifier file is named by --check; a missing or
    // foreign one is an invalid policy (exit 2), never a silent fall-back to the built-in model
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.bin");
    std::fs::write(
        &model,
        include_bytes!("../../../aisec-guard/assets/injection_lr.bin"),
    )
    .unwrap();
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"PK\x03\x04 not a classifier").unwrap();
    let policy = |m: &std::path::Path| {
        let p = dir.path().join("policy.toml");
        std::fs::write(
            &p,
            format!(
                "[server]\nupstream = \"http://127.0.0.1:9\"\n[input.injection]\nmodel = '{}'\n",
                m.display()
            ),
        )
        .unwrap();
        p
    };
    let ok = aisec(&["guard", "--check", "--policy"])
        .arg(policy(&model))
        .run();
    ok.expect_code(0);
    assert!(ok.stdout.contains("classifier"), "{}", ok.stdout);
    assert!(ok.stdout.contains("model.bin"), "{}", ok.stdout);
    // and says what it read: the built-in file is 2^18 features with a hidden
    // layer over the word features (candidate MWL, session of stop 44)
    assert!(
        ok.stdout.contains(
            "model.bin: 262144 features, hidden layer of 16 units over word, bigram and cue \
             features, threshold 0.83"
        ),
        "{}",
        ok.stdout
    );
    for (m, want) in [
        (junk.as_path(), "not an aisec-guard classifier file"),
        (dir.path().join("gone.bin").as_path(), "cannot read"),
    ] {
        let r = aisec(&["guard", "--check", "--policy"])
            .arg(policy(m))
            .run();
        r.expect_code(2);
        assert!(r.stderr.contains("input.injection.model"), "{}", r.stderr);
        assert!(r.stderr.contains(want), "{}", r.stderr);
    }
}

#[test]
#[should_panic(expected = "still running after")]
fn a_run_past_its_timeout_is_killed_and_fails_its_test() {
    // the guard serves until stopped: the helper must kill it, not wait forever
    aisec(&[
        "guard",
        "--upstream",
        "http://127.0.0.1:9",
        "--listen",
        "127.0.0.1:0",
    ])
    .timeout(std::time::Duration::from_millis(500))
    .run();
}

#[test]
fn guard_stderr_is_json_lines_from_start_to_shutdown() {
    use std::io::BufRead;
    // Nothing needs to answer upstream: no request is sent.
    let mut child = aisec(&[
        "guard",
        "--upstream",
        "http://127.0.0.1:9",
        "--listen",
        "127.0.0.1:0",
    ])
    .spawn();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    // Wait for the start line (or the end of stderr), then stop the guard
    // as Ctrl-C would.
    for line in lines.by_ref() {
        let line = line.unwrap();
        let listening = line.contains("\"listening\"");
        seen.push(line);
        if listening {
            break;
        }
    }
    let events = stop_guard_and_parse_stderr(child, lines, &mut seen);
    let named = |name: &str| events.iter().any(|v| v["event"].as_str() == Some(name));
    assert!(named("listening"), "{seen:#?}");
    assert!(named("shutdown"), "{seen:#?}");
}

#[test]
fn guard_policy_reload_error_is_a_json_line_and_the_guard_stays_up() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[server]\nupstream = \"http://127.0.0.1:9\"\n").unwrap();
    let mut child = aisec(&[
        "guard",
        "--policy",
        policy.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--watch-ms",
        "20",
    ])
    .spawn();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let mut broken = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let (listening, reloaded) = (
            line.contains("\"listening\""),
            line.contains("\"policy_reload\""),
        );
        seen.push(line);
        if listening && !broken {
            // A wrong-typed key: the reload must fail and keep the old policy.
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::fs::write(&policy, "[server]\nupstream = 7\n").unwrap();
            broken = true;
        }
        if reloaded {
            break;
        }
    }
    let events = stop_guard_and_parse_stderr(child, lines, &mut seen);
    assert!(
        events
            .iter()
            .any(|v| v["event"] == "policy_reload" && v["result"] == "error"),
        "{seen:#?}"
    );
}

/// Stops a running guard as Ctrl-C would, reads the rest of its stderr into
/// `seen`, checks it exited 0, and parses every line as JSON.
fn stop_guard_and_parse_stderr(
    mut child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
    seen: &mut Vec<String>,
) -> Vec<serde_json::Value> {
    interrupt_after(&child, 0);
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{seen:#?}");
    seen.iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}
