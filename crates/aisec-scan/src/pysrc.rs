//! Static reading of the Python files a Hugging Face `auto_map` makes
//! `transformers` import under `trust_remote_code=True`.
//!
//! The source is parsed with RustPython's parser (`rustpython-parser`, a
//! LALRPOP grammar of Python 3) and never run. Every call is resolved
//! through the file's imports and simple aliases (`import os as o`,
//! `from subprocess import Popen as P`, `s = os.system`,
//! `__import__("os").system`, `getattr(os, "system")`) to a dotted name,
//! and that name is looked up in aisec-pickle's capability table: the
//! table generated from the standard library and the common ML libraries
//! (see `aisec_pickle::capability`), so that a helper nobody listed is
//! still known to spawn processes if it can. A few third-party network
//! clients the table does not cover (requests, httpx, urllib3, aiohttp,
//! paramiko) are added by name.
//!
//! Severity follows what the loader does: code at module level and in
//! class bodies runs on import, `__init__` on instantiation, other
//! functions when called. Process creation and code execution are
//! critical anywhere; network, dynamic imports, nested unpickling and file
//! writes are high (file writes only where they run at load: tokenizers'
//! `save_vocabulary` writes files by design); reads are low.
//!
//! Files are found the way `transformers.dynamic_module_utils` finds them:
//! `auto_map` names `module.Class`, the file is `module.py` beside the
//! config, and relative imports (`from .utils import x`) pull in further
//! files, followed here up to [`MAX_FILES`].
//!
//! Bounds: files over [`MAX_SOURCE`] bytes are not parsed; a pre-pass over
//! the tokens refuses bracket nesting over 200 (CPython's own tokenizer
//! limit) and statements of more than [`MAX_STMT_TOKENS`] tokens, which is
//! what bounds the depth of the tree; parsing runs on a thread with a
//! 64 MiB stack.

use std::collections::HashMap;

use aisec_core::{Finding, Location, Severity};
use aisec_pickle::capability::{self, Caps};
use rustpython_ast::Visitor;
use rustpython_parser::ast::{self, Constant, Expr};

use crate::rules::HF_REMOTE_CODE_CALL;

/// Largest Python file parsed.
pub const MAX_SOURCE: usize = 2 * 1024 * 1024;
/// Most files followed from one config (auto_map targets and relative imports).
pub const MAX_FILES: usize = 32;
/// Most tokens in one logical line (statement); bounds the tree's depth.
pub const MAX_STMT_TOKENS: usize = 20_000;
/// CPython's tokenizer refuses deeper bracket nesting (MAXLEVEL).
const MAX_BRACKETS: usize = 200;

/// When the code of a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// Module level or class body: on import.
    Import,
    /// An `__init__` (or `__new__`/`__call__`/`forward`): when the model is built or run.
    Init,
    /// Any other function: when called.
    Called,
}

#[derive(Debug)]
struct Call {
    line: usize,
    /// Root name and attribute path (`o`, [`system`]).
    root: Root,
    attrs: Vec<String>,
    /// `open()`'s mode when constant.
    mode: Option<String>,
    /// Number of positional args plus keywords.
    has_mode_arg: bool,
    /// A dynamic import or attribute (non-constant name).
    dynamic: Option<&'static str>,
    when: When,
}

#[derive(Debug, Clone)]
enum Root {
    Name(String),
    Module(String),
}

#[derive(Default)]
struct Collect {
    /// local name -> dotted target.
    binds: HashMap<String, String>,
    calls: Vec<Call>,
    relative: Vec<String>,
    scope: Vec<String>,
    class_depth: usize,
    line_starts: Vec<usize>,
}

