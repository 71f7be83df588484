#!/usr/bin/env python3
"""Derives the capability table of aisec-pickle from Python sources.

Reads Python source files (never imports or runs them) and finds, for every
module-level function, class and method, whether calling it can reach one of
these sinks, directly or through calls the analysis can resolve:

  E  executes code        builtins.exec/eval/compile, types.FunctionType, marshal.loads
  P  spawns processes     os.system/popen/exec*/spawn*/posix_spawn*/fork, subprocess, pty
  W  writes files         open()/io.open/os.open with a write or non-constant mode,
                          os.remove/rename/mkdir/chmod/..., FileIO, ndarray.tofile
  N  opens connections    socket.socket/create_connection/getaddrinfo, ssl
  I  imports modules      __import__/importlib.import_module with a non-constant name
  L  loads pickles        pickle.load(s)/Unpickler, torch.load, joblib.load

The analysis (ideas from call-graph based capability analysis such as
Google's "capslock" for Go and the call-graph construction of PyCG,
Salis et al., ICSE 2021; no code is taken from either):

* every module's top-level `import`/`from ... import`/`name = other.name`
  binds an attribute of that module, so `somemodule._os.system` resolves to
  `os.system` (module aliases) and `from subprocess import Popen` makes
  `m.Popen` a second name of `subprocess.Popen`; star imports are followed;
* calls are resolved through those aliases, through local aliases
  (`f = os.system; f(x)`), bare builtins, `self.m()`/`cls.m()` along the
  class's resolvable bases, `super().m()`, and class calls (`C(...)` reaches
  `C.__new__` and `C.__init__`);
* a capability flows from a callee to its caller only when the call can pass
  the caller's data: at least one argument that is not a constant, or a
  method call on `self`/`cls`. `importlib.import_module("json")` or
  `open("/etc/x")` with a constant read mode are therefore not capabilities,
  and neither is a helper that is only ever called with constants;
* sinks in C modules (posix, _socket, numpy's ndarray, ...) are seeded by
  name (SEEDS below).

Calls through values the analysis cannot type (`obj.method()` on a local,
callbacks, `getattr`) are not followed, so the table under-approximates;
aisec's hand-written deny list covers the classic gadgets independently.

Output: a TSV, grouped by module to stay compact:

  @module
  name<TAB>CAPS<TAB>via          function/class/method with capabilities
  name<TAB>=target               an alias (module attribute that is another object)

`via` is the callee (or sink) the first capability was found through. The
header records every input (CPython version, wheel file and SHA-256).

Usage: gen_capabilities.py --out FILE --stdlib VERSION=DIR ... --wheel WHEEL ...
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import sys
import zipfile
from collections import defaultdict

CAPS = "EPWNIL"

# Sinks: canonical name -> (capability, rule). Rules: "any" (always),
# "arg0" (first argument must be non-constant), "mode" (open-like: the mode
# argument decides read vs write), "flags" (os.open: constant flags without
# O_WRONLY/O_RDWR/O_CREAT are reads).
SEEDS: dict[str, tuple[str, str]] = {}


def _seed(cap: str, rule: str, *names: str) -> None:
    for n in names:
        SEEDS[n] = (cap, rule)


_seed("E", "arg0", "builtins.exec", "builtins.eval", "builtins.compile",
      "builtins.execfile")
_seed("E", "any", "types.FunctionType", "types.CodeType", "marshal.loads", "marshal.load",
      "builtins.breakpoint")
for _m in ("posix", "nt", "os"):
    _seed("P", "any", *(f"{_m}.{n}" for n in (
        "system", "popen", "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp",
        "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp",
        "spawnvpe", "posix_spawn", "posix_spawnp", "fork", "forkpty", "startfile", "_execvpe")))
    _seed("W", "any", *(f"{_m}.{n}" for n in (
        "remove", "unlink", "rename", "renames", "replace", "rmdir", "removedirs", "mkdir",
        "makedirs", "chmod", "lchmod", "chown", "lchown", "truncate", "ftruncate", "symlink",
        "link", "mkfifo", "mknod", "utime", "write", "pwrite", "writev", "sendfile",
        "copy_file_range", "putenv", "unsetenv", "chdir", "chroot", "kill", "killpg")))
    _seed("W", "flags", f"{_m}.open")
_seed("P", "any", "_posixsubprocess.fork_exec", "subprocess.Popen", "pty.spawn", "pty.fork",
      "_winapi.CreateProcess", "multiprocessing.Process.start")
_seed("W", "mode", "builtins.open", "io.open", "_io.open", "codecs.open", "gzip.open",
      "bz2.open", "lzma.open", "_io.FileIO", "io.FileIO", "tarfile.open", "zipfile.ZipFile",
      "dbm.open", "shelve.open")
_seed("W", "any", "shutil.copyfileobj", "_io.TextIOWrapper.write", "_io.BufferedWriter.write",
      "tempfile.mkstemp", "tempfile.mkdtemp", "tempfile.NamedTemporaryFile",
      "tempfile.TemporaryFile")
for _np in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath",
            "numpy._core.multiarray", "numpy.core.multiarray", "numpy"):
    _seed("W", "any", f"{_np}.ndarray.tofile", f"{_np}.ndarray.dump")
_seed("N", "any", "_socket.socket", "socket.socket", "_socket.getaddrinfo", "socket.getaddrinfo",
      "_socket.gethostbyname", "socket.gethostbyname", "_socket.gethostbyname_ex",
      "socket.gethostbyname_ex", "socket.create_connection", "socket.create_server",
      "_ssl._SSLContext", "ssl.SSLContext.wrap_socket")
# Network entry points reached through objects the analysis cannot type
# (urlopen dispatches through an OpenerDirector held in a global).
_seed("N", "any", "urllib.request.urlopen", "urllib.request.urlretrieve",
      "urllib.request.OpenerDirector.open", "urllib.request.URLopener.open",
      "urllib2.urlopen", "urllib.urlopen", "urllib.urlretrieve")
_seed("I", "arg0", "builtins.__import__", "importlib.import_module", "importlib.__import__",
      "importlib._bootstrap._gcd_import", "importlib.util.find_spec", "pkgutil.resolve_name",
      "runpy.run_module", "runpy.run_path", "imp.load_source", "imp.load_module")
_seed("E", "any", "importlib._bootstrap_external.SourceLoader.exec_module",
      "importlib._bootstrap._load", "importlib.util.module_from_spec")
_seed("L", "any", "pickle.loads", "pickle.load", "pickle.Unpickler", "pickle._loads",
      "pickle._load", "pickle._Unpickler", "_pickle.loads", "_pickle.load", "_pickle.Unpickler",
      "torch.load", "torch.serialization.load", "joblib.load", "joblib.numpy_pickle.load",
      "dill.loads", "dill.load", "cloudpickle.loads", "cloudpickle.load")

# Modules whose source is a C extension: their names come only from SEEDS.
BUILTIN_MODULE = "builtins"


class Module:
    __slots__ = ("name", "is_pkg", "defs", "classes", "aliases", "stars", "funcs", "all")

    def __init__(self, name: str, is_pkg: bool):
        self.name = name
        self.is_pkg = is_pkg
        self.defs: set[str] = set()          # top-level function names
        self.classes: dict[str, ClassInfo] = {}
        self.aliases: dict[str, str] = {}    # attr -> dotted target (unresolved)
        self.stars: list[str] = []           # modules star-imported
        self.funcs: list[tuple[str, ast.AST, str | None]] = []  # (qualname, node, class)
        self.all: list[str] | None = None


class ClassInfo:
    __slots__ = ("methods", "bases")

    def __init__(self):
        self.methods: set[str] = set()
        self.bases: list[str] = []  # dotted expressions, resolved later


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def resolve_relative(modname: str, is_pkg: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = modname.split(".")
    if not is_pkg:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    out = ".".join(base)
    if target:
        out = f"{out}.{target}" if out else target
    return out


def collect_module(mod: Module, tree: ast.Module) -> None:
    def bind_import(stmt, into: dict[str, str]):
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.asname:
                    into[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    into[top] = top
        elif isinstance(stmt, ast.ImportFrom):
            src = resolve_relative(mod.name, mod.is_pkg, stmt.level, stmt.module)
            for a in stmt.names:
                if a.name == "*":
                    if into is mod.aliases:
                        mod.stars.append(src)
                    continue
                into[a.asname or a.name] = f"{src}.{a.name}" if src else a.name

    def top(body):
        for stmt in body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                bind_import(stmt, mod.aliases)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                mod.defs.add(stmt.name)
                mod.aliases.pop(stmt.name, None)
                mod.funcs.append((stmt.name, stmt, None))
            elif isinstance(stmt, ast.ClassDef):
                ci = ClassInfo()
                for b in stmt.bases:
                    d = dotted(b)
                    if d:
                        ci.bases.append(d)
                for s in stmt.body:
                    if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        ci.methods.add(s.name)
                        mod.funcs.append((f"{stmt.name}.{s.name}", s, stmt.name))
                    elif isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                        s.targets[0], ast.Name
                    ):
                        d = dotted(s.value)
                        if d:
                            # class attribute alias: `system = os.system`
                            ci.methods.add(s.targets[0].id)
                            mod.aliases[f"{stmt.name}.{s.targets[0].id}"] = d
                mod.classes[stmt.name] = ci
                mod.aliases.pop(stmt.name, None)
            elif isinstance(stmt, ast.Assign):
                d = dotted(stmt.value)
                for t in stmt.targets:
                    if isinstance(t, ast.Name):
                        if t.id == "__all__" and isinstance(stmt.value, (ast.List, ast.Tuple)):
                            mod.all = [
                                e.value for e in stmt.value.elts
                                if isinstance(e, ast.Constant) and isinstance(e.value, str)
                            ]
                        elif d and d != t.id:
                            mod.aliases[t.id] = d
            elif isinstance(stmt, (ast.If, ast.Try)) or type(stmt).__name__ == "TryStar":
                top(stmt.body)
                for h in getattr(stmt, "handlers", []):
                    top(h.body)
                top(getattr(stmt, "orelse", []))
                top(getattr(stmt, "finalbody", []))

    top(tree.body)


class Analysis:
    def __init__(self):
        self.modules: dict[str, Module] = {}
        # node -> list of (callee canonical, data_passing, sink_ok)
        self.edges: dict[str, set[tuple[str, bool]]] = defaultdict(set)
        self.direct: dict[str, dict[str, str]] = defaultdict(dict)  # node -> cap -> via
        self._canon_cache: dict[str, str] = {}

    # ---- loading ---------------------------------------------------------
    def add_source(self, modname: str, is_pkg: bool, src: bytes) -> None:
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError):
            return
        mod = self.modules.get(modname)
        if mod is None:
            mod = Module(modname, is_pkg)
            self.modules[modname] = mod
        collect_module(mod, tree)

    # ---- name resolution ---------------------------------------------------
    def module_prefix(self, parts: list[str]) -> int:
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in self.modules:
                return i
        return 0

    def canon(self, full: str, depth: int = 0) -> str:
        if depth > 24:
            return full
        c = self._canon_cache.get(full)
        if c is not None:
            return c
        out = self._canon(full, depth)
        self._canon_cache[full] = out
        return out

    def _canon(self, full: str, depth: int) -> str:
        parts = full.split(".")
        i = self.module_prefix(parts)
        if i == 0:
            return full
        m = self.modules[".".join(parts[:i])]
        rest = parts[i:]
        if not rest:
            return m.name
        name = rest[0]
        tail = rest[1:]
        if name in m.classes:
            if not tail:
                return f"{m.name}.{name}"
            owner = self.find_method(f"{m.name}.{name}", tail[0])
            if owner is not None:
                al = self.modules[owner[0]].aliases.get(f"{owner[1]}.{tail[0]}")
                if al:
                    return self.canon(self.resolve_in(owner[0], al), depth + 1)
                return ".".join([owner[0], owner[1], tail[0]] + tail[1:])
            return full
        if name in m.defs:
            return full
        if name in m.aliases:
            tgt = self.resolve_in(m.name, m.aliases[name])
            if tgt == full:
                return full
            return self.canon(".".join([tgt] + tail), depth + 1)
        for s in m.stars:
            sm = self.modules.get(s)
            if sm is not None:
                if sm.all is not None and name not in sm.all:
                    continue
                if name in sm.defs or name in sm.classes or name in sm.aliases or sm.stars:
                    cand = self.canon(".".join([s, name] + tail), depth + 1)
                    if cand != ".".join([s, name] + tail) or name in sm.defs or name in sm.classes or name in sm.aliases:
                        return cand
            else:
                cand = ".".join([s, name] + tail)
                if cand in SEEDS or any(k.startswith(cand + ".") for k in SEEDS):
                    return cand
        return full

    def resolve_in(self, modname: str, dotted_name: str) -> str:
        """A dotted name as written in module `modname` -> absolute dotted name."""
        head, _, rest = dotted_name.partition(".")
        m = self.modules.get(modname)
        if m is not None:
            if head in m.aliases:
                base = m.aliases[head]
                return f"{base}.{rest}" if rest else base
            if head in m.defs or head in m.classes:
                return f"{modname}.{dotted_name}"
        if head in BUILTIN_NAMES:
            return f"builtins.{dotted_name}"
        return dotted_name

    def find_method(self, cls_full: str, meth: str, seen=None) -> tuple[str, str] | None:
        """(module, class) that defines `meth` along the resolvable bases."""
        seen = seen or set()
        if cls_full in seen or len(seen) > 32:
            return None
        seen.add(cls_full)
        parts = cls_full.split(".")
        i = self.module_prefix(parts)
        if i == 0 or len(parts) != i + 1:
            return None
        modname, cname = ".".join(parts[:i]), parts[i]
        m = self.modules[modname]
        ci = m.classes.get(cname)
        if ci is None:
            return None
        if meth in ci.methods:
            return (modname, cname)
        for b in ci.bases:
            bc = self.canon(self.resolve_in(modname, b))
            r = self.find_method(bc, meth, seen)
            if r is not None:
                return r
        return None

    # ---- call collection -----------------------------------------------------
    def collect_calls(self) -> None:
        for mod in list(self.modules.values()):
            for qual, node, cls in mod.funcs:
                self.collect_function(mod, f"{mod.name}.{qual}", node, cls)

    def collect_function(self, mod: Module, me: str, fn: ast.AST, cls: str | None) -> None:
        local_alias: dict[str, str] = {}
        locals_: set[str] = set()
        args = fn.args
        for a in args.posonlyargs + args.args + args.kwonlyargs:
            locals_.add(a.arg)
        if args.vararg:
            locals_.add(args.vararg.arg)
        if args.kwarg:
            locals_.add(args.kwarg.arg)
        self_name = None
        if cls is not None and (args.posonlyargs + args.args):
            self_name = (args.posonlyargs + args.args)[0].arg
        body = [x for st in fn.body for x in ast.walk(st)]
        for n in body:
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                if isinstance(n, ast.Import):
                    for a in n.names:
                        local_alias[a.asname or a.name.split(".")[0]] = (
                            a.name if a.asname else a.name.split(".")[0])
                else:
                    src = resolve_relative(mod.name, mod.is_pkg, n.level, n.module)
                    for a in n.names:
                        if a.name != "*":
                            local_alias[a.asname or a.name] = f"{src}.{a.name}"
            elif isinstance(n, ast.Assign):
                d = dotted(n.value)
                for t in n.targets:
                    if isinstance(t, ast.Name):
                        if d and d.split(".")[0] not in locals_ - set(local_alias):
                            local_alias.setdefault(t.id, self._abs(mod, d, local_alias))
                        else:
                            locals_.add(t.id)
            elif isinstance(n, (ast.For, ast.AsyncFor, ast.comprehension, ast.NamedExpr,
                                ast.With, ast.AsyncWith, ast.ExceptHandler)):
                if isinstance(n, (ast.With, ast.AsyncWith)):
                    tgts = [i.optional_vars for i in n.items if i.optional_vars is not None]
                elif isinstance(n, ast.ExceptHandler):
                    tgts = []
                    if n.name:
                        locals_.add(n.name)
                else:
                    tgts = [n.target]
                for tg in tgts:
                    for t in ast.walk(tg):
                        if isinstance(t, ast.Name):
                            locals_.add(t.id)
        for n in body:
            if not isinstance(n, ast.Call):
                continue
            data = any(not is_const(a) for a in n.args) or any(
                not is_const(k.value) for k in n.keywords)
            target = None
            f = n.func
            if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Call)
                    and isinstance(f.value.func, ast.Name) and f.value.func.id == "super"
                    and cls is not None):
                ci = mod.classes.get(cls)
                for b in (ci.bases if ci else []):
                    r = self.find_method(self.canon(self.resolve_in(mod.name, b)), f.attr)
                    if r is not None:
                        target = f"{r[0]}.{r[1]}.{f.attr}"
                        break
                data = True
            else:
                d = dotted(f)
                if d is None:
                    continue
                head = d.split(".")[0]
                if self_name is not None and head == self_name and "." in d:
                    rest = d.split(".")[1:]
                    if len(rest) == 1:
                        r = self.find_method(f"{mod.name}.{cls}", rest[0])
                        if r is not None:
                            target = f"{r[0]}.{r[1]}.{rest[0]}"
                            data = True
                    if target is None:
                        continue
                elif head in local_alias:
                    target = self._abs(mod, d, local_alias)
                elif head in locals_:
                    continue
                else:
                    target = self.resolve_in(mod.name, d)
            if target is None:
                continue
            target = self.canon(target)
            seed = SEEDS.get(target)
            if seed is not None:
                cap, rule = seed
                if sink_applies(rule, n):
                    self.direct[me].setdefault(cap, target)
            self.edges[me].add((target, data))

    def _abs(self, mod: Module, d: str, local_alias: dict[str, str]) -> str:
        head, _, rest = d.partition(".")
        if head in local_alias:
            base = local_alias[head]
            return f"{base}.{rest}" if rest else base
        return self.resolve_in(mod.name, d)

    # ---- fixpoint ------------------------------------------------------------
    def solve(self) -> dict[str, dict[str, str]]:
        caps: dict[str, dict[str, str]] = defaultdict(dict)
        for node, d in self.direct.items():
            caps[node].update(d)
        for s, (cap, _) in SEEDS.items():
            caps[s].setdefault(cap, s)
        # class nodes: C -> C.__new__, C.__init__ (resolved along bases)
        cls_edges: dict[str, list[str]] = {}
        for m in self.modules.values():
            for cname in m.classes:
                full = f"{m.name}.{cname}"
                tg = []
                for meth in ("__init__", "__new__"):
                    r = self.find_method(full, meth)
                    if r is not None:
                        tg.append(f"{r[0]}.{r[1]}.{meth}")
                cls_edges[full] = tg
        callers: dict[str, set[str]] = defaultdict(set)
        for node, es in self.edges.items():
            for tgt, data in es:
                if data or tgt in cls_edges:
                    callers[tgt].add(node)
        for c, tg in cls_edges.items():
            for t in tg:
                callers[t].add(c)
        work = list(caps.keys())
        while work:
            n = work.pop()
            have = caps.get(n)
            if not have:
                continue
            for caller in callers.get(n, ()):
                cc = caps[caller]
                changed = False
                for cap in have:
                    if cap not in cc:
                        cc[cap] = n
                        changed = True
                if changed:
                    work.append(caller)
        return {k: v for k, v in caps.items() if v}


BUILTIN_NAMES = set(dir(__builtins__)) if not isinstance(__builtins__, dict) else set(__builtins__)


def is_const(e: ast.AST) -> bool:
    if isinstance(e, ast.Constant):
        return True
    if isinstance(e, (ast.Tuple, ast.List)):
        return all(is_const(x) for x in e.elts)
    return False


def sink_applies(rule: str, call: ast.Call) -> bool:
    if rule == "any":
        return True
    if rule == "arg0":
        a0 = call.args[0] if call.args else None
        if a0 is None:
            for k in call.keywords:
                if k.arg in ("source", "name", "module", "path", "o", "s"):
                    a0 = k.value
        return a0 is not None and not is_const(a0)
    if rule == "mode":
        mode = call.args[1] if len(call.args) > 1 else None
        for k in call.keywords:
            if k.arg == "mode":
                mode = k.value
        if mode is None:
            return False
        if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
            return any(c in mode.value for c in "wax+")
        return True
    if rule == "flags":
        fl = call.args[1] if len(call.args) > 1 else None
        if fl is None:
            return False
        names = [n.attr if isinstance(n, ast.Attribute) else n.id
                 for n in ast.walk(fl) if isinstance(n, (ast.Attribute, ast.Name))]
        if any(n in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC") for n in names):
            return True
        # only constant O_* flags (O_RDONLY, O_CLOEXEC, ...) -> a read
        if not names:
            return not is_const(fl)
        return not all(n.startswith("O_") or n in ("os", "posix") for n in names)
    return True


def module_name(rel: str) -> tuple[str, bool] | None:
    if not rel.endswith(".py"):
        return None
    parts = rel[:-3].split("/")
    if any(not p.isidentifier() for p in parts[:-1]):
        return None
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return (".".join(parts), True) if parts else None
    if not parts[-1].isidentifier():
        return None
    return ".".join(parts), False


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def stdlib_digest(root: str) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    for dp, dns, fns in os.walk(root):
        dns[:] = sorted(d for d in dns if d not in ("site-packages", "__pycache__"))
        for fn in sorted(fns):
            if fn.endswith(".py"):
                p = os.path.join(dp, fn)
                h.update(os.path.relpath(p, root).encode())
                with open(p, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
                n += 1
    return h.hexdigest(), n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--stdlib", action="append", default=[], help="VERSION=DIR")
    ap.add_argument("--wheel", action="append", default=[])
    a = ap.parse_args()
    an = Analysis()
    header = []
    for spec in a.stdlib:
        ver, _, root = spec.partition("=")
        digest, n = stdlib_digest(root)
        header.append(f"# input\tcpython-stdlib {ver}\t{n} files\tsha256-of-sources {digest}")
        for dp, dns, fns in os.walk(root):
            dns[:] = sorted(d for d in dns if d not in ("site-packages", "__pycache__"))
            for fn in sorted(fns):
                p = os.path.join(dp, fn)
                mn = module_name(os.path.relpath(p, root).replace(os.sep, "/"))
                if mn is None:
                    continue
                with open(p, "rb") as f:
                    an.add_source(mn[0], mn[1], f.read())
    for w in sorted(a.wheel):
        header.append(f"# input\t{os.path.basename(w)}\tsha256 {sha256(w)}")
        with zipfile.ZipFile(w) as z:
            for info in z.infolist():
                mn = module_name(info.filename)
                if mn is None or ".dist-info" in info.filename or ".data/" in info.filename:
                    continue
                an.add_source(mn[0], mn[1], z.read(info))
    an.collect_calls()
    caps = an.solve()
    # A name defined in one Python version and imported in another (pydoc's
    # pagers moved to _pyrepl in 3.13) carries the capabilities of both.
    for m in an.modules.values():
        for attr, tgt in m.aliases.items():
            if "." in attr or (attr not in m.defs and attr not in m.classes):
                continue
            ab = an.canon(an.resolve_in(m.name, tgt))
            for cap, via in caps.get(ab, {}).items():
                caps.setdefault(f"{m.name}.{attr}", {}).setdefault(cap, ab)

    # Aliases worth keeping: module attributes that are modules, or that
    # resolve to something with capabilities.
    rows: dict[str, list[str]] = defaultdict(list)
    for full, cs in caps.items():
        parts = full.split(".")
        i = an.module_prefix(parts)
        if i == 0:
            i = max(1, len(parts) - 1)
            if full in SEEDS:
                # seeded C-module name: split at the last component that is lower-case module-ish
                i = len(parts) - 1
                while i > 1 and parts[i - 1][:1].isupper():
                    i -= 1
        mod, name = ".".join(parts[:i]), ".".join(parts[i:])
        if not name:
            continue
        order = "".join(c for c in CAPS if c in cs)
        via = cs[order[0]]
        rows[mod].append(f"{name}\t{order}\t{via}")
    for m in an.modules.values():
        for attr, tgt in m.aliases.items():
            full = f"{m.name}.{attr}"
            ab = an.canon(an.resolve_in(m.name, tgt))
            if ab == full or attr in m.defs or attr in m.classes:
                continue
            if ab in an.modules or ab in caps:
                rows[m.name].append(f"{attr}\t={ab}")
        for s in m.stars:
            sm = an.modules.get(s)
            if sm is None:
                # C module star import (os -> posix): alias the seeded names
                for k in SEEDS:
                    if k.startswith(s + ".") and k.count(".") == s.count(".") + 1:
                        nm = k[len(s) + 1:]
                        if nm not in m.defs and nm not in m.classes and nm not in m.aliases:
                            if f"{m.name}.{nm}" not in caps:
                                rows[m.name].append(f"{nm}\t={k}")
            else:
                names = sm.all if sm.all is not None else [
                    n for n in list(sm.defs) + list(sm.classes) + list(sm.aliases)
                    if not n.startswith("_") and "." not in n]
                for nm in names:
                    if nm in m.defs or nm in m.classes or nm in m.aliases:
                        continue
                    ab = an.canon(f"{s}.{nm}")
                    if ab in an.modules or ab in caps:
                        rows[m.name].append(f"{nm}\t={ab}")
    with open(a.out, "w") as out:
        out.write("# aisec-pickle capability table. GENERATED by scripts/capabilities/run.sh"
                  " (gen_capabilities.py); do not edit.\n")
        out.write("# caps: E executes code, P spawns processes, W writes files,"
                  " N opens network connections, I imports modules, L loads pickles\n")
        for h in header:
            out.write(h + "\n")
        for mod in sorted(rows):
            out.write(f"@{mod}\n")
            seen = set()
            for r in sorted(rows[mod]):
                k = r.split("\t", 1)[0]
                if k in seen:
                    continue
                seen.add(k)
                out.write(r + "\n")
    n_caps = len(caps)
    print(f"modules {len(an.modules)}, functions with capabilities {n_caps}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
