//! Opcode-family, limit and robustness tests of the symbolic machine through
//! the public API.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::{Location, Severity};
use aisec_pickle::{looks_like_pickle, scan_pickle, Limits, PickleReport, Policy};

fn scan(data: &[u8]) -> PickleReport {
    scan_pickle(
        data,
        &Location::path("t.pkl"),
        &Policy::default(),
        &Limits::default(),
    )
}

fn scan_lim(data: &[u8], limits: &Limits) -> PickleReport {
    scan_pickle(data, &Location::path("t.pkl"), &Policy::default(), limits)
}

fn ids(r: &PickleReport) -> Vec<&str> {
    r.findings.iter().map(|f| f.rule_id.as_str()).collect()
}

fn bu(s: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend_from_slice(&(s.len() as u32).to_le_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

#[test]
fn literals_of_every_family_are_clean() {
    // ints, longs, floats, strings, bytes, containers, memo, frames, sets
    // (the frame ends after M's argument: one of 5 bytes, ending inside it,
    // is a straddle, AISEC-PICKLE-016)
    let mut p = b"\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00(K\x01M\x02\x01J\xff\xff\xff\xff\x8a\x02\x00\x80\x8b\x01\x00\x00\x00\x7fG?\xf8\x00\x00\x00\x00\x00\x00".to_vec();
    p.extend_from_slice(b"I00\nI12345678901234567890\nL5L\nF1.5\nNS'a\\x41\\n'\nU\x01bC\x01c\x8e\x01\x00\x00\x00\x00\x00\x00\x00d\x96\x01\x00\x00\x00\x00\x00\x00\x00e");
    p.extend_from_slice(b"\x88\x89\x8f(K\x01\x90(K\x02\x91t\x94h\x00g0\n\x85\x86N\x87]\x94(K\x01ea}\x94(K\x01K\x02u)\x8c\x01ks.");
    let r = scan(&p);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.pickles, 1);
    assert_eq!(r.consumed, p.len());
    assert_eq!(r.malformed, None);
}

#[test]
fn persistent_ids_are_benign() {
    let r = scan(b"\x80\x02(X\x07\x00\x00\x00storageq\x00tQPabc\n\x86.");
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[test]
fn malformed_streams_are_reported_not_panicking() {
    for (data, what) in [
        (&b"\x80\x02a."[..], "underflow"),
        (b"\x80\x02\xff.", "opcode"),
        (b"\x80\x02e.", "MARK"),
        (b"\x80\x02T\xff\xff\xff\xff.", "negative"),
        (b"\x80\x09N.", "protocol"),
        (b"\x80\x02h\x05.", "memo"),
        (b"S'unterminated\n.", "quoted"),
        (b"\x80\x04\x95\xff\xff\xff\xff\x00\x00\x00\x00N.", "FRAME"),
        (b"(K\x01K\x02K\x03d.", "odd"),
        (b"\x80\x02N", "STOP"),
    ] {
        let r = scan(data);
        assert!(
            ids(&r).contains(&"AISEC-PICKLE-009"),
            "{what}: {:?}",
            r.findings
        );
        let m = r.malformed.unwrap();
        assert!(m.contains(what), "{what} not in {m}");
    }
}

#[test]
fn findings_before_a_broken_tail_are_kept() {
    let r = scan(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R\x00\x00\x00");
    assert_eq!(ids(&r), vec!["AISEC-PICKLE-001", "AISEC-PICKLE-009"]);
}

#[test]
fn dup_bomb_hits_stack_limit() {
    let mut p = b"\x80\x02]".to_vec();
    p.extend(std::iter::repeat_n(b'2', 5000));
    p.push(b'.');
    let lim = Limits {
        max_stack: 1000,
        ..Limits::default()
    };
    let r = scan_lim(&p, &lim);
    assert!(ids(&r).contains(&"AISEC-PICKLE-010"), "{:?}", r.findings);
    assert_eq!(
        r.findings
            .iter()
            .find(|f| f.rule_id == "AISEC-PICKLE-010")
            .unwrap()
            .severity,
        Severity::High
    );
}

#[test]
fn op_memo_and_value_limits() {
    let mut p = b"\x80\x02]".to_vec();
    for _ in 0..2000 {
        p.extend_from_slice(b"2a");
    }
    p.push(b'.');
    let r = scan_lim(
        &p,
        &Limits {
            max_ops: 100,
            ..Limits::default()
        },
    );
    assert!(r.malformed.unwrap().contains("opcodes"));
    let r = scan_lim(
        &p,
        &Limits {
            max_values: 50,
            ..Limits::default()
        },
    );
    assert!(ids(&r).contains(&"AISEC-PICKLE-010"));
    let mut m = b"\x80\x04N".to_vec();
    m.extend(std::iter::repeat_n(0x94u8, 100));
    m.push(b'.');
    let r = scan_lim(
        &m,
        &Limits {
            max_memo: 10,
            ..Limits::default()
        },
    );
    assert!(r.malformed.unwrap().contains("memo"));
}

#[test]
fn exponential_memo_reuse_is_linear() {
    // 30 levels of [prev, prev]: 2^30 logical leaves, 30 * 6 opcodes.
    let mut p = b"\x80\x02]q\x000".to_vec();
    for lvl in 1u8..=30 {
        p.extend_from_slice(&[b'(', b'h', lvl - 1, b'h', lvl - 1, b'l', b'q', lvl]);
        if lvl < 30 {
            p.push(b'0');
        }
    }
    // call os.system on it so the evidence renderer walks the DAG
    let mut q = b"\x80\x02cos\nsystem\n".to_vec();
    q.extend_from_slice(&p[2..]);
    q.extend_from_slice(b"\x85R.");
    let t = std::time::Instant::now();
    let r = scan(&q);
    assert!(t.elapsed().as_secs() < 2);
    let f = &r.findings[0];
    assert_eq!(f.rule_id, "AISEC-PICKLE-001");
    assert!(f.evidence.chars().count() < 400, "{}", f.evidence.len());
}

#[test]
fn nested_depth_is_bounded() {
    let mut inner = b"cos\nsystem\n(S'id'\ntR.".to_vec();
    for _ in 0..12 {
        let mut o = b"\x80\x03cpickle\nloads\nB".to_vec();
        o.extend_from_slice(&(inner.len() as u32).to_le_bytes());
        o.extend_from_slice(&inner);
        o.extend_from_slice(b"\x85R.");
        inner = o;
    }
    let r = scan(&inner);
    assert!(ids(&r).contains(&"AISEC-PICKLE-010"));
    assert!(ids(&r).contains(&"AISEC-PICKLE-004"));
    let lim = Limits {
        max_depth: 20,
        ..Limits::default()
    };
    let r = scan_lim(&inner, &lim);
    assert!(ids(&r).contains(&"AISEC-PICKLE-001"), "{:?}", ids(&r));
}

#[test]
fn max_findings_caps_output() {
    let mut p = b"\x80\x02".to_vec();
    for i in 0..50 {
        p.extend_from_slice(format!("cmod{i}\nf\n0").as_bytes());
    }
    p.extend_from_slice(b"N.");
    let r = scan_lim(
        &p,
        &Limits {
            max_findings: 10,
            ..Limits::default()
        },
    );
    assert_eq!(r.findings.len(), 10);
    assert_eq!(
        r.findings[9].metrics["findings_dropped"],
        serde_json::json!(40)
    );
    assert_eq!(r.globals.len(), 50);
}

#[test]
fn sniffing() {
    assert!(looks_like_pickle(b"\x80\x02N."));
    assert!(looks_like_pickle(b"cos\nsystem\n(S'id'\ntR."));
    assert!(looks_like_pickle(b"(lp0\nI1\na."));
    assert!(!looks_like_pickle(b"PK\x03\x04"));
    assert!(!looks_like_pickle(b"hello world"));
    assert!(!looks_like_pickle(b""));
    assert!(!looks_like_pickle(b"\x80\x07"));
    assert!(!looks_like_pickle(b"\x80\x02\xff\xfe"));
    assert!(looks_like_pickle(b"\x80\x04\x95\x00"));
}

#[test]
fn trailing_non_pickle_data() {
    let r = scan(b"\x80\x02N.PK\x03\x04 not a pickle");
    assert_eq!(ids(&r), vec!["AISEC-PICKLE-011"]);
    assert_eq!(r.findings[0].severity, Severity::Low);
    assert_eq!(r.consumed, 4);
}

#[test]
fn user_policy_changes_verdicts() {
    let mut p = bu("x");
    p.splice(0..0, b"\x80\x02cmypkg.models\nNet\n".iter().copied());
    p.extend_from_slice(b"\x85R.");
    assert_eq!(ids(&scan(&p)), vec!["AISEC-PICKLE-005"]);
    let pol = Policy::from_toml_str("[pickle]\nallow=[\"mypkg.*\"]").unwrap();
    let r = scan_pickle(&p, &Location::path("t"), &pol, &Limits::default());
    assert!(r.findings.is_empty());
    let pol = Policy::from_toml_str("[pickle]\ndeny=[\"mypkg.models.Net\"]").unwrap();
    let r = scan_pickle(&p, &Location::path("t"), &pol, &Limits::default());
    assert_eq!(r.findings[0].severity, Severity::Critical);
}

#[test]
fn rules_are_exported_with_taxonomy() {
    let rules = aisec_pickle::RULES;
    assert_eq!(rules.len(), 16);
    assert_eq!(aisec_core::rule::problems(rules), Vec::<String>::new());
    for r in rules {
        assert!(r.id.starts_with("AISEC-PICKLE-"));
        assert!(r.atlas.contains(&"AML.T0011.000") && r.atlas.contains(&"AML.T0010.003"));
        assert_eq!(r.owasp, &["LLM03"]);
    }
}

#[test]
fn joblib_polyglot_array_bytes_are_checked_as_plain_pickle() {
    // A NumpyArrayWrapper whose "array data" (8 bytes of i1) is
    // `cos\nsystem\n`-style opcodes under plain pickle.load.
    let mut p = b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(".to_vec();
    p.extend_from_slice(
        b"U\x05shapeK\x0c\x85U\x05orderU\x01CU\x05dtypecnumpy\ndtype\nU\x02i1\x89\x88\x87R",
    );
    p.extend_from_slice(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbub");
    p.extend_from_slice(b"0cos\nsystem\n"); // 12 bytes: POP + GLOBAL os.system
    p.extend_from_slice(b".");
    let r = scan(&p);
    assert_eq!(r.malformed, None, "{:?}", r.findings);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == "AISEC-PICKLE-002")
        .unwrap();
    assert!(
        f.evidence.starts_with("[if loaded with pickle.load]"),
        "{}",
        f.evidence
    );
    // joblib semantics alone see no code
    assert!(r
        .findings
        .iter()
        .all(|f| f.evidence.starts_with("[if loaded") || f.severity < Severity::High));
}

#[test]
fn file_loaders_on_bytesio_payloads_are_analysed() {
    let inner = b"cos\nsystem\n(S'id'\ntR.";
    let mut p = b"\x80\x03ctorch\nload\ncio\nBytesIO\nC".to_vec();
    p.push(inner.len() as u8);
    p.extend_from_slice(inner);
    p.extend_from_slice(b"\x85R\x85R.");
    let r = scan(&p);
    assert!(ids(&r).contains(&"AISEC-PICKLE-004"));
    assert!(
        r.findings
            .iter()
            .any(|f| f.evidence.starts_with("[nested pickle] os.system('id')")),
        "{:?}",
        r.findings
    );
    // a file name is not analysed as a pickle
    let r = scan(b"\x80\x03ctorch\nload\nX\x05\x00\x00\x00x.pth\x85R.");
    assert_eq!(ids(&r), vec!["AISEC-PICKLE-004"]);
}

#[test]
fn repeated_memoised_loader_calls_stay_cheap() {
    // pickle.loads(<1 MB payload>) stored in the memo and re-called 200 000 times
    let mut inner = b"\x80\x04B".to_vec();
    inner.extend_from_slice(&(1u32 << 20).to_le_bytes());
    inner.extend(std::iter::repeat_n(b'A', 1 << 20));
    inner.push(b'.');
    let mut p = b"\x80\x04cpickle\nloads\nq\x00B".to_vec();
    p.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    p.extend_from_slice(&inner);
    p.extend_from_slice(b"\x85q\x01R0");
    for _ in 0..200_000 {
        p.extend_from_slice(b"h\x00h\x01R0");
    }
    p.extend_from_slice(b"N.");
    let t = std::time::Instant::now();
    let r = scan(&p);
    assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    assert_eq!(ids(&r), vec!["AISEC-PICKLE-004"], "{:?}", r.findings);
}

/// xorshift64*: reproducible bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

/// Every prefix verdict must hold for the whole stream (and for any other
/// stream of that length with the same first bytes); an undecided one
/// must ask for more bytes than it had and no more than the stream holds.
fn check_prefixes(data: &[u8], rng: &mut Rng) -> (usize, usize) {
    use aisec_pickle::{looks_like_pickle_prefix, PrefixSniff};
    let whole = looks_like_pickle(data);
    let total = data.len() as u64;
    let mut cuts: Vec<usize> = (0..data.len().min(96)).collect();
    cuts.extend((96..data.len()).step_by(97));
    cuts.push(data.len());
    let (mut decided, mut undecided) = (0, 0);
    for k in cuts {
        let v = looks_like_pickle_prefix(&data[..k], total);
        match v {
            PrefixSniff::Pickle | PrefixSniff::NotPickle => {
                decided += 1;
                let p = v == PrefixSniff::Pickle;
                assert_eq!(p, whole, "cut {k} of {:?}", &data[..data.len().min(32)]);
                // Another stream with these first bytes gets the same verdict.
                let mut other = data[..k].to_vec();
                other.extend(rng.bytes(data.len() - k));
                assert_eq!(looks_like_pickle(&other), p, "cut {k}, other tail");
            }
            PrefixSniff::Needs(n) => {
                undecided += 1;
                assert!(n > k as u64 && n <= total, "cut {k}: needs {n} of {total}");
            }
        }
    }
    (decided, undecided)
}

#[test]
fn prefix_sniff_agrees_with_the_whole_stream() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for e in std::fs::read_dir(dir).unwrap() {
        let d = std::fs::read(e.unwrap().path()).unwrap();
        // Real pickles, cut short, and followed by other bytes.
        corpus.push(d[..d.len() / 2].to_vec());
        let mut longer = d.clone();
        longer.extend(rng.bytes(200));
        corpus.push(longer);
        corpus.push(d);
    }
    for (i, h) in [
        &b"\x80\x02N."[..],
        b"cos\nsystem\n(S'id'\ntR.",
        b"\x80\x04\x95\x00\x01\x00\x00\x00\x00\x00\x00",
        b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7f",
        b"B\x00\x10\x00\x00",
        b"B\xff\xff\xff\xff",
        b"\x8e\x00\x00\x00\x00\x01\x00\x00\x00",
        b"Ifoo",
        b"(((((((((",
        b"\x95\x10\x00\x00\x00\x00\x00\x00\x00",
    ]
    .iter()
    .enumerate()
    {
        for n in [0, 10, 300, 5000] {
            let mut d = h.to_vec();
            d.extend(rng.bytes(n + i));
            corpus.push(d);
        }
    }
    // Random blobs whose first byte is each opcode, and float32 shards.
    for first in 0..=255u8 {
        let mut d = rng.bytes(700);
        d[0] = first;
        corpus.push(d);
    }
    let (mut decided, mut undecided) = (0, 0);
    for d in &corpus {
        let (a, b) = check_prefixes(d, &mut rng);
        decided += a;
        undecided += b;
    }
    assert!(decided > 0 && undecided > 0, "{decided} {undecided}");
}
