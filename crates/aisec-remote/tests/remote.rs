//! Remote scans against loopback servers started here: the hub-shaped
//! server of `aisec_remote::hubserver` and a real S3 implementation
//! (`s3s` + `s3s-fs`), both serving the scan fixtures. A remote scan must
//! equal the local scan of the same files, finding for finding.

#![allow(clippy::unwrap_used)] // Tests may unwrap.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aisec_remote::{Listing, ObjectScan, Remote, RemoteOptions, S3Options, Source};
use aisec_scan::Scanner;

/// The fixture sets, as repos `fixtures/{pickle,formats,archive}`.
const SETS: &[(&str, &str)] = &[
    ("pickle", "../aisec-pickle/tests/fixtures"),
    ("formats", "../aisec-formats/tests/fixtures"),
    ("archive", "../aisec-archive/tests/fixtures"),
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

/// A pickle that calls `os.system` (protocol 2).
const EVIL_PKL: &[u8] = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
/// A benign pickle: an empty dict.
const SAFE_PKL: &[u8] = b"\x80\x02}q\x00.";

/// A `torch.save`-shaped zip: `archive/data.pkl` and `n` stored storages of
/// `each` bytes (64-byte aligned data, as torch writes).
fn torch_zip(pkl: &[u8], n: usize, each: usize) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .with_alignment(64);
    w.start_file("archive/data.pkl", o).unwrap();
    w.write_all(pkl).unwrap();
    w.start_file("archive/byteorder", o).unwrap();
    w.write_all(b"little").unwrap();
    for i in 0..n {
        w.start_file(format!("archive/data/{i}"), o).unwrap();
        w.write_all(&vec![(i % 251) as u8; each]).unwrap();
    }
    w.start_file("archive/version", o).unwrap();
    w.write_all(b"3\n").unwrap();
    w.finish().unwrap().into_inner()
}

fn safetensors(n: usize) -> Vec<u8> {
    let h = format!(r#"{{"w":{{"dtype":"U8","shape":[{n}],"data_offsets":[0,{n}]}}}}"#);
    let mut v = (h.len() as u64).to_le_bytes().to_vec();
    v.extend(h.as_bytes());
    v.resize(v.len() + n, 3);
    v
}

/// The hub root: the fixture sets plus `big/checkpoints` of generated
/// multi-MiB files.
fn hub_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, dir) in SETS {
        copy_dir(&here.join(dir), &root.path().join("fixtures").join(name));
    }
    let big = root.path().join("big/checkpoints");
    std::fs::create_dir_all(&big).unwrap();
    std::fs::write(
        big.join("pytorch_model.bin"),
        torch_zip(SAFE_PKL, 16, 1 << 20),
    )
    .unwrap();
    std::fs::write(big.join("evil.pt"), torch_zip(EVIL_PKL, 16, 1 << 20)).unwrap();
    std::fs::write(big.join("model.safetensors"), safetensors(16 << 20)).unwrap();
    std::fs::write(
        big.join("config.json"),
        br#"{"model_type":"gpt2","auto_map":{"AutoModel":"modeling_x.Model"}}"#,
    )
    .unwrap();
    std::fs::write(big.join("modeling_x.py"), b"import os\nos.system('id')\n").unwrap();
    unknown_repo(&root.path().join("big/unknown"));
    root
}

/// `n` bytes of text: `start` then repeated `line`.
fn text(start: &str, line: &str, n: usize) -> Vec<u8> {
    let mut v = start.as_bytes().to_vec();
    while v.len() < n {
        v.extend(line.as_bytes());
    }
    v.truncate(n);
    v
}

