//! Dispatch: one artifact's bytes to the right parser, containers opened
//! and their members scanned recursively.

use aisec_archive::{SevenZArchive, SevenZKind, TarArchive, ZipArchive, ZipEntry};
use aisec_core::{Finding, Location};

use crate::detect::{claimed, claims_safe_format, detect, Format};
use crate::rules::{DISGUISED, HF_REMOTE_CODE, LIMIT, MALFORMED, SUFFIX_MISMATCH, TOO_DEEP};
use crate::Scanner;

/// Scans one artifact (a file, an archive member or a decompressed
/// stream) and appends its findings. Returns the detected format.
pub(crate) fn scan_artifact(
    sc: &Scanner,
    data: &[u8],
    loc: &Location,
    name: &str,
    depth: u32,
    out: &mut Vec<Finding>,
) -> Format {
    if let Some((stream, _declared)) = aisec_archive::joblib_zfile(data) {
        // joblib < 0.10 "ZF" files: a zlib stream behind a short header.
        if descend(sc, depth, loc, out) {
            let inner = loc.clone().with_member("<joblib zfile>");
            let c = aisec_archive::Compression::Zlib;
            scan_decompressed(sc, stream, c, loc, &inner, name, depth, out);
        }
        return Format::Compressed(aisec_archive::Compression::Zlib);
    }
    let fmt = detect(data, name);
    check_suffix(data, name, fmt, loc, out);
    let o = &sc.opts;
    if matches!(fmt, Format::SavedModel | Format::GraphDef) && is_pbtxt(name) {
        let r = aisec_formats::savedmodel::scan_saved_model_text(data, loc);
        leaf(sc, r, loc, depth, out);
        return fmt;
    }
    match fmt {
        Format::Pickle => {
            let r = aisec_pickle::scan_pickle(data, loc, &o.policy, &o.pickle_limits);
            out.extend(r.findings);
        }
        Format::Npy => {
            let r = aisec_pickle::scan_npy(data, loc, &o.policy, &o.pickle_limits);
            out.extend(r.findings);
        }
        Format::H5 | Format::Gguf | Format::Safetensors | Format::Onnx | Format::SavedModel => {
            // Formats that hold no other artifact: one parser each.
            let parse: Option<fn(&[u8], &Location) -> aisec_formats::FormatReport> = match fmt {
                Format::H5 => Some(aisec_formats::h5::scan_h5),
                Format::Gguf => Some(aisec_formats::gguf::scan_gguf),
                Format::Safetensors => Some(aisec_formats::safetensors::scan_safetensors),
                Format::Onnx => Some(aisec_formats::onnx::scan_onnx),
                Format::SavedModel => Some(aisec_formats::savedmodel::scan_saved_model),
                _ => None,
            };
            if let Some(parse) = parse {
                leaf(sc, parse(data, loc), loc, depth, out);
            }
        }
        Format::GraphDef => {
            let base = name.rsplit('/').next().unwrap_or(name);
            let r = if base.eq_ignore_ascii_case("keras_metadata.pb") {
                aisec_formats::savedmodel::scan_keras_metadata(data, loc)
            } else {
                aisec_formats::savedmodel::scan_graph_def(data, loc)
            };
            leaf(sc, r, loc, depth, out)
        }
        Format::Zip => {
            if descend(sc, depth, loc, out) {
                match ZipArchive::parse(data) {
                    Ok(z) => {
                        scan_zip(sc, &z, loc, depth, out);
                        // After the reads: CRC mismatches are noticed while reading.
                        out.extend(z.anomalies(loc));
                    }
                    Err(e) => out.push(MALFORMED.finding(loc.clone(), format!("zip: {e}"))),
                }
            }
        }
        Format::Tar => {
            if descend(sc, depth, loc, out) {
                match TarArchive::parse(data) {
                    Ok(t) => {
                        out.extend(t.anomalies(loc));
                        scan_tar(sc, &t, loc, depth, out);
                    }
                    Err(e) => out.push(MALFORMED.finding(loc.clone(), format!("tar: {e}"))),
                }
            }
        }
        Format::SevenZ => {
            if descend(sc, depth, loc, out) {
                let limits = aisec_archive::Limits {
                    max_entries: sc.opts.archive_limits.max_entries,
                    ..sc.opts.archive_limits
                };
                match SevenZArchive::parse_with_limits(data, &limits) {
                    Ok(mut a) => {
                        scan_7z(sc, &mut a, loc, depth, out);
                        // After the reads: CRC mismatches and links are noticed while reading.
                        out.extend(a.anomalies(loc));
                    }
                    Err(e) => out.push(MALFORMED.finding(loc.clone(), format!("7z: {e}"))),
                }
            }
        }
        Format::Compressed(c) => {
            if descend(sc, depth, loc, out) {
                let inner = loc.clone().with_member(format!("<{c:?} stream>"));
                scan_decompressed(sc, data, c, loc, &inner, name, depth, out);
            }
        }
        Format::Unknown => {
            // The files themselves, when the config is a file on disk: read
            // beside it. Inside an archive, the container collects the
            // members and calls [`hf_auto_map`] itself (see [`HfRepo`]).
            let files = if loc.member.is_none() {
                RepoFiles::Dir(
                    std::path::Path::new(name)
                        .parent()
                        .map(std::path::Path::to_path_buf)
                        .unwrap_or_default(),
                )
            } else {
                RepoFiles::None
            };
            hf_auto_map(data, loc, name, &files, out)
        }
    }
    fmt
}

