//! The symbolic pickle machine.
//!
//! It decodes every opcode of protocols 0–5 (the opcode table of CPython's
//! `Lib/pickletools.py` / `Lib/pickle.py`) and mirrors the unpickler's stack,
//! mark stack (metastack), memo and framing, but instead of importing and
//! calling it builds symbolic values: literals, `Global`s, `Call`s, persistent
//! ids and `Unknown`. Values live in an arena and the stack, memo and
//! containers hold arena indices, so `DUP`/memo reuse never copies (a
//! "billion laughs" memo bomb costs one index per opcode) and strings are
//! slices of the input.
//!
//! Findings are produced at the opcode that would run the code (import at
//! GLOBAL/STACK_GLOBAL/INST, call at REDUCE/NEWOBJ/NEWOBJ_EX/OBJ/INST, BUILD),
//! and they are kept when the stream later turns out malformed, because
//! `pickle.load` would already have executed them.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use aisec_core::{Finding, Location, Rule, Severity};

use crate::capability::{self, Caps};
use crate::policy::{compat_name, Policy, Verdict};
use crate::pyint::PyInt;
use crate::rules::*;
use crate::Limits;

type Idx = u32;

/// The magic number legacy `torch.save` writes as its first pickle.
const TORCH_MAGIC_LE: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Reduce,
    NewObj,
    NewObjEx,
    Obj,
    Inst,
}

impl CallKind {
    fn opcode(self) -> &'static str {
        match self {
            CallKind::Reduce => "REDUCE",
            CallKind::NewObj => "NEWOBJ",
            CallKind::NewObjEx => "NEWOBJ_EX",
            CallKind::Obj => "OBJ",
            CallKind::Inst => "INST",
        }
    }
}

#[derive(Debug)]
enum Val<'a> {
    None,
    Bool(bool),
    Int(i64),
    /// Little-endian two's complement (LONG1/LONG4) bytes.
    Long(&'a [u8]),
    /// Decimal text of an int too large for i64 (INT/LONG opcodes).
    LongText(&'a [u8]),
    Float(f64),
    Str(Cow<'a, [u8]>),
    Bytes(&'a [u8]),
    Tuple(Vec<Idx>),
    List(Vec<Idx>),
    Dict(Vec<(Idx, Idx)>),
    Set(Vec<Idx>),
    FrozenSet(Vec<Idx>),
    Global(u32),
    Call {
        func: Idx,
        args: Idx,
        kwargs: Option<Idx>,
        state: Option<Idx>,
    },
    PersId(Idx),
    Ext(u32),
    Unknown,
}

#[derive(Debug)]
struct GlobalEntry {
    full: String,
    offset: u64,
    verdict: Verdict,
    resolved: bool,
    reported: bool,
    build_reported: bool,
}

/// State shared by every pickle of a stream and by nested pickles.
pub(crate) struct Ctx<'p> {
    pub policy: &'p Policy,
    pub limits: &'p Limits,
    pub loc: Location,
    pub findings: Vec<Finding>,
    pub globals: Vec<String>,
    globals_seen: HashSet<String>,
    pub ops: u64,
    pub depth: u32,
    fixed_offset: Option<u64>,
    prefix: String,
    dropped: usize,
    pub limit_hit: bool,
    /// Follow joblib's `NumpyUnpickler` (skip array bytes after wrapper BUILDs).
    pub joblib: bool,
    /// Array bytes skipped under joblib semantics.
    pub joblib_skipped: usize,
    /// Read frames as CPython's C unpickler does from a file object without
    /// `peek` (`io.BytesIO`, which `torch.load` hands it for zip
    /// checkpoints): an opcode or argument that runs past the end of the
    /// current FRAME drops the rest of the frame and is read afresh from the
    /// bytes after it. Otherwise frames are read contiguously, as
    /// `pickle.loads` and buffered files do.
    pub file_frames: bool,
    /// Offset of the first opcode whose bytes crossed a FRAME end (the two
    /// readings above then differ).
    pub frame_straddle: Option<u64>,
    /// The smallest data length that a read which ran past the end of the
    /// data needed (offset of its last byte + 1): set when the run failed
    /// only because the bytes it had were too few, which a longer stream
    /// with the same first bytes might not (see
    /// [`crate::looks_like_pickle_prefix`]).
    pub(crate) short_read: Option<u64>,
}

impl<'p> Ctx<'p> {
    pub(crate) fn new(policy: &'p Policy, limits: &'p Limits, loc: &Location) -> Self {
        Ctx {
            policy,
            limits,
            loc: loc.clone(),
            findings: Vec::new(),
            globals: Vec::new(),
            globals_seen: HashSet::new(),
            ops: 0,
            depth: 0,
            fixed_offset: None,
            prefix: String::new(),
            dropped: 0,
            limit_hit: false,
            joblib: true,
            joblib_skipped: 0,
            file_frames: false,
            frame_straddle: None,
            short_read: None,
        }
    }

    /// Notes a read that needed the data to hold `need` bytes and found
    /// fewer.
    fn short(&mut self, need: u64) {
        self.short_read = Some(self.short_read.map_or(need, |n| n.min(need)));
    }

    /// True when no further finding would be kept (skip building evidence).
    pub(crate) fn full(&self) -> bool {
        self.findings.len() >= self.limits.max_findings
    }

    pub(crate) fn emit(
        &mut self,
        rule: &'static Rule,
        offset: u64,
        evidence: String,
        sev: Option<Severity>,
    ) {
        if self.findings.len() >= self.limits.max_findings {
            self.dropped += 1;
            return;
        }
        let off = self.fixed_offset.unwrap_or(offset);
        let ev = if self.prefix.is_empty() {
            evidence
        } else {
            format!("{}{}", self.prefix, evidence)
        };
        let mut f = rule.finding(self.loc.clone().with_offset(off), ev);
        if let Some(s) = sev {
            f = f.severity(s);
        }
        self.findings.push(f);
    }

    /// Number of findings dropped because `max_findings` was reached.
    pub(crate) fn dropped(&self) -> usize {
        self.dropped
    }

    fn note_global(&mut self, full: &str) {
        if self.globals.len() < 100_000 && !self.globals_seen.contains(full) {
            self.globals_seen.insert(full.to_string());
            self.globals.push(full.to_string());
        }
    }
}

/// How one pickle ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// STOP reached; `pos` is the offset after it.
    Stop { pos: usize, torch_magic: bool },
    /// Invalid or truncated data at `pos`.
    Malformed { pos: usize, msg: String },
    /// A limit was exceeded at `pos`.
    Limit { pos: usize, msg: String },
}

enum Halt {
    Malformed(String),
    Limit(String),
}

type R<T> = Result<T, Halt>;

fn bad<T>(msg: impl Into<String>) -> R<T> {
    Err(Halt::Malformed(msg.into()))
}

/// The memo: dense keys (what picklers write) in a vector, others in a map.
#[derive(Default)]
struct Memo {
    dense: Vec<Idx>,
    sparse: HashMap<u64, Idx>,
    len: usize,
}

const MEMO_EMPTY: Idx = Idx::MAX;
/// Keys below this live in the dense vector (at most 4 bytes per slot).
const MEMO_DENSE_MAX: u64 = 1 << 20;

impl Memo {
    fn get(&self, key: u64) -> Option<Idx> {
        match self.dense.get(key as usize) {
            Some(v) if key < MEMO_DENSE_MAX && *v != MEMO_EMPTY => Some(*v),
            _ => self.sparse.get(&key).copied(),
        }
    }
    /// Stores `v` at `key`; false when a new key would exceed `max`.
    /// Keys close to the dense prefix (what picklers write) grow the vector;
    /// far keys go to the map, so one huge LONG_BINPUT key cannot force a
    /// large allocation.
    fn put(&mut self, key: u64, v: Idx, max: usize) -> bool {
        let present = self.get(key).is_some();
        if !present && self.len >= max {
            return false;
        }
        let n = self.dense.len() as u64;
        if key < n {
            self.dense[key as usize] = v;
        } else if key < MEMO_DENSE_MAX && key <= n * 2 + 1024 {
            let want = (key + 1).max(n * 2).min(MEMO_DENSE_MAX);
            self.dense.resize(want as usize, MEMO_EMPTY);
            self.dense[key as usize] = v;
        } else {
            self.sparse.insert(key, v);
        }
        if !present {
            self.len += 1;
        }
        true
    }
}

struct Machine<'a, 'c, 'p> {
    data: &'a [u8],
    pos: usize,
    op_off: usize,
    vals: Vec<Val<'a>>,
    stack: Vec<Idx>,
    marks: Vec<usize>,
    memo: Memo,
    globals: Vec<GlobalEntry>,
    units: usize,
    /// Arena indices of loader arguments already analysed as nested pickles.
    nested_done: HashSet<Idx>,
    ctx: &'c mut Ctx<'p>,
    /// End of the current FRAME's bytes, while inside one.
    frame_end: Option<usize>,
    /// Per-opcode states, recorded only by [`trace_pickle`].
    trace: Option<Vec<TraceStep>>,
}

