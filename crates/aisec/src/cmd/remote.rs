//! Remote and list-driven scans (`aisec scan hf://… s3://… https://…`,
//! `--from-list`, `--shard`, `--records`, `--state`) and `aisec report
//! merge`. The reading is `aisec-remote`'s; this module turns sources into
//! per-object records and records into one report.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use aisec_core::{Finding, Report};
use aisec_remote::{ObjectScan, Remote, RemoteOptions, Shard, Source};
use anyhow::Context;

use crate::cmd::scan::ScanArgs;
use crate::output::OutputArgs;

/// Largest `--from-list` file read.
const MAX_LIST_BYTES: u64 = 256 << 20;
/// Largest state or record file read.
const MAX_INPUT_BYTES: u64 = 4 << 30;

/// Options of `aisec scan` for remote sources and work lists.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Read sources (paths, hf://, s3://, https:// URLs) from FILE, one a line; `#` starts a comment.
    #[arg(long, value_name = "FILE")]
    pub from_list: Option<PathBuf>,

    /// Scan only this worker's share K/N of the sources (0 <= K < N; a stable hash of each source string).
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,

    /// Write one JSON line per scanned object to FILE (the input of `aisec report merge`).
    #[arg(long, value_name = "FILE")]
    pub records: Option<PathBuf>,

    /// Incremental state (JSON): skip objects whose version (hub blob id, ETag) it already holds, and record new ones.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Most bytes read from one remote object; a plan that needs more makes the object an error.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub max_object_bytes: u64,

    /// Remote requests in flight per host.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub per_host: usize,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    Shard::parse(s).map_err(|e| e.to_string())
}

impl RemoteArgs {
    /// Whether the scan goes through this module: a remote source, a list,
    /// a shard, records or state were given.
    pub fn active(&self, paths: &[PathBuf]) -> bool {
        self.from_list.is_some()
            || self.shard.is_some()
            || self.records.is_some()
            || self.state.is_some()
            || paths
                .iter()
                .any(|p| Source::is_remote(&p.to_string_lossy()))
    }
}

/// `aisec report …`.
#[derive(Debug, clap::Args)]
pub struct ReportCommand {
    #[command(subcommand)]
    pub action: ReportAction,
}

/// What `aisec report` does.
#[derive(Debug, clap::Subcommand)]
pub enum ReportAction {
    /// Combine shard outputs (`--records` JSON Lines, or `--format json` reports) into one report.
    Merge(MergeArgs),
}

/// `aisec report merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Record files (`aisec scan --records`) or JSON reports (`aisec scan --format json`).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// The sources of a run: the command line's, then the list's, in order,
/// each once, and only this shard's.
fn sources(paths: &[PathBuf], r: &RemoteArgs) -> anyhow::Result<Vec<String>> {
    let mut all: Vec<String> = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(list) = &r.from_list {
        let text = read_bounded(list, MAX_LIST_BYTES)
            .with_context(|| format!("cannot read --from-list {}", list.display()))?;
        let text = String::from_utf8(text)
            .with_context(|| format!("--from-list {}: not UTF-8", list.display()))?;
        for line in text.lines() {
            let line = line.split_once('#').map_or(line, |(a, _)| a).trim();
            if !line.is_empty() {
                all.push(line.to_string());
            }
        }
    }
    let mut seen = BTreeSet::new();
    all.retain(|s| seen.insert(s.clone()));
    if let Some(shard) = r.shard {
        all.retain(|s| shard.owns(s));
    }
    Ok(all)
}

fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// Incremental state: object id -> version last scanned.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct State {
    objects: BTreeMap<String, String>,
}

fn load_state(path: &Path) -> anyhow::Result<State> {
    match read_bounded(path, MAX_INPUT_BYTES) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("--state {}: not an aisec state file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read --state {}", path.display())),
    }
}

fn save_state(path: &Path, s: &State) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(s)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write --state {}", path.display()))
}

