//! Harness behaviour against scripted loopback servers: retries, Retry-After,
//! rate limits, timeouts, malformed and huge bodies, resumption, judge scoring.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisec_probe::detect::Outcome;
use aisec_probe::harness::{run_probes, RunConfig};
use aisec_probe::probes::{select, Family};
use aisec_probe::summary::{build_report, SummaryOptions};
use aisec_probe::target::{Target, TargetKind};
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

fn last_user(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|x| x["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

fn chat_json(text: &str) -> Response {
    Json(json!({"choices": [{"message": {"role": "assistant", "content": text}}]})).into_response()
}

/// An obedient model: answers with the code the prompt asks for.
fn obey(prompt: &str) -> String {
    let re = regex::Regex::new(r"\b[ACDEFHJKLMNPRTUVWXY3479]{10}\b").unwrap();
    match re.find(prompt) {
        Some(m) => format!("Okay: {}", m.as_str()),
        None => "Okay.".to_string(),
    }
}

async fn echo(State(c): State<Counter>, Json(body): Json<Value>) -> Response {
    c.0.fetch_add(1, Ordering::SeqCst);
    chat_json(&obey(&last_user(&body)))
}

async fn refuse(State(c): State<Counter>) -> Response {
    c.0.fetch_add(1, Ordering::SeqCst);
    chat_json("I'm sorry, but I can't help with that.")
}

async fn flaky(State(c): State<Counter>) -> Response {
    // Every request fails twice with 503 before succeeding (single-flight test).
    let n = c.0.fetch_add(1, Ordering::SeqCst);
    if n % 3 != 2 {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    chat_json("fine")
}

async fn retry_after(State(c): State<Counter>) -> Response {
    let n = c.0.fetch_add(1, Ordering::SeqCst);
    if n == 0 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "later",
        )
            .into_response();
    }
    chat_json("fine")
}

async fn malformed(State(c): State<Counter>) -> Response {
    c.0.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        "{\"choices\": [ {\"message\": ",
    )
        .into_response()
}

async fn slow(State(c): State<Counter>) -> Response {
    c.0.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    chat_json("late")
}

async fn huge(State(c): State<Counter>) -> Response {
    c.0.fetch_add(1, Ordering::SeqCst);
    // 16 MiB of JSON-looking bytes: the client must stop reading at its cap.
    let mut body = b"{\"choices\": [{\"message\": {\"content\": \"".to_vec();
    body.resize(16 << 20, b'a');
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

async fn judge_garbage(State(c): State<Counter>) -> Response {
    c.0.fetch_add(1, Ordering::SeqCst);
    chat_json("The reply seems bad, probably complied?")
}

async fn serve(router: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(l, router).await.unwrap();
    });
    format!("http://{addr}")
}

async fn server() -> (String, Counter) {
    let c = Counter::default();
    let r = Router::new()
        .route("/echo/chat/completions", post(echo))
        .route("/refuse/chat/completions", post(refuse))
        .route("/flaky/chat/completions", post(flaky))
        .route("/retry-after/chat/completions", post(retry_after))
        .route("/malformed/chat/completions", post(malformed))
        .route("/slow/chat/completions", post(slow))
        .route("/huge/chat/completions", post(huge))
        .route("/judge/chat/completions", post(judge_garbage))
        .with_state(c.clone());
    (serve(r).await, c)
}

fn cfg(base: &str, route: &str) -> RunConfig {
    let mut c = RunConfig::new(Target::openai_chat(format!("{base}/{route}"), "m"));
    c.backoff_base = Duration::from_millis(5);
    c.backoff_max = Duration::from_millis(50);
    c.timeout = Duration::from_secs(5);
    c.seed = Some(11);
    c
}

fn injection() -> Vec<aisec_probe::Probe> {
    select(&["injection".into()], &[]).unwrap()
}

#[tokio::test]
async fn echo_target_hits_canary_probes_and_refusals_miss() {
    let (base, _) = server().await;
    let out = run_probes(cfg(&base, "echo"), injection()).await.unwrap();
    assert!(!out.records.is_empty());
    assert!(
        out.records.iter().all(|r| r.is_hit()),
        "an echoing model emits every canary"
    );
    let out = run_probes(cfg(&base, "refuse"), injection()).await.unwrap();
    assert!(out
        .records
        .iter()
        .all(|r| r.verdict.as_ref().unwrap().outcome == Outcome::Miss));
    let rep = build_report(&out, &SummaryOptions::default());
    assert!(rep.findings.is_empty());
    assert_eq!(rep.data["probe"]["families"][0]["rate"], json!(0.0));
}

