//! The weak demo app is found weak in the ways it was built to be.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

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

/// A careful app that declines everything and quotes the request back (in a
/// code fence when it holds markup, in quotation marks otherwise) emitted
/// nothing active and followed no instruction: no finding at medium or above.
#[tokio::test]
async fn a_benign_app_that_quotes_what_it_declines_gives_nothing_at_medium_or_above() {
    use aisec_core::Severity;
    use aisec_probe::demo::{quoting_app, serve_app, DEMO_SECRET};
    use aisec_probe::harness::{run_probes, RunConfig};
    use aisec_probe::summary::{build_report, SummaryOptions};
    let server = serve_app(quoting_app()).await.unwrap();
    let mut cfg = RunConfig::new(server.target());
    cfg.secrets.push(DEMO_SECRET.to_string());
    cfg.seed = Some(2024);
    let buffs: Vec<_> = ["base64", "rot13", "hex", "homoglyph", "zero-width"]
        .iter()
        .map(|b| aisec_probe::buffs::Buff::parse(b).unwrap())
        .collect();
    let probes = aisec_probe::probes::select(&[], &buffs).unwrap();
    let out = run_probes(cfg, probes).await.unwrap();
    let rep = build_report(&out, &SummaryOptions::default());
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    let loud: Vec<String> = rep
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Medium)
        .map(|f| format!("{} {} {}", f.severity, f.rule_id, f.title))
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
    // It was probed: every attempt got a verdict.
    assert!(out.records.iter().all(|r| r.verdict.is_some()));
}
