//! Added latency of the guard's input stage per request text: rules plus the
//! fast classifier (`Pipeline::scan_input`: normalisation, injection rules,
//! classifier, secrets, PII, unicode, deny lists) and the tool-content scan
//! (`Pipeline::scan_indirect`), on the texts of a labelled JSONL file
//! (typical prompts) and on ~4k-token documents made by joining them; the
//! fast path with the second stage off, then the default guard with the
//! built-in second stage (one pass).
//! Single thread, release build; prints p50/p99/max in microseconds of wall
//! time, and p50/p99 of the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`):
//! on a machine shared with other jobs the wall-clock tail is mostly time
//! spent waiting for a core, the CPU time is the guard's own cost.
//!
//! Usage: cargo run --release -p aisec-guard --example latency -- FILE.jsonl [REPEATS]
//! (`AISEC_GUARD_DEOBF=0` turns `[input.injection] deobfuscate` off, and
//! `AISEC_GUARD_PAYLOAD=0` turns `[input.payload]` off, and `AISEC_GUARD_MODEL=FILE`
//! scores with another classifier file, for A/B runs).

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.
#![allow(unsafe_code)] // One libc call: the thread's CPU clock.

use std::time::Instant;

use aisec_guard::{Pipeline, Policy};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// CPU time this thread has used, in microseconds.
fn thread_cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