/// Runs a remote or list-driven scan.
pub fn run(args: ScanArgs) -> anyhow::Result<i32> {
    let r = &args.remote;
    let list = sources(&args.paths, r)?;
    let scanner = aisec_scan::Scanner::new(crate::cmd::scan::options(&args)?);
    let remote = Remote::new(RemoteOptions {
        max_object_bytes: r.max_object_bytes,
        per_host: r.per_host.max(1),
        ..RemoteOptions::default()
    })?;
    let mut state = match &r.state {
        Some(p) => Some(load_state(p)?),
        None => None,
    };
    let mut records_out = match &r.records {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p)
                .with_context(|| format!("cannot write --records {}", p.display()))?,
        )),
        None => None,
    };
    let progress = crate::run::show_progress(args.no_progress).then(|| {
        let pb = indicatif::ProgressBar::new(list.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} sources {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let cancel = crate::run::cancel();
    let start = std::time::Instant::now();
    let mut all = Vec::new();
    let mut unchanged = 0u64;
    let mut stopped = false;
    for src in &list {
        if cancel.is_cancelled() {
            stopped = true;
            break;
        }
        let recs = if Source::is_remote(src) {
            scan_remote(&remote, &scanner, src, state.as_ref(), &mut unchanged)
        } else {
            scan_local(&scanner, src)
        };
        if let Some(w) = records_out.as_mut() {
            for rec in &recs {
                serde_json::to_writer(&mut *w, rec)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
        }
        if let Some(s) = state.as_mut() {
            for rec in recs.iter().filter(|r| r.error.is_none()) {
                if let Some(v) = &rec.version {
                    s.objects.insert(rec.id.clone(), v.clone());
                }
            }
        }
        if let Some(pb) = &progress {
            pb.inc(1);
        }
        all.extend(recs);
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if let (Some(p), Some(s)) = (&r.state, &state) {
        save_state(p, s)?;
    }
    let mut report = report_from_records(all);
    report.summary.seconds = start.elapsed().as_secs_f64();
    report
        .data
        .insert("sources".into(), serde_json::json!(list.len()));
    report
        .data
        .insert("unchanged".into(), serde_json::json!(unchanged));
    if let Some(s) = r.shard {
        report.data.insert(
            "shard".into(),
            serde_json::json!(format!("{}/{}", s.index, s.count)),
        );
    }
    if stopped {
        crate::run::mark_incomplete(
            &mut report,
            "interrupted (Ctrl-C): the report covers only the work that finished",
        );
    }
    let unreadable = !report.errors.is_empty();
    let tail = tail(&report);
    let code = crate::run::finish_with_tail(report, &args.output, &tail)?;
    if code == 0 && unreadable {
        return Ok(crate::run::FAILED);
    }
    Ok(code)
}

/// One remote source: list, drop unchanged objects, fetch and scan.
fn scan_remote(
    remote: &Remote,
    scanner: &aisec_scan::Scanner,
    src: &str,
    state: Option<&State>,
    unchanged: &mut u64,
) -> Vec<ObjectScan> {
    let failed = |e: String| {
        vec![ObjectScan {
            source: src.to_string(),
            object: src.to_string(),
            id: src.to_string(),
            version: None,
            size: 0,
            bytes_read: 0,
            plan: String::new(),
            format: "unknown".into(),
            findings: Vec::new(),
            error: Some(e),
        }]
    };
    let listing = match Source::parse(src).and_then(|s| remote.list(&s)) {
        Ok(l) => l,
        Err(e) => return failed(e.to_string()),
    };
    let skip = |o: &aisec_remote::ObjectMeta| {
        state.is_some_and(|s| o.version.is_some() && s.objects.get(&o.id) == o.version.as_ref())
    };
    *unchanged += listing.objects.iter().filter(|o| skip(o)).count() as u64;
    match remote.scan(scanner, &listing, &|o| !skip(o)) {
        Ok(v) => v,
        Err(e) => failed(e.to_string()),
    }
}

/// A local path in a list: its files, scanned as `aisec scan PATH` would.
fn scan_local(scanner: &aisec_scan::Scanner, src: &str) -> Vec<ObjectScan> {
    let rec = |display: &str| ObjectScan {
        source: src.to_string(),
        object: display.to_string(),
        id: display.to_string(),
        version: None,
        size: 0,
        bytes_read: 0,
        plan: "local".into(),
        format: "unknown".into(),
        findings: Vec::new(),
        error: None,
    };
    let inputs = match aisec_scan::walk::expand(Path::new(src), scanner.options().follow_links) {
        Ok(v) => v,
        Err(e) => {
            let mut r = rec(src);
            r.error = Some(e.to_string());
            return vec![r];
        }
    };
    use rayon::prelude::*;
    inputs
        .par_iter()
        .map(|i| match i {
            aisec_scan::walk::Input::File { path, display } => {
                let f = scanner.scan_file(path, display);
                let mut r = rec(display);
                r.size = f.bytes;
                r.bytes_read = f.bytes;
                r.format = f.format.name().to_string();
                r.findings = f.findings;
                r.error = f.error;
                r
            }
            aisec_scan::walk::Input::Unreadable { display, message } => {
                let mut r = rec(display);
                r.error = Some(message.clone());
                r
            }
            aisec_scan::walk::Input::Stdin => {
                let mut r = rec("-");
                r.error = Some("standard input cannot be part of a list".into());
                r
            }
        })
        .collect()
}

/// The report of a set of records: their findings (with their rules from
/// the registry), errors and counts. A single run and the merge of its
/// shards build their reports here, so they compare equal.
pub fn report_from_records(records: Vec<ObjectScan>) -> Report {
    let mut report = Report::new("scan");
    report.add_rules(&aisec_scan::all_rules());
    let (mut stored, mut read, mut scanned, mut skipped) = (0u64, 0u64, 0u64, 0u64);
    let mut formats = serde_json::Map::new();
    let mut seen = BTreeSet::new();
    for r in records {
        // A record merged twice (overlapping shard files) counts once.
        if !seen.insert((r.object.clone(), r.version.clone())) {
            continue;
        }
        report.summary.items += 1;
        stored += r.size;
        read += r.bytes_read;
        if let Some(e) = r.error {
            report.error(r.object, e);
            continue;
        }
        if r.format == "unknown" && r.findings.is_empty() {
            skipped += 1;
        } else {
            scanned += 1;
        }
        let n = formats
            .entry(r.format.clone())
            .or_insert(serde_json::json!(0));
        *n = serde_json::json!(n.as_u64().unwrap_or(0) + 1);
        add_findings(&mut report, r.findings);
    }
    report.summary.bytes = read;
    report
        .data
        .insert("formats".into(), serde_json::Value::Object(formats));
    report
        .data
        .insert("scanned".into(), serde_json::json!(scanned));
    report
        .data
        .insert("skipped".into(), serde_json::json!({ "count": skipped }));
    report
        .data
        .insert("bytes_stored".into(), serde_json::json!(stored));
    report
        .data
        .insert("bytes_read".into(), serde_json::json!(read));
    report.finish();
    report
}

fn add_findings(report: &mut Report, findings: Vec<Finding>) {
    for f in &findings {
        if let Some(rule) = crate::registry::find(&f.rule_id) {
            report.add_rules(&[rule]);
        }
    }
    report.extend(findings);
}

/// The text summary: objects, bytes read against bytes stored.
fn tail(report: &Report) -> String {
    let n = |k: &str| report.data.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let (stored, read) = (n("bytes_stored"), n("bytes_read"));
    let share = if stored > 0 {
        format!(" ({:.3}%)", 100.0 * read as f64 / stored as f64)
    } else {
        String::new()
    };
    format!(
        "Objects: {} scanned, {} skipped (not a model format), {} unchanged since --state, {} unreadable\n\
Bytes: {read} read of {stored} stored{share}\nFindings: {}\n",
        n("scanned"),
        report.data.get("skipped").and_then(|s| s["count"].as_u64()).unwrap_or(0),
        n("unchanged"),
        report.errors.len(),
        report.findings.len()
    )
}

/// `aisec report merge`.
pub fn report(cmd: ReportCommand) -> anyhow::Result<i32> {
    let ReportAction::Merge(args) = cmd.action;
    let mut records = Vec::new();
    let mut reports = Vec::new();
    for f in &args.files {
        let bytes = read_bounded(f, MAX_INPUT_BYTES)
            .with_context(|| format!("cannot read {}", f.display()))?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
        // A JSON report is one object with `findings`; records are one object a line.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            if v.get("findings").is_some() && v.get("object").is_none() {
                reports.push(
                    report_from_json(&v)
                        .with_context(|| format!("{}: not an aisec JSON report", f.display()))?,
                );
                continue;
            }
        }
        if first.is_some() && first != Some(b'{') {
            anyhow::bail!(
                "{}: neither a JSON report nor JSON Lines records",
                f.display()
            );
        }
        for (i, line) in bytes.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let rec: ObjectScan = serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not an aisec scan record", f.display(), i + 1))?;
            records.push(rec);
        }
    }
    let mut merged = report_from_records(records);
    for r in reports {
        merge_report(&mut merged, r);
    }
    merged
        .data
        .insert("merged_files".into(), serde_json::json!(args.files.len()));
    let unreadable = !merged.errors.is_empty();
    let t = tail(&merged);
    let code = crate::run::finish_with_tail(merged, &args.output, &t)?;
    if code == 0 && unreadable {
        return Ok(crate::run::FAILED);
    }
    Ok(code)
}

/// Merges one JSON report into the running total (`Report::merge` adds
/// the byte counts up and keeps per-source values of other keys).
fn merge_report(merged: &mut Report, other: Report) {
    merged.merge(other);
}

/// A `--format json` report read back: findings (rules from the registry),
/// errors and counts.
fn report_from_json(v: &serde_json::Value) -> anyhow::Result<Report> {
    let mut r = Report::new(v["command"].as_str().unwrap_or("scan"));
    let findings: Vec<Finding> = serde_json::from_value(v["findings"].clone())?;
    add_findings(&mut r, findings);
    if let Some(errs) = v.get("errors") {
        r.errors = serde_json::from_value(errs.clone())?;
    }
    if let Some(s) = v.get("summary") {
        r.summary.items = s["items"].as_u64().unwrap_or(0);
        r.summary.bytes = s["bytes"].as_u64().unwrap_or(0);
    }
    for k in ["bytes_stored", "bytes_read"] {
        if let Some(x) = v.get("data").and_then(|d| d.get(k)) {
            r.data.insert(k.into(), x.clone());
        }
    }
    r.finish();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_json(stored: u64, read: u64) -> Report {
        let v = serde_json::json!({
            "command": "scan",
            "findings": [],
            "errors": [],
            "summary": {"items": 1, "bytes": read},
            "data": {"bytes_stored": stored, "bytes_read": read},
        });
        report_from_json(&v).expect("a valid report")
    }

    #[test]
    fn merging_json_reports_adds_their_byte_counts() {
        let mut merged = report_from_records(Vec::new());
        merge_report(&mut merged, report_json(1000, 10));
        merge_report(&mut merged, report_json(500, 7));
        assert_eq!(merged.data["bytes_stored"], serde_json::json!(1500));
        assert_eq!(merged.data["bytes_read"], serde_json::json!(17));
        assert_eq!(merged.summary.items, 2);
    }
}
