//! The weak demo app is found weak in the ways it was built to be.

use aisec_probe::demo::run_demo_async;

#[tokio::test]
async fn demo_run_finds_the_planted_weaknesses() {
    let rep = run_demo_async().await.unwrap();
    let ids: Vec<&str> = rep.findings.iter().map(|f| f.rule_id.as_str()).collect();
    for want in [
        "AISEC-PROBE-INJ-001",
        "AISEC-PROBE-IND-001",
        "AISEC-PROBE-ENC-001",
        "AISEC-PROBE-SPE-001",
        "AISEC-PROBE-LEAK-001",
        "AISEC-PROBE-EXFIL-001",
        "AISEC-PROBE-XSS-001",
        "AISEC-PROBE-PKG-001",
    ] {
        assert!(ids.contains(&want), "missing {want}: {ids:?}");
    }
    assert!(
        !ids.contains(&"AISEC-PROBE-JB-001"),
        "the demo app refuses phishing requests"
    );
    assert!(
        rep.errors.is_empty(),
        "429s must be retried away: {:?}",
        rep.errors
    );
    let p = &rep.data["probe"];
    assert!(p["retries"].as_u64().unwrap() > 0);
    insta::assert_snapshot!(aisec_probe::summary::family_table(&rep));
}
