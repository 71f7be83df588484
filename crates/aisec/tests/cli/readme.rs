//! The README's examples run as written (issue 11).
//!
//! Every ```sh block of README.md is read; each command in it either runs
//! here, in a fresh folder where `crates/` and `docs/` point into the
//! repository (so the fixture paths in the examples resolve and the files
//! they write stay out of the tree), or is listed in [`NOT_RUN`] with why
//! and the CLI test that runs the same flags. A command that is in neither
//! fails the test, as does a listed one that is no longer in the README.
//! Commands of one block run in order, in one folder, so an example may use
//! a file that an earlier one in its block produces (`aisec train` then
//! `aisec attack evasion model.safetensors`).

use std::path::{Path, PathBuf};

/// README commands not run here: (start of the command, why, which test
/// covers the same flags).
const NOT_RUN: &[(&str, &str)] = &[
    ("cargo run --release -p aisec -- demo", "set-up: builds aisec (tests/cli/scan.rs runs the demo's scan)"),
    ("cargo test --workspace", "set-up: this is the test suite"),
    ("aisec scan ~/.cache/huggingface/hub", "needs the reader's own cache (family.rs: hugging_face_cache_is_named_by_snapshot_and_scanned_once)"),
    ("curl -sL https://example.invalid/m.pkl | aisec scan -", "needs the network (scan.rs: stdin_is_scanned)"),
    ("aisec attack extraction --url http://127.0.0.1:8080", "needs a KServe server (privacy.rs: extraction_over_http_with_labels_only_and_synthetic_queries)"),
    ("aisec attack membership target.onnx", "needs a target and its training split (membership.rs runs these flags on one it trains)"),
    ("aisec probe --url http://127.0.0.1:8077/v1", "needs an LLM server (probe.rs, exit_codes.rs run probes against loopback apps)"),
    ("aisec probe --url https://app.example/api/chat", "needs the app (exit_codes.rs and the probe crate's tests run --api rest on loopback)"),
    ("aisec probe --config probe.toml", "needs an LLM server (family.rs: probe_config_file_sets_the_run_and_flags_win)"),
    ("aisec guard --policy crates/aisec-guard/policy.example.toml --upstream", "runs a server until stopped (aisec-guard's tests)"),
    ("aisec assess examples/digits-service/aisec.toml --plan", "runs on the example system in the repository, which this test does not link (assess.rs: plan_lists_threats_with_checks_and_manual_controls runs --plan on it)"),
    ("aisec assess examples/digits-service/aisec.toml --html", "writes its resume state beside the description, inside the repository (assess.rs: the_example_system_is_assessed_end_to_end_and_resumes runs it with --state in a temporary folder)"),
    ("aisec assess examples/digits-service/aisec.toml --threat-dragon", "as above (assess.rs and aisec-assess's Threat Dragon schema tests)"),
    ("aisec scan hf://openai-community/gpt2", "needs the network (remote.rs: hub_repo_scan_matches_the_local_scan runs hf:// against a loopback hub)"),
    ("aisec scan hf://org/model@v1.0 --state", "needs the network (remote.rs: state_skips_what_was_already_scanned)"),
    ("aisec scan s3://bucket/checkpoints/", "needs a store (remote.rs: s3_prefix_scan_names_the_objects runs s3s-fs on loopback)"),
    ("aisec scan https://example.invalid/model.safetensors", "needs the network (remote.rs: shards_cover_the_list_once_and_merge_to_the_single_run reads https-style URLs on loopback)"),
    ("aisec provenance sign my-model", "needs the reader's model folder and private key (provenance.rs: manifest_then_verify_against_it_and_sign_then_verify signs and verifies)"),
    ("aisec provenance verify hf://org/model@v1.0", "needs the network (provenance.rs: a_hub_repo_verifies_in_place_like_the_local_folder runs hf:// against a loopback hub)"),
    ("aisec assess --import td.json", "needs the export above (aisec-assess: Threat Dragon import round trip)"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The README's ```sh blocks, each with the `## ` heading above it, as
/// lists of commands (continuation lines joined, comments dropped).
fn blocks() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut out = Vec::new();
    let (mut heading, mut cur): (String, Option<Vec<String>>) = (String::new(), None);
    let mut pending = String::new();
    for line in text.lines() {
        match &mut cur {
            None if line.starts_with("## ") => heading = line[3..].to_string(),
            None if line.trim() == "```sh" => cur = Some(Vec::new()),
            None => {}
            Some(cmds) if line.trim() == "```" => {
                out.push((heading.clone(), std::mem::take(cmds)));
                cur = None;
            }
            Some(cmds) => {
                let l = strip_comment(line);
                let l = l.trim_end();
                if let Some(head) = l.strip_suffix('\\') {
                    pending.push_str(head.trim_start());
                    pending.push(' ');
                    continue;
                }
                pending.push_str(l.trim_start());
                let c = std::mem::take(&mut pending).trim().to_string();
                if !c.is_empty() {
                    cmds.push(c);
                }
            }
        }
    }
    out
}

/// The line without a `#` comment (a `#` after whitespace, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return &line[..i],
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Splits a command into words as a POSIX shell would for these examples
/// (single and double quotes; no expansions are used by runnable ones).
fn words(cmd: &str) -> Vec<String> {
    let (mut out, mut cur, mut any) = (Vec::new(), String::new(), false);
    let (mut single, mut double) = (false, false);
    for c in cmd.chars() {
        match c {
            '\'' if !double => {
                single = !single;
                any = true;
            }
            '"' if !single => {
                double = !double;
                any = true;
            }
            c if c.is_whitespace() && !single && !double => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn not_run(cmd: &str) -> Option<&'static str> {
    NOT_RUN
        .iter()
        .find(|(start, _)| cmd.starts_with(start))
        .map(|(_, why)| *why)
}

/// Runs every runnable command of the blocks under the heading starting
/// with `section`; returns how many ran.
fn run_section(section: &str) -> usize {
    let blocks: Vec<_> = blocks()
        .into_iter()
        .filter(|(h, _)| h.starts_with(section))
        .collect();
    assert!(
        !blocks.is_empty(),
        "no ```sh block under a heading {section}"
    );
    let mut ran = 0;
    for (_, cmds) in blocks {
        let dir = tempfile::tempdir().unwrap();
        for link in ["crates", "docs"] {
            #[cfg(unix)]
            std::os::unix::fs::symlink(repo().join(link), dir.path().join(link)).unwrap();
            #[cfg(not(unix))]
            let _ = link;
        }
        for cmd in cmds {
            if not_run(&cmd).is_some() {
                continue;
            }
            let w = words(&cmd);
            assert_eq!(
                w[0], "aisec",
                "README command that is neither run nor listed: {cmd}"
            );
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_aisec"))
                .args(&w[1..])
                .current_dir(dir.path())
                .env("NO_COLOR", "1")
                .env_remove("AISEC_LOG")
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            let code = out.status.code();
            // 0 clean, 1 findings: both mean the example did its job.
            assert!(
                matches!(code, Some(0) | Some(1)),
                "README example failed (exit {code:?}):\n  {cmd}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    ran
}

#[test]
fn readme_opens_with_exactly_the_two_set_up_commands() {
    let b = blocks();
    assert_eq!(
        b[0].1,
        [
            "cargo run --release -p aisec -- demo",
            "cargo test --workspace"
        ]
    );
}

/// Every command is run by a test below or listed with its reason; every
/// listed one is still in the README.
#[test]
fn every_readme_command_is_run_or_listed() {
    let all: Vec<String> = blocks().into_iter().flat_map(|(_, c)| c).collect();
    for c in &all {
        assert!(
            c.starts_with("aisec ") || not_run(c).is_some(),
            "README command neither run nor listed in NOT_RUN: {c}"
        );
    }
    for (start, _) in NOT_RUN {
        assert!(
            all.iter().any(|c| c.starts_with(start)),
            "NOT_RUN lists '{start}', which the README no longer has"
        );
    }
    let sections: Vec<String> = blocks().into_iter().map(|(h, _)| h).collect();
    for h in sections.iter().filter(|h| !h.is_empty()) {
        assert!(
            SECTIONS.iter().any(|s| h.starts_with(s)),
            "README section '{h}' has examples but no test here runs them"
        );
    }
}

/// The README sections whose examples the tests below run.
const SECTIONS: &[&str] = &[
    "`aisec scan`",
    "`aisec attack evasion`",
    "`aisec train`",
    "`aisec harden`",
    "`aisec attack extraction`",
    "`aisec attack membership`",
    "`aisec explain`",
    "`aisec probe`",
    "`aisec guard`",
    "`aisec defend`",
    "`aisec attack poison`",
    "`aisec assess`",
    "Remote scans",
    "`aisec provenance`",
];

#[test]
fn readme_provenance_examples_run() {
    assert_eq!(run_section("`aisec provenance`"), 5);
}

#[test]
fn readme_scan_examples_run() {
    assert_eq!(run_section("`aisec scan`"), 6);
}

#[test]
fn readme_remote_examples_run() {
    assert_eq!(run_section("Remote scans"), 3);
}

#[test]
fn readme_poison_examples_run() {
    assert_eq!(run_section("`aisec attack poison`"), 2);
}

#[test]
fn readme_defend_examples_run() {
    assert_eq!(run_section("`aisec defend`"), 4);
}

#[test]
fn readme_evasion_example_runs() {
    assert_eq!(run_section("`aisec attack evasion`"), 1);
}

#[test]
fn readme_train_then_attack_examples_run() {
    assert_eq!(run_section("`aisec train`"), 3);
}

#[test]
fn readme_harden_examples_run() {
    assert_eq!(run_section("`aisec harden`"), 2);
}

#[test]
fn readme_extraction_and_inversion_examples_run() {
    assert_eq!(run_section("`aisec attack extraction`"), 2);
}

#[test]
fn readme_explain_example_runs() {
    assert_eq!(run_section("`aisec explain`"), 1);
}

#[test]
fn readme_probe_list_and_guard_check_run() {
    assert_eq!(run_section("`aisec probe`"), 1);
    assert_eq!(run_section("`aisec guard`"), 1);
    assert_eq!(run_section("`aisec attack membership`"), 0);
}

#[test]
fn words_and_comments_split_like_a_shell() {
    assert_eq!(
        words(r#"aisec probe --request-template '{"message": "{{prompt}}"}' -p a"#),
        [
            "aisec",
            "probe",
            "--request-template",
            r#"{"message": "{{prompt}}"}"#,
            "-p",
            "a"
        ]
    );
    assert_eq!(strip_comment("aisec scan x   # gate CI"), "aisec scan x   ");
    assert_eq!(strip_comment("echo 'a # b'"), "echo 'a # b'");
}

/// Every repository path the README names (`bench/…`, `scripts/…`,
/// `docs/…`, `crates/…`, in backticks or links) exists.
#[test]
fn every_path_the_readme_names_exists() {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for token in text.split(|c: char| c == '`' || c == '(' || c == ')' || c.is_whitespace()) {
        let t = token.trim_end_matches(['.', ',', ';', ':']);
        if !["bench/", "scripts/", "docs/", "crates/"]
            .iter()
            .any(|p| t.starts_with(p))
            || t.contains(['*', '<', '{'])
        {
            continue;
        }
        checked += 1;
        if !repo().join(t).exists() {
            missing.push(t.to_string());
        }
    }
    assert!(checked > 10, "only {checked} paths found");
    assert!(
        missing.is_empty(),
        "README names paths that do not exist: {missing:?}"
    );
}
