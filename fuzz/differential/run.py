#!/usr/bin/env python3
"""Differential fuzzing of aisec-pickle's symbolic machine against CPython's
own unpicklers, opcode by opcode (issue 20).

For every generated or mutated pickle this compares three runs:

* CPython's C unpickler (`pickle.Unpickler`, what `pickle.load`,
  `torch.load` and `joblib.load` use): did it load, and which globals did it
  ask `find_class` for;
* CPython's pure-Python unpickler (`pickle._Unpickler`), stepped one opcode
  at a time: after each opcode the offset, stack depth (below and above every
  MARK), open MARKs, memo keys, the type of the top of the stack and, for
  opcodes that push a literal, its value;
* aisec's machine (`cargo run -p aisec-pickle --example pickle_trace`),
  which prints the same fields.

Nothing is ever imported or called: both unpicklers are subclasses whose
`find_class` returns an inert stub class (calling it, `__new__`, `BUILD`,
`append`/`extend`/`add` and item assignment only return other stubs) and
whose `persistent_load` returns a marker. The extension registry is left
empty. Strings of protocol 0-2 (`STRING`/`BINSTRING`) are decoded as latin-1
(the most lenient `encoding=` a loader can pass; numpy uses it).

Verdicts use the C unpickler as the reference (it is what loaders run);
where the two CPython unpicklers disagree the case is counted under
`cpython_internal` and aisec is compared with the C one. A case is a
mismatch when

* C loads it and aisec reports it malformed (`aisec_stricter`: a scanner
  that stops early can miss what follows), or
* the per-opcode states differ at some opcode both executed (`state`), or
* the C unpickler imported a global aisec never saw (`missed_global`), or
* C rejects it and aisec loads it (`aisec_lenient`, grouped by CPython's
  error: acceptable when the reason is a type or encoding check that a
  different loader or object could pass, see RESULTS.md).

Usage:
  python3 fuzz/differential/run.py [--cases N] [--seed S] [--trace-bin PATH]
                                   [--out DIR] [--replay FILE.hex]
Writes DIR/summary.json and DIR/mismatches.jsonl (default DIR:
fuzz/differential/out, ignored by git). Stdlib only.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import decimal
import fractions
import io
import json
import os
import pickle
import platform
import random
import resource
import struct
import subprocess
import sys
import time
import uuid
import warnings
import _compat_pickle

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# --------------------------------------------------------------------------
# Inert stand-ins for everything a pickle could import
# --------------------------------------------------------------------------


class _AnyMethod:
    """A method that works on the class and on its instances, does nothing
    and returns None (BUILD's __setstate__, APPENDS' extend, ...)."""

    def __get__(self, obj, typ=None):
        return _noop


def _noop(*_a, **_k):
    return None


class Inst:
    """What calling a stub returns."""

    __setstate__ = _AnyMethod()
    append = _AnyMethod()
    extend = _AnyMethod()
    add = _AnyMethod()

    def __call__(self, *_a, **_k):
        return Inst()

    def __setitem__(self, _k, _v):
        pass

    def __new__(cls, *_a, **_k):
        return object.__new__(Inst)

    def __init__(self, *_a, **_k):
        pass


class StubMeta(type):
    def __call__(cls, *_a, **_k):
        return Inst()

    def __setitem__(cls, _k, _v):
        pass


class StubClass(metaclass=StubMeta):
    __setstate__ = _AnyMethod()
    append = _AnyMethod()
    extend = _AnyMethod()
    add = _AnyMethod()

    def __new__(cls, *_a, **_k):  # NEWOBJ: cls.__new__(cls, *args)
        return Inst()


def make_stub(module: str, name: str):
    return StubMeta("stub", (StubClass,), {"_full": f"{module}.{name}"})


class PersId:
    pass


class Buf(bytes):
    """An out-of-band buffer (NEXT_BUFFER)."""


def _buffers():
    while True:
        yield Buf(b"")


def kind(x) -> str:
    if isinstance(x, StubMeta):
        return "global"
    if isinstance(x, Inst):
        return "call"
    if isinstance(x, PersId):
        return "persid"
    if isinstance(x, (Buf, memoryview, pickle.PickleBuffer)):
        return "buffer"
    if isinstance(x, bytearray):  # BYTEARRAY8; aisec keeps bytes
        return "bytes"
    return type(x).__name__


LATIN1_OPS = set(b"STU")
LITERAL_OPS = set(b"FIJKLMGSTUVXBC") | set(range(0x88, 0x8F)) | {0x96}


def value(op: int, x):
    if isinstance(x, bool):
        return "1" if x else "0"
    if isinstance(x, int):
        return str(x) if -(2**63) <= x < 2**63 else "big"
    if isinstance(x, float):
        return "%016x" % struct.unpack("<Q", struct.pack("<d", x))[0]
    if isinstance(x, str):
        if op in LATIN1_OPS:
            return x.encode("latin-1").hex()
        return x.encode("utf-8", "surrogatepass").hex()
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).hex()
    return None


class CUnpickler(pickle.Unpickler):
    def __init__(self, f, seen):
        super().__init__(f, encoding="latin1", buffers=_buffers())
        self.seen = seen

    def find_class(self, module, name):
        # What CPython's own find_class would import (fix_imports mapping
        # below protocol 3; aisec maps always, see policy::compat_name).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            m, n = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            m, n = _compat_pickle.IMPORT_MAPPING.get(module, module), name
        self.seen.append(f"{m}.{n}")
        return make_stub(module, name)

    def persistent_load(self, pid):
        return PersId()


def run_c(data: bytes, buffered: bool = True):
    """The C unpickler over a buffered file (reads across FRAME ends like
    pickle.loads) or, buffered=False, over a bare io.BytesIO (no peek: what
    torch.load gives it for a zip checkpoint; a read past a FRAME's end drops
    the rest of the frame)."""
    seen: list[str] = []
    raw = io.BytesIO(data)
    f = io.BufferedReader(raw) if buffered else raw
    try:
        CUnpickler(f, seen).load()
    except Exception as e:  # noqa: BLE001 - every failure is a rejection
        return {"ok": False, "err": f"{type(e).__name__}: {e}"[:200], "globals": seen}
    except RecursionError as e:  # pragma: no cover
        return {"ok": False, "err": f"RecursionError: {e}", "globals": seen}
    return {"ok": True, "end": f.tell() if not buffered else None, "globals": seen}


class PyTracer(pickle._Unpickler):
    """pickle._Unpickler stepped one opcode at a time."""

    def __init__(self, f):
        super().__init__(f, encoding="latin1", buffers=_buffers())
        self._f = f

    def find_class(self, module, name):
        return make_stub(module, name)

    def persistent_load(self, pid):
        return PersId()

    def _pos(self) -> int:
        fr = self._unframer.current_frame
        if fr:
            return self._f.tell() - (len(fr.getbuffer()) - fr.tell())
        return self._f.tell()

    def _state(self, pos: int, op: int):
        flat_depth = sum(len(s) for s in self.metastack) + len(self.stack)
        top = None
        if self.stack:
            top = self.stack[-1]
            has_top = True
        else:
            has_top = False
            for fr in reversed(self.metastack):
                if fr:
                    top, has_top = fr[-1], True
                    break
        return [
            pos,
            op,
            flat_depth,
            len(self.metastack),
            sorted(self.memo.keys()),
            kind(top) if has_top else None,
            value(op, top) if (has_top and op in LITERAL_OPS and self.stack) else None,
        ]

    def trace(self):
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)
        self.read = self._unframer.read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack = []
        self.stack = []
        self.append = self.stack.append
        self.proto = 0
        steps = []
        while True:
            pos = self._pos()
            key = self.read(1)
            if not key:
                return steps, {"err": [pos, "EOFError"]}
            op = key[0]
            try:
                if op not in self.dispatch:
                    raise pickle.UnpicklingError(f"invalid load key {key!r}")
                self.dispatch[op](self)
            except pickle._Stop:
                steps.append(self._state(pos, op))
                return steps, {"ok": self._pos()}
            except Exception as e:  # noqa: BLE001
                return steps, {"err": [pos, f"{type(e).__name__}: {e}"[:200]]}
            steps.append(self._state(pos, op))


def run_py(data: bytes):
    try:
        return PyTracer(io.BytesIO(data)).trace()
    except Exception as e:  # noqa: BLE001 - setup failures
        return [], {"err": [0, f"{type(e).__name__}: {e}"[:200]]}


# --------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------

WS = [b" ", b"\t", b"\r", b"\x0b", b"\x0c", b"  "]


def txt_int(rng: random.Random, big_ok=True) -> bytes:
    """Text forms of integers, including every spelling int() accepts and
    near misses."""
    hand = [b"0", b"00", b"01", b"1", b"-0", b"+1", b"007", b"010", b"08", b"0_7", b"1_000", b"1__0",
            b"_1", b"1_", b"0x1f", b"0X_1F", b"0o17", b"0b101", b"0x", b"0b", b"0o8", b"1e3", b"1.0",
            b"", b" ", b"L", b"7L", b"0x10L", b"7LL", b"+-1", b"--1", b"9223372036854775807",
            b"9223372036854775808", b"-9223372036854775809", b"4294967295", b"4294967296",
            b"123456789012345678901234567890", b"\xd9\xa1", b"\xef\xbc\x91", b"7\x00junk", b"\x00",
            b"1 2", b"0xffffffffffffffffffff", b"  12  ", b"\t-3\r"]
    if rng.random() < 0.35:
        return rng.choice(hand)
    out = b""
    if rng.random() < 0.2:
        out += rng.choice(WS)
    if rng.random() < 0.3:
        out += rng.choice([b"+", b"-"])
    base = rng.choice([10, 10, 10, 16, 8, 2])
    digits = {10: b"0123456789", 16: b"0123456789abcdefABCDEF", 8: b"01234567", 2: b"01"}[base]
    if base != 10:
        out += rng.choice({16: [b"0x", b"0X"], 8: [b"0o", b"0O"], 2: [b"0b", b"0B"]}[base])
        if rng.random() < 0.2:
            out += b"_"
    elif rng.random() < 0.2:
        out += b"0" * rng.randint(1, 3)
    n = rng.randint(1, 25 if big_ok else 6)
    for i in range(n):
        out += bytes([rng.choice(digits)])
        if i < n - 1 and rng.random() < 0.1:
            out += b"_"
    if rng.random() < 0.1:
        out += rng.choice([b"L", b"l", b"_", b"x"])
    if rng.random() < 0.2:
        out += rng.choice(WS)
    return out


def txt_float(rng: random.Random) -> bytes:
    hand = [b"1.5", b" 1.5", b"1.5 ", b"1_0.5", b"inf", b"-inf", b"+inf", b"nan", b"-nan", b"NaN",
            b"infinity", b"INF", b"Infinity", b"1e999", b"-1e999", b"1e-999", b"0x1p3", b"1.", b".5",
            b"+.5e+3", b"1.5\r", b"", b".", b"e5", b"1e", b"1.5L", b"1,5", b"00.5", b"0", b"-0.0",
            b"1.7976931348623157e308", b"2.2250738585072014e-308", b"5e-324", b"1\x00x", b"\xd9\xa1.5",
            b"1_000.0_1", b"_1.0", b"nanx", b"in", b"1.5e+", b"  nan  "]
    if rng.random() < 0.6:
        return rng.choice(hand)
    return (b"%r" % rng.uniform(-1e6, 1e6)) if rng.random() < 0.5 else (b"%de%d" % (rng.randint(-99, 99), rng.randint(-400, 400)))


def txt_string(rng: random.Random) -> bytes:
    hand = [b"'abc'", b'"abc"', b"'abc' ", b"'abc'\r", b"'abc\"", b"'", b"''", b"abc", b"'a\\x41'",
            b"'\\x4'", b"'\\xzz'", b"'a\\'b'", b"'\\101\\0\\777'", b"'\\n\\t\\q'", b"'abc\\'", b"'\\u0041'",
            b"'\xe9'", b"  'x'", b"'x'  \t", b"'\\\n'", b"'\\a\\b\\f\\v'", b"'\\8'", b"'\\x41\\x4G'"]
    if rng.random() < 0.7:
        return rng.choice(hand)
    q = rng.choice([b"'", b'"'])
    body = bytes(rng.choice(b"ab\\x0179'\"n\xe9 ") for _ in range(rng.randint(0, 8)))
    return q + body + q + (rng.choice(WS) if rng.random() < 0.2 else b"")


def txt_unicode(rng: random.Random) -> bytes:
    hand = [b"abc", b"\\u0041", b"\\U0001F600", b"\\u00e9x", b"\\u12", b"\\U0011ffff", b"\\ud800",
            b"\xe9", b"\\x41", b"a\\\\u0041", b"\\", b"\\u", b"\\N{LOW LINE}", b"\\U0000004", b"\r",
            b"\\u0041\\u0042"]
    if rng.random() < 0.7:
        return rng.choice(hand)
    return bytes(rng.choice(b"abu\\0124\xe9U") for _ in range(rng.randint(0, 10)))


NAMES = [(b"m0", b"f"), (b"m1", b"C"), (b"pkg.mod", b"Cls.method"), (b"m2", b"g"), (b"os", b"system"),
         (b"m3", b""), (b"", b"f"), (b"m4 ", b"f\r"), (b"m\xc3\xa9", b"f"), (b"m\xe9", b"f"),
         (b"m5", b"x.y")]


class Gen:
    """Emits a pickle op by op while modelling the unpickler's stack, so
    most programs are ones CPython accepts and run many opcodes deep."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.out = bytearray()
        self.starts: list[int] = []
        self.stack: list[str] = []
        self.meta: list[list[str]] = []
        self.memo: set[int] = set()
        self.proto = rng.choice([0, 0, 1, 2, 3, 4, 5, 5])

    def op(self, b: bytes):
        self.starts.append(len(self.out))
        self.out += b

    def push(self, k):
        self.stack.append(k)

    def literal(self):
        r, p = self.rng, self.proto
        c = r.randrange(22)
        if c == 0:
            self.op(b"I" + txt_int(r) + b"\n"); self.push("int")
        elif c == 1:
            self.op(b"L" + txt_int(r) + r.choice([b"L", b"", b"L"]) + b"\n"); self.push("int")
        elif c == 2:
            self.op(b"J" + struct.pack("<i", r.randint(-2**31, 2**31 - 1))); self.push("int")
        elif c == 3:
            self.op(b"K" + bytes([r.randrange(256)])); self.push("int")
        elif c == 4:
            self.op(b"M" + struct.pack("<H", r.randrange(65536))); self.push("int")
        elif c == 5:
            n = r.choice([0, 1, 2, 8, 9, 17])
            self.op(b"\x8a" + bytes([n]) + bytes(r.randrange(256) for _ in range(n))); self.push("int")
        elif c == 6:
            n = r.choice([0, 3, 9])
            self.op(b"\x8b" + struct.pack("<i", n) + bytes(r.randrange(256) for _ in range(n))); self.push("int")
        elif c == 7:
            self.op(b"F" + txt_float(r) + b"\n"); self.push("float")
        elif c == 8:
            self.op(b"G" + struct.pack(">d", r.choice([0.5, -1e300, float("inf"), float("nan"), 3.0]))); self.push("float")
        elif c == 9:
            self.op(b"S" + txt_string(r) + b"\n"); self.push("str")
        elif c == 10:
            s = bytes(r.randrange(256) for _ in range(r.randint(0, 5)))
            self.op(b"T" + struct.pack("<i", len(s)) + s if r.random() < 0.5 else b"U" + bytes([len(s)]) + s); self.push("str")
        elif c == 11:
            self.op(b"V" + txt_unicode(r) + b"\n"); self.push("str")
        elif c == 12:
            s = r.choice(["abc", "é", "\U0001F600", "", "a\nb"]).encode()
            if r.random() < 0.1:
                s = r.choice([b"\xff", b"\xed\xa0\x80", b"\xc3"])
            o = r.choice([b"X" + struct.pack("<I", len(s)), b"\x8c" + bytes([len(s)]), b"\x8d" + struct.pack("<Q", len(s))])
            self.op(o + s); self.push("str")
        elif c == 13:
            s = bytes(r.randrange(256) for _ in range(r.randint(0, 6)))
            o = r.choice([b"B" + struct.pack("<I", len(s)), b"C" + bytes([len(s)]), b"\x8e" + struct.pack("<Q", len(s)),
                          b"\x96" + struct.pack("<Q", len(s))])
            self.op(o + s); self.push("bytes")
        elif c == 14:
            self.op(b"N"); self.push("none")
        elif c == 15:
            self.op(r.choice([b"\x88", b"\x89"])); self.push("bool")
        elif c == 16:
            self.op(b")"); self.push("tuple")
        elif c == 17:
            self.op(b"]"); self.push("list")
        elif c == 18:
            self.op(b"}"); self.push("dict")
        elif c == 19:
            self.op(b"\x8f"); self.push("set")
        elif c == 20:
            m, n = r.choice(NAMES)
            if r.random() < 0.5:
                self.op(b"c" + m + b"\n" + n + b"\n")
            else:
                self.op(b"\x8c" + bytes([len(m)]) + m)
                self.op(b"\x8c" + bytes([len(n)]) + n)
                self.op(b"\x93")
            self.push("global")
        else:
            self.op(b"P" + r.choice([b"pid", b"0", b"", b"\xe9"]) + b"\n"); self.push("persid")

    def memo_key_text(self) -> bytes:
        r = self.rng
        if self.memo and r.random() < 0.6:
            k = r.choice(sorted(self.memo))
            forms = [b"%d" % k, b" %d" % k, b"%d " % k, b"0%d" % k, b"+%d" % k, b"%d\r" % k,
                     b"%s" % "_".join(str(k)).encode(), b"00%d" % k, b"\t%d\t" % k, b"%dL" % k, b"0x%x" % k]
            return r.choice(forms)
        return txt_int(r, big_ok=False)

    def step(self):
        r = self.rng
        st = self.stack
        choices = ["lit"] * 6 + ["mark"] * 2 + ["put", "get", "call", "tupleN", "dup", "pop", "build"]
        if self.meta:
            choices += ["close"] * 4
        if len(st) >= 2 and st[-2] == "list":
            choices += ["append"] * 2
        if len(st) >= 3 and st[-3] == "dict":
            choices += ["setitem"] * 2
        if r.random() < 0.03:
            choices += ["ext", "buffer", "persid_bin", "memoize", "pop_mark"]
        a = r.choice(choices)
        if a == "lit":
            self.literal()
        elif a == "mark":
            self.op(b"(")
            self.meta.append(self.stack)
            self.stack = []
        elif a == "close" and self.meta:
            items = self.stack
            below = self.meta[-1][-1] if self.meta[-1] else None
            options = [(b"t", "tuple"), (b"l", "list"), (b"\x91", "frozenset"), (b"1", None)]
            if len(items) % 2 == 0:
                options.append((b"d", "dict"))
            if items and items[0] == "global":
                options.append((b"o", "call"))
            options.append((b"i" + b"m0\nC\n", "call"))
            if below == "list":
                options.append((b"e", "same"))
            if below == "set":
                options.append((b"\x90", "same"))
            if below == "dict" and len(items) % 2 == 0:
                options.append((b"u", "same"))
            o, k = r.choice(options)
            self.op(o)
            self.stack = self.meta.pop()
            if k not in (None, "same"):
                self.push(k)
        elif a == "put":
            if not st:
                return self.literal()
            c = r.randrange(4)
            if c == 0:
                k = r.randrange(8)
                self.op(b"p" + self.memo_key_text() if r.random() < 0.3 else b"p%d" % k)
                self.out += b"\n"
                try:
                    self.memo.add(int(self.out[self.starts[-1] + 1:-1]))
                except ValueError:
                    pass
            elif c == 1:
                k = r.randrange(256) if r.random() < 0.2 else r.randrange(8)
                self.op(b"q" + bytes([k])); self.memo.add(k)
            elif c == 2:
                k = r.choice([0, 1, 5, 2**20, 2**31, 2**32 - 1])
                self.op(b"r" + struct.pack("<I", k)); self.memo.add(k)
            else:
                self.op(b"\x94"); self.memo.add(len(self.memo))
        elif a == "get":
            if not self.memo and r.random() < 0.8:
                return self.literal()
            c = r.randrange(3)
            k = r.choice(sorted(self.memo)) if self.memo else 0
            if c == 0:
                self.op(b"g" + self.memo_key_text() + b"\n")
            elif c == 1:
                self.op(b"h" + bytes([k & 0xFF]))
            else:
                self.op(b"j" + struct.pack("<I", k & 0xFFFFFFFF))
            self.push("any")
        elif a == "call":
            m, n = r.choice(NAMES[:5])
            if r.random() < 0.5:
                self.op(b"c" + m + b"\n" + n + b"\n")
            else:
                self.op(b"\x8c" + bytes([len(m)]) + m + b"\x8c" + bytes([len(n)]) + n)
                self.op(b"\x93")
            c = r.randrange(3)
            self.op(b"(")
            for _ in range(r.randint(0, 2)):
                self.op(b"K\x01")
            self.op(b"t")
            if c == 0:
                self.op(b"R")
            elif c == 1:
                self.op(b"\x81")
            else:
                self.op(b"}")
                self.op(b"\x92")
            self.push("call")
        elif a == "tupleN":
            n = r.randint(1, 3)
            if len(st) < n:
                return self.literal()
            self.op(bytes([0x84 + n]))
            del st[-n:]
            self.push("tuple")
        elif a == "dup":
            if not st:
                return self.literal()
            self.op(b"2"); self.push(st[-1])
        elif a == "pop":
            if not st:
                return
            self.op(b"0"); st.pop()
        elif a == "pop_mark":
            if self.meta:
                self.op(b"1"); self.stack = self.meta.pop()
        elif a == "build":
            if len(st) < 1 or st[-1] not in ("call", "global"):
                return self.literal()
            self.op(b"}" if r.random() < 0.7 else b"N")
            self.op(b"b")
        elif a == "append":
            self.op(b"a"); st.pop()
        elif a == "setitem":
            self.op(b"s"); st.pop(); st.pop()
        elif a == "ext":
            self.op(b"\x82\x01"); self.push("ext")
        elif a == "buffer":
            self.op(b"\x97"); self.push("buffer")
            if r.random() < 0.5:
                self.op(b"\x98")
        elif a == "persid_bin":
            if st:
                self.op(b"Q"); st.pop(); self.push("persid")
        elif a == "memoize":
            if st:
                self.op(b"\x94"); self.memo.add(len(self.memo))

    def finish(self) -> bytes:
        r = self.rng
        while self.meta and r.random() < 0.8:
            self.op(b"t")
            self.stack = self.meta.pop()
            self.push("tuple")
        if not self.stack and not self.meta:
            self.op(b"N")
            self.push("none")
        self.op(b".")
        body = bytes(self.out)
        head = b""
        if self.proto >= 2 or r.random() < 0.1:
            head = b"\x80" + bytes([self.proto if r.random() < 0.97 else r.choice([6, 255])])
        if self.proto >= 4 and r.random() < 0.6:
            body = self.framed(body)
        return head + body

    def framed(self, body: bytes) -> bytes:
        """Splits the body into FRAMEs at opcode boundaries (sometimes with a
        wrong length, or straddling an opcode)."""
        r = self.rng
        cuts = sorted(set(r.sample(self.starts, min(len(self.starts), r.randint(0, 3)))) | {0})
        cuts.append(len(body))
        out = b""
        for a, b in zip(cuts, cuts[1:]):
            n = b - a
            if r.random() < 0.08:
                n += r.choice([-1, 1, 1000])
            out += b"\x95" + struct.pack("<Q", max(n, 0)) + body[a:b]
        return out