#[tokio::test]
async fn retries_5xx_until_success() {
    let (base, c) = server().await;
    let mut cf = cfg(&base, "flaky");
    cf.concurrency = 1;
    let probes: Vec<_> = injection().into_iter().take(2).collect();
    let out = run_probes(cf, probes).await.unwrap();
    assert!(
        out.records.iter().all(|r| r.error.is_none()),
        "{:?}",
        out.records[0].error
    );
    assert_eq!(out.retries, 4);
    assert_eq!(c.0.load(Ordering::SeqCst), 6);
    // With too few retries the attempt fails and is counted as an error, not a miss.
    let (base, _) = server().await;
    let mut cf = cfg(&base, "flaky");
    cf.retries = 1;
    cf.concurrency = 1;
    let out = run_probes(cf, injection().into_iter().take(1).collect())
        .await
        .unwrap();
    assert!(out.records[0].error.as_deref().unwrap().contains("503"));
    let rep = build_report(&out, &SummaryOptions::default());
    assert_eq!(rep.data["probe"]["probes"][0]["errors"], json!(1));
    assert_eq!(rep.data["probe"]["probes"][0]["n"], json!(0));
}

#[tokio::test]
async fn honours_retry_after() {
    let (base, _) = server().await;
    let mut cf = cfg(&base, "retry-after");
    cf.backoff_max = Duration::from_secs(5);
    let t = Instant::now();
    let out = run_probes(cf, injection().into_iter().take(1).collect())
        .await
        .unwrap();
    assert!(out.records[0].error.is_none());
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(out.retries, 1);
}

