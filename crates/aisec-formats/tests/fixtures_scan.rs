//! Integration tests over the committed fixtures written by
//! `scripts/fixtures/gen_format_fixtures.py` (real h5py, onnx, gguf and
//! safetensors output plus hand-encoded TensorFlow protobufs).

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::{Location, Severity};
use aisec_formats::{gguf, h5, keras, onnx, safetensors, savedmodel, FormatReport};

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn scan(name: &str) -> FormatReport {
    let d = fixture(name);
    let loc = Location::path(name);
    if name.ends_with(".h5") {
        assert!(h5::looks_like_h5(&d));
        h5::scan_h5(&d, &loc)
    } else if name.ends_with(".pbtxt") {
        savedmodel::scan_saved_model_text(&d, &loc)
    } else if name == "keras_metadata.pb" {
        savedmodel::scan_keras_metadata(&d, &loc)
    } else if name.ends_with("saved_model.pb") {
        assert!(savedmodel::looks_like_saved_model(&d));
        savedmodel::scan_saved_model(&d, &loc)
    } else if name.ends_with(".pb") {
        savedmodel::scan_graph_def(&d, &loc)
    } else if name.ends_with(".json") {
        keras::scan_keras_config(&d, &loc)
    } else if name.ends_with(".onnx") {
        assert!(onnx::looks_like_onnx(&d), "{name} not sniffed as ONNX");
        onnx::scan_onnx(&d, &loc)
    } else if name.ends_with(".gguf") {
        assert!(gguf::looks_like_gguf(&d));
        gguf::scan_gguf(&d, &loc)
    } else {
        safetensors::scan_safetensors(&d, &loc)
    }
}

/// One line per finding plus the malformed text: what the snapshots record.
fn summary(r: &FormatReport) -> String {
    let mut lines: Vec<String> = r
        .findings
        .iter()
        .map(|f| format!("{} [{}] {}", f.rule_id, f.severity, f.evidence))
        .collect();
    lines.sort();
    if let Some(m) = &r.malformed {
        lines.push(format!("malformed: {m}"));
    }
    lines.join("\n")
}

fn rules(r: &FormatReport) -> Vec<&str> {
    r.findings.iter().map(|f| f.rule_id.as_str()).collect()
}

fn assert_benign(name: &str) {
    let r = scan(name);
    assert!(r.malformed.is_none(), "{name}: {:?}", r.malformed);
    assert!(
        r.findings.iter().all(|f| f.severity < Severity::High),
        "{name}: {}",
        summary(&r)
    );
}

#[test]
fn benign_fixtures_have_no_high_findings() {
    for n in [
        "keras2_benign.h5",
        "keras3_benign_config.json",
        "tf_benign_saved_model.pb",
        "onnx_benign.onnx",
        "gguf_benign.gguf",
        "st_good.safetensors",
    ] {
        assert_benign(n);
    }
    assert!(scan("keras2_benign.h5").findings.is_empty());
    assert!(scan("tf_benign_saved_model.pb").findings.is_empty());
}

#[test]
fn h5_lambda_found_in_all_layouts() {
    for n in [
        "keras2_lambda.h5",
        "keras2_lambda_latest.h5",
        "keras2_lambda_userblock.h5",
    ] {
        let r = scan(n);
        assert!(r.malformed.is_none(), "{n}: {:?}", r.malformed);
        let f = r
            .findings
            .iter()
            .find(|f| f.rule_id == "AISEC-KERAS-001")
            .unwrap_or_else(|| panic!("{n}: {}", summary(&r)));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.confidence,
            aisec_core::Confidence::High,
            "{n}: decoded structurally"
        );
        assert!(f.evidence.contains("system"), "{n}: {}", f.evidence);
        assert!(f.atlas.contains(&"AML.T0011.000".to_string()));
        assert!(
            r.notes.iter().any(|x| x.contains("keras_version = 2.12.0")),
            "{n}: {:?}",
            r.notes
        );
    }
    insta::assert_snapshot!("keras2_lambda_h5", summary(&scan("keras2_lambda.h5")));
}

#[test]
fn h5_external_link_and_storage() {
    let r = scan("h5_external.h5");
    let ids = rules(&r);
    assert!(ids.contains(&"AISEC-H5-001"), "{}", summary(&r));
    assert!(ids.contains(&"AISEC-H5-002"), "{}", summary(&r));
    insta::assert_snapshot!("h5_external", summary(&r));
}

#[test]
fn h5_dense_link_storage_is_followed() {
    let r = scan("h5_dense_links.h5");
    assert!(r.malformed.is_none(), "{:?}", r.malformed);
    let ids = rules(&r);
    assert!(ids.contains(&"AISEC-H5-001"), "{}", summary(&r));
    assert!(ids.contains(&"AISEC-KERAS-001"), "{}", summary(&r));
    assert!(
        r.notes.iter().any(|n| n.contains("21 objects")),
        "{:?}",
        r.notes
    );
}