def gen_structured(rng: random.Random) -> bytes:
    g = Gen(rng)
    for _ in range(rng.randint(1, 40)):
        g.step()
    return g.finish()


class Rec:  # pickled as a GLOBAL + REDUCE / BUILD through copyreg (never unpickled for real)
    def __init__(self, x):
        self.x = x


def real_objects():
    shared = [1, 2]
    rec: list = [1]
    rec.append(rec)
    d = {"a": shared, "b": shared, "c": (shared, shared)}
    return [
        None, True, 0, 1, -1, 255, 256, 65535, 65536, 2**31, -2**31 - 1, 2**63, 2**100, -2**100,
        1.5, float("inf"), -0.0, "", "abc", "é\U0001F600", "a\nb\\c'\"", b"", b"\x00\xff", bytearray(b"xy"),
        (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), [], [1, [2, [3]]], {}, {"k": 1, 2: "v"}, set(), {1, 2},
        frozenset({3}), d, rec, list(range(1200)), {i: str(i) for i in range(40)}, collections.OrderedDict(a=1),
        datetime.datetime(2026, 12, 2, 1, 2, 3), decimal.Decimal("1.5"), fractions.Fraction(1, 3), complex(1, 2),
        uuid.UUID(int=7), range(3), slice(1, 2), collections.Counter("aab"), Rec({"w": [1.0, 2.0]}),
        [Rec(1), Rec(2)], "x" * 300, b"y" * 300,
    ]