/// Large files of unknown format, and large files that only look like it:
/// the sniff plan reads the first kind by their first bytes, tail and HDF5
/// probes only, and must read the second kind whole.
fn unknown_repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let w = |name: &str, b: &[u8]| std::fs::write(dir.join(name), b).unwrap();
    // Sniffed: JSON, a vocabulary, BPE merges.
    let mut tok = text(
        r#"{"version":"1.0","model":{"type":"BPE","vocab":{"#,
        r#""tok":1,"#,
        3 << 20,
    );
    tok.extend(br#""end":0}}}"#);
    w("tokenizer.json", &tok);
    w("vocab.txt", &text("[PAD]\n[UNK]\n", "word\n", 2 << 20));
    w("merges.txt", &text("#version: 0.2\n", "t h\n", 2 << 20));
    // Text whose first byte could open a pickle: the pickle sniff stops
    // at its second opcode (BINGET of a memo key never put), so sniffed.
    w("notes.txt", &text("hello\n", "more text\n", 2 << 20));
    // Read whole: a protocol 0 pickle, then text.
    w(
        "notes.pkl.txt",
        &text("(lp0\nI1\na.", "more text\n", 1 << 20),
    );
    // Read whole: JSON-looking bytes with a zip (and its pickle) appended:
    // the scanner finds the zip by its end record.
    let mut pre = text("{", " ", 1 << 20);
    pre.extend(torch_zip(EVIL_PKL, 1, 64));
    w("prepended.bin", &pre);
    // Read whole: an HDF5 signature after a 1 MiB user block.
    let mut h5 = text("{", " ", 1 << 20);
    h5.extend(b"\x89HDF\r\n\x1a\n");
    h5.resize(h5.len() + (1 << 20), 0);
    w("weights.dat", &h5);
    // Read whole: a config judged by content, with a large module.
    let mut cfg = text(
        r#"{"auto_map":{"AutoModel":"modeling_big.Model"},"pad":""#,
        "x",
        2 << 20,
    );
    cfg.extend(br#""}"#);
    w("config.json", &cfg);
    w(
        "modeling_big.py",
        &text("import os\nos.system('id')\n", "# padding\n", 200 << 10),
    );
}

fn opts() -> RemoteOptions {
    RemoteOptions {
        // Every fixture goes through its format's plan, however small.
        whole_below: 0,
        backoff: Duration::from_millis(10),
        hf_token: None,
        ..RemoteOptions::default()
    }
}

/// A finding as JSON with the file prefix (local or remote) removed.
fn norm(f: &aisec_core::Finding, prefix: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(f).unwrap();
    let strip = |s: &str| s.replace(prefix, "");
    v["location"]["path"] = strip(&f.location.path).into();
    v["evidence"] = strip(&f.evidence).into();
    v
}

/// Local scan of every file below `dir`, by key.
fn local(dir: &Path) -> Vec<(String, String, Vec<serde_json::Value>, bool)> {
    let scanner = Scanner::default();
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                files.push(p)
            }
        }
    }
    files.sort();
    let prefix = format!("{}/", dir.display());
    let mut out: Vec<_> = files
        .iter()
        .map(|p| {
            let r = scanner.scan_file(p, &p.display().to_string());
            let key = p.strip_prefix(dir).unwrap().display().to_string();
            let f = r.findings.iter().map(|f| norm(f, &prefix)).collect();
            (key, r.format.name().to_string(), f, r.error.is_some())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn remote_norm(
    l: &Listing,
    scans: &[ObjectScan],
) -> Vec<(String, String, Vec<serde_json::Value>, bool)> {
    let mut out: Vec<_> = l
        .objects
        .iter()
        .zip(scans)
        .map(|(o, s)| {
            assert_eq!(o.name, s.object);
            let prefix = s.object.strip_suffix(&o.key).unwrap().to_string();
            let f = s.findings.iter().map(|f| norm(f, &prefix)).collect();
            (o.key.clone(), s.format.clone(), f, s.error.is_some())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn assert_same(
    what: &str,
    local: &[(String, String, Vec<serde_json::Value>, bool)],
    remote: &[(String, String, Vec<serde_json::Value>, bool)],
) {
    assert_eq!(local.len(), remote.len(), "{what}: object count");
    for (l, r) in local.iter().zip(remote) {
        assert_eq!(
            l, r,
            "{what}: {} differs between local and remote scans",
            l.0
        );
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn hub_scan_equals_local_scan_over_the_fixtures() {
    let root = hub_root();
    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve(root.path(), true))
        .unwrap();
    let remote = Remote::new(RemoteOptions {
        hf_endpoint: hub.url.clone(),
        ..opts()
    })
    .unwrap();
    let scanner = Scanner::default();
    let mut table =
        String::from("| object | size | bytes read | share | plan |\n|---|---:|---:|---:|---|\n");
    let mut n_findings = 0;
    for repo in [
        "fixtures/pickle",
        "fixtures/formats",
        "fixtures/archive",
        "big/checkpoints",
        "big/unknown",
    ] {
        let l = remote
            .list(&Source::parse(&format!("hf://{repo}")).unwrap())
            .unwrap();
        assert!(l.revision.is_some());
        let scans = remote.scan(&scanner, &l, &|_| true).unwrap();
        let r = remote_norm(&l, &scans);
        assert_same(repo, &local(&root.path().join(repo)), &r);
        for s in &scans {
            n_findings += s.findings.len();
            assert!(
                s.object.starts_with(&format!("hf://{repo}@")),
                "{}",
                s.object
            );
            assert!(
                s.bytes_read <= s.size + (64 << 10),
                "{}: read {} of {}",
                s.object,
                s.bytes_read,
                s.size
            );
            table.push_str(&format!(
                "| {} | {} | {} | {:.2}% | {} |\n",
                s.object
                    .split_once('@')
                    .map(|(r, p)| format!("{r}/{}", p.split_once('/').map_or("", |x| x.1)))
                    .unwrap_or_default()
                    .trim_start_matches("hf://"),
                s.size,
                s.bytes_read,
                100.0 * s.bytes_read as f64 / s.size.max(1) as f64,
                s.plan
            ));
        }
    }
    assert!(
        n_findings > 50,
        "the fixtures carry many findings ({n_findings})"
    );
    // The 429 was answered once and waited out.
    assert_eq!(hub.stats.throttled.load(Ordering::Relaxed), 1);
    if let Ok(out) = std::env::var("AISEC_REMOTE_TABLE") {
        std::fs::write(out, table).unwrap();
    }
}

#[test]
fn big_checkpoints_travel_as_a_fraction_of_their_size() {
    let root = hub_root();
    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve(root.path(), false))
        .unwrap();
    let remote = Remote::new(RemoteOptions {
        hf_endpoint: hub.url.clone(),
        ..RemoteOptions::default()
    })
    .unwrap();
    let l = remote
        .list(&Source::parse("hf://big/checkpoints@main").unwrap())
        .unwrap();
    let scans = remote.scan(&Scanner::default(), &l, &|_| true).unwrap();
    let by = |k: &str| scans.iter().find(|s| s.object.ends_with(k)).unwrap();
    let (evil, good, st) = (
        by("/evil.pt"),
        by("/pytorch_model.bin"),
        by("/model.safetensors"),
    );
    assert_eq!(good.plan, "zip");
    assert_eq!(st.plan, "safetensors");
    for s in [evil, good, st] {
        assert!(
            s.bytes_read * 100 < s.size,
            "{}: {} of {}",
            s.object,
            s.bytes_read,
            s.size
        );
    }
    assert!(evil
        .findings
        .iter()
        .any(|f| f.evidence.contains("os.system")
            || f.evidence.contains("system")
                && f.location.member.as_deref() == Some("archive/data.pkl")));
    assert!(
        good.findings
            .iter()
            .all(|f| f.severity < aisec_core::Severity::High),
        "{:?}",
        good.findings
    );
    // The server's count of file bytes sent (listings are not counted)
    // agrees with the client's.
    let client: u64 = scans.iter().map(|s| s.bytes_read).sum();
    assert_eq!(client, hub.stats.bytes.load(Ordering::Relaxed));
    // The config's auto_map module was read beside it, in the image.
    let cfg = by("/config.json");
    assert!(
        cfg.findings.iter().any(|f| f.rule_id == "AISEC-SCAN-006"),
        "{:?}",
        cfg.findings
    );
}

#[test]
fn large_unknown_files_are_sniffed_not_read_whole() {
    let root = hub_root();
    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve(root.path(), false))
        .unwrap();
    let remote = Remote::new(RemoteOptions {
        hf_endpoint: hub.url.clone(),
        ..RemoteOptions::default()
    })
    .unwrap();
    let l = remote
        .list(&Source::parse("hf://big/unknown").unwrap())
        .unwrap();
    let scans = remote.scan(&Scanner::default(), &l, &|_| true).unwrap();
    assert_same(
        "big/unknown",
        &local(&root.path().join("big/unknown")),
        &remote_norm(&l, &scans),
    );
    let by = |k: &str| scans.iter().find(|s| s.object.ends_with(k)).unwrap();
    for k in ["/tokenizer.json", "/vocab.txt", "/merges.txt", "/notes.txt"] {
        let s = by(k);
        assert_eq!(s.plan, "sniff", "{k}");
        assert_eq!(s.format, "unknown", "{k}");
        // 16 KiB head, 64 KiB + 22 tail, 8-byte HDF5 probes.
        assert!(s.bytes_read < 90 << 10, "{k}: {}", s.bytes_read);
        assert!(
            s.bytes_read * 20 < s.size,
            "{k}: {} of {}",
            s.bytes_read,
            s.size
        );
    }
    for k in [
        "/notes.pkl.txt",
        "/prepended.bin",
        "/weights.dat",
        "/config.json",
        "/modeling_big.py",
    ] {
        let s = by(k);
        assert_eq!(s.plan, "whole", "{k}");
        // The whole object, plus at most the sniff's small probes read twice.
        assert!(
            s.bytes_read >= s.size && s.bytes_read <= s.size + 1024,
            "{k}: {} of {}",
            s.bytes_read,
            s.size
        );
    }
    assert_eq!(by("/prepended.bin").format, "zip");
    assert_eq!(by("/weights.dat").format, "hdf5");
    assert!(by("/config.json")
        .findings
        .iter()
        .any(|f| f.rule_id == "AISEC-SCAN-006"));
    let client: u64 = scans.iter().map(|s| s.bytes_read).sum();
    assert_eq!(client, hub.stats.bytes.load(Ordering::Relaxed));
}

/// A Keras HDF5 fixture grown into a large model: each contiguous
/// dataset's raw data (v1 headers: Data Layout message v3, class 1, found
/// by its bytes) moves to `sizes[i]` appended bytes of weights, and the
/// superblock's end-of-file address follows. Nothing big is committed.
fn grow_h5(fixture: &str, sizes: &[usize]) -> Vec<u8> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = std::fs::read(here.join(fixture)).unwrap();
    let base = (0..d.len())
        .step_by(512)
        .find(|&o| d[o..].starts_with(b"\x89HDF\r\n\x1a\n"))
        .unwrap();
    let u64at = |d: &[u8], i: usize| u64::from_le_bytes(d[i..i + 8].try_into().unwrap());
    let layouts: Vec<usize> = (0..d.len() - 26)
        .filter(|&i| {
            d[i..i + 2] == [8, 0]
                && d[i + 8] == 3
                && d[i + 9] == 1
                && u64at(&d, i + 18) > 0
                && base as u64 + u64at(&d, i + 10) + u64at(&d, i + 18) <= d.len() as u64
        })
        .collect();
    assert!(layouts.len() >= sizes.len(), "{fixture}: {layouts:?}");
    let mut out = d.clone();
    for (&i, &n) in layouts.iter().zip(sizes) {
        let at = (out.len() - base) as u64;
        out[i + 10..i + 18].copy_from_slice(&at.to_le_bytes());
        out[i + 18..i + 26].copy_from_slice(&(n as u64).to_le_bytes());
        // float32 weights in [-1, 1)
        let mut x = 0x2545_f491_4f6c_dd1du64 ^ n as u64;
        out.extend((0..n / 4).flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 23) as f32 - 1.0).to_le_bytes()
        }));
    }
    let eof = (out.len() - base) as u64;
    out[base + 40..base + 48].copy_from_slice(&eof.to_le_bytes());
    out
}