#[tokio::test]
async fn rate_limit_spaces_requests() {
    let (base, c) = server().await;
    let mut cf = cfg(&base, "echo");
    cf.rate = Some(20.0);
    cf.concurrency = 16;
    cf.repeats = 5; // 4 probes x 5 = 20 requests
    let t = Instant::now();
    run_probes(cf, injection()).await.unwrap();
    let n = c.0.load(Ordering::SeqCst);
    assert_eq!(n, 20);
    // 20 requests at 20/s: the first is immediate, the last at 0.95 s.
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn malformed_json_is_an_error_not_a_verdict() {
    let (base, c) = server().await;
    let out = run_probes(
        cfg(&base, "malformed"),
        injection().into_iter().take(1).collect(),
    )
    .await
    .unwrap();
    let e = out.records[0].error.as_deref().unwrap();
    assert!(e.contains("not JSON"), "{e}");
    assert_eq!(
        c.0.load(Ordering::SeqCst),
        1,
        "malformed bodies are not retried"
    );
}

#[tokio::test]
async fn slow_responses_time_out_and_are_retried() {
    let (base, c) = server().await;
    let mut cf = cfg(&base, "slow");
    cf.timeout = Duration::from_millis(200);
    cf.retries = 2;
    let t = Instant::now();
    let out = run_probes(cf, injection().into_iter().take(1).collect())
        .await
        .unwrap();
    assert!(out.records[0]
        .error
        .as_deref()
        .unwrap()
        .contains("timed out"));
    assert_eq!(c.0.load(Ordering::SeqCst), 3);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test]
async fn huge_bodies_are_cut_off() {
    let (base, _) = server().await;
    let mut cf = cfg(&base, "huge");
    cf.max_response_bytes = 256 * 1024;
    let t = Instant::now();
    let out = run_probes(cf, injection().into_iter().take(1).collect())
        .await
        .unwrap();
    let e = out.records[0].error.as_deref().unwrap();
    assert!(e.contains("larger than 262144"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn resume_skips_finished_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let (base, c) = server().await;
    let probes = select(&["injection".into(), "indirect".into()], &[]).unwrap();
    let mut cf = cfg(&base, "echo");
    cf.journal = Some(journal.clone());
    cf.seed = None; // random seed: resume must take it from the journal
    let first = run_probes(cf.clone(), probes.clone()).await.unwrap();
    let total = first.records.len();
    assert_eq!(c.0.load(Ordering::SeqCst) as usize, total);
    // Simulate a crash: keep the header and 3 records, plus half a line.
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), total + 1);
    let mut cut = lines[..4].join("\n");
    cut.push('\n');
    cut.push_str(&lines[5][..lines[5].len() / 2]);
    std::fs::write(&journal, cut).unwrap();
    // Without --resume an existing journal is refused.
    assert!(run_probes(cf.clone(), probes.clone()).await.is_err());
    cf.resume = true;
    let second = run_probes(cf, probes).await.unwrap();
    assert_eq!(second.resumed, 3);
    assert_eq!(second.seed, first.seed);
    assert_eq!(c.0.load(Ordering::SeqCst) as usize, total + total - 3);
    let k1: Vec<_> = first.records.iter().map(|r| r.key.clone()).collect();
    let k2: Vec<_> = second.records.iter().map(|r| r.key.clone()).collect();
    assert_eq!(k1, k2);
}

#[tokio::test]
async fn unparseable_judge_is_unscored() {
    let (base, _) = server().await;
    let mut cf = cfg(&base, "echo");
    cf.judge = Some(Target::openai_chat(format!("{base}/judge"), "j"));
    let probes = select(&["jailbreak".into()], &[]).unwrap();
    let out = run_probes(cf, probes).await.unwrap();
    assert!(out
        .records
        .iter()
        .all(|r| r.verdict.as_ref().unwrap().outcome == Outcome::Unscored));
    let rep = build_report(&out, &SummaryOptions::default());
    let fam = &rep.data["probe"]["families"][0];
    assert_eq!(fam["family"], "jailbreak");
    assert_eq!(fam["n"], json!(0));
    assert!(fam["unscored"].as_u64().unwrap() > 0);
    assert!(rep.findings.is_empty());
}

#[tokio::test]
async fn rest_target_template_and_path() {
    async fn app(Json(body): Json<Value>) -> Response {
        Json(json!({"data": {"reply": obey(body["input"]["text"].as_str().unwrap_or(""))}}))
            .into_response()
    }
    let base = serve(Router::new().route("/api", post(app))).await;
    let t = Target::rest(
        format!("{base}/api"),
        r#"{"input": {"text": "{{prompt}}"}, "user": 1}"#,
        "$.data.reply",
    );
    assert!(matches!(t.kind, TargetKind::Rest { .. }));
    let mut cf = RunConfig::new(t);
    cf.seed = Some(3);
    let out = run_probes(cf, injection()).await.unwrap();
    assert!(
        out.records.iter().all(|r| r.is_hit()),
        "{:?}",
        out.records[0]
    );
    assert!(
        out.system_canary.is_none(),
        "REST targets get no planted system prompt"
    );
    let rep = build_report(&out, &SummaryOptions { max_asr: Some(1.0) });
    assert!(rep
        .findings
        .iter()
        .all(|f| f.severity == aisec_core::Severity::Info));
    assert_eq!(rep.data["probe"]["max_asr_exceeded"], json!(false));
    assert!(rep
        .findings
        .iter()
        .all(|f| f.owasp == vec!["LLM01"] && f.atlas.contains(&"AML.T0051.000".to_string())));
    assert!(rep.findings.iter().all(|f| f.metrics["n"] == json!(1)));
    let fam = Family::Injection;
    assert_eq!(rep.data["probe"]["families"][0]["family"], fam.as_str());
}

/// The progress sink `aisec probe` draws its bar from: one phase whose
/// total is the planned attempts (probes x repeats), advanced once per
/// finished attempt, then finished.
#[tokio::test]
async fn progress_counts_every_attempt_against_the_planned_total() {
    use std::sync::Mutex;
    type Phases = Vec<(String, Option<u64>)>;
    #[derive(Default)]
    struct Rec(Mutex<(Phases, u64, bool)>);
    impl aisec_core::run::Progress for Rec {
        fn phase(&self, name: &str, total: Option<u64>) {
            self.0.lock().unwrap().0.push((name.into(), total));
        }
        fn advance(&self, n: u64) {
            self.0.lock().unwrap().1 += n;
        }
        fn finish(&self) {
            self.0.lock().unwrap().2 = true;
        }
    }
    let (base, _) = server().await;
    let mut cf = cfg(&base, "refuse");
    cf.repeats = 2;
    let probes = injection();
    let planned = probes.len() as u64 * 2;
    let rec = Rec::default();
    let out = aisec_probe::run_probes_with(cf, probes, &rec)
        .await
        .unwrap();
    let (phases, done, finished) = &*rec.0.lock().unwrap();
    assert_eq!(phases, &vec![("probing".to_string(), Some(planned))]);
    assert_eq!(*done, planned);
    assert_eq!(out.records.len() as u64, planned);
    assert!(finished);
}