def seed_pickles() -> list[bytes]:
    out = []
    for obj in real_objects():
        for proto in range(6):
            try:
                out.append(pickle.dumps(obj, protocol=proto))
            except Exception:  # noqa: BLE001 - some objects need a newer protocol
                pass
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            b += b"."
        c = rng.randrange(9)
        i = rng.randrange(len(b))
        if c == 0:
            b[i] = rng.randrange(256)
        elif c == 1:
            b[i] ^= 1 << rng.randrange(8)
        elif c == 2:
            b.insert(i, rng.choice(b"(.0124abdeghlpqrstu}])\x85\x86\x87\x94\x95"))
        elif c == 3:
            del b[i]
        elif c == 4:
            j = rng.randrange(len(b))
            a, z = min(i, j), max(i, j)
            b[a:a] = b[a:z + 1]
        elif c == 5:
            # replace a text operand by another spelling
            nl = b.find(b"\n", i)
            if nl > i:
                st = b.rfind(b"\n", 0, i) + 1
                if st < len(b) and b[st] in b"ILgpF":
                    form = txt_float(rng) if b[st] == ord("F") else txt_int(rng)
                    b[st + 1:nl] = form
        elif c == 6:
            del b[i:]
        elif c == 7:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        else:
            # splice in a structured fragment
            g = Gen(rng)
            for _ in range(rng.randint(1, 4)):
                g.step()
            b[i:i] = bytes(g.out)
    return bytes(b)