#[test]
#[allow(clippy::print_stdout)] // The bytes read are the result: shown with --nocapture.
fn large_keras_h5_files_travel_as_their_metadata() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("big/keras");
    std::fs::create_dir_all(&dir).unwrap();
    let f = "../aisec-formats/tests/fixtures/";
    for (name, fixture, sizes) in [
        (
            "tf_model.h5",
            format!("{f}keras2_lambda.h5"),
            vec![24 << 20, 8 << 20],
        ),
        (
            "benign.h5",
            format!("{f}keras2_benign.h5"),
            vec![24 << 20, 8 << 20],
        ),
        (
            "userblock.h5",
            format!("{f}keras2_lambda_userblock.h5"),
            vec![24 << 20, 8 << 20],
        ),
        // 24 layers: 48 contiguous datasets over 100 KiB of metadata
        // (scripts/fixtures/gen_h5_layers_fixture.py), 640 KiB each.
        (
            "layers/model.h5",
            "tests/fixtures/keras2_layers.h5".into(),
            vec![640 << 10; 48],
        ),
    ] {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, grow_h5(&fixture, &sizes)).unwrap();
    }
    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve(root.path(), false))
        .unwrap();
    let remote = Remote::new(RemoteOptions {
        hf_endpoint: hub.url.clone(),
        ..RemoteOptions::default()
    })
    .unwrap();
    let l = remote
        .list(&Source::parse("hf://big/keras").unwrap())
        .unwrap();
    let scans = remote.scan(&Scanner::default(), &l, &|_| true).unwrap();
    assert_same("big/keras", &local(&dir), &remote_norm(&l, &scans));
    for s in &scans {
        println!(
            "{}: {} of {} bytes ({:.3} %), plan {}",
            s.object,
            s.bytes_read,
            s.size,
            100.0 * s.bytes_read as f64 / s.size as f64,
            s.plan
        );
        assert_eq!(s.plan, "hdf5", "{}", s.object);
        assert_eq!(s.format, "hdf5", "{}", s.object);
        assert!(s.error.is_none(), "{:?}", s.error);
        assert!(s.size > 30 << 20);
        // The metadata (12 KiB fixtures, and 100 KiB with the layers'
        // original small weights between), in 16 KiB and 4 KiB reads.
        assert!(s.bytes_read < 160 << 10, "{}: {}", s.object, s.bytes_read);
        assert!(s.bytes_read * 200 < s.size, "{}", s.object);
    }
    let by = |k: &str| scans.iter().find(|s| s.object.ends_with(k)).unwrap();
    for k in ["/tf_model.h5", "/userblock.h5", "/layers/model.h5"] {
        assert!(
            by(k)
                .findings
                .iter()
                .any(|f| f.rule_id == "AISEC-KERAS-001"),
            "{k}: {:?}",
            by(k).findings
        );
    }
    assert!(by("/benign.h5").findings.is_empty());
    let client: u64 = scans.iter().map(|s| s.bytes_read).sum();
    assert_eq!(client, hub.stats.bytes.load(Ordering::Relaxed));
    println!(
        "{} requests in all (listing included)",
        hub.stats.requests.load(Ordering::Relaxed)
    );
}

