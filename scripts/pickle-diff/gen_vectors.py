#!/usr/bin/env python3
"""Differential vectors for the text-form integer opcodes (INT, LONG, GET, PUT).

Builds small protocol-0 pickles whose only global is a stand-in (`mylib f`,
resolved by an Unpickler subclass to a local recorder, so nothing is ever
imported) around one text-form operand, runs CPython's own C unpickler
(`pickle.Unpickler`, what `pickle.load` uses) on each, and records whether
it loaded and the repr of the value the operand became. The Rust test
`crates/aisec-pickle/tests/int_forms.rs` replays the vectors against the
symbolic machine: accepted by CPython <=> not reported malformed, same value.

Usage: python3 scripts/pickle-diff/gen_vectors.py > crates/aisec-pickle/tests/vectors/int_forms.json
(stdlib only; run with the interpreter whose unpickler is the reference;
the committed vectors were made with CPython 3.11.7).
"""
import io
import json
import pickle
import platform
import random


class U(pickle.Unpickler):
    def find_class(self, module, name):
        assert (module, name) == ("mylib", "f")
        return lambda *a: ("CALL", a)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("no persistent ids")


def run(data: bytes):
    try:
        r = U(io.BytesIO(data)).load()
    except Exception as e:  # noqa: BLE001 - any failure is a rejection
        return False, type(e).__name__
    return True, repr(r[1][0])


HAND = ["7", " 7", "7 ", "\t7", "07", "007", "0_7", "+7", "-7", "7_", "_7", "7__0", "0x7", "0X7",
        "0o7", "0b111", "0x_7", "7\x00junk", "\x00", "00", "01", "+1", "-0", "0", "08", "010",
        "1_000", " 1_000 ", "0x10", "0x", "0xg", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "123456789012345678901234567890", "1e3", "1.0", "", " ", "L",
        "7L", "0x10L", "7LL", "\x0b7\x0c", "7\r", "0_0", "+_7", "--7", "0b", "0o8", "1 2",
        "\u0667".encode().decode("latin-1")]
ALPHA = "0123456789abxXoOL_+- \t\x00\x0b\x0c\r"


def forms():
    rng = random.Random(20261202)
    out = list(HAND)
    for _ in range(400):
        out.append("".join(rng.choice(ALPHA) for _ in range(rng.randint(1, 8))))
    seen, uniq = set(), []
    for f in out:
        if f not in seen and "\n" not in f:
            seen.add(f)
            uniq.append(f)
    return uniq


def main():
    vecs = []
    for f in forms():
        b = f.encode("latin-1")
        cases = {
            "INT": b"cmylib\nf\n(I" + b + b"\ntR.",
            "LONG": b"cmylib\nf\n(L" + b + b"\ntR.",
            "PUT": b"cmylib\nf\n(I5\np" + b + b"\n0g7\ntR.",
            "GET": b"cmylib\nf\n(I5\np7\n0g" + b + b"\ntR.",
        }
        for op, data in cases.items():
            ok, val = run(data)
            vecs.append({"op": op, "form": f, "pickle": data.hex(), "ok": ok,
                         "value": val if ok else None})
    json.dump({"python": platform.python_version(), "implementation": "C _pickle.Unpickler",
               "vectors": vecs}, fp=__import__("sys").stdout, indent=0)


if __name__ == "__main__":
    main()
