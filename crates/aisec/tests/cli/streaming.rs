//! `--format jsonl` streams (issue 11): `scan` writes a file's findings
//! when that file is done, `probe` one line per attempt as it is judged;
//! a run that is still going (or interrupted) already has the lines for
//! the work done, and the last line is the summary, which says whether the
//! run was complete.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use aisec_model::test_support::{serve, Reply};

use crate::util::aisec;

/// Standard output of `child`, line by line, as it is written.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn parse(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn scan_jsonl_writes_a_files_findings_before_the_run_ends() {
    let d = tempfile::tempdir().unwrap();
    let evil = d.path().join("evil.pkl");
    std::fs::write(&evil, b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.").unwrap();
    // Two inputs scanned at once: the pickle, and standard input, which
    // this test holds open, so the run cannot end.
    let mut child = Command::new(env!("CARGO_BIN_EXE_aisec"))
        .arg("scan")
        .arg(&evil)
        .args(["-", "-j", "2", "--format", "jsonl", "--no-progress"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let rx = lines_of(&mut child);
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a finding line while the run goes on");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run is still waiting for stdin"
    );
    let v = parse(&first);
    assert_eq!(v["type"], "finding", "{v}");
    assert!(v["location"]["path"]
        .as_str()
        .unwrap()
        .ends_with("evil.pkl"));
    drop(stdin);
    let mut rest: Vec<String> = rx.iter().collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a critical finding fails the run");
    let last = parse(&rest.pop().expect("a summary line"));
    assert_eq!(last["type"], "summary", "{last}");
    assert_eq!(last["incomplete"], false, "{last}");
    // The streamed finding is not written again at the end.
    assert!(
        !rest.iter().any(|l| l == &first),
        "repeated finding: {rest:?}"
    );
    assert_eq!(last["summary"]["items"], 2, "{last}");
}

#[cfg(unix)]
#[test]
fn probe_jsonl_streams_attempts_and_an_interrupted_run_says_so() {
    // A target that takes 700 ms per answer.
    let app = serve(|_| {
        std::thread::sleep(Duration::from_millis(700));
        Reply::raw(
            200,
            r#"{"choices": [{"message": {"role": "assistant", "content": "Sorry, I can't help with that."}}]}"#,
        )
    });
    let mut child = aisec(&["probe", "--url", &format!("{}/v1", app.url)])
        .args(&["-p", "injection,leakage", "-j", "1", "--retries", "0"])
        .args(&["--format", "jsonl", "--no-progress"])
        .spawn();
    let rx = lines_of(&mut child);
    let first = parse(
        &rx.recv_timeout(Duration::from_secs(60))
            .expect("an attempt line while the run goes on"),
    );
    assert!(child.try_wait().unwrap().is_none(), "still probing");
    assert_eq!(first["type"], "attempt", "{first}");
    assert_eq!(first["hit"], false, "{first}");
    assert!(first["probe"].as_str().unwrap().contains('.'), "{first}");
    // Ctrl-C: the lines for the work done stay, and the summary says the
    // run is incomplete.
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let mut rest: Vec<serde_json::Value> = rx.iter().map(|l| parse(&l)).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let last = rest.pop().expect("a summary line");
    assert_eq!(last["type"], "summary", "{last}");
    assert_eq!(last["incomplete"], true, "{last}");
    let attempts = 1 + rest.iter().filter(|v| v["type"] == "attempt").count();
    assert!(attempts < app.requests().len() + 2, "{attempts}");
    assert!(
        rest.iter()
            .any(|v| v["type"] == "error"
                && v["message"].as_str().unwrap_or("").contains("interrupted")),
        "{rest:?}"
    );
}

#[test]
fn probe_jsonl_lines_match_the_json_report() {
    let app = serve(|_| {
        Reply::raw(
            200,
            r#"{"choices": [{"message": {"role": "assistant", "content": "Sorry, I can't help with that."}}]}"#,
        )
    });
    let r = aisec(&["probe", "--url", &format!("{}/v1", app.url)])
        .args(&["-p", "injection", "--retries", "0", "--format", "jsonl"])
        .run();
    r.expect_code(0);
    let lines: Vec<serde_json::Value> = r.stdout.lines().map(parse).collect();
    let attempts = lines.iter().filter(|v| v["type"] == "attempt").count();
    assert_eq!(attempts, 4, "{}", r.stdout);
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["incomplete"], false);
    assert_eq!(last["summary"]["items"], 4, "{last}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_a_scan_writes_what_was_found_and_exits_130() {
    let d = tempfile::tempdir().unwrap();
    let evil = d.path().join("evil.pkl");
    std::fs::write(&evil, b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.").unwrap();
    for format in ["jsonl", "json"] {
        // Standard input held open: the scan cannot end by itself.
        let mut child = Command::new(env!("CARGO_BIN_EXE_aisec"))
            .arg("scan")
            .arg(&evil)
            .args(["-", "-j", "2", "--format", format, "--no-progress"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _stdin = child.stdin.take();
        let rx = lines_of(&mut child);
        if format == "jsonl" {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("the pickle's finding while stdin is open");
        } else {
            std::thread::sleep(Duration::from_millis(1500));
        }
        assert!(child.try_wait().unwrap().is_none(), "still scanning");
        let st = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let rest: Vec<String> = rx.iter().collect();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{format}");
        let v = if format == "jsonl" {
            parse(rest.last().expect("a summary line"))
        } else {
            parse(&rest.join("\n"))
        };
        if format == "jsonl" {
            assert_eq!(v["type"], "summary", "{v}");
            assert_eq!(v["incomplete"], true, "{v}");
        } else {
            // The partial report has the finished file's finding.
            assert_eq!(v["data"]["incomplete"], true, "{v}");
            assert!(v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["location"]["path"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("evil.pkl")));
        }
    }
}