impl<'a, 'c, 'p> Machine<'a, 'c, 'p> {
    /// A machine at `start` of `data` with empty stack and memo; `trace`
    /// records per-opcode states when it is `Some`.
    fn new(
        ctx: &'c mut Ctx<'p>,
        data: &'a [u8],
        start: usize,
        trace: Option<Vec<TraceStep>>,
    ) -> Self {
        Machine {
            data,
            pos: start,
            op_off: start,
            vals: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Memo::default(),
            globals: Vec::new(),
            units: 0,
            nested_done: HashSet::new(),
            ctx,
            frame_end: None,
            trace,
        }
    }
}

/// Runs one pickle starting at `start`. Findings go to `ctx`.
pub(crate) fn run_one(ctx: &mut Ctx<'_>, data: &[u8], start: usize) -> End {
    let mut m = Machine::new(ctx, data, start, None);
    let end = m.run();
    m.flush_imports();
    end
}

/// The machine's state after one opcode, as the differential test against
/// CPython's unpickler compares it (`fuzz/differential/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep {
    /// Offset of the opcode.
    pub pos: usize,
    /// The opcode byte.
    pub op: u8,
    /// Objects on the stack, below and above every MARK.
    pub depth: usize,
    /// Open MARKs.
    pub marks: usize,
    /// Memo keys, ascending.
    pub memo: Vec<u64>,
    /// Python type of the top of the stack (`None` when empty): `NoneType`,
    /// `bool`, `int`, `float`, `str`, `bytes`, `tuple`, `list`, `dict`, `set`,
    /// `frozenset`, `global` (an imported name), `call` (a call's result),
    /// `persid` (a persistent id), `ext` (an extension code) or `buffer`.
    pub top: Option<&'static str>,
    /// For opcodes that push a literal: its value (ints in decimal, or
    /// `big` past i64; floats as the hex of their IEEE bits; strings and
    /// bytes as hex of their bytes, strings in UTF-8).
    pub value: Option<String>,
}

/// A traced run of one pickle.
#[derive(Debug, Clone)]
pub struct Trace {
    /// One entry per opcode that completed (STOP included).
    pub steps: Vec<TraceStep>,
    /// `Ok(offset after STOP)` or `Err((offset of the failing opcode, reason))`.
    pub end: Result<usize, (usize, String)>,
    /// Every resolved global, first occurrence order.
    pub globals: Vec<String>,
}

/// Runs the first pickle of `data` and records the state after every
/// opcode. For differential testing only: the findings are discarded.
/// `file_frames` selects how a read past a FRAME's end is done (see
/// [`Ctx::file_frames`]).
pub fn trace_pickle(data: &[u8], limits: &Limits, file_frames: bool) -> Trace {
    let policy = Policy::default();
    let mut ctx = Ctx::new(&policy, limits, &Location::default());
    ctx.joblib = false;
    ctx.file_frames = file_frames;
    let mut m = Machine::new(&mut ctx, data, 0, Some(Vec::new()));
    let end = m.run();
    let steps = m.trace.take().unwrap_or_default();
    let end = match end {
        End::Stop { pos, .. } => Ok(pos),
        End::Malformed { pos, msg } => Err((pos, msg)),
        End::Limit { pos, msg } => Err((pos, format!("limit: {msg}"))),
    };
    Trace {
        steps,
        end,
        globals: ctx.globals,
    }
}

/// Scans `bytes` (a payload embedded in another pickle) as a pickle stream,
/// reporting its findings at `outer_offset` with an evidence prefix.
pub(crate) fn scan_embedded(ctx: &mut Ctx<'_>, bytes: &[u8], outer_offset: u64) -> usize {
    if ctx.depth >= ctx.limits.max_depth {
        ctx.emit(
            &RESOURCE_LIMIT,
            outer_offset,
            format!("nested pickle depth limit {} reached", ctx.limits.max_depth),
            None,
        );
        return 0;
    }
    let before = ctx.findings.len();
    let old_fixed = ctx.fixed_offset;
    let old_prefix_len = ctx.prefix.len();
    ctx.fixed_offset = Some(old_fixed.unwrap_or(outer_offset));
    ctx.prefix.push_str("[nested pickle] ");
    ctx.depth += 1;
    crate::scan_stream_ctx(ctx, bytes);
    ctx.depth -= 1;
    ctx.prefix.truncate(old_prefix_len);
    ctx.fixed_offset = old_fixed;
    ctx.findings.len() - before
}

fn le_u(b: &[u8]) -> u64 {
    let mut v = 0u64;
    for (i, x) in b.iter().enumerate().take(8) {
        v |= (*x as u64) << (8 * i);
    }
    v
}

fn long_to_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() {
        return Some(0);
    }
    // Two's complement: bytes past the eighth that only extend the sign
    // (LONG1 of nine zero bytes is 0) do not change the value.
    let mut b = b;
    while b.len() > 8 {
        let last = b[b.len() - 1];
        let below = b[b.len() - 2];
        let redundant = (last == 0 && below & 0x80 == 0) || (last == 0xff && below & 0x80 != 0);
        if !redundant {
            return None;
        }
        b = &b[..b.len() - 1];
    }
    let mut v = le_u(b);
    let neg = b[b.len() - 1] & 0x80 != 0;
    if neg && b.len() < 8 {
        v |= u64::MAX << (8 * b.len());
    }
    Some(v as i64)
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |p| p + 1);
    &b[s..e.max(s)]
}