/// An ONNX fixture with initializers of `sizes` bytes (float32 weights in
/// [-1, 1), each followed by a 256-byte bias) added to its graph, before
/// its nodes or after them. Nothing big is committed.
fn grow_onnx(fixture: &str, sizes: &[usize], before: bool) -> Vec<u8> {
    use aisec_core::protobuf::{fields, put_bytes_field, put_int_field, Value};
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = std::fs::read(here.join("../aisec-formats/tests/fixtures").join(fixture)).unwrap();
    let tensor = |name: &str, n: usize| {
        let mut t = Vec::new();
        put_int_field(&mut t, 1, (n / 4) as i64);
        put_int_field(&mut t, 2, 1);
        put_bytes_field(&mut t, 8, name.as_bytes());
        let mut x = 0x2545_f491_4f6c_dd1du64 ^ n as u64;
        let raw: Vec<u8> = (0..n / 4)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 40) as f32 / (1u64 << 23) as f32 - 1.0).to_le_bytes()
            })
            .collect();
        put_bytes_field(&mut t, 9, &raw);
        let mut f = Vec::new();
        put_bytes_field(&mut f, 5, &t);
        f
    };
    let mut out = Vec::new();
    for f in fields(&d).with_raw() {
        let (n, v, raw) = f.unwrap();
        match (n, v) {
            (7, Value::Bytes(g)) => {
                let mut inits = Vec::new();
                for (i, &n) in sizes.iter().enumerate() {
                    inits.extend(tensor(&format!("layer{i}.weight"), n));
                    inits.extend(tensor(&format!("layer{i}.bias"), 256));
                }
                let g = if before {
                    [inits, g.to_vec()].concat()
                } else {
                    [g.to_vec(), inits].concat()
                };
                put_bytes_field(&mut out, 7, &g);
            }
            _ => out.extend(raw),
        }
    }
    out
}

