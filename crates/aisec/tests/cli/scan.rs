//! End-to-end runs of the `aisec` binary: `scan`, `demo`, `rules`.

use std::io::Write;
use std::path::Path;
use std::process::Output;

fn aisec(args: &[&str]) -> Output {
    crate::util::aisec(args).output()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn max_severity_under(report: &serde_json::Value, needle: &str) -> Option<String> {
    let order = ["info", "low", "medium", "high", "critical"];
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["location"]["path"].as_str().unwrap().contains(needle))
        .map(|f| f["severity"].as_str().unwrap().to_string())
        .max_by_key(|s| order.iter().position(|o| o == s))
}

#[test]
fn demo_finds_every_malicious_sample_and_passes_the_safe_ones() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("samples");
    let started = std::time::Instant::now();
    let out = aisec(&["demo", "--format", "json", "--keep", keep.to_str().unwrap()]);
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    // The reported duration is the run's, not the sum of the few sections that time themselves.
    let secs = r["summary"]["seconds"].as_f64().unwrap();
    assert!(
        secs <= wall && secs >= wall - 0.5,
        "summary.seconds {secs:.2} for a run of {wall:.2} s"
    );
    for bad in [
        "reverse_shell.pkl",
        "checkpoint.pt",
        "weights.safetensors",
        "malicious/chat.gguf",
        "lambda.keras",
        "embeddings.npy",
    ] {
        let sev = max_severity_under(&r, bad);
        assert!(
            matches!(sev.as_deref(), Some("high" | "critical")),
            "{bad}: expected a high or critical finding, got {sev:?}"
        );
    }
    for good in [
        "state_dict.pkl",
        "model.pt",
        "model.safetensors",
        "safe/chat.gguf",
    ] {
        let sev = max_severity_under(&r, good);
        assert!(
            !matches!(sev.as_deref(), Some("high" | "critical")),
            "{good}: benign sample flagged {sev:?}"
        );
    }
    // Every other section reports its findings in the same report.
    let rules: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap_or_default())
        .collect();
    for prefix in [
        "AISEC-EVASION-",
        "AISEC-PRIVACY-001",
        "AISEC-PRIVACY-003",
        "AISEC-BACKDOOR-001",
        "AISEC-PROBE-",
        "AISEC-GUARD-",
    ] {
        assert!(
            rules.iter().any(|id| id.starts_with(prefix)),
            "no {prefix} finding in the demo report: {rules:?}"
        );
    }
}

#[test]
fn exit_codes_gate_ci() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("s");
    assert!(aisec(&[
        "demo",
        "--only",
        "scan",
        "--keep",
        samples.to_str().unwrap(),
        "--format",
        "json"
    ])
    .status
    .success());
    let safe = samples.join("safe");
    let bad = samples.join("malicious");
    assert_eq!(
        aisec(&["scan", safe.to_str().unwrap()]).status.code(),
        Some(0)
    );
    assert_eq!(
        aisec(&["scan", bad.to_str().unwrap()]).status.code(),
        Some(1)
    );
    assert_eq!(
        aisec(&["scan", bad.to_str().unwrap(), "--no-fail"])
            .status
            .code(),
        Some(0)
    );
    let missing = aisec(&["scan", "/no/such/model.pt"]);
    assert_eq!(missing.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&missing.stdout);
    assert!(stdout.contains("/no/such/model.pt"), "{stdout}");
    let usage = aisec(&["scan", "x", "--fail-on", "sometimes"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn sarif_output_is_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("s");
    aisec(&[
        "demo",
        "--only",
        "scan",
        "--keep",
        samples.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let out = aisec(&[
        "scan",
        samples.to_str().unwrap(),
        "--format",
        "sarif",
        "--no-fail",
    ]);
    let s = json(&out);
    assert_eq!(s["version"], "2.1.0");
    let run = &s["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "aisec");
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
    }
}

#[test]
fn stdin_is_scanned() {
    // posix.system('id') at protocol 2
    let payload = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";
    let out = crate::util::aisec(&["scan", "-", "--format", "json"])
        .stdin(payload)
        .run();
    out.expect_code(1);
    let r = out.json();
    assert_eq!(max_severity_under(&r, "-").as_deref(), Some("critical"));
}

#[test]
fn sparse_ten_gigabyte_file_ends_quickly_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.bin");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(10 << 30).unwrap();
    drop(f);
    let out = aisec(&["scan", p.to_str().unwrap(), "--format", "json"]);
    // Zeros are no model format: read quickly, named as skipped, and the
    // run says it found nothing scannable (exit 2) instead of "clean".
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["summary"]["items"], 1);
    assert_eq!(r["summary"]["bytes"], 10u64 << 30);
    assert_eq!(r["data"]["outcome"], "nothing-scannable");
}

fn zip_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut buf);
    z.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(bytes).unwrap();
    z.finish().unwrap();
    buf.into_inner()
}

