//! `aisec scan` over remote sources, work lists and shards, `--state`, and
//! `aisec report merge`, against loopback servers started here (the
//! hub-shaped server of `aisec_remote::hubserver`, and s3s-fs).

use std::path::Path;

use crate::util::aisec;

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

/// A hub root with repos `fixtures/pickle`, `fixtures/formats`, `fixtures/archive`.
fn hub_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, dir) in [
        ("pickle", "../aisec-pickle/tests/fixtures"),
        ("formats", "../aisec-formats/tests/fixtures"),
        ("archive", "../aisec-archive/tests/fixtures"),
    ] {
        copy_dir(&here.join(dir), &root.path().join("fixtures").join(name));
    }
    root
}

struct Hub {
    _rt: tokio::runtime::Runtime,
    url: String,
}

fn hub(root: &Path) -> Hub {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let s = rt
        .block_on(aisec_remote::hubserver::serve(root, true))
        .unwrap();
    Hub {
        url: s.url,
        _rt: rt,
    }
}

/// Findings with their file prefix removed, as comparable JSON.
fn findings(report: &serde_json::Value, strip: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut s = f.to_string();
            for p in strip {
                s = s.replace(p, "");
            }
            s
        })
        .collect();
    v.sort();
    v
}

#[test]
fn hub_repo_scan_matches_the_local_scan() {
    let root = hub_root();
    let h = hub(root.path());
    let run = aisec(&[
        "scan",
        "hf://fixtures/formats",
        "--format",
        "json",
        "--no-progress",
    ])
    .env("HF_ENDPOINT", &h.url)
    .run();
    run.expect_code(1);
    let remote = run.json();
    let dir = root.path().join("fixtures/formats");
    let local = aisec(&["scan", "--format", "json", "--no-progress"])
        .arg(&dir)
        .run();
    let local = local.json();
    let prefix = remote["findings"][0]["location"]["path"]
        .as_str()
        .unwrap()
        .split_once("@")
        .map(|(a, b)| format!("{a}@{}/", b.split('/').next().unwrap()))
        .unwrap();
    assert!(prefix.starts_with("hf://fixtures/formats@"), "{prefix}");
    let a = findings(&local, &[&format!("{}/", dir.display())]);
    let b = findings(&remote, &[&prefix]);
    assert!(a.len() > 10);
    assert_eq!(a, b);
    assert!(remote["data"]["bytes_read"].as_u64().unwrap() > 0);
}

#[test]
fn shards_cover_the_list_once_and_merge_to_the_single_run() {
    let root = hub_root();
    let h = hub(root.path());
    let work = tempfile::tempdir().unwrap();
    let list = work.path().join("list.txt");
    let mut lines = vec![
        "# the three fixture repos, some files by URL, and a local folder".to_string(),
        "hf://fixtures/pickle".into(),
        "hf://fixtures/formats@main".into(),
        "hf://fixtures/archive".into(),
    ];
    for f in [
        "pickle/benign_p2.pkl",
        "formats/gguf_ssti.gguf",
        "archive/traversal.zip",
    ] {
        lines.push(format!("{}/files/fixtures/{f}", h.url));
    }
    lines.push(root.path().join("fixtures/formats").display().to_string());
    std::fs::write(&list, lines.join("\n")).unwrap();
    let w = |n: &str| work.path().join(n).display().to_string();
    let single = aisec(&["scan", "--no-progress", "--from-list"])
        .arg(&list)
        .args(&[
            "--records",
            &w("all.jsonl"),
            "--format",
            "json",
            "-o",
            &w("single.json"),
        ])
        .env("HF_ENDPOINT", &h.url)
        .run();
    single.expect_code(1);
    let mut shard_files = Vec::new();
    let mut objects = Vec::new();
    for k in 0..3 {
        let rec = w(&format!("s{k}.jsonl"));
        aisec(&["scan", "--no-progress", "--from-list"])
            .arg(&list)
            .args(&[
                "--shard",
                &format!("{k}/3"),
                "--records",
                &rec,
                "--format",
                "json",
                "-o",
                &w("x.json"),
            ])
            .env("HF_ENDPOINT", &h.url)
            .run();
        for line in std::fs::read_to_string(&rec).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            objects.push(v["object"].as_str().unwrap().to_string());
        }
        shard_files.push(rec);
    }
    // Every object of the single run is in exactly one shard.
    let mut all: Vec<String> = std::fs::read_to_string(w("all.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["object"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    all.sort();
    objects.sort();
    assert!(all.len() > 150, "{}", all.len());
    assert_eq!(all, objects);
    // The merge of the shards is the single run's report.
    let merged = aisec(&["report", "merge", "--format", "json"])
        .args(&shard_files)
        .run();
    merged.expect_code(1);
    let single: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w("single.json")).unwrap()).unwrap();
    let merged = merged.json();
    assert_eq!(findings(&single, &[]), findings(&merged, &[]));
    assert_eq!(single["errors"], merged["errors"]);
    assert_eq!(
        single["summary"]["by_severity"],
        merged["summary"]["by_severity"]
    );
    assert_eq!(single["data"]["bytes_read"], merged["data"]["bytes_read"]);
    // The single run's JSON report merges too, in every format.
    for fmt in ["text", "sarif", "html"] {
        let r = aisec(&["report", "merge", "--format", fmt, &w("single.json")]).run();
        r.expect_code(1);
        assert!(r.stdout.contains("AISEC-"), "{fmt}");
    }
    let bad = std::fs::write(w("bad.jsonl"), "not json\n");
    bad.unwrap();
    aisec(&["report", "merge", &w("bad.jsonl")])
        .run()
        .expect_code(2);
}