#[test]
#[allow(clippy::print_stdout)] // The bytes read are the result: shown with --nocapture.
fn large_onnx_files_travel_as_their_metadata() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("big/onnx");
    std::fs::create_dir_all(&dir).unwrap();
    // 32 MiB of initializers: 6 of 4 MiB and 8 of 1 MiB, with biases.
    let sizes: Vec<usize> = [vec![4 << 20; 6], vec![1 << 20; 8]].concat();
    let fixtures = [
        "onnx_benign.onnx",
        "onnx_custom_domain.onnx",
        "onnx_external_traversal.onnx",
        "onnx_subgraph_custom.onnx",
    ];
    let mut grown = Vec::new();
    for f in fixtures {
        for before in [true, false] {
            let name = format!("{}_{}.onnx", f.trim_end_matches(".onnx"), before);
            std::fs::write(dir.join(&name), grow_onnx(f, &sizes, before)).unwrap();
            grown.push(name);
        }
    }
    // Hostile: truncated in a tensor, a length past its parent inside
    // the graph, a varint of ten 0xff bytes after the metadata.
    let hostile = dir.join("hostile");
    std::fs::create_dir_all(&hostile).unwrap();
    let mut d = grow_onnx("onnx_custom_domain.onnx", &[8 << 20], true);
    let n = d.len();
    std::fs::write(hostile.join("truncated.onnx"), &d[..n - (4 << 20)]).unwrap();
    let at = d.windows(12).position(|w| w == b"layer0.weigh").unwrap() - 1;
    d[at] = 0x7f; // the tensor name's length, now past its parent
    std::fs::write(hostile.join("past_parent.onnx"), &d).unwrap();
    let mut d = grow_onnx("onnx_benign.onnx", &[8 << 20], false);
    d.extend([0x08; 1]);
    d.extend([0xff; 10]);
    std::fs::write(hostile.join("huge_varint.onnx"), &d).unwrap();

    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve(root.path(), false))
        .unwrap();
    let remote = Remote::new(RemoteOptions {
        hf_endpoint: hub.url.clone(),
        ..RemoteOptions::default()
    })
    .unwrap();
    let l = remote
        .list(&Source::parse("hf://big/onnx").unwrap())
        .unwrap();
    let scans = remote.scan(&Scanner::default(), &l, &|_| true).unwrap();
    assert_same("big/onnx", &local(&dir), &remote_norm(&l, &scans));
    for s in &scans {
        println!(
            "{}: {} of {} bytes ({:.3} %), plan {}, {} finding(s)",
            s.object,
            s.bytes_read,
            s.size,
            100.0 * s.bytes_read as f64 / s.size as f64,
            s.plan,
            s.findings.len()
        );
        assert!(s.error.is_none(), "{:?}", s.error);
        if s.object.contains("/hostile/") {
            continue;
        }
        assert_eq!(s.plan, "onnx", "{}", s.object);
        assert_eq!(s.format, "onnx", "{}", s.object);
        assert!(s.size > 32 << 20);
        // The 16 KiB head, a 16 KiB block from each of the 14 large
        // tensors' successors, and the HDF5 probes.
        assert!(s.bytes_read < 300 << 10, "{}: {}", s.object, s.bytes_read);
        assert!(s.bytes_read * 100 < s.size, "{}", s.object);
    }
    let by = |k: &str| scans.iter().find(|s| s.object.ends_with(k)).unwrap();
    for k in ["custom_domain", "external_traversal", "subgraph_custom"] {
        for before in [true, false] {
            let s = by(&format!("onnx_{k}_{before}.onnx"));
            assert!(!s.findings.is_empty(), "{}", s.object);
        }
    }
    // The past-parent file is read by its metadata; the truncated one is
    // not ONNX to detection (the graph runs past the end), nor anything
    // else: sniffed (the scan says `unknown`, as locally).
    assert_eq!(by("hostile/past_parent.onnx").plan, "onnx");
    assert!(by("hostile/past_parent.onnx").bytes_read < 64 << 10);
    let t = by("hostile/truncated.onnx");
    assert_eq!((t.plan.as_str(), t.format.as_str()), ("sniff", "unknown"));
    assert!(t.bytes_read < 128 << 10, "{}", t.bytes_read);
    let client: u64 = scans.iter().map(|s| s.bytes_read).sum();
    assert_eq!(client, hub.stats.bytes.load(Ordering::Relaxed));
    println!(
        "{} requests in all (listing included)",
        hub.stats.requests.load(Ordering::Relaxed)
    );
}