/// Text-format protobuf, by the name TensorFlow's loader goes by.
fn is_pbtxt(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.to_ascii_lowercase().ends_with(".pbtxt")
}

/// Inflates a compressed stream within the archive limits, reports a cut
/// at the limit or a corrupt tail, and scans what came out as `inner`.
// The recursion's context (scanner, location, name, depth, findings) as
// `scan_artifact` takes it, plus the stream and its inner location.
#[allow(clippy::too_many_arguments)]
fn scan_decompressed(
    sc: &Scanner,
    data: &[u8],
    c: aisec_archive::Compression,
    loc: &Location,
    inner: &Location,
    name: &str,
    depth: u32,
    out: &mut Vec<Finding>,
) {
    let limits = &sc.opts.archive_limits;
    let mut grant = sc
        .budget()
        .reserve_inflate(limits.output_cap(data.len() as u64));
    if grant.bytes == 0 {
        out.push(LIMIT.finding(
            inner.clone(),
            format!(
                "not decompressed: the {} is spent (possible recursive decompression bomb)",
                grant.short_by.unwrap_or("decompression budget")
            ),
        ));
        return;
    }
    let capped = aisec_archive::Limits {
        max_entry_bytes: grant.bytes,
        ..*limits
    };
    match aisec_archive::decompress(data, c, &capped) {
        Ok(d) => {
            sc.budget().settle(&mut grant, d.bytes.len() as u64);
            if d.truncated_at_limit {
                out.push(LIMIT.finding(
                    inner.clone(),
                    format!(
                        "decompressed output reached the {}-byte limit{}; the rest was not analysed",
                        grant.bytes,
                        budget_reason(&grant)
                    ),
                ));
            }
            if let Some(err) = &d.error {
                out.push(MALFORMED.finding(
                    inner.clone(),
                    format!(
                        "{c:?} stream is corrupt after {} bytes: {err}",
                        d.bytes.len()
                    ),
                ));
            }
            let inner_name = strip_compression_suffix(name);
            scan_artifact(sc, &d.bytes, inner, inner_name, depth + 1, out);
        }
        Err(e) => {
            sc.budget().settle(&mut grant, 0);
            out.push(MALFORMED.finding(loc.clone(), format!("{c:?}: {e}")))
        }
    }
}

/// Why a grant was smaller than asked, as a clause for a finding.
fn budget_reason(g: &aisec_archive::Grant) -> String {
    match g.short_by {
        Some(why) => format!(" (set by the {why})"),
        None => String::new(),
    }
}

/// Counts entries a container could not open because the file's entry or
/// byte budget was spent, and reports them once.
#[derive(Default)]
struct Skipped {
    count: usize,
    why: Option<String>,
}

impl Skipped {
    fn add(&mut self, why: impl FnOnce() -> String) {
        self.count += 1;
        if self.why.is_none() {
            self.why = Some(why());
        }
    }

    /// Takes one entry from the scan's entry budget; when it is spent,
    /// counts the entry as skipped and returns false.
    fn take_entry(&mut self, sc: &Scanner) -> bool {
        let took = sc.budget().take_entry();
        if !took {
            self.add(|| {
                format!(
                    "the per-file budget of {} entries across nested containers is spent",
                    sc.budget().entries_total()
                )
            });
        }
        took
    }

    fn report(self, loc: &Location, out: &mut Vec<Finding>) {
        if let Some(why) = self.why {
            out.push(LIMIT.finding(
                loc.clone(),
                format!(
                    "{} entries not analysed: {why} (possible recursive or overlapping-entry bomb)",
                    self.count
                ),
            ));
        }
    }
}

/// Hugging Face `*config.json` files with `auto_map`: transformers imports
/// the named repository modules under `trust_remote_code=True`.
fn hf_auto_map(
    data: &[u8],
    loc: &Location,
    name: &str,
    files: &RepoFiles<'_>,
    out: &mut Vec<Finding>,
) {
    let base = name.rsplit('/').next().unwrap_or(name);
    if !(base.ends_with("config.json") && data.len() <= 16 << 20) {
        return;
    }
    // serde_json limits nesting to 128 levels; the size is bounded above.
    let Ok(serde_json::Value::Object(root)) = serde_json::from_slice::<serde_json::Value>(data)
    else {
        return;
    };
    let Some(serde_json::Value::Object(map)) = root.get("auto_map") else {
        return;
    };
    let mut refs: Vec<String> = Vec::new();
    let mut local: Vec<String> = Vec::new();
    for (auto, v) in map.iter().take(64) {
        let targets: Vec<&str> = match v {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str()).take(4).collect(),
            _ => Vec::new(),
        };
        for t in targets {
            // "module.Class" -> module.py; "other/repo--module.Class" -> another repo
            let (repo, rest) = match t.split_once("--") {
                Some((r, rest)) => (Some(r), rest),
                None => (None, t),
            };
            let module = rest.rsplit_once('.').map_or(rest, |(m, _)| m);
            let file = format!("{}.py", module.replace('.', "/"));
            let r = match repo {
                Some(r) => format!("{auto}: {file} from repository '{r}'"),
                None => format!("{auto}: {file}"),
            };
            if repo.is_none() && !local.contains(&module.to_string()) {
                local.push(module.to_string());
            }
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    }
    if refs.is_empty() {
        return;
    }
    let shown: Vec<String> = refs.iter().take(8).cloned().collect();
    let mut evidence = format!(
        "auto_map runs repository code under trust_remote_code=True: {}{}",
        shown.join("; "),
        if refs.len() > 8 { "; …" } else { "" }
    );
    // The files themselves (beside it on disk, or members of the same
    // archive): parsed, never run.
    let mut severity = aisec_core::Severity::High;
    if !matches!(files, RepoFiles::None) {
        let all_local = refs.len() == local.len() && !local.is_empty();
        let before = out.len();
        let read = scan_remote_code(files, local, out);
        let worst = out[before..].iter().map(|f| f.severity).max();
        // Every file was found and parsed, none from another repository, and
        // nothing in them reaches processes, code, network, dynamic imports,
        // unpickling or load-time file writes: the remote code was read, so
        // the verdict rests on it (medium: it is still code that runs).
        if all_local && read.unreadable == 0 && worst <= Some(aisec_core::Severity::Low) {
            severity = aisec_core::Severity::Medium;
            evidence.push_str(&format!(
                "; the {} file(s) it loads were parsed: no process, code-execution, network, \
dynamic-import, unpickling or load-time file-write calls",
                read.parsed
            ));
        }
    }
    out.push(
        HF_REMOTE_CODE
            .finding(loc.clone(), evidence)
            .severity(severity),
    );
}

