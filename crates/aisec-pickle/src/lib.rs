//! `aisec-pickle`: finds every way a Python pickle can run code, without
//! ever running it.
//!
//! This crate owns:
//!
//! * a **symbolic pickle machine** ([`machine`]) for protocols 0–5 that
//!   mirrors the unpickler's stack, mark stack, memo and frames and builds
//!   symbolic values (literals, globals, calls, persistent ids) instead of
//!   objects, so every global that would be imported and every call that
//!   would be made is known — including names fetched from the memo, names
//!   computed at load time (reported as unresolvable), nested pickles handed
//!   to loaders (analysed recursively) and findings that precede a malformed
//!   tail;
//! * the **import policy** ([`policy`]): allowlist (PyTorch weights-only set,
//!   NumPy, joblib; opt-in `sklearn` and `torch-modules` profiles), a cited
//!   deny table, and user TOML extensions;
//! * the pickle-bearing **leaf formats**: raw pickle streams (several pickles
//!   back to back), legacy `torch.save` streams (magic number, protocol,
//!   sys_info, model, storage keys, then raw storage bytes that are not
//!   analysed), joblib streams (raw array bytes after each
//!   `NumpyArrayWrapper` BUILD are skipped using the wrapper's symbolic
//!   shape/dtype/alignment; object arrays are analysed as nested pickles) and
//!   NumPy `.npy` files ([`npy`]).
//!
//! Stream kinds are auto-detected inside [`scan_pickle`]: the legacy torch
//! layout by its magic-number first pickle, joblib array data by the
//! `NumpyArrayWrapper` BUILD itself. [`StreamKind`] names what was seen.
//! joblib streams are also re-read as plain `pickle.load` would read them, so
//! opcodes hidden in "array bytes" are found (see [`scan_pickle`]).
//!
//! Public bypasses of picklescan, modelscan and fickling and the tests that
//! cover them are listed in `BYPASSES.md`; throughput against picklescan and
//! fuzzing results are in `BENCH.md`.
//!
//! Every loop and allocation is bounded by [`Limits`]; strings are slices of
//! the input and values are arena indices, so memo reuse never copies.
//!
//! Rules are listed in [`RULES`] (declared in the `rules` module).

pub mod capability;
mod compat_table;
pub mod machine;
pub mod npy;
pub mod policy;
mod pyint;
pub mod rules;

use aisec_core::{Finding, Location};

pub use npy::scan_npy;
pub use policy::{Policy, PolicyError, Verdict};
pub use rules::RULES;

/// Bounds on the analysis. Exceeding one ends the analysis with an
/// `AISEC-PICKLE-010` finding; everything found before is kept.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Opcodes executed, over all pickles of a stream and nested pickles.
    pub max_ops: u64,
    /// Stack depth and MARK count.
    pub max_stack: usize,
    /// Memo entries per pickle.
    pub max_memo: usize,
    /// Nesting depth of pickles inside pickles.
    pub max_depth: u32,
    /// Findings kept; later ones are counted and dropped.
    pub max_findings: usize,
    /// Symbolic values plus container entries per pickle.
    pub max_values: usize,
    /// Pickles in one stream.
    pub max_pickles: usize,
    /// Characters of rendered evidence.
    pub max_evidence: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ops: 50_000_000,
            max_stack: 100_000,
            max_memo: 4_000_000,
            max_depth: 8,
            max_findings: 1_000,
            max_values: 8_000_000,
            max_pickles: 10_000,
            max_evidence: 240,
        }
    }
}

/// What kind of pickle stream [`scan_pickle`] recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// One or more plain pickles.
    Plain,
    /// Legacy `torch.save(_use_new_zipfile_serialization=False)` stream.
    TorchLegacy,
    /// A joblib stream (at least one `NumpyArrayWrapper` array was skipped).
    Joblib,
}