/// Decodes Python's `codecs.escape_decode` (the STRING opcode's argument).
fn escape_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let e = *s.get(i)?;
        i += 1;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let h = s.get(i..i + 2)?;
                out.push(hex_value(h)? as u8);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v: u32 = (e - b'0') as u32;
                let mut n = 1;
                while n < 3 && i < s.len() && (b'0'..=b'7').contains(&s[i]) {
                    v = v * 8 + (s[i] - b'0') as u32;
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// The value of ASCII hex digits (no sign, unlike `from_str_radix`).
fn hex_value(h: &[u8]) -> Option<u32> {
    h.iter().try_fold(0u32, |acc, c| {
        let d = (*c as char).to_digit(16)?;
        Some(acc.wrapping_mul(16).wrapping_add(d))
    })
}

/// Decodes `raw-unicode-escape` (the UNICODE opcode's argument) as CPython
/// does: bytes are Latin-1 code points, and `\uXXXX`/`\UXXXXXXXX` is an
/// escape only after an odd run of backslashes (`\\u0041` stays as
/// written). Lone surrogates are kept, encoded as CPython's `surrogatepass`
/// would (WTF-8); code points past U+10FFFF are an error.
fn raw_unicode_escape(s: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut buf = [0u8; 4];
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.extend_from_slice(char::from(c).encode_utf8(&mut buf).as_bytes());
            i += 1;
            continue;
        }
        let run = s[i..].iter().take_while(|&&b| b == b'\\').count();
        let next = s.get(i + run).copied();
        if run % 2 == 0 || !matches!(next, Some(b'u' | b'U')) {
            out.extend(std::iter::repeat_n(b'\\', run));
            i += run;
            continue;
        }
        out.extend(std::iter::repeat_n(b'\\', run - 1));
        i += run;
        let n = if next == Some(b'u') { 4 } else { 8 };
        let v = hex_value(s.get(i + 1..i + 1 + n)?)?;
        match char::from_u32(v) {
            Some(ch) => out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes()),
            None if (0xD800..0xE000).contains(&v) => out.extend_from_slice(&[
                0xED,
                0x80 | ((v >> 6) & 0x3F) as u8,
                0x80 | (v & 0x3F) as u8,
            ]),
            None => return None,
        }
        i += 1 + n;
    }
    Some(out)
}

/// PEP 8 naming: classes are CapWords, functions and methods lower_case.
/// A dotted path is judged by its last component.
fn function_like(full: &str) -> bool {
    let last = full.rsplit('.').next().unwrap_or(full);
    let first = last.trim_start_matches('_').chars().next();
    !first.is_some_and(|c| c.is_ascii_uppercase())
}

fn is_loader(full: &str) -> (bool, bool) {
    // (is a nested loader, payload is a pickle we can analyse)
    match full {
        "pickle.loads"
        | "pickle._loads"
        | "_pickle.loads"
        | "cPickle.loads"
        | "dill.loads"
        | "dill._dill.loads"
        | "cloudpickle.loads"
        | "torch.storage._load_from_bytes" => (true, true),
        "pickle.load"
        | "pickle._load"
        | "_pickle.load"
        | "pickle.Unpickler"
        | "_pickle.Unpickler"
        | "pickle._Unpickler"
        | "dill.load"
        | "cloudpickle.load"
        | "torch.load"
        | "torch.serialization.load"
        | "numpy.load"
        | "numpy.lib.npyio.load"
        | "joblib.load"
        | "joblib.numpy_pickle.load"
        | "marshal.loads"
        | "marshal.load"
        | "types.CodeType"
        | "types.FunctionType"
        | "jsonpickle.decode"
        | "shelve.open"
        | "yaml.load"
        | "yaml.unsafe_load" => (true, false),
        _ => (false, false),
    }
}