#[test]
fn deeply_nested_archives_stop_at_the_depth_limit() {
    let mut data = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.".to_vec();
    for i in 0..12 {
        data = zip_of(&format!("layer{i}.zip"), &data);
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nested.zip");
    std::fs::write(&p, &data).unwrap();
    let out = aisec(&["scan", p.to_str().unwrap(), "--format", "json", "--no-fail"]);
    let r = json(&out);
    let ids: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"AISEC-SCAN-004"), "{ids:?}");
}

#[test]
fn decompression_bomb_is_bounded() {
    // 64 MiB of zeros gzip-compressed is ~64 KiB; the limit is 1 MiB.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        enc.write_all(&zeros).unwrap();
    }
    let gz = enc.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bomb.joblib");
    std::fs::write(&p, &gz).unwrap();
    let cfg = dir.path().join("aisec.toml");
    std::fs::write(&cfg, "[scan]\nmax_entry_mb = 1\n").unwrap();
    let out = aisec(&[
        "scan",
        p.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
        "--no-fail",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    let text = r["findings"].to_string();
    assert!(text.contains("limit"), "{text}");
}

#[test]
fn rules_lists_the_catalogue() {
    let out = aisec(&["rules", "--json"]);
    assert!(out.status.success());
    let rules = json(&out);
    let ids: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"AISEC-SCAN-001"));
    assert!(ids.iter().any(|i| i.starts_with("AISEC-PICKLE")));
}