/// The result of scanning one pickle-bearing buffer.
#[derive(Debug, Clone)]
pub struct PickleReport {
    /// Findings, in stream order.
    pub findings: Vec<Finding>,
    /// Every resolved global (`module.name`) that would be imported, first
    /// occurrence order, de-duplicated.
    pub globals: Vec<String>,
    /// Pickles analysed (top-level stream only).
    pub pickles: usize,
    /// Bytes of the input consumed by the analysis (for legacy torch: up to
    /// the end of the storage-key pickle).
    pub consumed: usize,
    /// Why the stream is malformed, if it is.
    pub malformed: Option<String>,
    /// The stream layout recognised.
    pub kind: StreamKind,
}

/// Scans a pickle stream: several pickles back to back, legacy torch streams
/// and joblib streams are recognised automatically. Findings carry
/// `loc.with_offset(opcode offset)`.
///
/// joblib streams are analysed twice: once as `joblib.load` reads them
/// (array bytes skipped) and once as plain `pickle.load` would (array bytes
/// read as opcodes). Code-execution findings of the second pass that the
/// first did not see are added with the prefix `[if loaded with pickle.load]`,
/// so a polyglot hiding opcodes in "array data" is still caught.
pub fn scan_pickle(data: &[u8], loc: &Location, policy: &Policy, limits: &Limits) -> PickleReport {
    let mut ctx = machine::Ctx::new(policy, limits, loc);
    let out = scan_stream_ctx(&mut ctx, data);
    if ctx.joblib_skipped > 0 && !ctx.limit_hit {
        let mut plain = machine::Ctx::new(policy, limits, loc);
        plain.joblib = false;
        scan_stream_ctx(&mut plain, data);
        // Only rules that need a denied *name*: random array bytes read as
        // opcodes cannot produce those by accident (unlike computed callables,
        // unresolvable STACK_GLOBALs or EXT codes).
        let code_rules = [
            rules::DANGEROUS_CALL.id,
            rules::DANGEROUS_IMPORT.id,
            rules::NESTED_LOADER.id,
        ];
        for mut f in plain.findings {
            if !code_rules.contains(&f.rule_id.as_str()) {
                continue;
            }
            let seen = ctx
                .findings
                .iter()
                .any(|g| g.rule_id == f.rule_id && g.location == f.location);
            if !seen && ctx.findings.len() < limits.max_findings {
                f.evidence = format!("[if loaded with pickle.load] {}", f.evidence);
                ctx.findings.push(f);
            }
        }
    }
    if let Some(at) = ctx.frame_straddle.filter(|_| !ctx.limit_hit) {
        // Frames straddled: CPython's readers disagree on the bytes (see
        // `Ctx::file_frames`). Read it again the way `torch.load` does and
        // keep what only that reading finds.
        let ev = if ctx.full() {
            String::new()
        } else {
            "an opcode's bytes run past the end of its FRAME: pickle.loads reads on, \
             a file-backed load (torch.load of a zip checkpoint) drops the rest of the frame \
             and reads different opcodes; both readings are analysed"
                .to_string()
        };
        ctx.emit(&rules::FRAME_STRADDLE, at, ev, None);
        let mut alt = machine::Ctx::new(policy, limits, loc);
        alt.file_frames = true;
        scan_stream_ctx(&mut alt, data);
        let noise = [
            rules::MALFORMED.id,
            rules::TRAILING_DATA.id,
            rules::FRAME_STRADDLE.id,
        ];
        for mut f in alt.findings {
            if noise.contains(&f.rule_id.as_str()) {
                continue;
            }
            let seen = ctx
                .findings
                .iter()
                .any(|g| g.rule_id == f.rule_id && g.evidence == f.evidence);
            if !seen && ctx.findings.len() < limits.max_findings {
                f.evidence = format!("[if read from a file object] {}", f.evidence);
                ctx.findings.push(f);
            }
        }
        for g in alt.globals {
            if !ctx.globals.contains(&g) && ctx.globals.len() < 100_000 {
                ctx.globals.push(g);
            }
        }
    }
    finish(ctx, out)
}

