"""Regenerates crates/aisec-provenance/tests/fixtures/cert/ (certificate-based signatures).

Run by `bench/provenance/check.sh --regen` (needs the venv it makes):
a fresh test PKI (pki.py), a small model folder, and one signature per
leaf kind made by `model_signing sign certificate` (model-signing 1.1.1),
written outside the folder. `expected.json` records, for each signature,
whether `model_signing verify certificate` accepted it with the root given,
so the Rust tests compare aisec's verdict with model-signing's own. Private
keys are not kept.
"""

import json
import pathlib
import shutil
import subprocess
import sys

import pki

FILES = {
    "config.json": b'{"model_type": "mlp"}\n',
    "weights.bin": bytes(range(256)) * 2,
    "sub/notes.txt": b"signed with a certificate\n",
}


def ms_verify(model, sig, chain):
    cmd = [pki.MS, "verify", "certificate", str(model), "--signature", str(sig)]
    for c in chain:
        cmd += ["--certificate_chain", str(c)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode == 0


def main(out: pathlib.Path, tmp: pathlib.Path) -> None:
    d = out / "cert"
    if d.exists():
        shutil.rmtree(d)
    model = d / "model"
    for rel, data in FILES.items():
        p = model / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    leaves = pki.make(tmp)
    for f in ["root.pem", "other-root.pem", "root-and-intermediate.pem"]:
        shutil.copy(tmp / f, d / f)
    sigs = d / "sigs"
    sigs.mkdir()
    expected = {}
    for leaf in pki.LEAVES:
        pki.sign(model, sigs / f"{leaf}.sig", leaves[leaf])
    pki.strip_chain(sigs / "good.sig", sigs / "leaf-only.sig")
    for sig in sorted(sigs.iterdir()):
        for roots in (["root.pem"], ["other-root.pem"], ["root-and-intermediate.pem"]):
            key = f"{sig.name} {'+'.join(roots)}"
            expected[key] = ms_verify(model, sig, [d / r for r in roots])
    (d / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))