/// A TensorFlow `.pb` fixture (SavedModel or frozen GraphDef) with `Const`
/// nodes of `sizes` bytes of float32 tensor content added before the
/// nodes of its (first meta graph's) graph.
fn grow_pb(fixture: &str, sizes: &[usize]) -> Vec<u8> {
    use aisec_core::protobuf::{fields, put_bytes_field as put, Value};
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = std::fs::read(here.join("../aisec-formats/tests/fixtures").join(fixture)).unwrap();
    let mut consts = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let content: Vec<u8> = (0..n / 4)
            .flat_map(|k| ((k % 1000) as f32 / 1000.0).to_le_bytes())
            .collect();
        let mut tensor = Vec::new();
        put(&mut tensor, 4, &content);
        let mut value = Vec::new();
        put(&mut value, 8, &tensor);
        let mut attr = Vec::new();
        put(&mut attr, 1, b"value");
        put(&mut attr, 2, &value);
        let mut node = Vec::new();
        put(&mut node, 1, format!("dense_{i}/kernel").as_bytes());
        put(&mut node, 2, b"Const");
        put(&mut node, 5, &attr);
        put(&mut consts, 1, &node);
    }
    if !aisec_formats::savedmodel::looks_like_saved_model(&d) {
        return [consts, d].concat();
    }
    let mut out = Vec::new();
    let mut first = true;
    for f in fields(&d).with_raw() {
        let (n, v, raw) = f.unwrap();
        match (n, v) {
            (2, Value::Bytes(mg)) if first => {
                first = false;
                let mut m = Vec::new();
                for g in fields(mg).with_raw() {
                    let (k, w, raw) = g.unwrap();
                    match (k, w) {
                        (2, Value::Bytes(gd)) => put(&mut m, 2, &[&consts[..], gd].concat()),
                        _ => m.extend(raw),
                    }
                }
                put(&mut out, 2, &m);
            }
            _ => out.extend(raw),
        }
    }
    out
}

#[test]
#[allow(clippy::print_stdout)] // The bytes read are the result: shown with --nocapture.
fn large_tf_pb_files_travel_as_their_graph() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("big/tf");
    std::fs::create_dir_all(&dir).unwrap();
    let sizes: Vec<usize> = [vec![4 << 20; 6], vec![1 << 20; 8]].concat();
    for f in [
        "tf_benign_saved_model.pb",
        "tf_frozen_graph.pb",
        "tf_pyfunc_saved_model.pb",
        "tf_readfile_saved_model.pb",
    ] {
        let sub = dir.join(f.trim_end_matches(".pb"));
        std::fs::create_dir_all(&sub).unwrap();
        let name = if f.contains("saved_model") {
            "saved_model.pb"
        } else {
            "frozen_graph.pb"
        };
        std::fs::write(sub.join(name), grow_pb(f, &sizes)).unwrap();
    }
    // Truncated in a constant: the walk stops at the cut.
    let d = grow_pb("tf_pyfunc_saved_model.pb", &[8 << 20]);
    std::fs::write(dir.join("truncated.pb"), &d[..d.len() - (4 << 20)]).unwrap();
    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve(root.path(), false))
        .unwrap();
    let remote = Remote::new(RemoteOptions {
        hf_endpoint: hub.url.clone(),
        ..RemoteOptions::default()
    })
    .unwrap();
    let l = remote.list(&Source::parse("hf://big/tf").unwrap()).unwrap();
    let scans = remote.scan(&Scanner::default(), &l, &|_| true).unwrap();
    assert_same("big/tf", &local(&dir), &remote_norm(&l, &scans));
    for s in &scans {
        println!(
            "{}: {} of {} bytes ({:.3} %), plan {}, format {}, {} finding(s)",
            s.object,
            s.bytes_read,
            s.size,
            100.0 * s.bytes_read as f64 / s.size as f64,
            s.plan,
            s.format,
            s.findings.len()
        );
        assert!(s.error.is_none(), "{:?}", s.error);
        assert_eq!(s.plan, "tf", "{}", s.object);
        assert!(s.bytes_read < 300 << 10, "{}: {}", s.object, s.bytes_read);
        assert!(s.bytes_read * 20 < s.size, "{}", s.object);
    }
    let by = |k: &str| scans.iter().find(|s| s.object.ends_with(k)).unwrap();
    assert_eq!(by("tf_frozen_graph/frozen_graph.pb").format, "tf-graphdef");
    for k in ["tf_pyfunc_saved_model", "tf_readfile_saved_model"] {
        let s = by(&format!("{k}/saved_model.pb"));
        assert_eq!(s.format, "tf-savedmodel");
        assert!(!s.findings.is_empty(), "{}", s.object);
    }
    let client: u64 = scans.iter().map(|s| s.bytes_read).sum();
    assert_eq!(client, hub.stats.bytes.load(Ordering::Relaxed));
}

