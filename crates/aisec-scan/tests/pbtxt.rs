//! Text-format TensorFlow files (issue 20) reach the text parser by the
//! name TensorFlow's loader uses, also inside archives.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::Severity;
use aisec_scan::Scanner;

fn fixture(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../aisec-formats/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn saved_model_pbtxt_is_parsed_as_text() {
    let r =
        Scanner::default().scan_bytes(&fixture("tf_printv2_home.pbtxt"), "model/saved_model.pbtxt");
    assert_eq!(r.format, aisec_scan::Format::SavedModel);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule_id == "AISEC-TF-003" && f.severity >= Severity::High),
        "{:#?}",
        r.findings
    );
    let r =
        Scanner::default().scan_bytes(&fixture("tf_benign_saved_model.pbtxt"), "saved_model.pbtxt");
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    let r = Scanner::default().scan_bytes(&fixture("tf_frozen_graph.pbtxt"), "graph.pbtxt");
    assert_eq!(r.format, aisec_scan::Format::GraphDef);
    assert!(
        r.findings.iter().any(|f| f.rule_id == "AISEC-TF-003"),
        "{:#?}",
        r.findings
    );
}
