//! Chat-template (Jinja) analysis on a real parse tree.
//!
//! The template is parsed with minijinja's parser (`unstable_machinery`: the
//! AST only; nothing is compiled or rendered). The tree is then walked with a
//! small constant folder that evaluates, on string, integer and list
//! constants, what Jinja2 would evaluate at render time: `~`, `+`, `*`, `%`
//! (printf), the string filters (`join`, `replace`, `format`, `lower`,
//! `upper`, `reverse`, `list`, `first`, `last`, ...), the `str` methods
//! (`'{}'.format`, `''.join`, ...), subscripts and slices, `dict(k=...)` key
//! lists, and `{% set %}` / `{% set %}...{% endset %}` variables bound to
//! constants. Attribute names reached by `.name`, `['name']`, `|attr(name)`
//! and `attribute=` arguments are resolved through that folder, so the same
//! dunder chain is seen however the name is spelled.
//!
//! String literals are re-decoded from the source with Python's escape rules
//! (Jinja2 decodes them with Python's `unicode-escape` codec), because
//! minijinja's lexer keeps `\N{...}` and `\U........` literally.
//!
//! Bounds: the template size, the tokens per `{{ }}`/`{% %}` block (the
//! parser builds operator and postfix chains iteratively, so the tree depth
//! is bounded by that count), the walk depth and the size of every folded
//! value. Anything over a bound is reported as unanalysable, never a panic.

use std::collections::{BTreeSet, HashMap};

use minijinja::machinery::{ast, parse, tokenize, Token, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;

/// Largest template handed to the parser.
pub const MAX_PARSE_BYTES: usize = 256 * 1024;
/// Most tokens in one `{{ }}` or `{% %}` block (bounds the tree depth).
const MAX_BLOCK_TOKENS: usize = 2_000;
/// Most tokens in the whole template.
const MAX_TOKENS: usize = 200_000;
/// Deepest expression/statement nesting the walker follows (above what the
/// block-token bound and the parser's own statement-recursion limit allow).
const MAX_DEPTH: usize = 2_500;
/// Stack for the thread that parses, walks and drops the tree.
const ANALYSIS_STACK: usize = 64 << 20;
/// Largest folded value (characters plus list elements).
const MAX_VALUE: usize = 4096;
/// Most weight bound to `set` variables over one template.
const MAX_VARS_WEIGHT: usize = 1 << 20;

/// Module-like names whose use in a template means reaching the host.
const MODULE_NAMES: &[&str] = &[
    "os",
    "subprocess",
    "sys",
    "builtins",
    "importlib",
    "posix",
    "nt",
    "pty",
    "shutil",
    "socket",
];

/// Callables that run commands or code when called.
const EXEC_CALLS: &[&str] = &[
    "popen",
    "system",
    "eval",
    "exec",
    "check_output",
    "check_call",
    "getoutput",
    "getstatusoutput",
    "import_module",
    "spawnl",
    "spawnv",
    "execl",
    "execv",
    "execve",
    "run",
    "call",
    "load_module",
    "compile",
];

/// Jinja globals (and Flask ones) used as the root of escape chains.
const GADGETS: &[&str] = &[
    "cycler",
    "joiner",
    "lipsum",
    "namespace",
    "range",
    "dict",
    "self",
    "config",
    "request",
    "url_for",
    "get_flashed_messages",
    "loop",
    "caller",
    "varargs",
    "kwargs",
];

/// What the walk found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Analysis {
    /// Dunder names accessed as attributes or built as string constants.
    pub dunders: BTreeSet<String>,
    /// `_private` (non-dunder) attributes accessed.
    pub private: BTreeSet<String>,
    /// Command/code-running callables called, and module names reached.
    pub exec: BTreeSet<String>,
    /// Jinja globals at the root of a chain that reached a dunder or private name.
    pub gadgets: BTreeSet<String>,
    /// `|attr(x)` (or `map('attr', x)`) whose name is not a constant.
    pub dynamic_attr: usize,
    /// Source excerpt of the first statement that reached a dunder.
    pub excerpt: Option<String>,
    /// The walk stopped at the depth bound (the rest was not judged).
    pub too_deep: bool,
}

/// The result of analysing one template.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Parsed and walked.
    Parsed(Analysis),
    /// Not parsed: the reason (lexer/parser error or a bound).
    Unparseable(String),
}

/// Parses and judges one template, on a thread with a large stack (the
/// tree is walked and dropped recursively); a panic in the parser becomes
/// an unparseable outcome.
pub fn analyse(template: &str) -> Outcome {
    std::thread::scope(|sc| {
        match std::thread::Builder::new()
            .name("aisec-jinja".into())
            .stack_size(ANALYSIS_STACK)
            .spawn_scoped(sc, || analyse_here(template))
        {
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| Outcome::Unparseable("the template parser failed".into())),
            Err(e) => Outcome::Unparseable(format!("could not start the analysis thread: {e}")),
        }
    })
}