#[test]
fn requests_in_flight_stay_within_the_per_host_limit() {
    let root = hub_root();
    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve_with(
            root.path(),
            false,
            "127.0.0.1:0",
            Duration::from_millis(30),
        ))
        .unwrap();
    for limit in [1usize, 3] {
        hub.stats.max_in_flight.store(0, Ordering::SeqCst);
        let remote = Remote::new(RemoteOptions {
            hf_endpoint: hub.url.clone(),
            per_host: limit,
            ..opts()
        })
        .unwrap();
        let l = remote
            .list(&Source::parse("hf://fixtures/pickle").unwrap())
            .unwrap();
        assert!(l.objects.len() > 10);
        remote.scan(&Scanner::default(), &l, &|_| true).unwrap();
        let most = hub.stats.max_in_flight.load(Ordering::SeqCst);
        // Never above the limit; with 30 ms per request and many objects,
        // the limit is reached.
        assert_eq!(most, limit as u64, "per_host {limit}");
    }
}

#[test]
fn a_bound_on_bytes_per_object_is_an_error_not_a_partial_scan() {
    let root = hub_root();
    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve(root.path(), false))
        .unwrap();
    let remote = Remote::new(RemoteOptions {
        hf_endpoint: hub.url.clone(),
        max_object_bytes: 200_000,
        ..RemoteOptions::default()
    })
    .unwrap();
    let l = remote
        .list(&Source::parse("hf://big/checkpoints").unwrap())
        .unwrap();
    let scans = remote.scan(&Scanner::default(), &l, &|_| true).unwrap();
    // A 16 MiB torch zip needs a few KiB; a whole-object format over the bound fails.
    let evil = scans
        .iter()
        .find(|s| s.object.ends_with("/evil.pt"))
        .unwrap();
    assert!(evil.error.is_none() && !evil.findings.is_empty());
    assert!(scans.iter().all(|s| s.bytes_read <= 200_000 + (64 << 10)));
    std::fs::write(
        root.path().join("big/checkpoints/blob.pkl"),
        vec![b'N'; 1 << 20],
    )
    .unwrap();
    let l = remote
        .list(&Source::parse("hf://big/checkpoints").unwrap())
        .unwrap();
    let scans = remote.scan(&Scanner::default(), &l, &|_| true).unwrap();
    let blob = scans
        .iter()
        .find(|s| s.object.ends_with("/blob.pkl"))
        .unwrap();
    assert!(
        blob.error.as_deref().unwrap().contains("200000-byte bound"),
        "{:?}",
        blob.error
    );
    assert!(blob.findings.is_empty());
}

#[test]
fn a_missing_repo_is_an_error() {
    let root = hub_root();
    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve(root.path(), false))
        .unwrap();
    let remote = Remote::new(RemoteOptions {
        hf_endpoint: hub.url.clone(),
        ..opts()
    })
    .unwrap();
    let e = remote
        .list(&Source::parse("hf://no/such").unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
}

#[test]
fn plain_urls_are_read_with_ranges() {
    let root = hub_root();
    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve(root.path(), false))
        .unwrap();
    let remote = Remote::new(opts()).unwrap();
    let scanner = Scanner::default();
    for key in [
        "big/checkpoints/evil.pt",
        "fixtures/pickle/benign_p2.pkl",
        "fixtures/formats/gguf_ssti.gguf",
    ] {
        let url = format!("{}/files/{key}", hub.url);
        let l = remote.list(&Source::parse(&url).unwrap()).unwrap();
        assert_eq!(l.objects.len(), 1);
        assert!(l.objects[0].version.is_some(), "ETag kept");
        let scans = remote.scan(&scanner, &l, &|_| true).unwrap();
        let p = root.path().join(key);
        let loc = scanner.scan_file(&p, &p.display().to_string());
        let lp = format!("{}", p.display());
        let a: Vec<_> = loc.findings.iter().map(|f| norm(f, &lp)).collect();
        let b: Vec<_> = scans[0].findings.iter().map(|f| norm(f, &url)).collect();
        assert_eq!(a, b, "{key}");
        assert!(scans[0].findings.iter().all(|f| f.location.path == url));
    }
}

