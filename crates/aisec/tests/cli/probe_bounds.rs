//! `aisec probe` refuses counts and files it cannot hold, with a clear error
//! and exit 2, before any request is sent (issue 19).

fn probe(args: &[&str]) -> (i32, String) {
    let r = crate::util::aisec(&["probe", "--url", "http://127.0.0.1:9"])
        .args(args)
        .run();
    (r.code.unwrap_or(-1), r.stderr)
}

#[test]
fn huge_repeats_are_refused() {
    let (code, err) = probe(&["--repeats", "4000000000"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at most 1000000 can be planned"), "{err}");
}

#[cfg(unix)]
#[test]
fn device_journal_and_template_are_refused() {
    let (code, err) = probe(&["--journal", "/dev/zero", "--resume"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    let (code, err) = probe(&[
        "--api",
        "rest",
        "--request-template",
        "@/dev/zero",
        "--response-path",
        "x",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("larger than 1048576 bytes"), "{err}");
}
