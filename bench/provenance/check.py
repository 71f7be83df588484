"""Cross-checks aisec's provenance verification against OpenSSF model-signing.

For several model folders (the committed fixture, a mixed folder with nested
and non-ASCII names, git paths and an 8 MiB file, and a folder of 300 small
files) it:

1. compares aisec's manifest (`aisec provenance manifest`) with
   model-signing's (`model_signing.hashing.Config().hash`): every path and
   digest, the order, and the root digest of the statement;
2. signs with `model_signing sign key` (P-256 key made with `cryptography`)
   and runs both verifiers on: the untouched folder, a changed file, an added
   file, a removed file, a corrupted signature, an edited payload, the wrong
   public key, an added symlink; and verifies a folder signed by
   `aisec provenance sign` with `model_signing verify key`.

3. makes a test PKI (pki.py: root -> intermediate -> leaves of eight kinds,
   plus an unrelated root), signs each folder with `model_signing sign
   certificate` per leaf and runs `model_signing verify certificate` and
   `aisec provenance verify --certificate-chain` on: each leaf, the wrong
   root, the intermediate missing from the bundle (without and with it in
   the trust file), a changed file and an added file.

Agreement: model-signing succeeds exactly when aisec exits 0 with
`--fail-on low` (aisec also says which rule fired). Writes results.json.
"""

import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import json_format
import model_signing
from model_signing._signing import signing as ms_signing

import pki

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
AISEC = os.environ.get("AISEC", str(ROOT / "target/debug/aisec"))
MS = str(pathlib.Path(sys.executable).parent / "model_signing")