/// What [`scan_remote_code`] could read.
#[derive(Default)]
struct RemoteRead {
    parsed: usize,
    unreadable: usize,
}

/// A module name from auto_map or a relative import as a `/`-separated
/// file path relative to the repository root, or `None` when it is not a
/// plain dotted name (so it cannot leave the repository).
fn module_file(module: &str) -> Option<String> {
    let comps: Vec<&str> = module.split('.').collect();
    if comps
        .iter()
        .any(|c| c.is_empty() || !c.chars().all(|ch| ch.is_alphanumeric() || ch == '_'))
    {
        return None;
    }
    Some(format!("{}.py", comps.join("/")))
}

/// Where the Python files an `auto_map` names are read from.
pub(crate) enum RepoFiles<'a> {
    /// Not available (a config scanned alone, from bytes).
    None,
    /// The directory holding the config on disk.
    Dir(std::path::PathBuf),
    /// Members of the archive holding the config: `prefix` is the config's
    /// folder inside it (`""` or ending in `/`).
    Archive {
        files: &'a std::collections::HashMap<String, Vec<u8>>,
        prefix: String,
        archive: &'a Location,
    },
}

impl RepoFiles<'_> {
    /// The location and bytes (at most `limit + 1`) of a repository file.
    fn read(&self, rel: &str, limit: usize) -> (Location, Result<Vec<u8>, String>) {
        match self {
            RepoFiles::None => (Location::path(rel), Err("no repository to read".into())),
            RepoFiles::Dir(dir) => {
                let mut p = dir.clone();
                for c in rel.split('/') {
                    p.push(c);
                }
                let loc = Location::path(p.display().to_string());
                (loc, read_source(&p, limit))
            }
            RepoFiles::Archive {
                files,
                prefix,
                archive,
            } => {
                let key = format!("{prefix}{rel}");
                let loc = (*archive).clone().with_member(key.clone());
                let r = match files.get(&key) {
                    Some(b) => Ok(b[..b.len().min(limit + 1)].to_vec()),
                    None => Err("not in the archive (or over the collection bounds)".into()),
                };
                (loc, r)
            }
        }
    }
}

/// The Hugging Face repository parts of one archive (a repo folder zipped,
/// tarred or 7z-packed): configs with `auto_map` are judged after every
/// member has been seen, with the archive's `.py` members as the repo files.
#[derive(Default)]
struct HfRepo {
    configs: Vec<(Location, String, Vec<u8>)>,
    py: std::collections::HashMap<String, Vec<u8>>,
    py_bytes: usize,
}

impl HfRepo {
    const MAX_CONFIGS: usize = 16;
    const MAX_PY_FILES: usize = 512;
    const MAX_PY_BYTES: usize = 64 << 20;

