//! `aisec-scan`: the model-artifact scanner driver.
//!
//! It turns paths into findings without ever running, importing or
//! unpickling what it reads:
//!
//! 1. [`walk`] expands the paths (directories recursively, `-` for stdin)
//!    and maps each regular file read-only, so only the bytes a parser looks
//!    at are ever read from disk (a 1 GB checkpoint costs its pickle, not its
//!    tensors);
//! 2. [`detect`] decides the format from the bytes, never the suffix, and a
//!    suffix that lies is reported;
//! 3. containers (PyTorch zip and tar checkpoints, Keras v3, NumPy `.npz`,
//!    plain zip/tar archives, compressed streams) are opened with the
//!    tolerant, bounded readers of `aisec-archive`, and their members are
//!    scanned recursively up to a depth limit;
//! 4. leaf formats go to `aisec-pickle` (pickle, legacy PyTorch, joblib,
//!    NumPy) or `aisec-formats` (HDF5/Keras, SavedModel, ONNX, GGUF,
//!    safetensors), which return findings;
//! 5. everything is gathered into an [`aisec_core::Report`].
//!
//! Files are scanned in parallel with rayon.

pub mod config;
mod container;
pub mod detect;
pub mod pysrc;
pub mod rules;
#[cfg(unix)]
mod sigbus;
pub mod walk;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aisec_core::{Finding, Location, Report, Rule};
use rayon::prelude::*;

pub use config::{Config, ConfigError};
pub use detect::{detect, Format};
pub use rules::RULES;

/// Default bound on standard input (was 4 GiB, which `/dev/zero` filled
/// before the error; issue 19).
pub const DEFAULT_MAX_STDIN: u64 = 256 << 20;

/// Everything that tunes a scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Which pickle globals are allowed.
    pub policy: aisec_pickle::Policy,
    /// Bounds for the pickle machine.
    pub pickle_limits: aisec_pickle::Limits,
    /// Bounds for archive and decompression readers.
    pub archive_limits: aisec_archive::Limits,
    /// How many containers deep to follow (a zip in a zip is depth 2).
    pub max_depth: u32,
    /// Follow symbolic links while walking directories.
    pub follow_links: bool,
    /// Largest stdin input read, in bytes (default 256 MiB: stdin must be
    /// held in memory, unlike a mapped file; scan large files by path).
    pub max_stdin_bytes: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            policy: aisec_pickle::Policy::default(),
            pickle_limits: aisec_pickle::Limits::default(),
            archive_limits: aisec_archive::Limits::default(),
            max_depth: 5,
            follow_links: false,
            max_stdin_bytes: DEFAULT_MAX_STDIN,
        }
    }
}

/// One scanned input file and what was found in it.
#[derive(Debug, Clone)]
pub struct FileResult {
    /// The path as the user gave it (or the path below a directory).
    pub path: String,
    /// Detected top-level format.
    pub format: Format,
    /// Size in bytes.
    pub bytes: u64,
    /// Findings in this file and its members.
    pub findings: Vec<Finding>,
    /// A read error, when the file could not be read at all.
    pub error: Option<String>,
}

/// The scanner. Cheap to share across threads.
///
/// Every top-level input gets its own [`aisec_archive::FileBudget`]
/// (inflated bytes and entries across all its nested containers), and all
/// inputs draw inflated buffers from one [`aisec_archive::MemoryPool`] of
/// `archive_limits.max_total_bytes`, so `-j N` does not multiply the memory
/// a decompression bomb can take (issue 19).
#[derive(Debug, Clone)]
pub struct Scanner {
    opts: Arc<ScanOptions>,
    pool: Arc<aisec_archive::MemoryPool>,
    budget: Arc<aisec_archive::FileBudget>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new(ScanOptions::default())
    }
}

/// Every rule any part of the scanner can report: the driver's own
/// [`RULES`] and those of the leaf parsers it calls.
pub fn all_rules() -> Vec<&'static Rule> {
    [
        RULES,
        aisec_pickle::RULES,
        aisec_formats::RULES,
        aisec_archive::RULES,
    ]
    .concat()
}

impl Scanner {
    /// A scanner with these options.
    pub fn new(opts: ScanOptions) -> Self {
        let pool = Arc::new(aisec_archive::MemoryPool::new(
            opts.archive_limits.max_total_bytes,
        ));
        let budget = Arc::new(aisec_archive::FileBudget::new(
            &opts.archive_limits,
            pool.clone(),
        ));
        Scanner {
            opts: Arc::new(opts),
            pool,
            budget,
        }
    }

    /// The same scanner with a fresh budget for one top-level input.
    fn for_one_file(&self) -> Scanner {
        Scanner {
            opts: self.opts.clone(),
            pool: self.pool.clone(),
            budget: Arc::new(aisec_archive::FileBudget::new(
                &self.opts.archive_limits,
                self.pool.clone(),
            )),
        }
    }