pub(crate) struct StreamOut {
    pub pickles: usize,
    pub consumed: usize,
    pub malformed: Option<String>,
    pub kind: StreamKind,
}

pub(crate) fn finish(ctx: machine::Ctx<'_>, out: StreamOut) -> PickleReport {
    let dropped = ctx.dropped();
    let mut findings = ctx.findings;
    // Imports that were never called are reported when their pickle ends;
    // order everything by offset (stable, so nested findings keep their order).
    findings.sort_by_key(|f| f.location.offset);
    if dropped > 0 {
        if let Some(last) = findings.last_mut() {
            last.metrics.insert(
                "findings_dropped".into(),
                serde_json::Value::from(dropped as u64),
            );
        }
    }
    PickleReport {
        findings,
        globals: ctx.globals,
        pickles: out.pickles,
        consumed: out.consumed,
        malformed: out.malformed,
        kind: out.kind,
    }
}

/// Runs pickles back to back over `data` with `ctx`.
pub(crate) fn scan_stream_ctx(ctx: &mut machine::Ctx<'_>, data: &[u8]) -> StreamOut {
    scan_stream_from(ctx, data, 0)
}

/// Runs pickles back to back over `data[start..]` (offsets stay relative to `data`).
pub(crate) fn scan_stream_from(ctx: &mut machine::Ctx<'_>, data: &[u8], start: usize) -> StreamOut {
    let mut pos = start;
    let mut pickles = 0usize;
    let mut torch = false;
    let mut malformed = None;
    while pos < data.len() {
        if ctx.limit_hit {
            break;
        }
        if pickles > 0 {
            if torch && pickles == 5 {
                break;
            }
            if !looks_like_pickle(&data[pos..]) {
                let rest = &data[pos..];
                if !(torch || rest.iter().all(|c| c.is_ascii_whitespace() || *c == 0)) {
                    ctx.emit(
                        &rules::TRAILING_DATA,
                        pos as u64,
                        format!("{} bytes after the last pickle", rest.len()),
                        None,
                    );
                }
                break;
            }
            if pickles >= ctx.limits.max_pickles {
                ctx.emit(
                    &rules::RESOURCE_LIMIT,
                    pos as u64,
                    format!("more than {} pickles in one stream", ctx.limits.max_pickles),
                    None,
                );
                ctx.limit_hit = true;
                break;
            }
        }
        let end = machine::run_one(ctx, data, pos);
        pickles += 1;
        match end {
            machine::End::Stop {
                pos: p,
                torch_magic,
            } => {
                if pickles == 1 && torch_magic {
                    torch = true;
                }
                pos = p;
            }
            machine::End::Malformed { pos: p, msg } => {
                ctx.emit(&rules::MALFORMED, p as u64, msg.clone(), None);
                malformed = Some(format!("offset {p}: {msg}"));
                pos = data.len();
                break;
            }
            machine::End::Limit { pos: p, msg } => {
                ctx.emit(&rules::RESOURCE_LIMIT, p as u64, msg.clone(), None);
                ctx.limit_hit = true;
                malformed = Some(format!("offset {p}: analysis limit: {msg}"));
                pos = p;
                break;
            }
        }
    }
    let kind = if torch {
        StreamKind::TorchLegacy
    } else if ctx
        .globals
        .iter()
        .any(|g| g == "joblib.numpy_pickle.NumpyArrayWrapper")
    {
        StreamKind::Joblib
    } else {
        StreamKind::Plain
    };
    StreamOut {
        pickles,
        consumed: pos.min(data.len()),
        malformed,
        kind,
    }
}