fn analyse_here(template: &str) -> Outcome {
    if template.len() > MAX_PARSE_BYTES {
        return Outcome::Unparseable(format!(
            "template is {} bytes, over the {} byte parse bound",
            template.len(),
            MAX_PARSE_BYTES
        ));
    }
    let src = blank_extension_tags(template);
    if let Err(e) = check_tokens(&src) {
        return Outcome::Unparseable(e);
    }
    let tree = match parse(&src, "chat_template", syntax(), WhitespaceConfig::default()) {
        Ok(t) => t,
        Err(e) => return Outcome::Unparseable(e.to_string()),
    };
    let mut w = Walker {
        src: &src,
        vars: HashMap::new(),
        vars_weight: 0,
        a: Analysis::default(),
        depth: 0,
        stmt_span: None,
    };
    w.stmt(&tree);
    Outcome::Parsed(w.a)
}

/// Replaces transformers' `{% generation %}` / `{% endgeneration %}` tags
/// (its `AssistantTracker` extension; the body renders normally) with spaces
/// of the same length, so byte offsets stay those of the original.
fn blank_extension_tags(t: &str) -> String {
    let mut out = t.to_string();
    let mut from = 0;
    while let Some(p) = t[from..].find("{%") {
        let start = from + p;
        let rest = &t[start + 2..];
        let inner = rest.trim_start_matches(['-', '+']).trim_start();
        let word_end = inner
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(inner.len());
        let word = &inner[..word_end];
        from = start + 2;
        if word != "generation" && word != "endgeneration" {
            continue;
        }
        let after = inner[word_end..].trim_start().trim_start_matches('-');
        if let Some(close) = after.strip_prefix("%}") {
            let end = t.len() - close.len();
            out.replace_range(start..end, &" ".repeat(end - start));
            from = end;
        }
    }
    out
}

