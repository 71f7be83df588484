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
