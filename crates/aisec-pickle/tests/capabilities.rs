//! Severities driven by the generated capability table and the
//! unknown-call-with-data rule (issue 20).

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::{Location, Severity};
use aisec_pickle::{scan_pickle, Limits, PickleReport, Policy};

fn scan(data: &[u8]) -> PickleReport {
    scan_pickle(
        data,
        &Location::path("t.pkl"),
        &Policy::default(),
        &Limits::default(),
    )
}

fn worst(r: &PickleReport) -> Option<(String, Severity)> {
    r.findings
        .iter()
        .max_by_key(|f| f.severity)
        .map(|f| (f.rule_id.clone(), f.severity))
}

/// `GLOBAL module name`, MARK, string arguments, TUPLE, REDUCE, STOP.
fn call(module: &str, name: &str, args: &[&str]) -> Vec<u8> {
    let mut p = format!("c{module}\n{name}\n(").into_bytes();
    for a in args {
        p.extend_from_slice(format!("V{a}\n").as_bytes());
    }
    p.extend_from_slice(b"tR.");
    p
}

/// Protocol 4: STACK_GLOBAL with a dotted attribute path.
fn call4(module: &str, name: &str, args: &[&str]) -> Vec<u8> {
    let mut p = b"\x80\x04".to_vec();
    for s in [module, name] {
        p.push(0x8c);
        p.push(s.len() as u8);
        p.extend_from_slice(s.as_bytes());
    }
    p.extend_from_slice(b"\x93(");
    for a in args {
        p.push(0x8c);
        p.push(a.len() as u8);
        p.extend_from_slice(a.as_bytes());
    }
    p.extend_from_slice(b"tR.");
    p
}

#[test]
fn unlisted_process_helpers_are_critical() {
    for (m, n, args) in [
        ("pydoc", "pipepager", &["x", "sh -c id"][..]),
        ("uuid", "_get_command_stdout", &["id"][..]),
        ("platform", "_syscmd_file", &["/bin/sh"][..]),
        ("subprocess", "getoutput", &["id"][..]),
    ] {
        let r = scan(&call(m, n, args));
        let w = worst(&r);
        assert_eq!(
            w.map(|x| x.1),
            Some(Severity::Critical),
            "{m}.{n}: {:?}",
            r.findings
        );
    }
}

#[test]
fn private_module_alias_of_os_resolves() {
    // `shutil.os.system` is os.system reached through shutil's import.
    let r = scan(&call4("shutil", "os.system", &["id"]));
    assert_eq!(worst(&r).map(|x| x.1), Some(Severity::Critical));
    assert!(r.findings.iter().any(|f| f.evidence.contains("os.system")));
}

#[test]
fn numpy_file_writer_is_critical() {
    let r = scan(&call4("numpy", "save", &["/root/.bashrc", "x"]));
    let w = worst(&r).expect("finding");
    assert_eq!(w, ("AISEC-PICKLE-014".to_string(), Severity::Critical));
    assert!(r.findings[0].evidence.contains("writes files"));
}

#[test]
fn imports_without_calls_stay_medium() {
    // GLOBAL then STOP: the capable function is never called.
    let r = scan(b"cnumpy\nsave\n.");
    assert_eq!(
        worst(&r),
        Some(("AISEC-PICKLE-014".to_string(), Severity::Medium))
    );
}

#[test]
fn unknown_function_with_text_is_high_class_or_no_data_is_medium() {
    let r = scan(&call("somelib.utils", "run_command", &["curl x | sh"]));
    assert_eq!(
        worst(&r),
        Some(("AISEC-PICKLE-015".to_string(), Severity::High))
    );
    // An enum-like class rebuilt from its value (transformers'
    // IntervalStrategy('steps') in training_args.bin) stays medium.
    let r = scan(&call(
        "transformers.trainer_utils",
        "IntervalStrategy",
        &["steps"],
    ));
    assert_eq!(
        worst(&r),
        Some(("AISEC-PICKLE-005".to_string(), Severity::Medium))
    );
    let r = scan(&call("somelib.utils", "make", &[]));
    assert_eq!(worst(&r).map(|x| x.1), Some(Severity::Medium));
}

#[test]
fn profiles_do_not_lift_capabilities() {
    let p = Policy::default().with_profile("sklearn").unwrap();
    let r = scan_pickle(
        &call4(
            "sklearn.datasets._svmlight_format_io",
            "dump_svmlight_file",
            &["a", "b", "/tmp/x"],
        ),
        &Location::path("t.pkl"),
        &p,
        &Limits::default(),
    );
    assert_eq!(worst(&r).map(|x| x.1), Some(Severity::Critical));
    // ... while the profile's estimators stay allowed.
    let r = scan_pickle(
        b"csklearn.linear_model._base\nLinearRegression\n)R.",
        &Location::path("t.pkl"),
        &p,
        &Limits::default(),
    );
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[test]
fn pickle_bytes_handed_to_a_loader_like_callable_are_scanned() {
    // torch's data-pipe decoder handler unpickles its second argument
    // when the first is "pickle": the inner payload must be analysed.
    let inner = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.";
    let mut p = b"\x80\x04".to_vec();
    for s in ["torch.utils.data.datapipes.utils.decoder", "basichandlers"] {
        p.push(0x8c);
        p.push(s.len() as u8);
        p.extend_from_slice(s.as_bytes());
    }
    p.extend_from_slice(b"\x93\x8c\x06pickle");
    p.push(b'C');
    p.push(inner.len() as u8);
    p.extend_from_slice(inner);
    p.extend_from_slice(b"\x86R.");
    let r = scan(&p);
    assert!(
        r.findings
            .iter()
            .any(|f| f.evidence.starts_with("[nested pickle]") && f.rule_id == "AISEC-PICKLE-001"),
        "{:?}",
        r.findings
    );
    // The same bytes given to an unknown function are followed too.
    let mut q = b"\x80\x04\x8c\x05mylib\x8c\x06decode\x93".to_vec();
    q.push(b'C');
    q.push(inner.len() as u8);
    q.extend_from_slice(inner);
    q.extend_from_slice(b"\x85R.");
    let r = scan(&q);
    assert!(r
        .findings
        .iter()
        .any(|f| f.evidence.starts_with("[nested pickle]") && f.severity == Severity::Critical));
}

#[test]
fn benign_numpy_rng_state_is_clean() {
    let r = scan(&call(
        "numpy.random._pickle",
        "__randomstate_ctor",
        &["MT19937"],
    ));
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}