/// Lexes the template once to enforce the token bounds before parsing.
fn check_tokens(src: &str) -> Result<(), String> {
    let mut total = 0usize;
    let mut in_block = 0usize;
    for tok in tokenize(src, false, syntax(), WhitespaceConfig::default()) {
        let (tok, _) = tok.map_err(|e| e.to_string())?;
        total += 1;
        if total > MAX_TOKENS {
            return Err(format!("more than {MAX_TOKENS} tokens"));
        }
        match tok {
            Token::VariableStart | Token::BlockStart => in_block = 1,
            Token::VariableEnd | Token::BlockEnd => in_block = 0,
            _ if in_block > 0 => {
                in_block += 1;
                if in_block > MAX_BLOCK_TOKENS {
                    return Err(format!(
                        "a template block has more than {MAX_BLOCK_TOKENS} tokens"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The default delimiters (`default()`, not the unit literal, so this still
/// builds if another crate turns on minijinja's `custom_syntax`).
#[allow(clippy::default_constructed_unit_structs)]
fn syntax() -> SyntaxConfig {
    SyntaxConfig::default()
}

/// Positional and keyword call arguments, folded where constant.
type Args = (Vec<Option<V>>, Vec<(String, Option<V>)>);

/// A folded constant.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Str(String),
    Int(i64),
    List(Vec<V>),
}

impl V {
    fn weight(&self) -> usize {
        match self {
            V::Str(s) => s.chars().count().max(1),
            V::Int(_) => 1,
            V::List(l) => l.iter().map(V::weight).sum::<usize>() + 1,
        }
    }
    /// Jinja's `~` / `|string` conversion, for the shapes we fold.
    fn to_text(&self) -> Option<String> {
        match self {
            V::Str(s) => Some(s.clone()),
            V::Int(i) => Some(i.to_string()),
            V::List(_) => None,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            V::Str(s) => Some(s),
            _ => None,
        }
    }
    fn as_int(&self) -> Option<i64> {
        match self {
            V::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// Elements when iterated (a string iterates its characters).
    fn items(&self) -> Option<Vec<V>> {
        match self {
            V::Str(s) => Some(s.chars().map(|c| V::Str(c.to_string())).collect()),
            V::List(l) => Some(l.clone()),
            V::Int(_) => None,
        }
    }
}

/// Keeps a folded value only while it is small.
fn cap(v: V) -> Option<V> {
    (v.weight() <= MAX_VALUE).then_some(v)
}

fn str_v(s: String) -> Option<V> {
    cap(V::Str(s))
}

struct Walker<'s> {
    src: &'s str,
    vars: HashMap<String, V>,
    /// Total weight ever bound (not reduced on rebinding: a bound on work).
    vars_weight: usize,
    a: Analysis,
    depth: usize,
    stmt_span: Option<(usize, usize)>,
}

/// Whether `name` is `__x__`.
fn is_dunder(name: &str) -> bool {
    name.len() > 4
        && name.starts_with("__")
        && name.ends_with("__")
        && name[2..name.len() - 2].chars().any(|c| c.is_alphanumeric())
}

/// Every `__word__` inside a string.
fn dunders_in(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'_' && b[i + 1] == b'_' {
            let mut j = i + 2;
            while j < b.len() && b[j] == b'_' {
                j += 1;
            }
            let word_start = j;
            while j < b.len() && b[j].is_ascii_alphanumeric() {
                j += 1;
                while j + 1 < b.len() && b[j] == b'_' && b[j + 1] != b'_' {
                    j += 1;
                }
            }
            if j > word_start && b.get(j) == Some(&b'_') && b.get(j + 1) == Some(&b'_') {
                out.push(format!("__{}__", &s[word_start..j]));
                i = j + 2;
                continue;
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// The source span of a statement (not of a whole template).
fn stmt_span(s: &ast::Stmt<'_>) -> Option<minijinja::machinery::Span> {
    use ast::Stmt as S;
    Some(match s {
        S::Template(_) => return None,
        S::EmitExpr(x) => x.span(),
        S::EmitRaw(x) => x.span(),
        S::ForLoop(x) => x.span(),
        S::IfCond(x) => x.span(),
        S::WithBlock(x) => x.span(),
        S::Set(x) => x.span(),
        S::SetBlock(x) => x.span(),
        S::AutoEscape(x) => x.span(),
        S::FilterBlock(x) => x.span(),
        S::Block(x) => x.span(),
        S::Import(x) => x.span(),
        S::FromImport(x) => x.span(),
        S::Extends(x) => x.span(),
        S::Include(x) => x.span(),
        S::Macro(x) => x.span(),
        S::CallBlock(x) => x.span(),
        S::Continue(x) => x.span(),
        S::Break(x) => x.span(),
        S::Do(x) => x.span(),
    })
}

/// The variable at the root of an attribute/call chain.
fn root_var<'a>(mut e: &'a ast::Expr<'a>) -> Option<&'a str> {
    for _ in 0..MAX_DEPTH {
        e = match e {
            ast::Expr::Var(v) => return Some(v.id),
            ast::Expr::GetAttr(g) => &g.expr,
            ast::Expr::GetItem(g) => &g.expr,
            ast::Expr::Call(c) => &c.expr,
            ast::Expr::Filter(f) => f.expr.as_ref()?,
            ast::Expr::List(l) => l.items.first()?,
            _ => return None,
        };
    }
    None
}

impl Walker<'_> {
    fn note_str(&mut self, s: &str) {
        for d in dunders_in(s) {
            self.found_dunder(d, None);
        }
    }

    fn note_value(&mut self, v: &V) {
        match v {
            V::Str(s) => self.note_str(s),
            V::List(l) => {
                for x in l {
                    if let V::Str(s) = x {
                        self.note_str(s);
                    }
                }
            }
            V::Int(_) => {}
        }
    }

    fn found_dunder(&mut self, d: String, root: Option<&str>) {
        if self.a.excerpt.is_none() {
            if let Some((s, e)) = self.stmt_span {
                let text = self.src.get(s..e).unwrap_or("");
                self.a.excerpt = Some(crate::clip(text, 200));
            }
        }
        if let Some(r) = root.filter(|r| GADGETS.contains(r)) {
            self.a.gadgets.insert(r.to_string());
        }
        self.a.dunders.insert(d);
    }

    /// An attribute (or item) named `name` read from an expression rooted at `root`.
    fn attr(&mut self, name: &str, root: Option<&str>) {
        if is_dunder(name) {
            self.found_dunder(name.to_string(), root);
        } else if name.starts_with('_') {
            if let Some(r) = root.filter(|r| GADGETS.contains(r)) {
                self.a.gadgets.insert(r.to_string());
            }
            self.a.private.insert(name.to_string());
        } else {
            self.note_str(name);
        }
        if MODULE_NAMES.contains(&name) {
            self.a.exec.insert(format!("module {name}"));
        }
    }

    fn stmts(&mut self, body: &[ast::Stmt<'_>]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &ast::Stmt<'_>) {
        if self.depth >= MAX_DEPTH {
            self.a.too_deep = true;
            return;
        }
        self.depth += 1;
        let saved = self.stmt_span;
        if let Some(sp) = stmt_span(s) {
            self.stmt_span = Some((sp.start_offset as usize, sp.end_offset as usize));
        }
        self.stmt_inner(s);
        self.stmt_span = saved;
        self.depth -= 1;
    }

    fn top_expr(&mut self, e: &ast::Expr<'_>) -> Option<V> {
        self.expr(e)
    }

    fn bind(&mut self, target: &ast::Expr<'_>, v: Option<V>) {
        match (target, v) {
            (ast::Expr::Var(t), Some(v)) => {
                // Bound what the variables hold in all (a long run of
                // `set`s copying a large constant).
                let w = v.weight();
                if self.vars_weight.saturating_add(w) > MAX_VARS_WEIGHT {
                    self.vars.remove(t.id);
                    return;
                }
                self.vars_weight += w;
                self.vars.insert(t.id.to_string(), v);
            }
            (ast::Expr::Var(t), None) => {
                self.vars.remove(t.id);
            }
            (ast::Expr::List(l), v) => {
                let items = v.and_then(|v| v.items());
                for (i, t) in l.items.iter().enumerate() {
                    let x = items.as_ref().and_then(|it| it.get(i).cloned());
                    self.bind(t, x);
                }
            }
            (other, _) => {
                self.expr(other);
            }
        }
    }

    fn stmt_inner(&mut self, s: &ast::Stmt<'_>) {
        use ast::Stmt as S;
        match s {
            S::Template(t) => self.stmts(&t.children),
            S::EmitExpr(e) => {
                self.top_expr(&e.expr);
            }
            S::EmitRaw(_) => {}
            S::ForLoop(f) => {
                self.top_expr(&f.iter);
                self.bind(&f.target, None);
                if let Some(x) = &f.filter_expr {
                    self.top_expr(x);
                }
                self.stmts(&f.body);
                self.stmts(&f.else_body);
            }
            S::IfCond(c) => {
                self.top_expr(&c.expr);
                self.stmts(&c.true_body);
                self.stmts(&c.false_body);
            }
            S::WithBlock(w) => {
                for (t, e) in &w.assignments {
                    let v = self.top_expr(e);
                    self.bind(t, v);
                }
                self.stmts(&w.body);
            }
            S::Set(st) => {
                let v = self.top_expr(&st.expr);
                self.bind(&st.target, v);
            }
            S::SetBlock(sb) => {
                self.stmts(&sb.body);
                if let Some(f) = &sb.filter {
                    self.top_expr(f);
                }
                // `{% set n %}__class__{% endset %}`: a body of raw text and
                // constant expressions is a constant.
                let mut text = String::new();
                let mut constant = sb.filter.is_none();
                for b in &sb.body {
                    if !constant {
                        break;
                    }
                    match b {
                        S::EmitRaw(r) => text.push_str(r.raw),
                        S::EmitExpr(e) => match self.expr(&e.expr).and_then(|v| v.to_text()) {
                            Some(t) => text.push_str(&t),
                            None => constant = false,
                        },
                        _ => constant = false,
                    }
                    if text.len() > MAX_VALUE {
                        constant = false;
                    }
                }
                let v = if constant { str_v(text) } else { None };
                self.bind(&sb.target, v);
            }
            S::AutoEscape(a) => {
                self.top_expr(&a.enabled);
                self.stmts(&a.body);
            }
            S::FilterBlock(f) => {
                self.top_expr(&f.filter);
                self.stmts(&f.body);
            }
            S::Block(b) => self.stmts(&b.body),
            S::Import(i) => {
                self.top_expr(&i.expr);
                self.top_expr(&i.name);
            }
            S::FromImport(i) => {
                self.top_expr(&i.expr);
                for (n, a) in &i.names {
                    self.top_expr(n);
                    if let Some(a) = a {
                        self.top_expr(a);
                    }
                }
            }
            S::Extends(e) => {
                self.top_expr(&e.name);
            }
            S::Include(i) => {
                self.top_expr(&i.name);
            }
            S::Macro(m) => {
                for a in m.args.iter().chain(m.defaults.iter()) {
                    self.top_expr(a);
                }
                for a in &m.args {
                    self.bind(a, None);
                }
                self.stmts(&m.body);
            }
            S::CallBlock(c) => {
                self.call(&c.call);
                for a in c.macro_decl.args.iter().chain(c.macro_decl.defaults.iter()) {
                    self.top_expr(a);
                }
                self.stmts(&c.macro_decl.body);
            }
            S::Continue(_) | S::Break(_) => {}
            S::Do(d) => {
                self.call(&d.call);
            }
        }
    }

    fn expr(&mut self, e: &ast::Expr<'_>) -> Option<V> {
        if self.depth >= MAX_DEPTH {
            self.a.too_deep = true;
            return None;
        }
        self.depth += 1;
        let v = self.expr_inner(e).and_then(cap);
        self.depth -= 1;
        if let Some(v) = &v {
            self.note_value(v);
        }
        v
    }

    /// The value of a string constant as Jinja2 (Python) decodes its source.
    fn const_str(&self, c: &ast::Spanned<ast::Const>, fallback: &str) -> String {
        let sp = c.span();
        let raw = self
            .src
            .get(sp.start_offset as usize..sp.end_offset as usize)
            .unwrap_or("");
        decode_literals(raw).unwrap_or_else(|| fallback.to_string())
    }

    fn args(&mut self, args: &[ast::CallArg<'_>]) -> Args {
        let mut pos = Vec::new();
        let mut kw = Vec::new();
        for a in args {
            match a {
                ast::CallArg::Pos(e) => pos.push(self.expr(e)),
                ast::CallArg::Kwarg(k, e) => {
                    self.note_str(k);
                    let v = self.expr(e);
                    kw.push((k.to_string(), v));
                }
                ast::CallArg::PosSplat(e) | ast::CallArg::KwargSplat(e) => {
                    self.expr(e);
                    pos.push(None);
                }
            }
        }
        (pos, kw)
    }

    fn call(&mut self, c: &ast::Call<'_>) -> Option<V> {
        let root = root_var(&c.expr);
        // The callee: a method on a folded value, or a named function.
        let (base, name) = match &c.expr {
            ast::Expr::GetAttr(g) => {
                let b = self.expr(&g.expr);
                self.attr(g.name, root);
                (b, Some(g.name.to_string()))
            }
            ast::Expr::GetItem(g) => {
                let b = self.expr(&g.expr);
                let k = self.expr(&g.subscript_expr);
                let n = k.as_ref().and_then(V::as_str).map(str::to_string);
                if let Some(n) = &n {
                    self.attr(n, root);
                }
                (b, n)
            }
            ast::Expr::Var(v) => (None, Some(v.id.to_string())),
            other => {
                self.expr(other);
                (None, None)
            }
        };
        let (pos, kw) = self.args(&c.args);
        let name = name?;
        if EXEC_CALLS.contains(&name.as_str()) || name == "__import__" {
            self.a.exec.insert(format!("calls {name}"));
        }
        if matches!(c.expr, ast::Expr::Var(_)) {
            return match name.as_str() {
                // `dict(__class__=1)|list|first`: the keys are constants.
                "dict" if pos.is_empty() => {
                    Some(V::List(kw.iter().map(|(k, _)| V::Str(k.clone())).collect()))
                }
                _ => None,
            };
        }
        str_method(base?.as_str()?, &name, &pos)
    }

    fn expr_inner(&mut self, e: &ast::Expr<'_>) -> Option<V> {
        use ast::Expr as E;
        match e {
            E::Var(v) => self.vars.get(v.id).cloned(),
            E::Const(c) => {
                if let Some(s) = c.value.as_str() {
                    let s = self.const_str(c, s);
                    str_v(s)
                } else if c.value.is_number() {
                    c.value.as_i64().map(V::Int)
                } else {
                    None
                }
            }
            E::Slice(s) => {
                let base = self.expr(&s.expr);
                let start = s.start.as_ref().map(|x| self.expr(x));
                let stop = s.stop.as_ref().map(|x| self.expr(x));
                let step = s.step.as_ref().map(|x| self.expr(x));
                let int = |o: Option<Option<V>>| -> Result<Option<i64>, ()> {
                    match o {
                        None => Ok(None),
                        Some(Some(V::Int(i))) => Ok(Some(i)),
                        Some(_) => Err(()),
                    }
                };
                let (a, b, st) = (int(start).ok()?, int(stop).ok()?, int(step).ok()?);
                slice(&base?, a, b, st.unwrap_or(1))
            }
            E::UnaryOp(u) => {
                let v = self.expr(&u.expr);
                match (&u.op, v) {
                    (ast::UnaryOpKind::Neg, Some(V::Int(i))) => i.checked_neg().map(V::Int),
                    _ => None,
                }
            }
            E::BinOp(b) => {
                let l = self.expr(&b.left);
                let r = self.expr(&b.right);
                binop(&b.op, l?, r?)
            }
            E::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
                None
            }
            E::IfExpr(i) => {
                self.expr(&i.test_expr);
                let t = self.expr(&i.true_expr);
                let f = i.false_expr.as_ref().and_then(|x| self.expr(x));
                (t == f).then_some(t).flatten()
            }
            E::Filter(f) => self.filter(f),
            E::Test(t) => {
                self.expr(&t.expr);
                self.args(&t.args);
                None
            }
            E::GetAttr(g) => {
                let root = root_var(&g.expr);
                self.expr(&g.expr);
                self.attr(g.name, root);
                None
            }
            E::GetItem(g) => {
                let root = root_var(&g.expr);
                let base = self.expr(&g.expr);
                let key = self.expr(&g.subscript_expr);
                match (base, key) {
                    (_, Some(V::Str(k))) => {
                        self.attr(&k, root);
                        None
                    }
                    (Some(b), Some(V::Int(i))) => {
                        let items = b.items()?;
                        let n = items.len() as i64;
                        let at = if i < 0 { i.checked_add(n)? } else { i };
                        items.get(usize::try_from(at).ok()?).cloned()
                    }
                    _ => None,
                }
            }
            E::Call(c) => self.call(c),
            E::List(l) => {
                let mut out = Vec::new();
                let mut all = true;
                for x in &l.items {
                    match self.expr(x) {
                        Some(v) if all => out.push(v),
                        _ => all = false,
                    }
                }
                all.then_some(V::List(out))
            }
            E::Map(m) => {
                for x in m.keys.iter().chain(m.values.iter()) {
                    self.expr(x);
                }
                None
            }
        }
    }

    fn filter(&mut self, f: &ast::Filter<'_>) -> Option<V> {
        let root = f.expr.as_ref().and_then(root_var);
        let input = f.expr.as_ref().and_then(|x| self.expr(x));
        let (pos, kw) = self.args(&f.args);
        let arg = |i: usize| pos.get(i).cloned().flatten();
        let kwarg = |k: &str| kw.iter().find(|(n, _)| n == k).and_then(|(_, v)| v.clone());
        // Attribute access through filters.
        match f.name {
            "attr" => {
                match arg(0) {
                    Some(V::Str(n)) => self.attr(&n, root),
                    _ => self.a.dynamic_attr += 1,
                }
                return None;
            }
            "map" | "select" | "reject" if arg(0).as_ref().and_then(V::as_str) == Some("attr") => {
                match arg(1) {
                    Some(V::Str(n)) => self.attr(&n, root),
                    _ => self.a.dynamic_attr += 1,
                }
                return None;
            }
            "map" | "selectattr" | "rejectattr" | "sort" | "groupby" | "sum" | "unique" | "min"
            | "max" | "dictsort" => {
                if let Some(V::Str(n)) = kwarg("attribute") {
                    for part in n.split('.') {
                        self.attr(part, root);
                    }
                }
                if matches!(f.name, "selectattr" | "rejectattr" | "groupby") {
                    if let Some(V::Str(n)) = arg(0) {
                        for part in n.split('.') {
                            self.attr(part, root);
                        }
                    }
                }
            }
            _ => {}
        }
        let input = input?;
        let s = input.as_str();
        match f.name {
            "lower" => str_v(s?.to_lowercase()),
            "upper" => str_v(s?.to_uppercase()),
            "title" => str_v(title(s?)),
            "capitalize" => {
                let s = s?;
                let mut cs = s.chars();
                let first: String = cs
                    .next()
                    .map(|c| c.to_uppercase().collect())
                    .unwrap_or_default();
                str_v(first + &cs.as_str().to_lowercase())
            }
            "trim" => match arg(0) {
                Some(V::Str(chars)) => str_v(s?.trim_matches(|c| chars.contains(c)).to_string()),
                _ => str_v(s?.trim().to_string()),
            },
            "string" | "safe" => input.to_text().and_then(str_v),
            "e" | "escape" | "forceescape" => {
                let s = s?;
                (!s.contains(['<', '>', '&', '\'', '"'])).then(|| V::Str(s.to_string()))
            }
            "reverse" => match input {
                V::Str(s) => str_v(s.chars().rev().collect()),
                V::List(mut l) => {
                    l.reverse();
                    Some(V::List(l))
                }
                V::Int(_) => None,
            },
            "list" => input.items().map(V::List),
            "first" => input.items()?.into_iter().next(),
            "last" => input.items()?.pop(),
            "join" => {
                let sep = match kwarg("d").or_else(|| arg(0)) {
                    Some(V::Str(sep)) => sep,
                    None => String::new(),
                    Some(_) => return None,
                };
                if let Some(V::Str(a)) = kwarg("attribute").or_else(|| arg(1)) {
                    self.attr(&a, root);
                    return None;
                }
                let parts: Option<Vec<String>> = input.items()?.iter().map(V::to_text).collect();
                str_v(parts?.join(&sep))
            }
            "replace" => {
                let (old, new) = (arg(0)?, arg(1)?);
                let (old, new) = (old.as_str()?, new.as_str()?);
                let s = s?;
                // Bound the output before building it.
                let hits = if old.is_empty() {
                    s.chars().count() + 1
                } else {
                    s.matches(old).count()
                };
                if hits.saturating_mul(new.len()) > MAX_VALUE * 4 {
                    return None;
                }
                let v = match arg(2) {
                    Some(V::Int(n)) if n >= 0 => {
                        s.replacen(old, new, usize::try_from(n).unwrap_or(usize::MAX))
                    }
                    _ => s.replace(old, new),
                };
                str_v(v)
            }
            "format" => {
                let args: Option<Vec<V>> = pos.iter().cloned().collect();
                printf(s?, &args?)
            }
            "default" | "d" => Some(input),
            "int" => match input {
                V::Int(i) => Some(V::Int(i)),
                V::Str(s) => s.trim().parse().ok().map(V::Int),
                V::List(_) => None,
            },
            "length" | "count" => i64::try_from(input.items()?.len()).ok().map(V::Int),
            "unique" if kw.is_empty() => {
                let mut out: Vec<V> = Vec::new();
                for x in input.items()? {
                    if !out.contains(&x) {
                        out.push(x);
                    }
                }
                Some(V::List(out))
            }
            "sort" if kw.is_empty() => {
                let mut items: Vec<String> = input
                    .items()?
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<_>>()?;
                items.sort();
                Some(V::List(items.into_iter().map(V::Str).collect()))
            }
            "center" | "indent" | "wordwrap" | "truncate" | "tojson" | "pprint" | "urlencode" => {
                None
            }
            _ => None,
        }
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_alpha = false;
    for c in s.chars() {
        if prev_alpha {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        prev_alpha = c.is_alphanumeric();
    }
    out
}

fn binop(op: &ast::BinOpKind, l: V, r: V) -> Option<V> {
    use ast::BinOpKind as B;
    match (op, l, r) {
        (B::Concat, l, r) => str_v(l.to_text()? + &r.to_text()?),
        (B::Add, V::Str(a), V::Str(b)) => str_v(a + &b),
        (B::Add, V::Int(a), V::Int(b)) => a.checked_add(b).map(V::Int),
        (B::Add, V::List(mut a), V::List(b)) => {
            a.extend(b);
            cap(V::List(a))
        }
        (B::Sub, V::Int(a), V::Int(b)) => a.checked_sub(b).map(V::Int),
        (B::Mul, V::Int(a), V::Int(b)) => a.checked_mul(b).map(V::Int),
        (B::Mul, V::Str(s), V::Int(n)) | (B::Mul, V::Int(n), V::Str(s)) => {
            let n = usize::try_from(n).unwrap_or(0);
            (s.len().saturating_mul(n) <= MAX_VALUE).then(|| V::Str(s.repeat(n)))
        }
        (B::Mul, V::List(l), V::Int(n)) | (B::Mul, V::Int(n), V::List(l)) => {
            let n = usize::try_from(n).unwrap_or(0);
            (l.len().saturating_mul(n) <= MAX_VALUE)
                .then(|| V::List(l.iter().cycle().take(l.len() * n).cloned().collect()))
        }
        (B::FloorDiv, V::Int(a), V::Int(b)) if b != 0 => a.checked_div_euclid(b).map(V::Int),
        (B::Rem, V::Int(a), V::Int(b)) if b != 0 => a.checked_rem_euclid(b).map(V::Int),
        (B::Rem, V::Str(f), V::List(args)) => printf(&f, &args),
        (B::Rem, V::Str(f), arg) => printf(&f, &[arg]),
        _ => None,
    }
}

/// Python's `%` string formatting for `%s`, `%r` (strings), `%d`/`%i`,
/// `%c`, `%x`, `%o` and `%%` (Jinja's `format` filter is `value % args`).
fn printf(f: &str, args: &[V]) -> Option<V> {
    let mut out = String::new();
    let mut it = f.chars();
    let mut k = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let conv = it.next()?;
        if conv == '%' {
            out.push('%');
            continue;
        }
        let a = args.get(k)?;
        k += 1;
        match conv {
            's' => out.push_str(&a.to_text()?),
            'r' => out.push_str(&format!("'{}'", a.as_str()?)),
            'd' | 'i' => out.push_str(&a.as_int()?.to_string()),
            'x' => out.push_str(&format!("{:x}", a.as_int()?)),
            'o' => out.push_str(&format!("{:o}", a.as_int()?)),
            'c' => match a {
                V::Int(i) => out.push(char::from_u32(u32::try_from(*i).ok()?)?),
                V::Str(s) if s.chars().count() == 1 => out.push_str(s),
                _ => return None,
            },
            _ => return None,
        }
        if out.len() > MAX_VALUE {
            return None;
        }
    }
    str_v(out)
}

/// `str.format` with positional `{}` / `{N}` fields (a field with an
/// attribute or index part is left unfolded; its text is judged as is).
fn str_format(f: &str, args: &[Option<V>]) -> Option<V> {
    let mut out = String::new();
    let mut it = f.chars().peekable();
    let mut auto = 0usize;
    while let Some(c) = it.next() {
        match c {
            '{' if it.peek() == Some(&'{') => {
                it.next();
                out.push('{');
            }
            '}' if it.peek() == Some(&'}') => {
                it.next();
                out.push('}');
            }
            '{' => {
                let field: String = it.by_ref().take_while(|c| *c != '}').collect();
                let idx = if field.is_empty() {
                    auto += 1;
                    auto - 1
                } else {
                    field.parse().ok()?
                };
                out.push_str(&args.get(idx)?.as_ref()?.to_text()?);
            }
            c => out.push(c),
        }
        if out.len() > MAX_VALUE {
            return None;
        }
    }
    str_v(out)
}

/// The `str` methods that build names from constants.
fn str_method(s: &str, name: &str, args: &[Option<V>]) -> Option<V> {
    let arg = |i: usize| args.get(i).cloned().flatten();
    match name {
        "format" => str_format(s, args),
        "join" => {
            let parts: Option<Vec<String>> = arg(0)?.items()?.iter().map(V::to_text).collect();
            str_v(parts?.join(s))
        }
        "replace" => {
            let (a, b) = (arg(0)?, arg(1)?);
            let (a, b) = (a.as_str()?, b.as_str()?);
            if a.is_empty() || s.matches(a).count().saturating_mul(b.len()) > MAX_VALUE * 4 {
                return None;
            }
            str_v(s.replace(a, b))
        }
        "upper" => str_v(s.to_uppercase()),
        "lower" => str_v(s.to_lowercase()),
        "swapcase" => str_v(
            s.chars()
                .flat_map(|c| {
                    if c.is_uppercase() {
                        c.to_lowercase().collect::<Vec<_>>()
                    } else {
                        c.to_uppercase().collect()
                    }
                })
                .collect(),
        ),
        "title" => str_v(title(s)),
        "strip" | "lstrip" | "rstrip" => {
            let set = arg(0).and_then(|v| v.as_str().map(str::to_string));
            let pred = |c: char| match &set {
                Some(set) => set.contains(c),
                None => c.is_whitespace(),
            };
            str_v(match name {
                "strip" => s.trim_matches(pred).to_string(),
                "lstrip" => s.trim_start_matches(pred).to_string(),
                _ => s.trim_end_matches(pred).to_string(),
            })
        }
        "split" => {
            let parts: Vec<V> = match arg(0) {
                Some(V::Str(sep)) if !sep.is_empty() => s
                    .split(sep.as_str())
                    .map(|p| V::Str(p.to_string()))
                    .collect(),
                _ => s
                    .split_whitespace()
                    .map(|p| V::Str(p.to_string()))
                    .collect(),
            };
            cap(V::List(parts))
        }
        _ => None,
    }
}

fn slice(v: &V, start: Option<i64>, stop: Option<i64>, step: i64) -> Option<V> {
    if step == 0 {
        return None;
    }
    let items = v.items()?;
    let n = items.len() as i64;
    let norm = |x: i64| {
        if x < 0 {
            (x + n).max(if step < 0 { -1 } else { 0 })
        } else {
            x.min(n)
        }
    };
    let mut out = Vec::new();
    if step > 0 {
        let (mut i, end) = (norm(start.unwrap_or(0)), norm(stop.unwrap_or(n)));
        while i < end {
            out.push(items.get(usize::try_from(i).ok()?)?.clone());
            i = i.saturating_add(step);
        }
    } else {
        let mut i = start.map_or(n - 1, |s| norm(s).min(n - 1));
        let end = stop.map_or(-1, norm);
        while i > end {
            out.push(items.get(usize::try_from(i).ok()?)?.clone());
            i = i.saturating_add(step);
        }
    }
    match v {
        V::Str(_) => str_v(out.iter().filter_map(V::as_str).collect()),
        _ => Some(V::List(out)),
    }
}

/// Decodes a run of adjacent Jinja string literals (`'a' "b"`) from their
/// source text with Python's rules; `None` when the text is not that.
fn decode_literals(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = raw.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let q = rest.chars().next()?;
        if q != '\'' && q != '"' {
            return None;
        }
        let body = &rest[1..];
        let mut end = None;
        let mut esc = false;
        for (i, c) in body.char_indices() {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == q {
                end = Some(i);
                break;
            }
        }
        let end = end?;
        out.push_str(&unescape(&body[..end]));
        rest = body[end + 1..].trim_start();
    }
    Some(out)
}

/// Decodes the body of a Jinja string literal as Python's `unicode-escape`
/// codec does: `\xNN`, `\uNNNN`, `\UNNNNNNNN`, octal, the one-letter
/// escapes, line continuations and `\N{NAME}` for the character names
/// payloads use; unknown escapes stay as written.
pub fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut it = body.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = it.next() else {
            out.push('\\');
            break;
        };
        let hex = |n: usize, it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let h: String = (0..n).filter_map(|_| it.next()).collect();
            u32::from_str_radix(&h, 16).ok().and_then(char::from_u32)
        };
        match e {
            'x' => out.extend(hex(2, &mut it)),
            'u' => out.extend(hex(4, &mut it)),
            'U' => out.extend(hex(8, &mut it)),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '\\' | '\'' | '"' => out.push(e),
            '\n' => {}
            'N' if it.peek() == Some(&'{') => {
                it.next();
                let name: String = it.by_ref().take_while(|c| *c != '}').take(64).collect();
                out.extend(char_by_name(&name));
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match it.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            it.next();
                        }
                        None => break,
                    }
                }
                out.extend(char::from_u32(v));
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

/// Unicode names of the ASCII characters (enough for `\N{...}` payloads:
/// punctuation, digits and Latin letters); case-insensitive as in Python.
pub fn char_by_name(name: &str) -> Option<char> {
    let n = name.trim().to_ascii_uppercase();
    let table: &[(&str, char)] = &[
        ("LOW LINE", '_'),
        ("FULL STOP", '.'),
        ("SPACE", ' '),
        ("LEFT PARENTHESIS", '('),
        ("RIGHT PARENTHESIS", ')'),
        ("LEFT SQUARE BRACKET", '['),
        ("RIGHT SQUARE BRACKET", ']'),
        ("LEFT CURLY BRACKET", '{'),
        ("RIGHT CURLY BRACKET", '}'),
        ("APOSTROPHE", '\''),
        ("QUOTATION MARK", '"'),
        ("COMMA", ','),
        ("SOLIDUS", '/'),
        ("REVERSE SOLIDUS", '\\'),
        ("HYPHEN-MINUS", '-'),
        ("VERTICAL LINE", '|'),
        ("COLON", ':'),
        ("SEMICOLON", ';'),
        ("EQUALS SIGN", '='),
        ("NUMBER SIGN", '#'),
        ("AMPERSAND", '&'),
        ("GREATER-THAN SIGN", '>'),
        ("LESS-THAN SIGN", '<'),
        ("PERCENT SIGN", '%'),
        ("TILDE", '~'),
        ("PLUS SIGN", '+'),
        ("ASTERISK", '*'),
        ("EXCLAMATION MARK", '!'),
        ("QUESTION MARK", '?'),
        ("COMMERCIAL AT", '@'),
        ("DOLLAR SIGN", '$'),
        ("GRAVE ACCENT", '`'),
        ("CIRCUMFLEX ACCENT", '^'),
    ];
    if let Some((_, c)) = table.iter().find(|(k, _)| *k == n) {
        return Some(*c);
    }
    let letter = |l: &str| {
        let mut cs = l.chars();
        match (cs.next(), cs.next()) {
            (Some(c), None) if c.is_ascii_uppercase() => Some(c),
            _ => None,
        }
    };
    if let Some(l) = n.strip_prefix("LATIN SMALL LETTER ") {
        return letter(l).map(|c| c.to_ascii_lowercase());
    }
    if let Some(l) = n.strip_prefix("LATIN CAPITAL LETTER ") {
        return letter(l);
    }
    let digits = [
        "ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE",
    ];
    let d = n.strip_prefix("DIGIT ")?;
    digits
        .iter()
        .position(|x| *x == d)
        .and_then(|i| char::from_digit(i as u32, 10))
}