    /// The budget of the input being scanned.
    pub(crate) fn budget(&self) -> &aisec_archive::FileBudget {
        &self.budget
    }

    /// The options in use.
    pub fn options(&self) -> &ScanOptions {
        &self.opts
    }

    /// Scans in-memory bytes as one artifact named `name`.
    pub fn scan_bytes(&self, data: &[u8], name: &str) -> FileResult {
        let loc = Location::path(name);
        let mut findings = Vec::new();
        let sc = self.for_one_file();
        let format = container::scan_artifact(&sc, data, &loc, name, 0, &mut findings);
        FileResult {
            path: name.to_string(),
            format,
            bytes: data.len() as u64,
            findings,
            error: None,
        }
    }

    /// Scans one file from disk.
    pub fn scan_file(&self, path: &std::path::Path, display: &str) -> FileResult {
        match walk::Mapped::open(path) {
            Ok(m) => self.scan_mapped(&m, display),
            Err(e) => FileResult {
                path: display.to_string(),
                format: Format::Unknown,
                bytes: 0,
                findings: Vec::new(),
                error: Some(e.to_string()),
            },
        }
    }

    /// Scans an opened file. If it changed while being scanned (a mapped
    /// page vanished because the file was truncated, or its length moved),
    /// the findings are discarded and the file gets an error instead.
    pub fn scan_mapped(&self, m: &walk::Mapped, display: &str) -> FileResult {
        let mut r = self.scan_bytes(m.bytes(), display);
        r.bytes = m.len();
        if let Some(why) = m.changed() {
            r.findings.clear();
            r.error = Some(format!(
                "{display}: file changed while it was being scanned ({why}); not analysed"
            ));
        }
        r
    }

    /// Scans paths (files, directories, or `-` for stdin) and returns the
    /// report. `on_file` is called after each file (for progress bars).
    pub fn scan_paths(&self, paths: &[PathBuf], on_file: &(dyn Fn(&FileResult) + Sync)) -> Report {
        let start = Instant::now();
        let mut report = Report::new("scan");
        report.add_rules(&all_rules());
        let mut files = Vec::new();
        for p in paths {
            if p.as_os_str() == "-" {
                files.push(walk::Input::Stdin);
                continue;
            }
            match walk::expand(p, self.opts.follow_links) {
                Ok(mut v) => files.append(&mut v),
                Err(e) => report.error(p.display().to_string(), e.to_string()),
            }
        }
        let bytes = AtomicU64::new(0);
        let results: Vec<FileResult> = files
            .par_iter()
            .map(|input| {
                let r = match input {
                    walk::Input::File { path, display } => self.scan_file(path, display),
                    walk::Input::Stdin => match walk::read_stdin(self.opts.max_stdin_bytes) {
                        Ok(buf) => self.scan_bytes(&buf, "-"),
                        Err(e) => FileResult {
                            path: "-".into(),
                            format: Format::Unknown,
                            bytes: 0,
                            findings: Vec::new(),
                            error: Some(e.to_string()),
                        },
                    },
                    walk::Input::Unreadable { display, message } => FileResult {
                        path: display.clone(),
                        format: Format::Unknown,
                        bytes: 0,
                        findings: Vec::new(),
                        error: Some(message.clone()),
                    },
                };
                bytes.fetch_add(r.bytes, Ordering::Relaxed);
                on_file(&r);
                r
            })
            .collect();
        let mut formats = serde_json::Map::new();
        // Files no parser recognised and nothing flagged: read, but not
        // scanned. Named (the first MAX_NAMED) and counted, so a run that
        // read nothing it understands does not look clean.
        const MAX_NAMED: usize = 200;
        let (mut skipped, mut skipped_names, mut scanned) = (0u64, Vec::new(), 0u64);
        for r in results {
            report.summary.items += 1;
            if let Some(e) = r.error {
                report.error(r.path, e);
                continue;
            }
            if r.format == Format::Unknown && r.findings.is_empty() {
                skipped += 1;
                if skipped_names.len() < MAX_NAMED {
                    skipped_names.push(serde_json::json!(r.path));
                }
            } else {
                scanned += 1;
            }
            let n = formats
                .entry(r.format.name().to_string())
                .or_insert(serde_json::json!(0));
            *n = serde_json::json!(n.as_u64().unwrap_or(0) + 1);
            report.extend(r.findings);
        }
        report.summary.bytes = bytes.load(Ordering::Relaxed);
        report.summary.seconds = start.elapsed().as_secs_f64();
        report
            .data
            .insert("formats".into(), serde_json::Value::Object(formats));
        report
            .data
            .insert("scanned".into(), serde_json::json!(scanned));
        report.data.insert(
            "skipped".into(),
            serde_json::json!({
                "count": skipped,
                "reason": "not a model format aisec reads (unsupported or not a model)",
                "files": skipped_names,
            }),
        );
        report.finish();
        report
    }
}