def make_key(dirpath, name):
    k = ec.generate_private_key(ec.SECP256R1())
    priv = dirpath / f"{name}.pem"
    pub = dirpath / f"{name}.pub"
    priv.write_bytes(k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
    pub.write_bytes(k.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


def build_mixed(d):
    files = {
        "config.json": b'{"a": 1}',
        "a-c": b"1",
        "a/b": b"2",
        "A": b"3",
        "_x": b"4",
        "with space.txt": b"5",
        "mod\u00e8le/\u6743\u91cd.bin": b"6" * 1000,
        "deep/er/est/leaf.txt": b"7",
        "empty": b"",
        "big.bin": os.urandom(8 << 20),
        ".git/HEAD": b"ref: refs/heads/main\n",
        ".gitignore": b"*.tmp\n",
        ".gitattributes": b"*.bin filter=lfs\n",
    }
    for rel, data in files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def build_many(d):
    for i in range(300):
        p = d / f"shard{i % 10}" / f"part-{i:04d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(64 + i))


def ms_manifest(folder):
    m = model_signing.hashing.Config().hash(folder)
    st = json_format.MessageToDict(ms_signing.Payload(m).statement.pb)
    return st


def aisec_manifest(folder):
    out = subprocess.run([AISEC, "-q", "provenance", "manifest", str(folder)],
                         check=True, capture_output=True)
    return json.loads(out.stdout)


def ms_verify(folder, sig, pub):
    r = subprocess.run([MS, "verify", "key", str(folder), "--signature", str(sig),
                        "--public_key", str(pub)], capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-1:] 


def aisec_verify(folder, sig, pub):
    t = time.perf_counter()
    r = subprocess.run([AISEC, "-q", "provenance", "verify", str(folder), "--signature", str(sig),
                        "--public-key", str(pub), "--format", "json", "--fail-on", "low"],
                       capture_output=True, text=True)
    secs = time.perf_counter() - t
    rules = []
    try:
        rules = sorted(f["rule_id"] for f in json.loads(r.stdout)["findings"])
    except Exception:
        pass
    return r.returncode, rules, secs


def ms_verify_cert(folder, sig, chain):
    cmd = [MS, "verify", "certificate", str(folder), "--signature", str(sig)]
    for c in chain:
        cmd += ["--certificate_chain", str(c)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-1:]


def aisec_verify_cert(folder, sig, chain):
    cmd = [AISEC, "-q", "provenance", "verify", str(folder), "--signature", str(sig),
           "--format", "json", "--fail-on", "low"]
    for c in chain:
        cmd += ["--certificate-chain", str(c)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t
    rules, why = [], ""
    try:
        f = json.loads(r.stdout)["findings"]
        rules = sorted(x["rule_id"] for x in f)
        why = f[0]["evidence"] if f else ""
    except Exception:
        why = r.stderr.strip()
    return r.returncode, rules, secs, why


def cert_cases(folder, work, pkidir, leaves):
    """Yields (case, folder, signature, trust files): signatures outside the folder."""
    sigs = work / "sigs"
    sigs.mkdir()
    for leaf in pki.LEAVES:
        pki.sign(folder, sigs / f"{leaf}.sig", leaves[leaf])
        yield f"leaf {leaf}", folder, sigs / f"{leaf}.sig", [pkidir / "root.pem"]
    yield "wrong root", folder, sigs / "good.sig", [pkidir / "other-root.pem"]
    pki.strip_chain(sigs / "good.sig", sigs / "leaf-only.sig")
    yield "no intermediate in bundle", folder, sigs / "leaf-only.sig", [pkidir / "root.pem"]
    yield ("no intermediate in bundle, given with the root", folder, sigs / "leaf-only.sig",
           [pkidir / "root-and-intermediate.pem"])
    d = copy(folder, work / "tampered")
    f = first_file(d)
    data = bytearray(f.read_bytes() or b"\0")
    data[0] ^= 1
    f.write_bytes(bytes(data))
    yield "file modified", d, sigs / "good.sig", [pkidir / "root.pem"]
    d = copy(folder, work / "added")
    (d / "added_loader.py").write_text("import os\n")
    yield "file added", d, sigs / "good.sig", [pkidir / "root.pem"]


def copy(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return dst


def first_file(folder):
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and not rel.startswith(".git") and rel != "model.sig":
            return p
    raise SystemExit("no file")


def cases(base, work, priv, pub, other_pub):
    """Yields (case name, folder, signature, public key)."""
    sig_name = "model.sig"
    d = copy(base, work / "valid")
    yield "valid", d, d / sig_name, pub

    d = copy(base, work / "modified")
    f = first_file(d)
    data = bytearray(f.read_bytes() or b"\0")
    data[0] ^= 1
    f.write_bytes(bytes(data))
    yield "file modified", d, d / sig_name, pub

    d = copy(base, work / "added")
    (d / "added_loader.py").write_text("import os\n")
    yield "file added", d, d / sig_name, pub

    d = copy(base, work / "removed")
    first_file(d).unlink()
    yield "file removed", d, d / sig_name, pub

    d = copy(base, work / "corrupt")
    b = json.loads((d / sig_name).read_text())
    s = base64.b64decode(b["dsseEnvelope"]["signatures"][0]["sig"])
    s = s[:-1] + bytes([s[-1] ^ 1])
    b["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(s).decode()
    (d / sig_name).write_text(json.dumps(b))
    yield "signature corrupted", d, d / sig_name, pub

    d = copy(base, work / "payload")
    b = json.loads((d / sig_name).read_text())
    st = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
    st["predicate"]["resources"][0]["digest"] = "0" * 64
    b["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
    (d / sig_name).write_text(json.dumps(b))
    yield "payload edited", d, d / sig_name, pub

    d = copy(base, work / "wrongkey")
    yield "wrong public key", d, d / sig_name, other_pub

    d = copy(base, work / "symlink")
    os.symlink(first_file(d), d / "link.bin")
    yield "symlink added", d, d / sig_name, pub

    d = copy(base, work / "nosig")
    (d / sig_name).unlink()
    yield "signature missing", d, d / sig_name, pub


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="aisec-prov-check-"))
    priv, pub = make_key(work, "signer")
    _, other_pub = make_key(work, "other")
    folders = {}
    folders["fixture"] = copy(ROOT / "crates/aisec-provenance/tests/fixtures/signed", work / "fixture-src")
    (folders["fixture"] / "model.sig").unlink()
    folders["mixed"] = work / "mixed-src"
    build_mixed(folders["mixed"])
    folders["many"] = work / "many-src"
    build_many(folders["many"])

    results = {"manifests": [], "cases": [], "aisec_signed": [], "certificate_cases": []}
    pkidir = work / "pki"
    leaves = pki.make(pkidir)
    all_agree = True
    for name, folder in folders.items():
        mine = aisec_manifest(folder)
        theirs = ms_manifest(folder)
        same_res = mine["predicate"]["resources"] == theirs["predicate"]["resources"]
        same_root = mine["subject"][0]["digest"] == theirs["subject"][0]["digest"]
        n = len(theirs["predicate"]["resources"])
        results["manifests"].append({"folder": name, "files": n, "same_resources_in_order": same_res,
                                     "same_root_digest": same_root})
        print(f"manifest {name}: {n} files, resources equal (in order): {same_res}, root digest equal: {same_root}")
        all_agree &= same_res and same_root

        subprocess.run([MS, "sign", "key", str(folder), "--private_key", str(priv),
                        "--signature", str(folder / "model.sig")], check=True, capture_output=True)
        cw = work / f"{name}-cases"
        cw.mkdir()
        for case, d, sig, key in cases(folder, cw, priv, pub, other_pub):
            if case == "signature missing":
                ms_ok, ms_msg = False, ["(model-signing raises: no such file)"]
                if sig.exists():
                    raise SystemExit("sig exists")
            else:
                ms_ok, ms_msg = ms_verify(d, sig, key)
            rc, rules, secs = aisec_verify(d, sig, key)
            agree = ms_ok == (rc == 0)
            all_agree &= agree
            results["cases"].append({"folder": name, "case": case, "model_signing_ok": ms_ok,
                                     "aisec_exit": rc, "aisec_rules": rules, "agree": agree,
                                     "aisec_seconds": round(secs, 3), "model_signing_said": ms_msg})
            print(f"  {case:20s} model-signing {'ok  ' if ms_ok else 'FAIL'}  aisec exit {rc} {rules}  agree={agree}")

        # aisec signs, model-signing verifies.
        d = copy(folder, work / f"{name}-aisec-signed")
        (d / "model.sig").unlink()
        subprocess.run([AISEC, "-q", "provenance", "sign", str(d), "--private-key", str(priv)], check=True)
        ms_ok, msg = ms_verify(d, d / "model.sig", pub)
        rc, rules, _ = aisec_verify(d, d / "model.sig", pub)
        results["aisec_signed"].append({"folder": name, "model_signing_ok": ms_ok, "aisec_exit": rc})
        print(f"  aisec-signed         model-signing {'ok' if ms_ok else 'FAIL ' + str(msg)}  aisec exit {rc}")
        all_agree &= ms_ok and rc == 0

        # Certificate-based signatures (test PKI made by pki.py).
        cw = work / f"{name}-cert"
        cw.mkdir()
        for case, d, sig, chain in cert_cases(folder, cw, pkidir, leaves):
            ms_ok, ms_msg = ms_verify_cert(d, sig, chain)
            rc, rules, secs, why = aisec_verify_cert(d, sig, chain)
            agree = ms_ok == (rc == 0)
            all_agree &= agree
            results["certificate_cases"].append({
                "folder": name, "case": case, "model_signing_ok": ms_ok, "aisec_exit": rc,
                "aisec_rules": rules, "agree": agree, "aisec_seconds": round(secs, 3),
                "aisec_said": why, "model_signing_said": ms_msg})
            print(f"  cert {case:44s} model-signing {'ok  ' if ms_ok else 'FAIL'}  aisec exit {rc} {rules}  agree={agree}")

    results["all_agree"] = all_agree
    (HERE / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(work)
    print("ALL AGREE" if all_agree else "DISAGREEMENT")
    sys.exit(0 if all_agree else 1)


if __name__ == "__main__":
    main()