impl<'a> Machine<'a, '_, '_> {
    // ---- byte readers -------------------------------------------------
    /// Before reading `n` bytes (`None`: a line) at `pos`: what happens at
    /// a FRAME's end. Inside the frame nothing; across its end the contiguous
    /// reading notes the straddle and the file reading moves to the frame's
    /// end (the C unpickler drops the rest of its buffer and reads from the
    /// file). Past the end the frame is over.
    fn frame_cross(&mut self, n: Option<u64>) {
        let Some(fe) = self.frame_end else { return };
        if self.pos >= fe {
            self.frame_end = None;
            return;
        }
        let crosses = match n {
            Some(n) => self.pos as u64 + n > fe as u64,
            None => !self.data[self.pos..fe].contains(&b'\n'),
        };
        if !crosses {
            return;
        }
        if self.ctx.frame_straddle.is_none() {
            self.ctx.frame_straddle = Some(self.op_off as u64);
        }
        if self.ctx.file_frames {
            self.pos = fe;
            self.frame_end = None;
        }
    }
    fn take(&mut self, n: u64) -> R<&'a [u8]> {
        self.frame_cross(Some(n));
        let rem = (self.data.len() - self.pos) as u64;
        if n > rem {
            self.ctx.short((self.pos as u64).saturating_add(n));
            return bad(format!("truncated: argument of {n} bytes, {rem} left"));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn uint(&mut self, n: u64) -> R<u64> {
        Ok(le_u(self.take(n)?))
    }
    fn line(&mut self) -> R<&'a [u8]> {
        self.frame_cross(None);
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&c| c == b'\n') {
            Some(p) => {
                self.pos += p + 1;
                Ok(&rest[..p])
            }
            None => {
                self.ctx.short(self.data.len() as u64 + 1);
                bad("truncated: line without newline")
            }
        }
    }

    // ---- value arena ---------------------------------------------------
    fn charge(&mut self, n: usize) -> R<()> {
        self.units += n;
        if self.units > self.ctx.limits.max_values {
            return Err(Halt::Limit(format!(
                "more than {} values/container entries (pickle bomb?)",
                self.ctx.limits.max_values
            )));
        }
        Ok(())
    }
    fn new_val(&mut self, v: Val<'a>) -> R<Idx> {
        self.charge(1)?;
        let i = self.vals.len() as Idx;
        self.vals.push(v);
        Ok(i)
    }
    fn push(&mut self, i: Idx) -> R<()> {
        if self.stack.len() >= self.ctx.limits.max_stack {
            return Err(Halt::Limit(format!(
                "stack depth over {}",
                self.ctx.limits.max_stack
            )));
        }
        self.stack.push(i);
        Ok(())
    }
    fn push_val(&mut self, v: Val<'a>) -> R<()> {
        let i = self.new_val(v)?;
        self.push(i)
    }
    fn base(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }
    fn pop(&mut self) -> R<Idx> {
        if self.stack.len() <= self.base() {
            return bad("unpickling stack underflow");
        }
        Ok(self.stack.pop().unwrap_or(0))
    }
    fn top(&self) -> R<Idx> {
        if self.stack.len() <= self.base() {
            return bad("unpickling stack underflow");
        }
        Ok(*self.stack.last().unwrap_or(&0))
    }
    fn pop_mark(&mut self) -> R<Vec<Idx>> {
        match self.marks.pop() {
            Some(m) => Ok(self.stack.split_off(m.min(self.stack.len()))),
            None => bad("could not find MARK"),
        }
    }
    fn memo_put(&mut self, key: u64, v: Idx) -> R<()> {
        if !self.memo.put(key, v, self.ctx.limits.max_memo) {
            return Err(Halt::Limit(format!(
                "memo over {} entries",
                self.ctx.limits.max_memo
            )));
        }
        Ok(())
    }
    fn memo_get(&mut self, key: u64) -> R<()> {
        match self.memo.get(key) {
            Some(v) => self.push(v),
            None => bad(format!("memo key {key} missing")),
        }
    }

    // ---- rendering -----------------------------------------------------
    fn render(&self, i: Idx) -> String {
        let mut s = String::new();
        self.render_into(i, &mut s, 0);
        let max = self.ctx.limits.max_evidence;
        if s.len() > max {
            let mut cut = max;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push('…');
        }
        s
    }
    /// `open`, the items rendered by `item` and separated by `, `, then
    /// `close`; cut with `…` once the evidence limit is passed.
    fn render_items<T>(
        &self,
        items: &[T],
        out: &mut String,
        (open, close): (&str, &str),
        mut item: impl FnMut(&T, &mut String),
    ) {
        out.push_str(open);
        for (k, it) in items.iter().enumerate() {
            if out.len() > self.ctx.limits.max_evidence {
                out.push('…');
                break;
            }
            if k > 0 {
                out.push_str(", ");
            }
            item(it, out);
        }
        out.push_str(close);
    }
    fn render_into(&self, i: Idx, out: &mut String, depth: u32) {
        use std::fmt::Write;
        if out.len() > self.ctx.limits.max_evidence || depth > 8 {
            out.push('…');
            return;
        }
        let Some(v) = self.vals.get(i as usize) else {
            out.push('?');
            return;
        };
        let seq = |items: &[Idx], out: &mut String, open: &str, close: &str| {
            self.render_items(items, out, (open, close), |it, out| {
                self.render_into(*it, out, depth + 1);
            });
        };
        match v {
            Val::None => out.push_str("None"),
            Val::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Val::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Val::Long(b) => match long_to_i64(b) {
                Some(n) => {
                    let _ = write!(out, "{n}");
                }
                None => {
                    let _ = write!(out, "<int of {} bytes>", b.len());
                }
            },
            Val::LongText(t) => out.push_str(&String::from_utf8_lossy(&t[..t.len().min(40)])),
            Val::Float(f) => {
                let _ = write!(out, "{f}");
            }
            Val::Str(s) => {
                // Python repr style: 'text' with escapes
                let t = String::from_utf8_lossy(&s[..s.len().min(120)]);
                out.push('\'');
                for ch in t.chars() {
                    match ch {
                        '\'' => out.push_str("\\'"),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if c.is_control() => {
                            let _ = write!(out, "\\x{:02x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                if s.len() > 120 {
                    out.push('…');
                }
                out.push('\'');
            }
            Val::Bytes(b) => {
                out.push_str("b'");
                for c in b.iter().take(60) {
                    if *c == b'\'' || *c == b'\\' {
                        out.push('\\');
                        out.push(*c as char);
                    } else if c.is_ascii_graphic() || *c == b' ' {
                        out.push(*c as char);
                    } else {
                        let _ = write!(out, "\\x{c:02x}");
                    }
                }
                if b.len() > 60 {
                    out.push('…');
                }
                out.push('\'');
            }
            Val::Tuple(items) => seq(items, out, "(", ")"),
            Val::List(items) => seq(items, out, "[", "]"),
            Val::Set(items) => seq(items, out, "{", "}"),
            Val::FrozenSet(items) => seq(items, out, "frozenset({", "})"),
            Val::Dict(items) => self.render_items(items, out, ("{", "}"), |(a, b), out| {
                self.render_into(*a, out, depth + 1);
                out.push_str(": ");
                self.render_into(*b, out, depth + 1);
            }),
            Val::Global(g) => match self.globals.get(*g as usize) {
                Some(e) => out.push_str(&e.full),
                None => out.push('?'),
            },
            Val::Call {
                func, args, kwargs, ..
            } => {
                self.render_into(*func, out, depth + 1);
                match self.vals.get(*args as usize) {
                    Some(Val::Tuple(items)) => seq(items, out, "(", ""),
                    _ => {
                        out.push_str("(*");
                        self.render_into(*args, out, depth + 1);
                    }
                }
                if let Some(k) = kwargs {
                    out.push_str(", **");
                    self.render_into(*k, out, depth + 1);
                }
                out.push(')');
            }
            Val::PersId(p) => {
                out.push_str("persistent_load(");
                self.render_into(*p, out, depth + 1);
                out.push(')');
            }
            Val::Ext(c) => {
                let _ = write!(out, "<extension {c}>");
            }
            Val::Unknown => out.push_str("<unknown>"),
        }
    }

    // ---- semantics -----------------------------------------------------
    fn str_of(&self, i: Idx) -> Option<Cow<'_, str>> {
        match self.vals.get(i as usize)? {
            Val::Str(s) => Some(String::from_utf8_lossy(s)),
            _ => None,
        }
    }

    fn add_global(&mut self, module: &str, name: &str, resolved: bool) -> R<Idx> {
        let (module_n, name_n) = compat_name(module, name);
        let full = format!("{module_n}.{name_n}");
        let verdict = if resolved {
            self.ctx.policy.classify(module, name)
        } else {
            Verdict::Unknown
        };
        if resolved {
            self.ctx.note_global(&full);
        }
        let g = self.globals.len() as u32;
        self.globals.push(GlobalEntry {
            full,
            offset: self.op_off as u64,
            verdict,
            resolved,
            reported: !resolved,
            build_reported: !resolved,
        });
        self.new_val(Val::Global(g))
    }

    fn global_line(&mut self) -> R<Idx> {
        let module = self.line()?;
        let name = self.line()?;
        let (Ok(m), Ok(n)) = (std::str::from_utf8(module), std::str::from_utf8(name)) else {
            return bad("GLOBAL/INST name is not UTF-8");
        };
        self.add_global(m, n, true)
    }

    /// The global an instance was made from (its class), looking through
    /// `copyreg._reconstructor`/`copyreg.__newobj__`.
    fn class_of(&self, i: Idx) -> Option<u32> {
        let Val::Call { func, args, .. } = self.vals.get(i as usize)? else {
            return None;
        };
        let Val::Global(g) = self.vals.get(*func as usize)? else {
            return None;
        };
        let full = &self.globals.get(*g as usize)?.full;
        if full == "copyreg._reconstructor" || full == "copyreg.__newobj__" {
            if let Some(Val::Tuple(a)) = self.vals.get(*args as usize) {
                if let Some(Val::Global(h)) = a.first().and_then(|x| self.vals.get(*x as usize)) {
                    return Some(*h);
                }
            }
        }
        Some(*g)
    }

    fn literal_bytes(&self, i: Idx) -> Option<Cow<'_, [u8]>> {
        match self.vals.get(i as usize)? {
            Val::Bytes(b) => Some(Cow::Borrowed(b)),
            Val::Str(s) => Some(Cow::Borrowed(s)),
            Val::Call { func, args, .. } => {
                // protocol 2 pickles write bytes as _codecs.encode(str, 'latin1')
                let Val::Global(g) = self.vals.get(*func as usize)? else {
                    return None;
                };
                let full = &self.globals.get(*g as usize)?.full;
                if full != "_codecs.encode" && full != "codecs.encode" {
                    return None;
                }
                let Val::Tuple(a) = self.vals.get(*args as usize)? else {
                    return None;
                };
                let s = self.str_of(*a.first()?)?;
                let mut out = Vec::with_capacity(s.len());
                for ch in s.chars() {
                    out.push(u8::try_from(ch as u32).ok()?);
                }
                Some(Cow::Owned(out))
            }
            _ => None,
        }
    }

    /// `io.BytesIO(<literal bytes>)` → the bytes.
    fn bytesio_payload(&self, i: Idx) -> Option<Cow<'_, [u8]>> {
        let Val::Call { func, args, .. } = self.vals.get(i as usize)? else {
            return None;
        };
        let Val::Global(g) = self.vals.get(*func as usize)? else {
            return None;
        };
        let full = &self.globals.get(*g as usize)?.full;
        if full != "io.BytesIO" && full != "_io.BytesIO" {
            return None;
        }
        self.literal_bytes(self.first_arg(*args)?)
    }

    fn first_arg(&self, args: Idx) -> Option<Idx> {
        match self.vals.get(args as usize)? {
            Val::Tuple(a) | Val::List(a) => a.first().copied(),
            _ => None,
        }
    }

    /// True when the value holds a string or bytes literal (a command,
    /// path, URL or payload), looking a few levels into containers.
    fn has_text_data(&self, i: Idx, depth: u32) -> bool {
        if depth > 4 {
            return false;
        }
        match self.vals.get(i as usize) {
            Some(Val::Str(s)) => !s.is_empty(),
            Some(Val::Bytes(b)) => !b.is_empty(),
            Some(
                Val::Tuple(items) | Val::List(items) | Val::Set(items) | Val::FrozenSet(items),
            ) => items
                .iter()
                .take(64)
                .any(|x| self.has_text_data(*x, depth + 1)),
            Some(Val::Dict(items)) => items
                .iter()
                .take(64)
                .any(|(_, v)| self.has_text_data(*v, depth + 1)),
            Some(Val::Call { func, args, .. }) => {
                // bytes written as _codecs.encode('…', 'latin1'), io.BytesIO(b'…')
                self.literal_bytes(i).is_some()
                    || (matches!(self.vals.get(*func as usize), Some(Val::Global(_)))
                        && self.bytesio_payload(i).is_some())
                    || self.has_text_data(*args, depth + 1)
            }
            _ => false,
        }
    }

    /// Scans every bytes argument of a call that parses as a pickle (or every
    /// bytes argument, for a callable known to unpickle) as a nested pickle:
    /// a loader-like callable, such as a data-pipe decoding handler, hands it
    /// to `pickle.loads` (issue 20).
    fn scan_pickle_args(&mut self, args: Idx, kwargs: Option<Idx>, off: u64, loader: bool) {
        let mut cands: Vec<Idx> = Vec::new();
        for root in [Some(args), kwargs].into_iter().flatten() {
            match self.vals.get(root as usize) {
                Some(Val::Tuple(items) | Val::List(items)) => cands.extend(items.iter().take(16)),
                Some(Val::Dict(items)) => cands.extend(items.iter().take(16).map(|(_, v)| *v)),
                _ => {}
            }
        }
        for a in cands {
            if self.nested_done.contains(&a) {
                continue;
            }
            let payload = self
                .literal_bytes(a)
                .or_else(|| self.bytesio_payload(a))
                .map(Cow::into_owned);
            let Some(b) = payload else { continue };
            if b.len() < 2 || !(loader || b[0] == 0x80) || !crate::looks_like_pickle(&b) {
                continue;
            }
            self.nested_done.insert(a);
            scan_embedded(self.ctx, &b, off);
        }
    }

    fn on_call(&mut self, func: Idx, args: Idx, kwargs: Option<Idx>, kind: CallKind) -> R<()> {
        let call = self.new_val(Val::Call {
            func,
            args,
            kwargs,
            state: None,
        })?;
        let via = kind.opcode();
        let off = self.op_off as u64;
        match self.vals.get(func as usize) {
            Some(Val::Global(g)) => {
                let g = *g as usize;
                let Some(e) = self.globals.get(g) else {
                    return self.push(call);
                };
                if e.verdict == Verdict::Allowed || (e.reported && e.verdict == Verdict::Unknown) {
                    // hot path (allowlisted rebuilders): no allocation
                    return self.push(call);
                }
                let verdict = e.verdict.clone();
                let full = e.full.clone();
                let already = e.reported;
                match verdict {
                    Verdict::Allowed => {}
                    Verdict::Denied { reason, source } => {
                        let (loader, analysable) = is_loader(&full);
                        if loader {
                            let a0 = self.first_arg(args).unwrap_or(Idx::MAX);
                            let fresh = !self.nested_done.contains(&a0);
                            // Reported once per imported loader, and again for
                            // every distinct payload value (memoised repeats of
                            // the same call are not re-reported or re-analysed).
                            if !already || fresh {
                                let ev = if self.ctx.full() {
                                    String::new()
                                } else {
                                    format!("{} via {via} — {reason} [{source}]", self.render(call))
                                };
                                self.ctx.emit(&NESTED_LOADER, off, ev, None);
                            }
                            // bytes loaders take the payload directly; file
                            // loaders only when it is wrapped in io.BytesIO(b'…')
                            let payload: Option<Vec<u8>> = if !fresh {
                                None
                            } else if analysable {
                                self.literal_bytes(a0).map(Cow::into_owned)
                            } else {
                                self.bytesio_payload(a0).map(Cow::into_owned)
                            };
                            self.nested_done.insert(a0);
                            if let Some(b) = payload {
                                scan_embedded(self.ctx, &b, off);
                            }
                        } else if !already {
                            let ev =
                                format!("{} via {via} — {reason} [{source}]", self.render(call));
                            self.ctx.emit(&DANGEROUS_CALL, off, ev, None);
                        }
                    }
                    Verdict::Capable {
                        caps,
                        via,
                        canonical,
                    } => {
                        if !already {
                            let ev = format!(
                                "{} via {via} — {} (reaches {via_fn}{alias}) [capability table]",
                                self.render(call),
                                caps.describe(),
                                via_fn = via,
                                alias = if canonical != full {
                                    format!("; {full} is {canonical}")
                                } else {
                                    String::new()
                                },
                            );
                            self.ctx.emit(&CAPABILITY_CALL, off, ev, None);
                        }
                        self.scan_pickle_args(args, kwargs, off, caps.contains(Caps::LOAD));
                    }
                    Verdict::Unknown => {
                        if !already {
                            let data = self.has_text_data(args, 0)
                                || kwargs.is_some_and(|k| self.has_text_data(k, 0));
                            if data && function_like(&full) {
                                let ev = format!(
                                    "call of non-allowlisted function {} with string/bytes arguments",
                                    self.render(call)
                                );
                                self.ctx.emit(&UNKNOWN_CALL_DATA, off, ev, None);
                            } else {
                                let ev = format!("call of non-allowlisted {}", self.render(call));
                                self.ctx.emit(&UNKNOWN_GLOBAL, off, ev, None);
                            }
                        }
                        self.scan_pickle_args(args, kwargs, off, false);
                    }
                }
                if let Some(e) = self.globals.get_mut(g) {
                    e.reported = true;
                }
            }
            Some(Val::Ext(_)) => {}
            _ => {
                if self.ctx.full() {
                    self.ctx.emit(&COMPUTED_CALLABLE, off, String::new(), None);
                } else {
                    let ev = format!("call of computed callable: {}", self.render(call));
                    self.ctx.emit(&COMPUTED_CALLABLE, off, ev, None);
                }
            }
        }
        self.push(call)
    }

    fn on_build(&mut self) -> R<()> {
        let state = self.pop()?;
        let obj = self.top()?;
        let off = self.op_off as u64;
        match self.vals.get(obj as usize) {
            Some(Val::Global(g)) => {
                let g = *g;
                match self.globals.get_mut(g as usize) {
                    Some(e) if !e.build_reported => e.build_reported = true,
                    _ => return Ok(()),
                }
                let ev = format!(
                    "BUILD sets attributes of class/module {} to {}",
                    self.globals
                        .get(g as usize)
                        .map_or("?", |e| e.full.as_str()),
                    self.render(state)
                );
                self.ctx
                    .emit(&BUILD_UNTRUSTED, off, ev, Some(Severity::High));
            }
            Some(Val::Call { .. }) => {
                if let Some(Val::Call { state: st, .. }) = self.vals.get_mut(obj as usize) {
                    *st = Some(state);
                }
                if let Some(g) = self.class_of(obj) {
                    let g = g as usize;
                    let setstate = match self.globals.get(g) {
                        Some(e) if e.resolved && !e.build_reported => {
                            capability::lookup(&e.full, "__setstate__").map(|c| (e.full.clone(), c))
                        }
                        _ => None,
                    };
                    if let Some((full, c)) = setstate {
                        let ev = format!(
                            "BUILD calls {full}.__setstate__ with state {} — {} (reaches {}) [capability table]",
                            self.render(state),
                            c.caps.describe(),
                            c.via
                        );
                        self.ctx.emit(&CAPABILITY_CALL, off, ev, None);
                        if let Some(e) = self.globals.get_mut(g) {
                            e.build_reported = true;
                        }
                        return Ok(());
                    }
                    if let Some(e) = self.globals.get(g) {
                        if e.resolved && !e.build_reported && e.verdict != Verdict::Allowed {
                            let ev = format!(
                                "BUILD (__setstate__/__dict__ update) on instance of non-allowlisted {} with state {}",
                                e.full,
                                self.render(state)
                            );
                            self.ctx.emit(&BUILD_UNTRUSTED, off, ev, None);
                            if let Some(e) = self.globals.get_mut(g) {
                                e.build_reported = true;
                            }
                        } else if e.full == "joblib.numpy_pickle.NumpyArrayWrapper"
                            && e.verdict == Verdict::Allowed
                            && self.ctx.joblib
                        {
                            return self.joblib_array(state);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn dict_get(&self, d: Idx, key: &str) -> Option<Idx> {
        let Val::Dict(items) = self.vals.get(d as usize)? else {
            return None;
        };
        items
            .iter()
            .find(|(k, _)| self.str_of(*k).is_some_and(|s| s == key))
            .map(|(_, v)| *v)
    }

    fn int_of(&self, i: Idx) -> Option<i64> {
        match self.vals.get(i as usize)? {
            Val::Int(n) => Some(*n),
            Val::Bool(b) => Some(*b as i64),
            Val::Long(b) => long_to_i64(b),
            _ => None,
        }
    }

    /// joblib writes the array bytes of a `NumpyArrayWrapper` right after its
    /// BUILD opcode (joblib/numpy_pickle.py `NumpyArrayWrapper.write_array`):
    /// object arrays as a nested pickle, others as an optional alignment
    /// (one length byte then that many 0xff bytes) and `prod(shape)*itemsize`
    /// raw bytes.
    fn joblib_array(&mut self, state: Idx) -> R<()> {
        let shape = self.dict_get(state, "shape");
        let dtype = self.dict_get(state, "dtype");
        let (Some(shape), Some(dtype)) = (shape, dtype) else {
            return bad("joblib NumpyArrayWrapper state without shape/dtype");
        };
        let mut count: u64 = 1;
        match self.vals.get(shape as usize) {
            Some(Val::Tuple(dims)) => {
                for d in dims {
                    let n = self.int_of(*d).filter(|n| *n >= 0);
                    let Some(n) = n else {
                        return bad("joblib array shape is not a tuple of ints");
                    };
                    count = count.saturating_mul(n as u64);
                }
            }
            _ => return bad("joblib array shape is not a tuple"),
        }
        // dtype: numpy.dtype(name, False, True) with BUILD state
        // (version, byteorder, subdescr, names, fields, elsize, alignment, flags)
        let Some(Val::Call {
            args,
            state: dstate,
            ..
        }) = self.vals.get(dtype as usize)
        else {
            return bad("joblib array dtype is not a numpy.dtype");
        };
        let name = self
            .first_arg(*args)
            .and_then(|a| self.str_of(a))
            .map(|s| s.into_owned());
        let Some(name) = name else {
            return bad("joblib array dtype has no name");
        };
        let mut elsize: i64 = -1;
        let mut flags: i64 = 0;
        if let Some(Val::Tuple(st)) = dstate.and_then(|s| self.vals.get(s as usize)) {
            if st.len() >= 8 {
                elsize = self.int_of(st[5]).unwrap_or(-1);
                flags = self.int_of(st[7]).unwrap_or(0);
            }
        }
        let has_object = name.starts_with('O') || flags & 1 != 0;
        if has_object {
            if self.ctx.depth >= self.ctx.limits.max_depth {
                return Err(Halt::Limit("nested pickle depth".into()));
            }
            self.ctx.depth += 1;
            self.ctx.joblib_skipped += 1;
            let end = run_one(self.ctx, self.data, self.pos);
            self.ctx.depth -= 1;
            return match end {
                End::Stop { pos, .. } => {
                    self.pos = pos;
                    Ok(())
                }
                End::Malformed { msg, .. } => bad(format!("joblib object array pickle: {msg}")),
                End::Limit { msg, .. } => Err(Halt::Limit(msg)),
            };
        }
        let itemsize: u64 = if elsize > 0 {
            elsize as u64
        } else {
            let digits: String = name.chars().skip_while(|c| !c.is_ascii_digit()).collect();
            match digits.parse::<u64>() {
                Ok(n) if n > 0 => {
                    if name.starts_with('U') {
                        n * 4
                    } else {
                        n
                    }
                }
                _ if name == "?" || name == "b1" => 1,
                _ => return bad(format!("joblib array dtype '{name}' has unknown item size")),
            }
        };
        if let Some(a) = self.dict_get(state, "numpy_array_alignment_bytes") {
            if self.int_of(a).is_some_and(|n| n > 0) {
                let pad = self.take(1)?[0];
                self.take(pad as u64)?;
            }
        }
        let nbytes = count.saturating_mul(itemsize);
        self.ctx.joblib_skipped += 1;
        self.take(nbytes).map_err(|_| {
            Halt::Malformed(format!("joblib array data of {nbytes} bytes truncated"))
        })?;
        Ok(())
    }

    fn run(&mut self) -> End {
        loop {
            self.op_off = self.pos;
            self.ctx.ops += 1;
            if self.ctx.ops > self.ctx.limits.max_ops {
                return End::Limit {
                    pos: self.op_off,
                    msg: format!("more than {} opcodes", self.ctx.limits.max_ops),
                };
            }
            let stepped = self.step();
            if self.trace.is_some() && stepped.is_ok() {
                self.record();
            }
            match stepped {
                Ok(Some(torch_magic)) => {
                    return End::Stop {
                        pos: self.pos,
                        torch_magic,
                    }
                }
                Ok(None) => {}
                Err(Halt::Malformed(msg)) => {
                    return End::Malformed {
                        pos: self.op_off,
                        msg,
                    }
                }
                Err(Halt::Limit(msg)) => {
                    return End::Limit {
                        pos: self.op_off,
                        msg,
                    }
                }
            }
        }
    }

    fn kind_of(&self, i: Idx) -> &'static str {
        match self.vals.get(i as usize) {
            Some(Val::None) => "NoneType",
            Some(Val::Bool(_)) => "bool",
            Some(Val::Int(_) | Val::Long(_) | Val::LongText(_)) => "int",
            Some(Val::Float(_)) => "float",
            Some(Val::Str(_)) => "str",
            Some(Val::Bytes(_)) => "bytes",
            Some(Val::Tuple(_)) => "tuple",
            Some(Val::List(_)) => "list",
            Some(Val::Dict(_)) => "dict",
            Some(Val::Set(_)) => "set",
            Some(Val::FrozenSet(_)) => "frozenset",
            Some(Val::Global(_)) => "global",
            Some(Val::Call { .. }) => "call",
            Some(Val::PersId(_)) => "persid",
            Some(Val::Ext(_)) => "ext",
            Some(Val::Unknown) | None => "buffer",
        }
    }

    fn value_of(&self, i: Idx) -> Option<String> {
        fn hex(b: &[u8]) -> String {
            b.iter().map(|c| format!("{c:02x}")).collect()
        }
        Some(match self.vals.get(i as usize)? {
            Val::Bool(b) => u8::from(*b).to_string(),
            Val::Int(n) => n.to_string(),
            Val::Long(b) => long_to_i64(b).map_or_else(|| "big".into(), |n| n.to_string()),
            Val::LongText(_) => "big".into(),
            Val::Float(f) => format!("{:016x}", f.to_bits()),
            Val::Str(s) => hex(s),
            Val::Bytes(b) => hex(b),
            _ => return None,
        })
    }

    /// Appends the state after the opcode at `op_off` to the trace.
    fn record(&mut self) {
        let op = self.data.get(self.op_off).copied().unwrap_or(0);
        let top = self.stack.last().copied();
        let literal = b"FIJKLMGSTUVXBC".contains(&op) || matches!(op, 0x88..=0x8e | 0x96);
        let mut memo: Vec<u64> = self
            .memo
            .dense
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != MEMO_EMPTY)
            .map(|(k, _)| k as u64)
            .chain(self.memo.sparse.keys().copied())
            .collect();
        memo.sort_unstable();
        let step = TraceStep {
            pos: self.op_off,
            op,
            depth: self.stack.len(),
            marks: self.marks.len(),
            memo,
            top: top.map(|t| self.kind_of(t)),
            value: if literal {
                top.and_then(|t| self.value_of(t))
            } else {
                None
            },
        };
        if let Some(t) = self.trace.as_mut() {
            t.push(step);
        }
    }

    /// Executes one opcode; `Some(torch_magic)` on STOP.
    fn step(&mut self) -> R<Option<bool>> {
        let Some(&op) = self.data.get(self.pos) else {
            self.ctx.short(self.pos as u64 + 1);
            return bad("truncated: no STOP opcode");
        };
        self.pos += 1;
        match op {
            b'(' => {
                if self.marks.len() >= self.ctx.limits.max_stack {
                    return Err(Halt::Limit("too many MARKs".into()));
                }
                self.marks.push(self.stack.len());
            }
            b'.' => {
                let v = self.pop()?;
                let magic =
                    matches!(self.vals.get(v as usize), Some(Val::Long(b)) if *b == TORCH_MAGIC_LE);
                return Ok(Some(magic));
            }
            b'0' => {
                if self.stack.len() > self.base() {
                    self.stack.pop();
                } else {
                    self.pop_mark()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let t = self.top()?;
                self.push(t)?;
            }
            b'F' => {
                let l = self.line()?;
                match crate::pyint::load_float(l) {
                    Some(f) => self.push_val(Val::Float(f))?,
                    None => return bad("FLOAT: invalid literal"),
                }
            }
            b'I' | b'L' => {
                // CPython's C unpickler parsing (see `pyint`): strtol, then
                // int(text, 0); LONG drops one trailing 'L'.
                let raw = self.line()?;
                let v = if op == b'I' {
                    match crate::pyint::load_int(raw) {
                        Some(crate::pyint::IntOp::Bool(b)) => Val::Bool(b),
                        Some(crate::pyint::IntOp::Int(PyInt::Small(n))) => Val::Int(n),
                        Some(crate::pyint::IntOp::Int(PyInt::Big)) => Val::LongText(trim(raw)),
                        None => return bad("INT: invalid literal"),
                    }
                } else {
                    match crate::pyint::load_long(raw) {
                        Some(PyInt::Small(n)) => Val::Int(n),
                        Some(PyInt::Big) => Val::LongText(trim(raw)),
                        None => return bad("LONG: invalid literal"),
                    }
                };
                self.push_val(v)?;
            }
            b'J' => {
                let n = self.uint(4)? as u32 as i32;
                self.push_val(Val::Int(n as i64))?;
            }
            b'K' => {
                let n = self.uint(1)?;
                self.push_val(Val::Int(n as i64))?;
            }
            b'M' => {
                let n = self.uint(2)?;
                self.push_val(Val::Int(n as i64))?;
            }
            b'N' => self.push_val(Val::None)?,
            b'P' => {
                let l = self.line()?;
                let s = self.new_val(Val::Str(Cow::Borrowed(l)))?;
                self.push_val(Val::PersId(s))?;
            }
            b'Q' => {
                let p = self.pop()?;
                self.push_val(Val::PersId(p))?;
            }
            b'R' => {
                let args = self.pop()?;
                let func = self.pop()?;
                self.on_call(func, args, None, CallKind::Reduce)?;
            }
            b'S' => {
                let l = self.line()?;
                let l = trim_end(l);
                if l.len() < 2 || l[0] != l[l.len() - 1] || !(l[0] == b'\'' || l[0] == b'"') {
                    return bad("STRING: the STRING opcode argument must be quoted");
                }
                let Some(d) = escape_decode(&l[1..l.len() - 1]) else {
                    return bad("STRING: invalid escape");
                };
                self.push_val(Val::Str(Cow::Owned(d)))?;
            }
            b'T' => {
                let n = self.uint(4)? as u32 as i32;
                if n < 0 {
                    return bad("BINSTRING: negative length");
                }
                let s = self.take(n as u64)?;
                self.push_val(Val::Str(Cow::Borrowed(s)))?;
            }
            b'U' => {
                let n = self.uint(1)?;
                let s = self.take(n)?;
                self.push_val(Val::Str(Cow::Borrowed(s)))?;
            }
            b'V' => {
                let l = self.line()?;
                let Some(d) = raw_unicode_escape(l) else {
                    return bad("UNICODE: invalid escape");
                };
                self.push_val(Val::Str(Cow::Owned(d)))?;
            }
            b'X' | 0x8c | 0x8d => {
                let n = match op {
                    b'X' => self.uint(4)?,
                    0x8c => self.uint(1)?,
                    _ => self.uint(8)?,
                };
                let s = self.take(n)?;
                self.push_val(Val::Str(Cow::Borrowed(s)))?;
            }
            b'B' | b'C' | 0x8e | 0x96 => {
                let n = match op {
                    b'B' => self.uint(4)?,
                    b'C' => self.uint(1)?,
                    _ => self.uint(8)?,
                };
                // The C unpickler copies bytes payloads with
                // `_Unpickler_ReadInto`: the rest of its buffer, then the file,
                // so every reader takes them contiguously.
                if self
                    .frame_end
                    .is_some_and(|fe| self.pos as u64 + n > fe as u64)
                {
                    self.frame_end = None;
                }
                let s = self.take(n)?;
                self.push_val(Val::Bytes(s))?;
            }
            b'a' => {
                let v = self.pop()?;
                let l = self.top()?;
                self.charge(1)?;
                if let Some(Val::List(items)) = self.vals.get_mut(l as usize) {
                    items.push(v);
                }
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                let l = self.top()?;
                self.charge(items.len())?;
                match self.vals.get_mut(l as usize) {
                    Some(Val::List(v)) if op == b'e' => v.extend(items),
                    Some(Val::Set(v)) if op == 0x90 => v.extend(items),
                    _ => {}
                }
            }
            b'b' => self.on_build()?,
            b'c' => {
                let g = self.global_line()?;
                self.push(g)?;
            }
            b'd' | b'}' => {
                let items = if op == b'd' {
                    self.pop_mark()?
                } else {
                    Vec::new()
                };
                if items.len() % 2 != 0 {
                    return bad("DICT: odd number of items");
                }
                let pairs: Vec<(Idx, Idx)> = items.chunks_exact(2).map(|c| (c[0], c[1])).collect();
                self.charge(pairs.len())?;
                self.push_val(Val::Dict(pairs))?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                let d = self.top()?;
                self.charge(1)?;
                if let Some(Val::Dict(items)) = self.vals.get_mut(d as usize) {
                    items.push((k, v));
                }
            }
            b'u' => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return bad("SETITEMS: odd number of items");
                }
                let d = self.top()?;
                self.charge(items.len() / 2)?;
                if let Some(Val::Dict(v)) = self.vals.get_mut(d as usize) {
                    v.extend(items.chunks_exact(2).map(|c| (c[0], c[1])));
                }
            }
            b'g' => {
                let l = self.line()?;
                match crate::pyint::memo_key(l) {
                    Some(k) => self.memo_get(k)?,
                    None => return bad("GET: invalid memo key"),
                }
            }
            b'h' => {
                let k = self.uint(1)?;
                self.memo_get(k)?;
            }
            b'j' => {
                let k = self.uint(4)?;
                self.memo_get(k)?;
            }
            b'p' => {
                let l = self.line()?;
                let Some(k) = crate::pyint::memo_key(l) else {
                    return bad("PUT: invalid memo key");
                };
                let t = self.top()?;
                self.memo_put(k, t)?;
            }
            b'q' => {
                let k = self.uint(1)?;
                let t = self.top()?;
                self.memo_put(k, t)?;
            }
            b'r' => {
                let k = self.uint(4)?;
                let t = self.top()?;
                self.memo_put(k, t)?;
            }
            0x94 => {
                let t = self.top()?;
                let k = self.memo.len as u64;
                self.memo_put(k, t)?;
            }
            b'i' => {
                let g = self.global_line()?;
                let items = self.pop_mark()?;
                let args = self.new_val(Val::Tuple(items))?;
                self.on_call(g, args, None, CallKind::Inst)?;
            }
            b'o' => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return bad("OBJ: no class");
                }
                let cls = items.remove(0);
                let args = self.new_val(Val::Tuple(items))?;
                self.on_call(cls, args, None, CallKind::Obj)?;
            }
            b'l' | b't' => {
                let items = self.pop_mark()?;
                self.charge(items.len())?;
                let v = if op == b'l' {
                    Val::List(items)
                } else {
                    Val::Tuple(items)
                };
                self.push_val(v)?;
            }
            b']' => self.push_val(Val::List(Vec::new()))?,
            b')' => self.push_val(Val::Tuple(Vec::new()))?,
            0x8f => self.push_val(Val::Set(Vec::new()))?,
            0x91 => {
                let items = self.pop_mark()?;
                self.charge(items.len())?;
                self.push_val(Val::FrozenSet(items))?;
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = vec![0; n];
                for k in (0..n).rev() {
                    items[k] = self.pop()?;
                }
                self.push_val(Val::Tuple(items))?;
            }
            b'G' => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                self.push_val(Val::Float(f64::from_be_bytes(a)))?;
            }
            0x80 => {
                let p = self.uint(1)?;
                if p > 5 {
                    return bad(format!("unsupported pickle protocol: {p}"));
                }
            }
            0x81 => {
                let args = self.pop()?;
                let cls = self.pop()?;
                self.on_call(cls, args, None, CallKind::NewObj)?;
            }
            0x92 => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                self.on_call(cls, args, Some(kwargs), CallKind::NewObjEx)?;
            }
            0x82..=0x84 => {
                let code = match op {
                    0x82 => self.uint(1)?,
                    0x83 => self.uint(2)?,
                    _ => self.uint(4)? as u32 as i32 as i64 as u64,
                };
                let ev = format!(
                    "EXT{} code {}",
                    [1, 2, 4][(op - 0x82) as usize],
                    code as i64
                );
                self.ctx.emit(&EXT_REGISTRY, self.op_off as u64, ev, None);
                self.push_val(Val::Ext(code as u32))?;
            }
            0x88 => self.push_val(Val::Bool(true))?,
            0x89 => self.push_val(Val::Bool(false))?,
            0x8a | 0x8b => {
                let n = if op == 0x8a {
                    self.uint(1)?
                } else {
                    let n = self.uint(4)? as u32 as i32;
                    if n < 0 {
                        return bad("LONG4: negative byte count");
                    }
                    n as u64
                };
                let b = self.take(n)?;
                let v = match long_to_i64(b) {
                    Some(x) => Val::Int(x),
                    None => Val::Long(b),
                };
                self.push_val(v)?;
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (self.str_of(module), self.str_of(name)) {
                    (Some(m), Some(n)) => {
                        let (m, n) = (m.into_owned(), n.into_owned());
                        let g = self.add_global(&m, &n, true)?;
                        self.push(g)?;
                    }
                    _ => {
                        let ev = format!(
                            "STACK_GLOBAL(module={}, name={}) is computed at load time",
                            self.render(module),
                            self.render(name)
                        );
                        self.ctx
                            .emit(&UNRESOLVABLE_GLOBAL, self.op_off as u64, ev.clone(), None);
                        let g = self.add_global("<computed>", &ev, false)?;
                        self.push(g)?;
                    }
                }
            }
            0x95 => {
                let n = self.uint(8)?;
                // A frame inside a frame: the C unpickler reading a file
                // takes it from the bytes it holds when they suffice (the
                // frame stays as it was), else drops them and reads on.
                if self.ctx.file_frames {
                    if let Some(fe) = self.frame_end.filter(|fe| self.pos < *fe) {
                        if (fe - self.pos) as u64 >= n {
                            return Ok(None);
                        }
                        self.pos = fe;
                    }
                }
                if n > (self.data.len() - self.pos) as u64 {
                    self.ctx.short((self.pos as u64).saturating_add(n));
                    return bad(format!("FRAME of {n} bytes exceeds the data"));
                }
                self.frame_end = Some(self.pos + n as usize);
            }
            0x97 => self.push_val(Val::Unknown)?,
            0x98 => {
                self.top()?;
            }
            other => return bad(format!("invalid opcode 0x{other:02x}")),
        }
        Ok(None)
    }

    /// Reports globals that were imported but never called.
    fn flush_imports(&mut self) {
        let mut out = Vec::new();
        for e in &self.globals {
            if e.reported {
                continue;
            }
            match &e.verdict {
                Verdict::Allowed => {}
                Verdict::Denied { reason, source } => out.push((
                    &DANGEROUS_IMPORT,
                    e.offset,
                    format!("import of {} — {reason} [{source}]", e.full),
                )),
                Verdict::Unknown => out.push((
                    &UNKNOWN_GLOBAL,
                    e.offset,
                    format!("import of non-allowlisted {}", e.full),
                )),
                // Imported, never called: lower than a call.
                Verdict::Capable { caps, via, .. } => out.push((
                    &CAPABILITY_CALL,
                    e.offset,
                    format!(
                        "import (no call seen) of {} — {} (reaches {via}) [capability table]",
                        e.full,
                        caps.describe()
                    ),
                )),
            }
        }
        for (r, o, ev) in out {
            let sev = (r.id == CAPABILITY_CALL.id).then_some(Severity::Medium);
            self.ctx.emit(r, o, ev, sev);
        }
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &b[..e]
}

#[cfg(test)]
mod memo_tests {
    use super::*;

    #[test]
    fn dense_and_sparse_keys() {
        let mut m = Memo::default();
        assert!(m.put(0, 7, 10));
        assert!(m.put(900_000, 8, 10));
        assert!(m.dense.len() < 4096, "far key must not grow the vector");
        assert!(m.put(5, 9, 10));
        assert_eq!(m.get(0), Some(7));
        assert_eq!(m.get(900_000), Some(8));
        assert_eq!(m.get(5), Some(9));
        assert_eq!(m.get(6), None);
        assert!(m.put(5, 1, 3));
        assert_eq!(m.len, 3);
        assert!(!m.put(11, 1, 3));
    }
}