/// Cheap sniff: a protocol 2+ `PROTO` header, or a run of opcodes (of any
/// protocol: CPython does not require PROTO) that the symbolic machine
/// accepts (up to STOP or for 64 opcodes) without error.
pub fn looks_like_pickle(data: &[u8]) -> bool {
    match data {
        [0x80, p] => *p <= 5,
        [0x80, p, next, ..] => *p <= 5 && is_opcode(*next),
        [] => false,
        [first, ..] => {
            // CPython runs any opcode whatever the protocol (PROTO is optional),
            // so a stream may start with any of them, `\x8c` SHORT_BINUNICODE
            // included: the machine decides (differential finding, issue 20).
            is_opcode(*first) && sniff_run(data).0
        }
    }
}

/// The machine run of [`looks_like_pickle`] on `data` (first byte an
/// opcode other than PROTO): its verdict, and the smallest data length a
/// read that ran past the end needed (see `Ctx::short_read`).
fn sniff_run(data: &[u8]) -> (bool, Option<u64>) {
    let policy = policy_for_sniff();
    let limits = Limits {
        max_ops: 64,
        max_findings: 0,
        max_depth: 0,
        ..Limits::default()
    };
    let mut ctx = machine::Ctx::new(policy, &limits, &Location::default());
    let verdict = match machine::run_one(&mut ctx, data, 0) {
        machine::End::Stop { .. } => true,
        machine::End::Limit { .. } => true,
        machine::End::Malformed { .. } => false,
    };
    (verdict, ctx.short_read)
}

/// What the first bytes of a stream say about [`looks_like_pickle`] on
/// the whole stream (see [`looks_like_pickle_prefix`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixSniff {
    /// `looks_like_pickle` is true for every stream of that length that
    /// starts with these bytes.
    Pickle,
    /// `looks_like_pickle` is false for every such stream.
    NotPickle,
    /// Undecided: the sniff read past the bytes given; a prefix of at
    /// least this many bytes (more than given, at most the stream's
    /// length) may decide.
    Needs(u64),
}

/// [`looks_like_pickle`] from the first bytes of a stream of `total`
/// bytes: the sniff reads its opcodes in order and stops at the first it
/// cannot accept, so a run that stops (STOP, a limit, malformed data)
/// before the end of `prefix` decides for any bytes after it. A run cut
/// short by the end of `prefix` decides only when the read it lacked
/// reaches past `total` too (an argument length or FRAME larger than the
/// stream: the whole stream fails there the same way); else more bytes are
/// needed. Used by remote fetch plans to prove a raw blob is no pickle
/// without reading it whole.
pub fn looks_like_pickle_prefix(prefix: &[u8], total: u64) -> PrefixSniff {
    let have = prefix.len() as u64;
    if have >= total {
        let whole = prefix.get(..usize::try_from(total).unwrap_or(usize::MAX));
        return match whole {
            Some(d) if looks_like_pickle(d) => PrefixSniff::Pickle,
            _ => PrefixSniff::NotPickle,
        };
    }
    // From here `have < total`.
    match prefix {
        [] | [0x80] | [0x80, _] => PrefixSniff::Needs(total.min(3)),
        [0x80, ..] => {
            if looks_like_pickle(prefix) {
                PrefixSniff::Pickle
            } else {
                PrefixSniff::NotPickle
            }
        }
        [first, ..] if !is_opcode(*first) => PrefixSniff::NotPickle,
        _ => match sniff_run(prefix) {
            (_, Some(need)) if need <= total => PrefixSniff::Needs(need.max(have + 1)),
            (true, _) => PrefixSniff::Pickle,
            (false, _) => PrefixSniff::NotPickle,
        },
    }
}

/// True for every opcode byte of protocols 0–5 (CPython `pickletools`):
/// the first bytes [`looks_like_pickle`] runs the machine on.
pub fn is_opcode(b: u8) -> bool {
    matches!(b, 0x80..=0x98) || b"(.012FIJKLMNPQRSTUVXabcdeghijlopqrstu}])BCG".contains(&b)
}

fn policy_for_sniff() -> &'static Policy {
    static P: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    P.get_or_init(Policy::default)
}