fn measure(name: &str, texts: &[String], repeats: usize, f: &dyn Fn(&str) -> usize) {
    let mut us = Vec::with_capacity(texts.len() * repeats);
    let mut cpu = Vec::with_capacity(texts.len() * repeats);
    let mut sink = 0usize;
    for _ in 0..repeats {
        for t in texts {
            let c0 = thread_cpu_us();
            let t0 = Instant::now();
            sink += f(t);
            us.push(t0.elapsed().as_secs_f64() * 1e6);
            cpu.push(thread_cpu_us() - c0);
        }
    }
    let n = us.len();
    let mean = us.iter().sum::<f64>() / n.max(1) as f64;
    let chars = texts.iter().map(|t| t.chars().count()).sum::<usize>() / texts.len().max(1);
    println!(
        "| {name} | {n} | {chars} | {:.1} | {:.1} | {:.1} | {mean:.1} | {:.1} | {:.1} |",
        pct(&mut us, 0.5),
        pct(&mut us, 0.99),
        pct(&mut us, 1.0),
        pct(&mut cpu, 0.5),
        pct(&mut cpu, 0.99),
    );
    std::hint::black_box(sink);
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: latency FILE.jsonl [REPEATS]"))?;
    let repeats: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut texts = Vec::new();
    let all = std::fs::read_to_string(path)?;
    let lines: Vec<&str> = all.lines().collect();
    // An even sample over the whole file (it is grouped by source).
    let step = (lines.len() / 3000).max(1);
    for line in lines.iter().step_by(step).take(3000) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let Some(t) = v["text"].as_str() {
            texts.push(t.to_string());
        }
    }
    // Documents of about 4k tokens (16k characters, the guard's token estimate is chars/4).
    let mut long = Vec::new();
    let mut cur = String::new();
    for t in &texts {
        cur.push_str(t);
        cur.push_str("\n\n");
        if cur.chars().count() >= 16_000 {
            long.push(std::mem::take(&mut cur));
            if long.len() == 40 {
                break;
            }
        }
    }
    // AISEC_GUARD_MODEL=FILE: another classifier file in place of the built-in one
    // (`[input.injection] model`), for A/B runs of two models on one machine.
    let mut policy = Policy::default_for("http://127.0.0.1:9");
    if let Some(file) = std::env::var_os("AISEC_GUARD_MODEL") {
        policy.input.injection.model = Some(file.into());
        policy.load_model()?;
    }
    // AISEC_GUARD_DEOBF=0: without the decoded views of obfuscated text (for A/B runs).
    if std::env::var("AISEC_GUARD_DEOBF").as_deref() == Ok("0") {
        policy.input.injection.deobfuscate = false;
    }
    // AISEC_GUARD_PAYLOAD=0: without the rendering-payload scanner (AISEC-GUARD-007).
    if std::env::var("AISEC_GUARD_PAYLOAD").as_deref() == Ok("0") {
        policy.input.payload.enabled = false;
    }
    let payload = aisec_guard::payload::PayloadScanner::new();
    // The rows measure the fast path (rules + fast classifier + other input
    // scanners, the second stage off); the default guard with the built-in
    // second stage has its own rows below.
    // AISEC_GUARD_STAGE2=off: the fast-path rows only (the encoder not even loaded).
    if std::env::var("AISEC_GUARD_STAGE2").as_deref() == Ok("off") {
        policy.input.second_stage.enabled = false;
    }
    let staged = Pipeline::new(policy.clone());
    // `scope = "all"` (candidate EV): the encoder on every request text
    let mut all_policy = policy.clone();
    all_policy.input.second_stage.scope = aisec_guard::policy::Scope::All;
    let every = Pipeline::new(all_policy);
    policy.input.second_stage.enabled = false;
    let p = Pipeline::new(policy);
    // Warm up (lazy statics, caches).
    for t in texts.iter().take(50) {
        std::hint::black_box(p.scan_input(t));
    }
    println!("| what | texts scanned | mean chars | p50 us | p99 us | max us | mean us | CPU p50 us | CPU p99 us |\n|---|---|---|---|---|---|---|---|---|");
    measure(
        "prompt: rules + classifier + other input scanners",
        &texts,
        repeats,
        &|t| p.scan_input(t).len(),
    );
    measure(
        "prompt: de-obfuscation views alone (deobf::views)",
        &texts,
        repeats,
        &|t| aisec_guard::deobf::views(t).len(),
    );
    measure(
        "prompt: rendering-payload scanner alone (payload::find)",
        &texts,
        repeats,
        &|t| payload.find(t, true).is_some() as usize,
    );
    measure("prompt: classifier alone", &texts, repeats, &|t| {
        (p.classifier_score(t) > 0.5) as usize
    });
    for (lo, hi) in [(0usize, 500usize), (500, 2000), (2000, usize::MAX)] {
        let sub: Vec<String> = texts
            .iter()
            .filter(|t| (lo..hi).contains(&t.chars().count()))
            .cloned()
            .collect();
        if !sub.is_empty() {
            let name = if hi == usize::MAX {
                format!("prompts of {lo}+ chars: all input scanners")
            } else {
                format!("prompts of {lo}-{hi} chars: all input scanners")
            };
            measure(&name, &sub, repeats, &|t| p.scan_input(t).len());
        }
    }
    measure("~4k-token document as a prompt", &long, repeats, &|t| {
        p.scan_input(t).len()
    });
    measure("~4k-token document as tool content", &long, repeats, &|t| {
        p.scan_indirect(t, "tool").len()
    });
    // The default guard: the built-in second stage re-decides the texts in
    // its band and reads every tool document (one pass over the texts).
    if staged.second_stage_status().0 {
        measure(
            "prompt: default guard with the second stage (every request; the encoder runs on the band's texts)",
            &texts,
            1,
            &|t| staged.scan_input(t).len(),
        );
        measure(
            "~4k-token document as tool content, with the second stage (indirect head)",
            &long,
            1,
            &|t| staged.scan_indirect(t, "tool").len(),
        );
    }
    if every.second_stage_status().0 {
        measure(
            "prompt: scope \"all\" (every request text through the encoder)",
            &texts,
            1,
            &|t| every.scan_input(t).len(),
        );
        measure(
            "~4k-token document as a prompt, scope \"all\"",
            &long,
            1,
            &|t| every.scan_input(t).len(),
        );
    }
    measure(
        "~4k-token document: classifier alone",
        &long,
        repeats,
        &|t| (p.classifier_score(t) > 0.5) as usize,
    );
    measure(
        "~4k-token document: injection rules alone",
        &long,
        repeats,
        &|t| {
            p.injection_rule_hits(&aisec_guard::text::normalise(t).text)
                .len()
        },
    );
    measure(
        "~4k-token document: rendering-payload scanner alone",
        &long,
        repeats,
        &|t| payload.find(t, true).is_some() as usize,
    );
    measure(
        "~4k-token document: normalisation alone",
        &long,
        repeats,
        &|t| aisec_guard::text::normalise(t).text.len(),
    );
    Ok(())
}