    /// Keeps what a later `auto_map` judgement needs. Returns true when the
    /// member is a config kept for later (the caller does not scan it now).
    fn collect(&mut self, name: &str, data: &[u8], member: &Location) -> bool {
        if name.ends_with(".py")
            && data.len() <= crate::pysrc::MAX_SOURCE
            && self.py.len() < Self::MAX_PY_FILES
            && self.py_bytes + data.len() <= Self::MAX_PY_BYTES
        {
            self.py_bytes += data.len();
            self.py.insert(name.to_string(), data.to_vec());
            return false;
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.ends_with("config.json")
            && data.len() <= 16 << 20
            && self.configs.len() < Self::MAX_CONFIGS
            && data.windows(10).any(|w| w == b"\"auto_map\"")
            && detect(data, name) == Format::Unknown
        {
            self.configs
                .push((member.clone(), name.to_string(), data.to_vec()));
            return true;
        }
        false
    }

    fn finish(self, archive: &Location, out: &mut Vec<Finding>) {
        for (member, name, data) in &self.configs {
            let prefix = name
                .rfind('/')
                .map_or(String::new(), |i| name[..=i].to_string());
            let files = RepoFiles::Archive {
                files: &self.py,
                prefix,
                archive,
            };
            hf_auto_map(data, member, name, &files, out);
        }
    }
}

/// Reads at most `limit + 1` bytes of a regular file (no symlinks).
fn read_source(p: &std::path::Path, limit: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let md = std::fs::symlink_metadata(p).map_err(|e| e.to_string())?;
    if !md.is_file() {
        return Err("not a regular file (symlinks are not followed)".into());
    }
    let f = std::fs::File::open(p).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Scans the Python files auto_map names, and the files they import
/// relatively, up to [`crate::pysrc::MAX_FILES`].
fn scan_remote_code(
    files: &RepoFiles<'_>,
    modules: Vec<String>,
    out: &mut Vec<Finding>,
) -> RemoteRead {
    use crate::pysrc;
    let mut read = RemoteRead::default();
    let mut queue: std::collections::VecDeque<String> = modules.into_iter().collect();
    let mut done: Vec<String> = Vec::new();
    while let Some(m) = queue.pop_front() {
        if done.contains(&m) || done.len() >= pysrc::MAX_FILES {
            continue;
        }
        done.push(m.clone());
        let Some(rel) = module_file(&m) else {
            continue;
        };
        let (loc, src) = files.read(&rel, pysrc::MAX_SOURCE);
        let src = match src {
            Ok(s) => s,
            Err(e) => {
                read.unreadable += 1;
                out.push(
                    crate::rules::HF_REMOTE_CODE_CALL
                        .finding(loc, format!("remote-code file not analysed: {e}"))
                        .severity(aisec_core::Severity::Low),
                );
                continue;
            }
        };
        let r = pysrc::scan_python(&src, &loc);
        if let Some(why) = r.not_analysed {
            read.unreadable += 1;
            out.push(
                crate::rules::HF_REMOTE_CODE_CALL
                    .finding(loc, format!("remote-code file not analysed: {why}"))
                    .severity(aisec_core::Severity::Medium),
            );
            continue;
        }
        read.parsed += 1;
        out.extend(r.findings);
        for rel in r.relative {
            // `from .a.b import c` in pkg/m.py is relative to pkg/.
            let base = m
                .rsplit_once('.')
                .map_or(String::new(), |(p, _)| format!("{p}."));
            queue.push_back(format!("{base}{rel}"));
        }
    }
    read
}

/// Adds a leaf parser's findings, and a malformed-artifact finding when it
/// gave up part-way without reporting that itself.
fn leaf(
    sc: &Scanner,
    r: aisec_formats::FormatReport,
    loc: &Location,
    depth: u32,
    out: &mut Vec<Finding>,
) {
    // Artifacts a loader deserialises from inside this one (a Keras
    // TorchModuleWrapper's base64 torch checkpoint) are scanned as artifacts.
    for e in &r.embedded {
        if descend(sc, depth, loc, out) {
            let inner = loc.clone().with_member(e.name.clone());
            scan_artifact(sc, &e.bytes, &inner, &e.name, depth + 1, out);
        }
    }
    let reported = r
        .findings
        .iter()
        .any(|f| f.rule_id.contains("MALFORMED") || f.title.to_lowercase().contains("malformed"));
    out.extend(r.findings);
    if let Some(m) = r.malformed {
        if !reported {
            out.push(MALFORMED.finding(loc.clone(), m));
        }
    }
}

/// Checks the depth limit before opening a container; reports when it is hit.
fn descend(sc: &Scanner, depth: u32, loc: &Location, out: &mut Vec<Finding>) -> bool {
    if depth >= sc.opts.max_depth {
        out.push(TOO_DEEP.finding(
            loc.clone(),
            format!("container at depth {depth}; limit is {}", sc.opts.max_depth),
        ));
        return false;
    }
    true
}

fn check_suffix(data: &[u8], name: &str, fmt: Format, loc: &Location, out: &mut Vec<Finding>) {
    let Some(claim) = claimed(name) else { return };
    if claim.contains(&fmt.name()) {
        return;
    }
    let base = name.rsplit('/').next().unwrap_or(name);
    let cut_onnx = || {
        claim
            .contains(&"onnx")
            .then(|| aisec_formats::onnx::truncated_onnx(data))
            .flatten()
    };
    if fmt == Format::Unknown {
        // A cut-off ONNX file is damaged, not something else in disguise.
        if let Some(why) = cut_onnx() {
            out.push(MALFORMED.finding(loc.clone(), why));
            return;
        }
        out.push(SUFFIX_MISMATCH.finding(
            loc.clone(),
            format!("'{base}' is not recognisable as {}", claim.join(" or ")),
        ));
    } else if claims_safe_format(name) && fmt.can_execute_code() {
        out.push(DISGUISED.finding(
            loc.clone(),
            format!(
                "'{base}' claims {} but holds {}",
                claim.join(" or "),
                fmt.name()
            ),
        ));
    } else {
        out.push(SUFFIX_MISMATCH.finding(
            loc.clone(),
            format!(
                "'{base}' claims {} but holds {}",
                claim.join(" or "),
                fmt.name()
            ),
        ));
    }
}

fn strip_compression_suffix(name: &str) -> &str {
    for s in [
        ".gz", ".z", ".bz2", ".xz", ".lzma", ".lz4", ".zlib", ".zst", ".zstd",
    ] {
        if let Some(stripped) = name.strip_suffix(s) {
            return stripped;
        }
    }
    name
}

/// A torch zip written by `torch.jit.save`: TorchScript code beside the pickles.
fn is_torchscript(entries: &[ZipEntry], root: &str) -> bool {
    entries.iter().any(|e| {
        e.name
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with("code/") || rest == "constants.pkl")
    })
}

/// What kind of zip this is, from its member names.
#[derive(Debug, PartialEq, Eq)]
enum ZipKind {
    /// `torch.save`: `<root>/data.pkl` plus `<root>/data/<n>` storages.
    Torch { root: String },
    /// Keras v3 `.keras`: `config.json` + `model.weights.h5`.
    Keras,
    /// NumPy `.npz`: only `.npy` members.
    Npz,
    /// Anything else.
    Plain,
}

fn zip_kind(entries: &[ZipEntry]) -> ZipKind {
    for e in entries {
        // torch.save writes `<root>/data.pkl`; the root folder name is free.
        if let Some(root) = e.name.strip_suffix("data.pkl") {
            if root.is_empty() || (root.ends_with('/') && root.matches('/').count() == 1) {
                return ZipKind::Torch {
                    root: root.to_string(),
                };
            }
        }
    }
    let has = |n: &str| entries.iter().any(|e| e.name == n);
    if has("config.json") && (has("model.weights.h5") || has("metadata.json")) {
        return ZipKind::Keras;
    }
    if !entries.is_empty() && entries.iter().all(|e| e.name.ends_with(".npy")) {
        return ZipKind::Npz;
    }
    ZipKind::Plain
}

fn scan_zip(sc: &Scanner, z: &ZipArchive<'_>, loc: &Location, depth: u32, out: &mut Vec<Finding>) {
    let kind = zip_kind(z.entries());
    let overlapping = z.has_overlapping_entries();
    let mut skipped = Skipped::default();
    let mut hf = HfRepo::default();
    // `torch.jit.save` archives: `<root>/code/` holds TorchScript source and
    // `<root>/constants.pkl` tensor constants; their pickles are read by
    // TorchScript's own unpickler with its list builders
    // (`torch.jit._pickle.build_intlist`...), allowed by the `torchscript`
    // profile for this archive only.
    let torchscript_policy = match &kind {
        ZipKind::Torch { root } if is_torchscript(z.entries(), root) => {
            sc.opts.policy.clone().with_profile("torchscript").ok()
        }
        _ => None,
    };
    for e in z.entries() {
        if e.name.ends_with('/') {
            continue;
        }
        let member = loc.clone().with_member(e.name.clone());
        if let ZipKind::Torch { root } = &kind {
            // Tensor storages are raw numbers that torch never unpickles;
            // skipping them is what keeps a 1 GB checkpoint cheap.
            if let Some(rest) = e.name.strip_prefix(root.as_str()) {
                let storage = rest
                    .strip_prefix("data/")
                    .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()));
                if storage
                    || rest == "version"
                    || rest == "byteorder"
                    || rest == ".data/version"
                    || rest == ".data/serialization_id"
                {
                    continue;
                }
            }
        }
        if e.method != 0 && e.name.ends_with(".npy") && numeric_npy_member(z, e, sc) {
            // A compressed numeric array: its header says it holds no
            // objects, so nothing in it can be unpickled; inflating the
            // whole array would cost time and prove nothing more.
            continue;
        }
        if !skipped.take_entry(sc) {
            continue;
        }
        let limits = &sc.opts.archive_limits;
        let cap = z.output_cap(e, limits);
        let mut grant = if e.method == 0 && !overlapping {
            // Borrowed from the file, nothing amplified: not charged.
            sc.budget().reserve_borrowed(0)
        } else if e.method == 0 {
            // Overlapping stored entries re-analyse the same bytes.
            sc.budget().reserve_borrowed(cap)
        } else {
            sc.budget().reserve_inflate(cap)
        };
        if grant.short_by.is_some() && (e.method == 0 || grant.bytes == 0) {
            // Stored data is borrowed whole, and nothing can be decoded
            // into an empty grant: skip rather than read past the budget.
            let why = grant.short_by.unwrap_or("decompression budget");
            skipped.add(|| format!("the {why} is spent"));
            continue;
        }
        let capped = aisec_archive::Limits {
            // Stored data is borrowed, not produced: its bound is unchanged.
            max_entry_bytes: if e.method == 0 {
                limits.max_entry_bytes
            } else {
                grant.bytes
            },
            ..*limits
        };
        let read = z.read(e, &capped);
        let over = matches!(read, Err(aisec_archive::ArchiveError::LimitExceeded { .. }));
        let produced = match &read {
            Ok(std::borrow::Cow::Owned(b)) => b.len() as u64,
            // The decoder did that work before stopping: it stays spent.
            Err(_) if over => grant.bytes,
            _ => 0,
        };
        sc.budget().settle(&mut grant, produced);
        if over {
            if let Some(why) = grant.short_by {
                skipped.add(|| format!("the {why} is spent"));
                continue;
            }
        }
        let bytes = match read {
            Ok(b) => b,
            Err(err) if kind == ZipKind::Keras && e.name == "config.json" => {
                // The architecture is where a Lambda would be: not being
                // able to read it must not lower the verdict (issue 19).
                let mut r = aisec_formats::FormatReport::default();
                let mut small = sc.opts.archive_limits;
                small.max_entry_bytes = small
                    .max_entry_bytes
                    .min(aisec_formats::keras::MAX_JSON as u64);
                let prefix = z
                    .read_bounded(e, &small)
                    .map(|d| d.bytes)
                    .unwrap_or_default();
                aisec_formats::keras::unverifiable(
                    &prefix,
                    &member,
                    "config.json",
                    &err.to_string(),
                    &mut r,
                );
                out.extend(r.findings);
                continue;
            }
            Err(err) => {
                let limit = matches!(err, aisec_archive::ArchiveError::LimitExceeded { .. });
                let rule = if limit { &LIMIT } else { &MALFORMED };
                let reason = if limit {
                    budget_reason(&grant)
                } else {
                    String::new()
                };
                out.push(rule.finding(member, format!("{err}{reason}")));
                continue;
            }
        };
        if let Some(policy) = &torchscript_policy {
            if detect(&bytes, &e.name) == Format::Pickle {
                let r = aisec_pickle::scan_pickle(&bytes, &member, policy, &sc.opts.pickle_limits);
                out.extend(r.findings);
                continue;
            }
        }
        if kind == ZipKind::Keras && e.name == "config.json" {
            let r = aisec_formats::keras::scan_keras_config(&bytes, &member);
            leaf(sc, r, &member, depth + 1, out);
            continue;
        }
        if hf.collect(&e.name, &bytes, &member) {
            continue;
        }
        scan_artifact(sc, &bytes, &member, &e.name, depth + 1, out);
    }
    hf.finish(loc, out);
    skipped.report(loc, out);
}