#[test]
fn state_skips_what_was_already_scanned() {
    let root = hub_root();
    let h = hub(root.path());
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state.json").display().to_string();
    let scan = || {
        let r = aisec(&[
            "scan",
            "hf://fixtures/pickle",
            "--no-progress",
            "--format",
            "json",
            "--state",
            &state,
        ])
        .env("HF_ENDPOINT", &h.url)
        .run();
        r.json()
    };
    let first = scan();
    let n = first["summary"]["items"].as_u64().unwrap();
    assert!(n > 50);
    assert_eq!(first["data"]["unchanged"], 0);
    let second = scan();
    assert_eq!(second["data"]["unchanged"].as_u64(), Some(n));
    assert_eq!(second["summary"]["items"], 0);
    assert!(second["findings"].as_array().unwrap().is_empty());
    // One file changes: only it is read again.
    std::fs::write(
        root.path().join("fixtures/pickle/benign_p2.pkl"),
        b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.",
    )
    .unwrap();
    let third = scan();
    assert_eq!(third["summary"]["items"], 1);
    assert_eq!(third["data"]["unchanged"].as_u64(), Some(n - 1));
    assert!(third["findings"][0]["location"]["path"]
        .as_str()
        .unwrap()
        .ends_with("/benign_p2.pkl"));
}