#[test]
fn keras3_configs() {
    let r = scan("keras3_lambda_config.json");
    assert!(r
        .findings
        .iter()
        .any(|f| f.rule_id == "AISEC-KERAS-001" && f.severity == Severity::Critical));
    let r = scan("keras3_module_gadget_config.json");
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule_id == "AISEC-KERAS-003" && f.severity == Severity::Critical),
        "{}",
        summary(&r)
    );
    let r = scan("keras3_safe_mode_bypass_config.json");
    assert!(rules(&r).contains(&"AISEC-KERAS-002"));
    assert!(rules(&r).contains(&"AISEC-KERAS-007"));
    insta::assert_snapshot!("keras3_safe_mode_bypass", summary(&r));
}

#[test]
fn savedmodel_fixtures() {
    let r = scan("tf_pyfunc_saved_model.pb");
    assert_eq!(rules(&r), vec!["AISEC-TF-001"]);
    assert_eq!(r.findings[0].severity, Severity::Critical);
    let r = scan("tf_readfile_saved_model.pb");
    let ids = rules(&r);
    for id in ["AISEC-TF-002", "AISEC-TF-003", "AISEC-TF-005"] {
        assert!(ids.contains(&id), "{}", summary(&r));
    }
    insta::assert_snapshot!("tf_readfile", summary(&r));
    let r = scan("tf_frozen_graph.pb");
    assert_eq!(rules(&r), vec!["AISEC-TF-003"], "{}", summary(&r));
    let r = scan("keras_metadata.pb");
    assert!(rules(&r).contains(&"AISEC-KERAS-001"), "{}", summary(&r));
}

/// Text format (`saved_model.pbtxt`, written by text_format from the same
/// protos, scripts/fixtures/gen_pbtxt_fixtures.py) gets the same findings
/// as the binary form, evidence included.
#[test]
fn savedmodel_text_matches_binary() {
    for base in [
        "tf_benign_saved_model",
        "tf_pyfunc_saved_model",
        "tf_readfile_saved_model",
        "tf_frozen_graph",
    ] {
        let bin = scan(&format!("{base}.pb"));
        let txt = scan(&format!("{base}.pbtxt"));
        assert!(txt.malformed.is_none(), "{base}: {:?}", txt.malformed);
        let strip = |r: &FormatReport| {
            let mut v: Vec<(String, Severity, String)> = r
                .findings
                .iter()
                .map(|f| (f.rule_id.clone(), f.severity, f.evidence.clone()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(strip(&bin), strip(&txt), "{base}");
    }
    assert!(scan("tf_benign_saved_model.pbtxt").findings.is_empty());
    let r = scan("tf_printv2_home.pbtxt");
    assert_eq!(rules(&r), vec!["AISEC-TF-003"], "{}", summary(&r));
    assert!(r.findings[0].evidence.contains("file:///home/user/.bashrc"));
    assert!(r.findings[0].evidence.contains("__inference_call_77"));
}

#[test]
fn onnx_fixtures() {
    let r = scan("onnx_external_traversal.onnx");
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == "AISEC-ONNX-001")
        .expect("traversal");
    assert_eq!(f.severity, Severity::High);
    assert!(f.evidence.contains("../../etc/passwd"));
    let r = scan("onnx_custom_domain.onnx");
    assert!(rules(&r).contains(&"AISEC-ONNX-002"));
    assert!(rules(&r).contains(&"AISEC-ONNX-004"), "{}", summary(&r));
    let r = scan("onnx_subgraph_custom.onnx");
    assert_eq!(rules(&r), vec!["AISEC-ONNX-002"], "{}", summary(&r));
    assert!(r.findings[0].evidence.contains("evil.nested"));
    assert!(r.notes.iter().any(|n| n.contains("com.microsoft")));
    insta::assert_snapshot!(
        "onnx_custom_domain",
        summary(&scan("onnx_custom_domain.onnx"))
    );
}

#[test]
fn gguf_fixtures() {
    let r = scan("gguf_ssti.gguf");
    assert!(r.malformed.is_none(), "{:?}", r.malformed);
    assert_eq!(rules(&r), vec!["AISEC-GGUF-001"]);
    assert_eq!(r.findings[0].severity, Severity::Critical);
    insta::assert_snapshot!("gguf_ssti", summary(&r));
    assert!(scan("gguf_benign.gguf").findings.is_empty());
}

#[test]
fn safetensors_fixtures() {
    let r = scan("st_overlap.safetensors");
    let ids = rules(&r);
    assert!(ids.contains(&"AISEC-SAFETENSORS-006"));
    assert!(ids.contains(&"AISEC-SAFETENSORS-008"));
    let r = scan("st_oversized_header.safetensors");
    assert_eq!(rules(&r), vec!["AISEC-SAFETENSORS-001"]);
    assert!(r.malformed.is_some());
    let r = scan("st_gap_mismatch.safetensors");
    insta::assert_snapshot!("st_gap_mismatch", summary(&r));
    assert!(rules(&r).contains(&"AISEC-SAFETENSORS-004"));
    assert!(rules(&r).contains(&"AISEC-SAFETENSORS-007"));
    assert!(safetensors::looks_like_safetensors(&fixture(
        "st_good.safetensors"
    )));
}
