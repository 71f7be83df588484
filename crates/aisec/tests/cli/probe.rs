//! `aisec probe` from the command line: a gateway that blocks requests
//! defended them, `--list`, single probes by id.

use aisec_model::test_support::{serve, Reply};

use crate::util::aisec;

#[test]
fn requests_a_gateway_blocks_count_as_defended_attempts() {
    // Every request answered 403 with a policy message, as a guard would.
    let gw = serve(|_| {
        Reply::raw(
            403,
            r#"{"error": "request blocked by content policy (prompt injection)"}"#,
        )
    });
    let r = aisec(&["probe", "--url", &format!("{}/v1", gw.url)])
        .args(&["-p", "injection", "--retries", "0", "--format", "json"])
        .run();
    // Defended, not failed: exit 0 and 4 of 4 attempts in the denominator.
    r.expect_code(0);
    let v = r.json();
    let fam = &v["data"]["probe"]["families"][0];
    assert_eq!(fam["n"], 4, "{fam}");
    assert_eq!(fam["misses"], 4, "{fam}");
    assert_eq!(fam["errors"], 0, "{fam}");
    assert!(
        v["errors"].as_array().unwrap().is_empty(),
        "{}",
        v["errors"]
    );
    assert!(
        fam["ci_high"].as_f64().unwrap() < 0.7,
        "a real interval: {fam}"
    );
}

#[test]
fn list_names_families_probes_buffs_and_detectors_with_taxonomy_ids() {
    let r = aisec(&["probe", "--list"]).run();
    r.expect_code(0);
    for want in [
        "injection.admin-rule",
        "AISEC-PROBE-EXFIL-001",
        "LLM01",
        "AML.T0051",
        "base64",
        "markdown-exfil",
    ] {
        assert!(r.stdout.contains(want), "missing {want}:\n{}", r.stdout);
    }
    let v = aisec(&["probe", "--list", "--format", "json"]).run().json();
    let fams = v["families"].as_array().unwrap();
    assert_eq!(fams.len(), 10);
    assert!(fams
        .iter()
        .all(|f| !f["owasp"].as_array().unwrap().is_empty()));
    assert!(v["detectors"].as_array().unwrap().len() >= 7);
}

#[test]
fn single_probes_run_by_id() {
    let app = serve(|_| {
        Reply::raw(
            200,
            r#"{"choices": [{"message": {"role": "assistant", "content": "Happy to help with your order."}}]}"#,
        )
    });
    let r = aisec(&["probe", "--url", &format!("{}/v1", app.url)])
        .args(&["--probe", "injection.admin-rule,exfil.image-beacon"])
        .args(&["--format", "json"])
        .run();
    r.expect_code(0);
    let v = r.json();
    assert_eq!(v["data"]["probe"]["attempts"], 2, "{}", v["data"]["probe"]);
    assert_eq!(app.requests().len(), 2);
    let r = aisec(&["probe", "--url", &format!("{}/v1", app.url)])
        .args(&["--probe", "injection.nope"])
        .run();
    r.expect_code(2);
    assert!(
        r.stderr.contains("unknown probe 'injection.nope'"),
        "{}",
        r.stderr
    );
}