#[test]
fn s3_prefix_scan_names_the_objects() {
    let root = hub_root();
    let s3root = tempfile::tempdir().unwrap();
    copy_dir(root.path(), &s3root.path().join("models"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fs = s3s_fs::FileSystem::new(s3root.path()).unwrap();
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
            let conn = http
                .serve_connection(hyper_util::rt::TokioIo::new(sock), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    let r = aisec(&[
        "scan",
        "s3://models/fixtures/formats",
        "--no-progress",
        "--format",
        "json",
    ])
    .env("AWS_ENDPOINT_URL", format!("http://{addr}"))
    .env("AWS_ACCESS_KEY_ID", "AKTEST")
    .env("AWS_SECRET_ACCESS_KEY", "SECRETTEST")
    .env("AWS_REGION", "us-east-1")
    .run();
    r.expect_code(1);
    let j = r.json();
    let f = j["findings"].as_array().unwrap();
    assert!(f.len() > 10);
    assert!(f.iter().all(|f| f["location"]["path"]
        .as_str()
        .unwrap()
        .starts_with("s3://models/fixtures/formats/")));
}

#[test]
fn bad_sources_and_shards_are_usage_errors() {
    aisec(&["scan", "hf://only-one-part"]).run().expect_code(2);
    aisec(&["scan", "x", "--shard", "3/3"]).run().expect_code(2);
}

/// The Indexed Job's container command (deploy/k8s/scan-job.yaml), run as
/// the pod would run it (`/bin/sh -c SCRIPT` with `JOB_COMPLETION_INDEX`
/// and `SHARDS` set), with its `/work` and `/out` mounts moved to temporary
/// folders: every index exits 0, the shards' records cover the work list
/// once, and `aisec report merge` of them equals one run over the list.
/// The manifest's schema is checked by deploy/check/check.sh; no cluster
/// or container runtime is involved here.
#[test]
fn the_k8s_job_command_runs_through_the_cli() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(here.join("../../deploy/k8s/scan-job.yaml")).unwrap();
    // The folded (`>-`) args scalar: its lines joined by spaces.
    let lines: Vec<&str> = yaml.lines().collect();
    let at = lines.iter().position(|l| l.trim() == "- >-").unwrap();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let script = lines[at + 1..]
        .iter()
        .take_while(|l| indent(l) > indent(lines[at]))
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(script.starts_with("aisec scan "), "{script}");
    assert!(yaml.contains(r#"command: ["/bin/sh", "-c"]"#));
    // completions, parallelism and SHARDS agree.
    let num = |key: &str| {
        yaml.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|r| {
                r.split_whitespace()
                    .next()
                    .unwrap()
                    .trim_matches('"')
                    .to_string()
            })
            .unwrap()
    };
    let n = num("completions:");
    assert_eq!(n, num("parallelism:"));
    let shards_env = yaml
        .split("- name: SHARDS")
        .nth(1)
        .and_then(|r| r.lines().nth(1))
        .and_then(|l| l.trim().strip_prefix("value:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap();
    assert_eq!(n, shards_env);

    let root = hub_root();
    let h = hub(root.path());
    let work = tempfile::tempdir().unwrap();
    let (wdir, odir) = (work.path().join("work"), work.path().join("out"));
    std::fs::create_dir_all(&wdir).unwrap();
    std::fs::create_dir_all(&odir).unwrap();
    std::fs::write(
        wdir.join("list.txt"),
        "hf://fixtures/pickle\nhf://fixtures/formats\nhf://fixtures/archive\n",
    )
    .unwrap();
    let script = script
        .replace("/work/", &format!("{}/", wdir.display()))
        .replace("/out/", &format!("{}/", odir.display()));
    let bin = Path::new(env!("CARGO_BIN_EXE_aisec")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shards = 3;
    let mut records = Vec::new();
    for k in 0..shards {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .env("PATH", &path)
            .env("JOB_COMPLETION_INDEX", k.to_string())
            .env("SHARDS", shards.to_string())
            .env("HF_ENDPOINT", &h.url)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "index {k}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let rec = odir.join(format!("shard-{k}.jsonl"));
        assert!(rec.exists(), "index {k} wrote no records");
        assert!(odir.join(format!("state-{k}.json")).exists());
        assert!(odir.join(format!("report-{k}.json")).exists());
        records.push(rec);
    }
    let merged = aisec(&["report", "merge", "--format", "json"])
        .args(&records)
        .run();
    merged.expect_code(1);
    let single = aisec(&["scan", "--no-progress", "--format", "json", "--from-list"])
        .arg(wdir.join("list.txt"))
        .env("HF_ENDPOINT", &h.url)
        .run();
    single.expect_code(1);
    let (merged, single) = (merged.json(), single.json());
    assert_eq!(findings(&single, &[]), findings(&merged, &[]));
    assert_eq!(single["summary"]["items"], merged["summary"]["items"]);
    // A second run of an index finds its state and reads nothing again.
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .env("PATH", &path)
        .env("JOB_COMPLETION_INDEX", "0")
        .env("SHARDS", shards.to_string())
        .env("HF_ENDPOINT", &h.url)
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// `n` bytes of little-endian float32 in about [-0.05, 0.05) (an LCG),
/// as a TensorFlow variables shard holds them, with `first` as byte 0.
fn tensor_bytes(n: usize, seed: u64, first: u8) -> Vec<u8> {
    let mut x = seed;
    let mut out = Vec::with_capacity(n + 4);
    while out.len() < n {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = (x >> 40) as f32 / (1u64 << 24) as f32;
        out.extend(((u - 0.5) * 0.1).to_le_bytes());
    }
    out.truncate(n);
    out[0] = first;
    out
}

#[test]
fn tensorflow_variable_shards_are_sniffed_not_read_whole() {
    // A SavedModel layout: the graph (a PyFunc finding), an index, and raw
    // float shards opening with bytes the old sniff could not rule out: a
    // pickle opcode (`K`, BININT1) and an ONNX key (0x12); and a raw
    // `.bin` blob opening with MARK.
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("fixtures/tf");
    let vars = repo.join("variables");
    std::fs::create_dir_all(&vars).unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        here.join("../aisec-formats/tests/fixtures/tf_pyfunc_saved_model.pb"),
        repo.join("saved_model.pb"),
    )
    .unwrap();
    std::fs::write(vars.join("variables.index"), b"\x00\x01index").unwrap();
    let shards = [
        ("variables/variables.data-00000-of-00002", 2 << 20, b'K'),
        ("variables/variables.data-00001-of-00002", 2 << 20, 0x12),
        ("embedding.bin", 1 << 20, b'('),
    ];
    for (i, (name, n, first)) in shards.iter().enumerate() {
        std::fs::write(repo.join(name), tensor_bytes(*n, i as u64 + 1, *first)).unwrap();
    }
    let h = hub(root.path());
    let work = tempfile::tempdir().unwrap();
    let rec = work.path().join("r.jsonl");
    let run = aisec(&[
        "scan",
        "hf://fixtures/tf",
        "--format",
        "json",
        "--no-progress",
    ])
    .arg("--records")
    .arg(&rec)
    .env("HF_ENDPOINT", &h.url)
    .run();
    let remote = run.json();
    let local = aisec(&["scan", "--format", "json", "--no-progress"])
        .arg(&repo)
        .run();
    assert_eq!(local.code, run.code);
    let local = local.json();
    let prefix = remote["findings"][0]["location"]["path"]
        .as_str()
        .unwrap()
        .split_once("@")
        .map(|(a, b)| format!("{a}@{}/", b.split('/').next().unwrap()))
        .unwrap();
    let a = findings(&local, &[&format!("{}/", repo.display())]);
    let b = findings(&remote, &[&prefix]);
    assert!(!a.is_empty());
    assert_eq!(a, b);
    let mut seen = 0;
    for line in std::fs::read_to_string(&rec).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let object = v["object"].as_str().unwrap();
        if let Some((_, n, _)) = shards.iter().find(|s| object.ends_with(s.0)) {
            seen += 1;
            assert_eq!(v["plan"], "sniff", "{v}");
            assert_eq!(v["format"], "unknown", "{v}");
            let read = v["bytes_read"].as_u64().unwrap();
            assert!(read < *n as u64 / 8, "{object}: {read} bytes read");
        }
    }
    assert_eq!(seen, shards.len());
}