/// Inflates only the first 64 KiB of a compressed `.npy` member and says
/// whether its header declares a plain numeric dtype (no object fields, so
/// no pickle can follow).
fn numeric_npy_member(z: &ZipArchive<'_>, e: &ZipEntry, sc: &Scanner) -> bool {
    let mut small = sc.opts.archive_limits;
    small.max_entry_bytes = small.max_entry_bytes.min(64 << 10);
    let Ok(prefix) = z.read_bounded(e, &small) else {
        return false;
    };
    npy_header_is_numeric(&prefix.bytes)
}

/// Whether an `.npy` header declares a simple dtype string without objects.
pub(crate) fn npy_header_is_numeric(data: &[u8]) -> bool {
    use aisec_pickle::npy::{parse_header_literal, Lit};
    if data.len() < 10 || !data.starts_with(b"\x93NUMPY") {
        return false;
    }
    let (len, start): (usize, usize) = match data[6] {
        1 => (u16::from_le_bytes([data[8], data[9]]) as usize, 10),
        2 | 3 if data.len() >= 12 => (
            u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize,
            12,
        ),
        _ => return false,
    };
    let Some(header) = data.get(start..start.saturating_add(len)) else {
        return false;
    };
    let Ok(Lit::Dict(items)) = parse_header_literal(header) else {
        return false;
    };
    items.iter().any(|(k, v)| {
        *k == Lit::Str("descr".into())
            && matches!(v, Lit::Str(d) if !d.contains('O') && !d.contains('V'))
    })
}