#[test]
fn the_hub_token_goes_to_the_hub_only() {
    let root = hub_root();
    let rt = rt();
    let hub = rt
        .block_on(aisec_remote::hubserver::serve(root.path(), false))
        .unwrap();
    // Another host: 127.0.0.2 is loopback too, a different host to a client.
    let other = rt
        .block_on(aisec_remote::hubserver::serve_on(
            root.path(),
            false,
            "127.0.0.2:0",
        ))
        .unwrap();
    let remote = Remote::new(RemoteOptions {
        hf_endpoint: hub.url.clone(),
        hf_token: Some("hf_loopback_token".into()),
        ..opts()
    })
    .unwrap();
    let scanner = Scanner::default();
    let l = remote
        .list(&Source::parse("hf://fixtures/pickle").unwrap())
        .unwrap();
    remote.scan(&scanner, &l, &|_| true).unwrap();
    let url = format!("{}/files/big/checkpoints/evil.pt", other.url);
    assert!(url.starts_with("http://127.0.0.2:"));
    let l = remote.list(&Source::parse(&url).unwrap()).unwrap();
    let scans = remote.scan(&scanner, &l, &|_| true).unwrap();
    assert!(!scans[0].findings.is_empty());
    // Every hub request (listing and resolves) carried the token...
    let n = hub.stats.requests.load(Ordering::Relaxed);
    assert!(n > 10, "{n}");
    assert_eq!(hub.stats.with_token.load(Ordering::Relaxed), n);
    assert_eq!(
        *hub.stats.tokens.lock().unwrap(),
        vec!["hf_loopback_token".to_string()]
    );
    // ...and no request to the other host did.
    assert!(other.stats.requests.load(Ordering::Relaxed) >= 2);
    assert_eq!(other.stats.with_token.load(Ordering::Relaxed), 0);
    assert!(other.stats.tokens.lock().unwrap().is_empty());
}

/// Serves `root` (buckets are its folders) with s3s-fs on loopback.
fn s3_server(rt: &tokio::runtime::Runtime, root: &Path) -> String {
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single("AKTEST", "SECRETTEST"));
    let service = b.build().into_shared();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let http =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let svc = service.clone();
            let conn = http
                .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    format!("http://{addr}")
}

fn s3_opts(endpoint: String) -> RemoteOptions {
    RemoteOptions {
        s3: S3Options {
            endpoint: Some(endpoint),
            access_key_id: Some("AKTEST".into()),
            secret_access_key: Some("SECRETTEST".into()),
            region: Some("us-east-1".into()),
        },
        ..opts()
    }
}

#[test]
fn s3_scan_equals_local_scan_over_the_fixtures() {
    let root = hub_root();
    let rt = rt();
    // Bucket `models` holds the same tree.
    let s3root = tempfile::tempdir().unwrap();
    copy_dir(root.path(), &s3root.path().join("models"));
    let ep = s3_server(&rt, s3root.path());
    let remote = Remote::new(s3_opts(ep)).unwrap();
    let scanner = Scanner::default();
    for prefix in [
        "fixtures/pickle",
        "fixtures/formats",
        "fixtures/archive",
        "big/checkpoints",
        "big/unknown",
    ] {
        let l = remote
            .list(&Source::parse(&format!("s3://models/{prefix}")).unwrap())
            .unwrap();
        assert!(!l.objects.is_empty(), "{prefix}");
        assert!(
            l.objects.iter().all(|o| o.version.is_some()),
            "versions listed"
        );
        let scans = remote.scan(&scanner, &l, &|_| true).unwrap();
        for s in &scans {
            assert!(s.object.starts_with(&format!("s3://models/{prefix}/")));
        }
        assert_same(
            prefix,
            &local(&root.path().join(prefix)),
            &remote_norm(&l, &scans),
        );
        if prefix == "big/checkpoints" {
            let evil = scans
                .iter()
                .find(|s| s.object.ends_with("evil.pt"))
                .unwrap();
            assert!(evil.bytes_read * 100 < evil.size);
        }
    }
}

#[test]
fn s3_with_wrong_credentials_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("b")).unwrap();
    let rt = rt();
    let ep = s3_server(&rt, root.path());
    let mut o = s3_opts(ep);
    o.s3.secret_access_key = Some("wrong".into());
    o.retries = 0;
    let remote = Remote::new(o).unwrap();
    assert!(remote.list(&Source::parse("s3://b").unwrap()).is_err());
}

/// A loopback port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

#[test]
fn a_dead_endpoint_names_the_cause() {
    let port = closed_port();
    let fast = RemoteOptions {
        retries: 1,
        backoff: Duration::from_millis(5),
        connect_timeout: Duration::from_secs(2),
        ..opts()
    };
    let is_refused = |msg: &str| {
        let m = msg.to_ascii_lowercase();
        m.contains("connection refused") && m.contains(&port.to_string())
    };
    // The hub API.
    let remote = Remote::new(RemoteOptions {
        hf_endpoint: format!("http://127.0.0.1:{port}"),
        ..fast.clone()
    })
    .unwrap();
    let e = remote
        .list(&Source::parse("hf://org/model").unwrap())
        .unwrap_err()
        .to_string();
    assert!(is_refused(&e), "{e}");
    assert!(e.contains("gave up after 2 attempts"), "{e}");
    // A plain URL.
    let e = remote
        .list(&Source::parse(&format!("http://127.0.0.1:{port}/m.pt")).unwrap())
        .unwrap_err()
        .to_string();
    assert!(is_refused(&e), "{e}");
    // An S3-compatible store.
    let remote = Remote::new(RemoteOptions {
        retries: 1,
        ..s3_opts(format!("http://127.0.0.1:{port}"))
    })
    .unwrap();
    let e = remote
        .list(&Source::parse("s3://bucket/prefix").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.to_ascii_lowercase().contains("connection refused"), "{e}");
}