impl Collect {
    fn line(&self, off: u32) -> usize {
        match self.line_starts.binary_search(&(off as usize)) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn when(&self) -> When {
        match self.scope.last() {
            None => When::Import,
            Some(f) if matches!(f.as_str(), "__init__" | "__new__" | "__call__" | "forward") => {
                When::Init
            }
            Some(_) => When::Called,
        }
    }

    fn bind(&mut self, local: &str, target: String) {
        if self.binds.len() < 100_000 {
            self.binds.insert(local.to_string(), target);
        }
    }
}

/// The dotted path of an expression: `a.b.c`, `__import__("x").y`,
/// `importlib.import_module("x").y`, `getattr(a, "b")`.
fn path_of(e: &Expr) -> Option<(Root, Vec<String>)> {
    let mut attrs = Vec::new();
    let mut cur = e;
    for _ in 0..64 {
        match cur {
            Expr::Attribute(a) => {
                attrs.push(a.attr.to_string());
                cur = &a.value;
            }
            Expr::Name(n) => {
                attrs.reverse();
                return Some((Root::Name(n.id.to_string()), attrs));
            }
            Expr::Call(c) => {
                // __import__("os") / importlib.import_module("os")
                let callee = path_of(&c.func);
                let first = c.args.first().and_then(const_str);
                match (callee, first) {
                    (Some((Root::Name(n), a)), Some(m))
                        if (n == "__import__" && a.is_empty())
                            || (a == ["import_module"] && n == "importlib") =>
                    {
                        attrs.reverse();
                        return Some((Root::Module(m), attrs));
                    }
                    (Some((Root::Name(n), a)), _) if n == "getattr" && a.is_empty() => {
                        let name = c.args.get(1).and_then(const_str)?;
                        attrs.push(name);
                        cur = c.args.first()?;
                    }
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    None
}

fn const_str(e: &Expr) -> Option<String> {
    match e {
        Expr::Constant(c) => match &c.value {
            Constant::Str(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

impl Visitor for Collect {
    fn visit_stmt_function_def(&mut self, node: ast::StmtFunctionDef) {
        self.scope.push(node.name.to_string());
        self.generic_visit_stmt_function_def(node);
        self.scope.pop();
    }

    fn visit_stmt_async_function_def(&mut self, node: ast::StmtAsyncFunctionDef) {
        self.scope.push(node.name.to_string());
        self.generic_visit_stmt_async_function_def(node);
        self.scope.pop();
    }

    fn visit_stmt_class_def(&mut self, node: ast::StmtClassDef) {
        self.class_depth += 1;
        self.generic_visit_stmt_class_def(node);
        self.class_depth -= 1;
    }

    fn visit_stmt_import(&mut self, node: ast::StmtImport) {
        for a in &node.names {
            let full = a.name.to_string();
            match &a.asname {
                Some(asn) => self.bind(asn.as_str(), full),
                None => {
                    let first = full.split('.').next().unwrap_or(&full).to_string();
                    self.bind(&first.clone(), first);
                }
            }
        }
    }

    fn visit_stmt_import_from(&mut self, node: ast::StmtImportFrom) {
        let level = node.level.map_or(0, |l| l.to_u32());
        let module = node
            .module
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        if level > 0 {
            if self.relative.len() < 256 {
                if module.is_empty() {
                    for a in &node.names {
                        self.relative.push(a.name.to_string());
                    }
                } else {
                    self.relative.push(module.clone());
                }
            }
            return;
        }
        for a in &node.names {
            if a.name.as_str() == "*" {
                continue;
            }
            let local = a.asname.as_ref().unwrap_or(&a.name).to_string();
            self.bind(&local, format!("{module}.{}", a.name));
        }
    }

    fn visit_stmt_assign(&mut self, node: ast::StmtAssign) {
        // `s = os.system`: a simple alias.
        if let [Expr::Name(t)] = node.targets.as_slice() {
            if let Some((Root::Name(r), attrs)) = path_of(&node.value) {
                if let Some(target) = self.binds.get(&r).cloned() {
                    let mut full = target;
                    for a in attrs {
                        full.push('.');
                        full.push_str(&a);
                    }
                    self.bind(t.id.as_str(), full);
                }
            } else if let Some((Root::Module(m), attrs)) = path_of(&node.value) {
                let mut full = m;
                for a in attrs {
                    full.push('.');
                    full.push_str(&a);
                }
                self.bind(t.id.as_str(), full);
            }
        }
        self.generic_visit_stmt_assign(node);
    }

    fn visit_expr_call(&mut self, node: ast::ExprCall) {
        let line = self.line(node.range.start().to_u32());
        let when = self.when();
        let mut dynamic = None;
        if let Some((Root::Name(n), a)) = path_of(&node.func) {
            let first_const = node.args.first().map(const_str);
            if (n == "__import__" && a.is_empty()) || (n == "importlib" && a == ["import_module"]) {
                if first_const == Some(None) {
                    dynamic = Some("imports a module whose name is computed");
                }
            } else if n == "getattr"
                && a.is_empty()
                && node.args.get(1).is_some_and(|x| const_str(x).is_none())
            {
                dynamic = Some("reads an attribute whose name is computed (getattr)");
            }
        }
        if let Some((root, attrs)) = path_of(&node.func) {
            let mode = node
                .args
                .get(1)
                .or_else(|| {
                    node.keywords
                        .iter()
                        .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "mode"))
                        .map(|k| &k.value)
                })
                .map(|m| const_str(m).unwrap_or_else(|| "<computed>".into()));
            if self.calls.len() < 100_000 {
                self.calls.push(Call {
                    line,
                    root,
                    attrs,
                    has_mode_arg: mode.is_some(),
                    mode,
                    dynamic,
                    when,
                });
            }
        } else if let Some(d) = dynamic {
            self.calls.push(Call {
                line,
                root: Root::Name(String::new()),
                attrs: Vec::new(),
                mode: None,
                has_mode_arg: false,
                dynamic: Some(d),
                when,
            });
        }
        self.generic_visit_expr_call(node);
    }
}

/// Third-party network clients the capability table does not analyse.
const NETWORK_MODULES: &[&str] = &[
    "requests", "httpx", "urllib3", "aiohttp", "paramiko", "pycurl",
];

/// Builtins looked up as `builtins.<name>` when not rebound.
const BUILTINS: &[&str] = &[
    "eval",
    "exec",
    "compile",
    "__import__",
    "open",
    "breakpoint",
    "execfile",
];

/// What one Python file does, as findings against `loc`.
#[derive(Debug, Default)]
pub struct PyReport {
    /// Capability findings (one per distinct call site kind and line).
    pub findings: Vec<Finding>,
    /// Relative imports (module names) to follow.
    pub relative: Vec<String>,
    /// Why the file was not analysed, if it was not.
    pub not_analysed: Option<String>,
}

/// Token pre-pass: bracket depth and statement length within bounds.
fn precheck(src: &str) -> Result<(), String> {
    use rustpython_parser::{lexer::lex, Mode, Tok};
    let mut depth = 0usize;
    let mut in_stmt = 0usize;
    for t in lex(src, Mode::Module) {
        let (tok, _) = t.map_err(|e| format!("tokenizer: {}", e.error))?;
        match tok {
            Tok::Lpar | Tok::Lsqb | Tok::Lbrace => {
                depth += 1;
                if depth > MAX_BRACKETS {
                    return Err(format!("brackets nest deeper than {MAX_BRACKETS}"));
                }
            }
            Tok::Rpar | Tok::Rsqb | Tok::Rbrace => depth = depth.saturating_sub(1),
            Tok::Newline => in_stmt = 0,
            _ => {}
        }
        in_stmt += 1;
        if in_stmt > MAX_STMT_TOKENS {
            return Err(format!("a statement of more than {MAX_STMT_TOKENS} tokens"));
        }
    }
    Ok(())
}

/// Parses and judges one Python file.
pub fn scan_python(src: &[u8], loc: &Location) -> PyReport {
    let mut rep = PyReport::default();
    if src.len() > MAX_SOURCE {
        rep.not_analysed = Some(format!(
            "{} bytes is over the {MAX_SOURCE}-byte limit for Python sources",
            src.len()
        ));
        return rep;
    }
    let Ok(text) = std::str::from_utf8(src) else {
        rep.not_analysed = Some("not UTF-8 (Python would refuse it too)".into());
        return rep;
    };
    let text = text.to_string();
    let loc2 = loc.clone();
    let run = move || -> Result<Collect, String> {
        precheck(&text)?;
        let m = rustpython_parser::parse(&text, rustpython_parser::Mode::Module, "<remote code>")
            .map_err(|e| format!("syntax error: {}", e.error))?;
        let mut c = Collect {
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
            ..Collect::default()
        };
        if let ast::Mod::Module(m) = m {
            for s in m.body {
                c.visit_stmt(s);
            }
        }
        let _ = &loc2;
        Ok(c)
    };
    let res = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(run)
        .map_err(|e| e.to_string())
        .and_then(|h| h.join().map_err(|_| "parser thread failed".to_string()))
        .and_then(|r| r);
    let c = match res {
        Ok(c) => c,
        Err(e) => {
            rep.not_analysed = Some(e);
            return rep;
        }
    };
    rep.relative = c.relative.clone();
    judge(&c, loc, &mut rep);
    rep
}

fn resolve(c: &Collect, call: &Call) -> Option<String> {
    let mut base = match &call.root {
        Root::Module(m) => m.clone(),
        Root::Name(n) if n.is_empty() => return None,
        Root::Name(n) => match c.binds.get(n) {
            Some(t) => t.clone(),
            None if BUILTINS.contains(&n.as_str()) => format!("builtins.{n}"),
            None => return None,
        },
    };
    for a in &call.attrs {
        base.push('.');
        base.push_str(a);
    }
    Some(base)
}

/// Capabilities of a dotted name: the table, then the network modules.
fn caps_of(full: &str) -> Option<(String, Caps, String)> {
    let parts: Vec<&str> = full.split('.').collect();
    for i in (1..parts.len()).rev() {
        let module = parts[..i].join(".");
        if i > 1 && !capability::module_known(&module) {
            continue;
        }
        let name = parts[i..].join(".");
        if let Some(info) = capability::lookup(&module, &name) {
            return Some((info.canonical, info.caps, info.via.to_string()));
        }
    }
    if NETWORK_MODULES.contains(&parts[0]) && parts.len() > 1 {
        return Some((full.to_string(), Caps::NETWORK, parts[0].to_string()));
    }
    None
}

fn judge(c: &Collect, loc: &Location, rep: &mut PyReport) {
    let mut seen: Vec<(usize, String)> = Vec::new();
    for call in &c.calls {
        let where_ = match call.when {
            When::Import => "on import",
            When::Init => "when the model is built or run",
            When::Called => "when called",
        };
        let (sev, what) = if let Some(d) = call.dynamic {
            (Severity::High, d.to_string())
        } else {
            let Some(full) = resolve(c, call) else {
                continue;
            };
            let Some((canonical, caps, via)) = caps_of(&full) else {
                continue;
            };
            let via = if via.is_empty() || via == canonical {
                String::new()
            } else {
                format!(" via {via}")
            };
            if canonical == "builtins.open" || canonical == "io.open" {
                let writes = match &call.mode {
                    Some(m) => m.contains(['w', 'a', 'x', '+']) || m == "<computed>",
                    None => false,
                };
                let _ = call.has_mode_arg;
                if writes {
                    let sev = if call.when == When::Called {
                        Severity::Low
                    } else {
                        Severity::High
                    };
                    (sev, format!("calls {full} (opens a file for writing){via}"))
                } else {
                    (Severity::Low, format!("calls {full} (reads a file)"))
                }
            } else {
                let sev = if caps.contains(Caps::EXEC) || caps.contains(Caps::PROCESS) {
                    Severity::Critical
                } else if caps.contains(Caps::NETWORK) || caps.contains(Caps::IMPORT) {
                    Severity::High
                } else if caps.contains(Caps::LOAD) {
                    if call.when == When::Called {
                        Severity::Medium
                    } else {
                        Severity::High
                    }
                } else if call.when == When::Called {
                    Severity::Low
                } else {
                    Severity::High
                };
                let shown = if full == canonical {
                    full.clone()
                } else {
                    format!("{full} (= {canonical})")
                };
                (
                    sev,
                    format!("calls {shown}, which {}{via}", caps.describe()),
                )
            }
        };
        let key = (call.line, what.clone());
        if seen.contains(&key) || seen.len() >= 200 {
            continue;
        }
        seen.push(key);
        rep.findings.push(
            HF_REMOTE_CODE_CALL
                .finding(loc.clone(), format!("line {}: {what}, {where_}", call.line))
                .severity(sev)
                .metric("line", call.line as u64),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> PyReport {
        scan_python(src.as_bytes(), &Location::path("modeling_x.py"))
    }

    fn sev(r: &PyReport) -> Option<Severity> {
        r.findings.iter().map(|f| f.severity).max()
    }

    #[test]
    fn aliases_resolve_to_sinks() {
        for src in [
            "import os as o\no.system('id')\n",
            "from subprocess import Popen as P\nP(['id'])\n",
            "import os\ns = os.system\ns('id')\n",
            "__import__('os').system('id')\n",
            "import importlib\nimportlib.import_module('subprocess').run(['id'])\n",
            "import os\ngetattr(os, 'system')('id')\n",
            "exec(compile('1', 'x', 'exec'))\n",
            "class M:\n    def __init__(self):\n        import pty\n        pty.spawn('sh')\n",
        ] {
            let r = run(src);
            assert!(r.not_analysed.is_none(), "{src}: {:?}", r.not_analysed);
            assert_eq!(
                sev(&r),
                Some(Severity::Critical),
                "{src}: {:#?}",
                r.findings
            );
        }
    }

    #[test]
    fn network_dynamic_import_and_writes_are_high() {
        for src in [
            "import urllib.request\nurllib.request.urlopen('http://x')\n",
            "import requests\nrequests.get('http://x')\n",
            "m = input()\n__import__(m)\n",
            "open('/home/u/.bashrc', 'a').write('x')\n",
        ] {
            let r = run(src);
            assert_eq!(sev(&r), Some(Severity::High), "{src}: {:#?}", r.findings);
        }
    }

    #[test]
    fn ordinary_modeling_code_stays_low() {
        let src = r#"
import json, os
import torch
from torch import nn
from .configuration_x import XConfig

class XModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.vocab = json.load(open(config.vocab_file))

    def forward(self, x):
        return torch.relu(self.lin(x))

    def save_vocabulary(self, d):
        with open(os.path.join(d, "vocab.json"), "w") as f:
            json.dump(self.vocab, f)
"#;
        let r = run(src);
        assert!(r.not_analysed.is_none(), "{:?}", r.not_analysed);
        assert!(sev(&r) <= Some(Severity::Low), "{:#?}", r.findings);
        assert_eq!(r.relative, vec!["configuration_x"]);
    }

    #[test]
    fn lines_are_reported() {
        let r = run("\n\nimport os\n\nos.system('x')\n");
        assert!(
            r.findings[0].evidence.starts_with("line 5:"),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn pathological_sources_are_refused_not_crashed() {
        let deep = format!("x = {}1{}\n", "(".repeat(5000), ")".repeat(5000));
        assert!(run(&deep).not_analysed.is_some());
        let long = format!("x = 1{}\n", "+1".repeat(30_000));
        assert!(run(&long).not_analysed.unwrap().contains("tokens"));
        assert!(run("def (:\n").not_analysed.is_some());
        assert!(run("def f(:\n    pass\n").not_analysed.is_some());
        assert!(scan_python(b"\xff\xfe", &Location::path("x.py"))
            .not_analysed
            .is_some());
    }
}