/// Legacy `torch.save(..., _use_new_zipfile_serialization=False)` tar
/// layout: `sys_info`, `pickle`, `storages`, `tensors`.
fn is_torch_tar(t: &TarArchive<'_>) -> bool {
    let names: Vec<&str> = t.entries().iter().map(|e| e.name.as_str()).collect();
    names.contains(&"pickle") && names.contains(&"storages")
}

fn scan_tar(sc: &Scanner, t: &TarArchive<'_>, loc: &Location, depth: u32, out: &mut Vec<Finding>) {
    let torch = is_torch_tar(t);
    let mut skipped = Skipped::default();
    let mut hf = HfRepo::default();
    for e in t.entries() {
        if e.kind != aisec_archive::TarEntryKind::File {
            continue;
        }
        if !skipped.take_entry(sc) {
            continue;
        }

        let member = loc.clone().with_member(e.name.clone());
        if torch
            && matches!(
                e.name.as_str(),
                "pickle" | "sys_info" | "storages" | "tensors"
            )
        {
            // Each of these begins with pickles that torch unpickles; the
            // raw storage bytes that follow in `storages` are not code.
            let r =
                aisec_pickle::scan_pickle(e.data, &member, &sc.opts.policy, &sc.opts.pickle_limits);
            let keep_malformed = matches!(e.name.as_str(), "pickle" | "sys_info");
            out.extend(
                r.findings
                    .into_iter()
                    .filter(|f| keep_malformed || !f.title.to_lowercase().contains("malformed")),
            );
            continue;
        }
        if hf.collect(&e.name, e.data, &member) {
            continue;
        }
        scan_artifact(sc, e.data, &member, &e.name, depth + 1, out);
    }
    hf.finish(loc, out);
    skipped.report(loc, out);
}