def generate(seed: int, n: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    seeds = seed_pickles()
    cases = [("seed", s) for s in seeds]
    structured: list[bytes] = []
    while len(cases) < n:
        r = rng.random()
        if r < 0.45:
            p = gen_structured(rng)
            structured.append(p)
            cases.append(("gen", p))
        elif r < 0.75:
            cases.append(("mut-seed", mutate(rng, rng.choice(seeds))))
        else:
            base = rng.choice(structured) if structured else rng.choice(seeds)
            cases.append(("mut-gen", mutate(rng, base)))
    return cases[:n]


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------


def aisec_traces(bin_path: list[str], cases: list[bytes]) -> list[dict]:
    inp = "".join(c.hex() + "\n" for c in cases).encode()
    res = subprocess.run(bin_path, input=inp, capture_output=True, check=True)
    lines = res.stdout.decode().splitlines()
    if len(lines) != len(cases):
        raise SystemExit(f"trace binary returned {len(lines)} lines for {len(cases)} cases")
    return [json.loads(x) for x in lines]


FIELDS = ["pos", "op", "depth", "marks", "memo", "top", "value"]


def norm_step(s):
    s = list(s)
    if s[5] == "bytearray":
        s[5] = "bytes"
    return s


def compare(data: bytes, c: dict, cf: dict, py: tuple, ai: dict) -> list[dict]:
    """c: C unpickler, buffered (compared with aisec's contiguous reading);
    cf: C unpickler over a bare BytesIO (compared with aisec's file reading)."""
    steps_py, end_py = py
    out = []
    py_ok = "ok" in end_py
    if c["ok"] != py_ok:
        out.append({"cat": "cpython_internal", "c": c.get("err") or "ok", "py": end_py.get("err", "ok")})
    for ref, mine, tag in ((c, ai, ""), (cf, ai["file"], "file_")):
        ai_ok = "ok" in mine["end"]
        if ref["ok"] and not ai_ok:
            out.append({"cat": tag + "aisec_stricter", "aisec": mine["end"]["err"], "c": "ok"})
        if not ref["ok"] and ai_ok:
            out.append({"cat": "aisec_lenient", "c": ref["err"], "reading": tag or "loads"})
        # With a FRAME the C unpickler has read the whole frame from the file,
        # which may end after STOP: the file position says nothing then.
        if tag and ref["ok"] and ai_ok and ref["end"] != mine["end"]["ok"] and b"\x95" not in data:
            out.append({"cat": "file_end_offset", "c": ref["end"], "aisec": mine["end"]["ok"]})
        have = set(mine["globals"])
        missing = [g for g in ref["globals"] if g not in have and name_as_aisec(g) not in have]
        if missing:
            out.append({"cat": tag + "missed_global", "globals": missing[:5]})
    # opcode by opcode, over the opcodes both executed
    tolerated = set()  # (python type, aisec type) of values the C unpickler builds as aisec does
    for i, (a, p) in enumerate(zip(ai["steps"], steps_py)):
        a, p = norm_step(a), norm_step(p)
        if a != p:
            diff = {f: [p[k], a[k]] for k, f in enumerate(FIELDS) if a[k] != p[k]}
            if set(diff) == {"top"} and tuple(diff["top"]) in tolerated:
                continue
            if set(diff) <= {"top", "value"} and p[1] in TEXT_OPS:
                # The two CPython unpicklers parse some text operands
                # differently (INT "-0" is False in C, 0 in Python): ask the
                # C one about this operand alone.
                cval = c_literal(data, p[0])
                if cval is not None and cval == [a[5], a[6]]:
                    tolerated.add((p[5], a[5]))
                    out.append({"cat": "cpython_internal", "c": f"literal {cval}", "py": str(p[5:])})
                    continue
            out.append({"cat": "state", "step": i, "op": "%02x" % p[1], "diff_py_aisec": diff})
            break
    else:
        n = min(len(ai["steps"]), len(steps_py))
        if len(steps_py) > n and not ai_ok:
            pass  # covered by aisec_stricter when C agrees with Python
    return out


TEXT_OPS = set(b"IFLSV")


def name_as_aisec(name: str) -> str:
    """Protocol 0-2 strings (STRING/BINSTRING) are decoded with the loader's
    `encoding=` (latin-1 here); aisec reads their bytes as UTF-8, replacing
    what is not. A name matches when it or this reading of it does."""
    try:
        return name.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return name


def c_literal(data: bytes, pos: int):
    """[type, value] the C unpickler gives the text literal at `pos` alone."""
    nl = data.find(b"\n", pos)
    if nl < 0:
        return None
    op = data[pos]
    try:
        x = pickle.loads(data[pos:nl + 1] + b".", encoding="latin1")
    except Exception:  # noqa: BLE001
        return ["rejected", None]
    return [kind(x), value(op, x)]


def lenient_reason(err: str) -> str:
    """Groups CPython's rejections by cause (the message without values)."""
    e = err.split(":", 1)
    t = e[0]
    msg = e[1] if len(e) > 1 else ""
    for key in ["unregistered extension code", "codec can't decode", "unhashable type", "is not callable",
                "NEWOBJ class argument", "NEWOBJ args", "NEWOBJ_EX", "STACK_GLOBAL requires str",
                "state is not a dictionary", "slot state is not a dictionary", "has no attribute",
                "argument list must be a tuple", "argument after * must be an iterable",
                "Exceeds the limit", "unsupported pickle protocol", "could not convert string to float",
                "invalid literal", "memo", "frame", "Memo", "object is not iterable", "takes no arguments",
                "must be a mapping", "memoryview", "buffer", "not subscriptable", "object does not support"]:
        if key in msg or key in t:
            return f"{t}: {key}"
    return f"{t}: {msg.strip()[:60]}"


def main():
    # The C unpickler sizes its memo array by the largest PUT key: a key of
    # 2**31 asks for 16 GiB and zero-fills it. Cap the address space so that
    # is a MemoryError (a rejection) and never the OOM killer.
    cap = 3 << 30
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.simplefilter("ignore")
    sys.unraisablehook = lambda _u: None  # memoryviews of buffers freed after a failed load
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--trace-bin", default=None, help="path of the pickle_trace example binary")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--replay", default=None, help="file of hex cases (one per line) instead of generating")
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    if args.trace_bin:
        bin_path = [args.trace_bin]
    else:
        subprocess.run(["cargo", "build", "-q", "-p", "aisec-pickle", "--example", "pickle_trace"], cwd=ROOT, check=True)
        tdir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        bin_path = [os.path.join(tdir, "debug", "examples", "pickle_trace")]
    if args.replay:
        with open(args.replay) as f:
            cases = [("replay", bytes.fromhex(x.split()[0])) for x in f if x.strip() and not x.startswith("#")]
    else:
        cases = generate(args.seed, args.cases)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    counts: collections.Counter = collections.Counter()
    sources: collections.Counter = collections.Counter()
    lenient: collections.Counter = collections.Counter()
    internal: collections.Counter = collections.Counter()
    accepted = {"c": 0, "c_file": 0, "py": 0, "aisec": 0, "aisec_file": 0}
    steps_compared = 0
    first_by_key: dict = {}
    with open(os.path.join(args.out, "mismatches.jsonl"), "w") as mf:
        for b0 in range(0, len(cases), args.batch):
            batch = cases[b0:b0 + args.batch]
            ai_all = aisec_traces(bin_path, [c for _, c in batch])
            for (src, data), ai in zip(batch, ai_all):
                sources[src] += 1
                c = run_c(data)
                cf = run_c(data, buffered=False)
                py = run_py(data)
                accepted["c"] += c["ok"]
                accepted["c_file"] += cf["ok"]
                accepted["aisec_file"] += "ok" in ai["file"]["end"]
                accepted["py"] += "ok" in py[1]
                accepted["aisec"] += "ok" in ai["end"]
                steps_compared += min(len(py[0]), len(ai["steps"]))
                for m in compare(data, c, cf, py, ai):
                    cat = m["cat"]
                    counts[cat] += 1
                    if cat == "aisec_lenient":
                        key = lenient_reason(m["c"])
                        lenient[key] += 1
                    elif cat == "cpython_internal":
                        key = f"C {m['c'][:40]} / py {str(m['py'])[:40]}"
                        internal[lenient_reason(str(m["c"])) + " | py " + lenient_reason(str(m["py"]))] += 1
                    elif cat == "state":
                        key = f"state {m['op']} {sorted(m['diff_py_aisec'])}"
                    else:
                        key = f"{cat} {str(m.get('aisec', m.get('globals', '')))[:50]}"
                    rec = {"src": src, "hex": data.hex(), **m}
                    if cat not in ("aisec_lenient", "cpython_internal"):
                        mf.write(json.dumps(rec) + "\n")
                    if key not in first_by_key:
                        first_by_key[key] = rec
    summary = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "seed": args.seed,
        "cases": len(cases),
        "sources": dict(sources),
        "accepted": accepted,
        "opcode_steps_compared": steps_compared,
        "mismatches": dict(counts),
        "aisec_lenient_by_cpython_error": dict(lenient.most_common()),
        "cpython_internal": dict(internal.most_common()),
        "examples": {k: v for k, v in sorted(first_by_key.items())},
        "seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    show = {k: v for k, v in summary.items() if k != "examples"}
    print(json.dumps(show, indent=1))
    bad = sum(counts[k] for k in ("aisec_stricter", "file_aisec_stricter", "state", "missed_global",
                                  "file_missed_global", "file_end_offset"))
    print(f"blocking mismatches: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