#[test]
fn rules_formats_and_one_rule_in_full() {
    let out = aisec(&["rules", "--format", "json"]);
    assert!(out.status.success());
    let rules = json(&out);
    let rules = rules.as_array().unwrap();
    assert!(rules.len() >= 100, "{}", rules.len());
    for r in rules {
        let id = r["id"].as_str().unwrap();
        assert!(r["help_uri"].as_str().unwrap().ends_with(id), "{r}");
        assert!(r["description"]
            .as_str()
            .unwrap()
            .starts_with("## What it detects"));
    }
    let out = aisec(&["rules", "AISEC-PICKLE-001"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for part in [
        "## Why it matters",
        "## Example",
        "## Remediation",
        "LLM03 Supply Chain",
    ] {
        assert!(text.contains(part), "{part} missing in:\n{text}");
    }
    let out = aisec(&["rules", "AISEC-NOPE-999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown rule 'AISEC-NOPE-999'"));
}

#[test]
fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[pickle]\nallw = [1]\n").unwrap();
    let out = aisec(&[
        "scan",
        dir.path().to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("allw"), "{err}");
    assert!(Path::new(&cfg).exists());
}

/// Issue 19: a file name, a zip member name and a pickle GLOBAL name carry
/// terminal escapes (erase line, cursor home, retitle, a C1 CSI, a
/// right-to-left override). The text report shows them escaped, never raw.
#[test]
fn crafted_names_cannot_rewrite_the_terminal() {
    let pickle = b"\x80\x02cposix\nsys\x1b[2Ktem\n\x8c\x03\xe2\x80\xaeid\x85R.".to_vec();
    let member = "data\x1b]0;owned\x07\u{9b}2J.pkl";
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("evil\x1b[2K\x1b[Hclean\u{202e}.zip");
    std::fs::write(&p, zip_of(member, &pickle)).unwrap();
    let out = aisec(&["scan", p.to_str().unwrap(), "--no-fail", "--color", "never"]);
    let stdout = String::from_utf8(out.stdout).expect("utf-8 report");
    assert!(
        !stdout
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
        "raw control character in:\n{stdout:?}"
    );
    assert!(
        stdout.contains(r"evil\x1b[2K\x1b[Hclean\u{202e}.zip"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r"data\x1b]0;owned\x07\u{9b}2J.pkl"),
        "{stdout}"
    );
    assert!(stdout.contains(r"sys\x1b[2Ktem"), "{stdout}");
    // The JSON report keeps the exact names (JSON escapes them itself).
    let j = aisec(&["scan", p.to_str().unwrap(), "--no-fail", "--format", "json"]);
    let r = json(&j);
    let paths: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["location"]["member"].as_str())
        .collect();
    assert!(paths.iter().any(|m| m.contains('\x1b')), "{paths:?}");
}

/// An error message that quotes a crafted path is escaped on stderr too.
#[test]
fn crafted_names_in_errors_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone\x1b[2J.pkl");
    let cfg = dir.path().join("conf\x1b[31m.toml");
    std::fs::write(&cfg, "not = [valid").unwrap();
    let out = aisec(&[
        "scan",
        missing.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert!(stderr.contains(r"\x1b["), "{stderr}");
}

#[test]
fn files_it_cannot_read_are_named_and_nothing_scannable_is_not_clean() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("notes.txt"), "just text\n").unwrap();
    // Pseudo-random bytes: no format aisec reads.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let blob: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(d.path().join("blob.bin"), &blob).unwrap();
    let dir = d.path().to_str().unwrap();
    // Today's main: "2 item(s), 0 finding(s)", exit 0.
    let out = aisec(&["scan", dir, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let r = json(&out);
    assert_eq!(r["data"]["outcome"], "nothing-scannable", "{}", r["data"]);
    assert_eq!(r["data"]["skipped"]["count"], 2);
    let names = r["data"]["skipped"]["files"].to_string();
    assert!(
        names.contains("notes.txt") && names.contains("blob.bin"),
        "{names}"
    );
    // SARIF: each skipped file is a notification (level note).
    let out = aisec(&["scan", dir, "--format", "sarif"]);
    let s = json(&out);
    let notes = s["runs"][0]["invocations"][0]["toolExecutionNotifications"].to_string();
    assert!(notes.contains("blob.bin: skipped"), "{notes}");
    assert!(notes.contains("\"note\""), "{notes}");
    // With a model beside them: scanned, and the text summary names the rest.
    let p = d.path().join("m.pkl");
    std::fs::write(&p, b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.").unwrap();
    let out = aisec(&["scan", dir]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Files: 1 scanned (1 pickle), 2 skipped"),
        "{text}"
    );
    assert!(
        text.contains("skipped ") && text.contains("notes.txt"),
        "{text}"
    );
    assert!(text.contains("Findings: 1 critical"), "{text}");
}

/// Issue 20 end to end: a nullifAI-style 7z-packed torch folder fails the
/// gate; a Hugging Face repo whose auto_map code spawns a shell is critical
/// with file and line; the same repo with ordinary code is not gated.
#[test]
fn scan_opens_7z_and_reads_auto_map_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../aisec-archive/tests/fixtures/7z");
    let evil = root.join("nullifai_torch.7z");
    let out = aisec(&[
        "scan",
        evil.to_str().unwrap(),
        "--format",
        "json",
        "--no-progress",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        max_severity_under(&json(&out), "nullifai_torch.7z").as_deref(),
        Some("critical")
    );
    let ok = root.join("benign_torch.7z");
    let out = aisec(&[
        "scan",
        ok.to_str().unwrap(),
        "--format",
        "json",
        "--no-progress",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let dir = tempfile::tempdir().unwrap();
    let write = |n: &str, s: &str| std::fs::write(dir.path().join(n), s).unwrap();
    write(
        "config.json",
        r#"{"auto_map": {"AutoModel": "modeling_m.M"}}"#,
    );
    write(
        "modeling_m.py",
        "import torch\n\nclass M(torch.nn.Module):\n    pass\n",
    );
    let d = dir.path().to_str().unwrap();
    let out = aisec(&["scan", d, "--format", "json", "--no-progress"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    write(
        "modeling_m.py",
        "import torch\nimport os as o\n\nclass M(torch.nn.Module):\n    def __init__(self):\n        o.system('id')\n",
    );
    let out = aisec(&["scan", d, "--format", "json", "--no-progress"]);
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "AISEC-SCAN-007")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(f["severity"], "critical");
    assert!(f["location"]["path"]
        .as_str()
        .unwrap()
        .ends_with("modeling_m.py"));
    assert!(
        f["evidence"].as_str().unwrap().starts_with("line 6:"),
        "{f:#}"
    );
}