/// Opens a 7z archive folder by folder: each folder (a solid block) is
/// decoded once within the file's budget, and its files scanned. A PyTorch
/// checkpoint folder inside (`<root>/data.pkl`) is scanned as torch.load
/// would read it once extracted: its tensor storages are skipped.
fn scan_7z(
    sc: &Scanner,
    a: &mut SevenZArchive<'_>,
    loc: &Location,
    depth: u32,
    out: &mut Vec<Finding>,
) {
    let entries: Vec<aisec_archive::SevenZEntry> = a.entries().to_vec();
    let roots: Vec<String> = entries
        .iter()
        .filter_map(|e| e.name.strip_suffix("data.pkl"))
        .filter(|r| r.is_empty() || r.ends_with('/'))
        .map(str::to_string)
        .collect();
    let is_storage = |name: &str| {
        roots.iter().any(|r| {
            name.strip_prefix(r.as_str()).is_some_and(|rest| {
                rest.strip_prefix("data/")
                    .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
                    || matches!(
                        rest,
                        "version" | "byteorder" | ".data/version" | ".data/serialization_id"
                    )
            })
        })
    };
    let mut skipped = Skipped::default();
    let mut hf = HfRepo::default();
    let limits = &sc.opts.archive_limits;
    for k in 0..a.folders().len() {
        let wanted: Vec<&aisec_archive::SevenZEntry> = entries
            .iter()
            .filter(|e| {
                e.folder == Some(k)
                    && matches!(e.kind, SevenZKind::File | SevenZKind::Symlink)
                    && !is_storage(&e.name)
            })
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let folder_loc = loc.clone().with_member(format!("<7z folder {k}>"));
        let f = &a.folders()[k];
        if f.encrypted() {
            for e in &wanted {
                out.push(aisec_archive::ENCRYPTED_ENTRY.finding(
                    loc.clone().with_member(e.name.clone()),
                    format!(
                        "7z entry '{}' is encrypted (7zAES) and cannot be inspected",
                        e.name
                    ),
                ));
            }
            continue;
        }
        // Only as far as the last wanted file: a storage at the end of a
        // solid block is not decoded.
        let need = wanted
            .iter()
            .map(|e| e.offset.saturating_add(e.size))
            .max()
            .unwrap_or(0)
            .min(f.unpack_size());
        let cap = need.min(limits.output_cap(f.packed_size()));
        let mut grant = sc.budget().reserve_inflate(cap);
        if grant.bytes == 0 && cap > 0 {
            for _ in &wanted {
                skipped.add(|| {
                    format!(
                        "the {} is spent",
                        grant.short_by.unwrap_or("decompression budget")
                    )
                });
            }
            continue;
        }
        let d = match a.read_folder(k, grant.bytes) {
            Ok(d) => d,
            Err(e) => {
                sc.budget().settle(&mut grant, 0);
                let rule = match e {
                    aisec_archive::ArchiveError::UnsupportedMethod { .. } => {
                        &aisec_archive::UNSUPPORTED_METHOD
                    }
                    aisec_archive::ArchiveError::Encrypted { .. } => {
                        &aisec_archive::ENCRYPTED_ENTRY
                    }
                    _ => &MALFORMED,
                };
                let names: Vec<&str> = wanted.iter().take(4).map(|e| e.name.as_str()).collect();
                out.push(rule.finding(
                    folder_loc,
                    format!(
                        "{e}; not analysed: {}{} (coders: {})",
                        names.join(", "),
                        if wanted.len() > 4 { ", …" } else { "" },
                        f.methods().join(" + ")
                    ),
                ));
                continue;
            }
        };
        sc.budget().settle(&mut grant, d.bytes.len() as u64);
        if (d.bytes.len() as u64) < need && d.truncated_at_limit {
            out.push(LIMIT.finding(
                folder_loc.clone(),
                format!(
                    "7z folder output reached the {}-byte limit{}; the rest was not analysed",
                    grant.bytes,
                    budget_reason(&grant)
                ),
            ));
        } else if (d.bytes.len() as u64) < cap && grant.short_by.is_some() {
            out.push(LIMIT.finding(
                folder_loc.clone(),
                format!("7z folder not fully decoded{}", budget_reason(&grant)),
            ));
        }
        if let Some(err) = &d.error {
            out.push(MALFORMED.finding(
                folder_loc.clone(),
                format!("7z folder is corrupt after {} bytes: {err}", d.bytes.len()),
            ));
        }
        for e in wanted {
            if !skipped.take_entry(sc) {
                continue;
            }
            let (bytes, _complete) = a.entry_bytes(e, &d.bytes);
            if e.kind == SevenZKind::Symlink {
                let target = bytes.to_vec();
                a.note_symlink(e, &target);
                continue;
            }
            if bytes.is_empty() && e.size > 0 {
                continue;
            }
            let member = loc.clone().with_member(e.name.clone());
            if hf.collect(&e.name, bytes, &member) {
                continue;
            }
            scan_artifact(sc, bytes, &member, &e.name, depth + 1, out);
        }
    }
    hf.finish(loc, out);
    skipped.report(loc, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str) -> Vec<u8> {
        let h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (3,), }}\n");
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(h.len() as u16).to_le_bytes());
        v.extend_from_slice(h.as_bytes());
        v
    }

    #[test]
    fn numeric_npy_headers_are_recognised() {
        assert!(npy_header_is_numeric(&npy("<f4")));
        assert!(npy_header_is_numeric(&npy("|u1")));
        assert!(!npy_header_is_numeric(&npy("|O")));
        assert!(!npy_header_is_numeric(b"\x93NUMPY\x01\x00\xff\xff{"));
        assert!(!npy_header_is_numeric(b"PK\x03\x04"));
    }

    fn keras_zip(config: &str) -> Vec<u8> {
        use std::io::Write;
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let o = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            z.start_file("metadata.json", o).unwrap();
            z.write_all(br#"{"keras_version":"3.8.0"}"#).unwrap();
            z.start_file("config.json", o).unwrap();
            z.write_all(config.as_bytes()).unwrap();
            z.start_file("model.weights.h5", o).unwrap();
            z.finish().unwrap();
        }
        buf.into_inner()
    }

    /// Issue 19: a Keras v3 Lambda whose config.json is padded past a bound
    /// must keep a critical verdict (it was a medium "over limit" before).
    #[test]
    fn padded_keras_lambda_is_not_downgraded() {
        use aisec_core::Severity;
        let lambda = r#"{"module":"keras","class_name":"Sequential","config":{"layers":[{"module":"keras.layers","class_name":"Lambda","config":{"name":"l","function":{"class_name":"__lambda__","config":{"code":"4wAAAA==","defaults":null,"closure":null}}}}]},"pad":"#;
        let pad = format!("[{}0]", r#"{"":0},"#.repeat(200_000));
        let file = keras_zip(&format!("{lambda}{pad}}}"));
        assert!(file.len() < 64 << 10, "{} bytes", file.len());
        let lambda_stays_critical = |sc: Scanner| {
            let r = sc.scan_bytes(&file, "m.keras");
            let got: Vec<(&str, Severity)> = r
                .findings
                .iter()
                .map(|f| (f.rule_id.as_str(), f.severity))
                .collect();
            assert!(
                got.contains(&("AISEC-KERAS-008", Severity::High)),
                "{got:?}"
            );
            assert!(
                got.contains(&("AISEC-KERAS-001", Severity::Critical)),
                "{got:?}"
            );
        };
        lambda_stays_critical(Scanner::default());

        // config.json larger than the archive's per-entry bound: not even
        // extracted, still high, and the Lambda is found in the prefix.
        let mut opts = crate::ScanOptions::default();
        opts.archive_limits.max_entry_bytes = 256 << 10;
        lambda_stays_critical(Scanner::new(opts));
    }

    #[test]
    fn compressed_object_array_in_npz_is_still_analysed() {
        use std::io::Write;
        let mut member = npy("|O");
        member.extend_from_slice(b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.");
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let o = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            z.start_file("a.npy", o).unwrap();
            z.write_all(&member).unwrap();
            z.start_file("b.npy", o).unwrap();
            z.write_all(&npy("<f8")).unwrap();
            z.write_all(&[0u8; 24]).unwrap();
            z.finish().unwrap();
        }
        let r = Scanner::default().scan_bytes(&buf.into_inner(), "x.npz");
        assert!(
            r.findings
                .iter()
                .any(|f| f.severity == aisec_core::Severity::Critical
                    && f.location.member.as_deref() == Some("a.npy")),
            "{:#?}",
            r.findings
        );
    }

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let o = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            for (n, d) in members {
                z.start_file(*n, o).unwrap();
                z.write_all(d).unwrap();
            }
            z.finish().unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn torchscript_archives_get_their_profile() {
        // What torch.jit.save writes for a module holding an int list.
        let data = b"\x80\x02c__torch__\nNet\nq\x00)\x81}q\x01X\x05\x00\x00\x00sizesq\x02ctorch.jit._pickle\nbuild_intlist\nq\x03]q\x04(K\x01K\x02e\x85Rq\x05sb.";
        let ts = zip_of(&[
            ("m/data.pkl", data),
            ("m/constants.pkl", b"\x80\x02).".as_slice()),
            (
                "m/code/__torch__.py",
                b"class Net(Module):\n  sizes : List[int]\n".as_slice(),
            ),
            ("m/version", b"3\n".as_slice()),
        ]);
        let r = Scanner::default().scan_bytes(&ts, "model.pt");
        assert!(
            r.findings
                .iter()
                .all(|f| f.severity < aisec_core::Severity::High),
            "{:#?}",
            r.findings
        );
        // Without code/ or constants.pkl it is an ordinary torch zip: the
        // torch.jit helper stays denied.
        let plain = zip_of(&[("m/data.pkl", data), ("m/version", b"3\n".as_slice())]);
        let r = Scanner::default().scan_bytes(&plain, "model.pt");
        assert!(r
            .findings
            .iter()
            .any(|f| f.severity == aisec_core::Severity::Critical));
        // The profile does not lift real dangers inside a TorchScript archive.
        let evil = zip_of(&[
            (
                "m/data.pkl",
                b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.".as_slice(),
            ),
            ("m/code/__torch__.py", b"".as_slice()),
        ]);
        let r = Scanner::default().scan_bytes(&evil, "model.pt");
        assert!(r
            .findings
            .iter()
            .any(|f| f.severity == aisec_core::Severity::Critical));
    }

    #[test]
    fn keras_torch_module_wrapper_checkpoint_is_scanned() {
        // A torch.save zip whose data.pkl calls posix.system, base64 in the
        // TorchModuleWrapper config (loaded with weights_only=False).
        let ckpt = zip_of(&[(
            "m/data.pkl",
            b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.".as_slice(),
        )]);
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&ckpt)
        };
        let config = format!(
            r#"{{"module":"keras","class_name":"Sequential","config":{{"layers":[{{"module":"keras.layers","class_name":"TorchModuleWrapper","config":{{"name":"t","module":"{b64}"}},"registered_name":null}}]}}}}"#
        );
        let keras = zip_of(&[
            ("config.json", config.as_bytes()),
            ("metadata.json", b"{}".as_slice()),
        ]);
        let r = Scanner::default().scan_bytes(&keras, "model.keras");
        assert!(
            r.findings
                .iter()
                .any(|f| f.severity == aisec_core::Severity::Critical
                    && f.location
                        .member
                        .as_deref()
                        .is_some_and(|m| m.contains("TorchModuleWrapper"))),
            "{:#?}",
            r.findings
        );
    }

    #[test]
    fn hf_auto_map_is_reported() {
        let cfg = br#"{"model_type":"x","auto_map":{"AutoConfig":"configuration_x.XConfig","AutoModel":"modeling_x.XModel","AutoTokenizer":["tok.T", null],"AutoModelForCausalLM":"other/repo--modeling_y.Y"}}"#;
        let r = Scanner::default().scan_bytes(cfg, "repo/config.json");
        let f = r
            .findings
            .iter()
            .find(|f| f.rule_id == "AISEC-SCAN-006")
            .expect("auto_map finding");
        assert!(f.evidence.contains("modeling_x.py"), "{}", f.evidence);
        assert!(
            f.evidence.contains("from repository 'other/repo'"),
            "{}",
            f.evidence
        );
        assert_eq!(f.severity, aisec_core::Severity::High);
        // A config without auto_map, and a non-config JSON, are quiet.
        let r = Scanner::default().scan_bytes(br#"{"model_type":"bert"}"#, "config.json");
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        let r = Scanner::default().scan_bytes(br#"{"auto_map":{"A":"m.C"}}"#, "data.json");
        assert!(r.findings.iter().all(|f| f.rule_id != "AISEC-SCAN-006"));
    }
}
