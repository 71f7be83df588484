"""A throwaway Sigstore (Fulcio, CT log, Rekor) for keyless model-signing bundles.

Plays the three services with its own keys, all made here with `cryptography`:

* Fulcio: a root CA (P-384) and an intermediate (P-256) that issue a
  short-lived leaf (empty subject, critical e-mail SAN, KeyUsage
  digitalSignature, EKU codeSigning, OIDC issuer extensions
  1.3.6.1.4.1.57264.1.1 (raw) and .1.8 (DER UTF8String)) carrying one
  embedded SCT;
* a CT log: signs the SCT over the precertificate (RFC 6962 3.2: the leaf's
  TBS without the SCT list extension, with the SHA-256 of the issuer's SPKI);
* Rekor (v1): a `dsse` 0.0.1 entry for the envelope, put in a small RFC 6962
  Merkle tree, with its inclusion proof, a signed checkpoint (signed note) and
  a signed entry timestamp (ECDSA over the canonical JSON of body,
  integratedTime, logID, logIndex).

The DSSE envelope itself comes from `model_signing sign key` with the leaf's
private key (the same envelope a keyless signer writes); its verification
material is then replaced by the leaf certificate and the log entry. The
trust root is written both as a Sigstore `trusted_root.json` and as the
`ClientTrustConfig` that `model_signing verify sigstore --trust_config` takes.

Cases (one bundle each, or one verify argument changed): see CASES. Written
from the RFCs and the Sigstore protobuf specs, checked against what
sigstore-python 4.5.1's verifier reads; nothing third-party copied.

    python keyless.py OUT_DIR            writes the fixtures (model/, sigs/,
                                         trusted_root.json, trust_config.json,
                                         cases.json with model-signing's verdicts)
    python keyless.py --check [AISEC]    fresh keys and bundles in a temporary
                                         folder, then every case through
                                         `model_signing verify sigstore` and
                                         `aisec provenance verify --trust-root`
                                         with each trust file; prints the table
                                         and writes keyless_results.json
"""

import base64
import copy
import datetime as dt
import hashlib
import json
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

MS = str(pathlib.Path(sys.executable).parent / "model_signing")
IDENTITY = "signer@aisec.test"
ISSUER = "https://oidc.aisec.test"
SCT_OID = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
ORIGIN = "rekor.aisec.test - 4242"
# Signing time: the leaf is valid for ten minutes from T0, as Fulcio's are.
T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc)

FILES = {
    "config.json": b'{"model_type": "mlp"}\n',
    "weights.bin": bytes(range(256)) * 2,
    "sub/notes.txt": b"signed keyless\n",
}

b64 = lambda b: base64.b64encode(b).decode()


def t(y, m=1, d=1):
    return dt.datetime(y, m, d, tzinfo=dt.timezone.utc)


def spki(key):
    return key.public_key().public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)


def log_id(key):
    return hashlib.sha256(spki(key)).digest()


def sign256(key, data):
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aisec test sigstore"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ca_cert(cn, key, issuer_cn, issuer_key, pathlen):
    b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(issuer_cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(t(2021)).not_valid_after(t(2040))
         .add_extension(x509.BasicConstraints(ca=True, path_length=pathlen), critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                        critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                        critical=False))
    alg = hashes.SHA384() if isinstance(issuer_key.curve, ec.SECP384R1) else hashes.SHA256()
    return b.sign(issuer_key, alg)


def fulcio(cn_prefix="aisec test fulcio"):
    root_k = ec.generate_private_key(ec.SECP384R1())
    root = ca_cert(f"{cn_prefix} root", root_k, f"{cn_prefix} root", root_k, 1)
    inter_k = ec.generate_private_key(ec.SECP256R1())
    inter = ca_cert(f"{cn_prefix} intermediate", inter_k, f"{cn_prefix} root", root_k, 0)
    return dict(root=root, root_k=root_k, inter=inter, inter_k=inter_k)


def der_utf8(s):
    b = s.encode()
    assert len(b) < 128
    return bytes([0x0C, len(b)]) + b


def der_octets(b):
    n = len(b)
    if n < 128:
        return bytes([0x04, n]) + b
    if n < 256:
        return bytes([0x04, 0x81, n]) + b
    return bytes([0x04, 0x82]) + struct.pack(">H", n) + b


def leaf_builder(ca, leaf_k, start, identity, issuer, sct_list=None):
    b = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca["inter"].subject)
         .public_key(leaf_k.public_key()).serial_number(0x5157_0000_0001)
         .not_valid_before(start).not_valid_after(start + dt.timedelta(minutes=10))
         .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                        critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_k.public_key()),
                        critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             ca["inter_k"].public_key()), critical=False)
         .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(identity)]), critical=True)
         .add_extension(x509.UnrecognizedExtension(ISSUER_V1, issuer.encode()), critical=False)
         .add_extension(x509.UnrecognizedExtension(ISSUER_V2, der_utf8(issuer)), critical=False))
    if sct_list is not None:
        b = b.add_extension(x509.UnrecognizedExtension(SCT_OID, der_octets(sct_list)),
                            critical=False)
    return b


def sct_for(tbs, issuer_cert, ct_key, ts_ms, id_key=None, corrupt=False):
    """One v1 precert SCT (RFC 6962 3.2) in a SignedCertificateTimestampList."""
    ikh = hashlib.sha256(issuer_cert.public_key().public_bytes(
        ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)).digest()
    signed = (struct.pack(">BBQH", 0, 0, ts_ms, 1) + ikh + struct.pack(">I", len(tbs))[1:] + tbs
              + struct.pack(">H", 0))
    sig = bytearray(sign256(ct_key, signed))
    if corrupt:
        sig[-1] ^= 1
    lid = log_id(id_key or ct_key)
    sct = (struct.pack(">B", 0) + lid + struct.pack(">Q", ts_ms) + struct.pack(">H", 0)
           + struct.pack(">BBH", 4, 3, len(sig)) + bytes(sig))
    return struct.pack(">HH", len(sct) + 2, len(sct)) + sct


def leaf(ca, ct_key, start, identity=IDENTITY, issuer=ISSUER, sct="good"):
    """A Fulcio-style leaf with an embedded SCT; sct: good | unknown-log | broken."""
    leaf_k = ec.generate_private_key(ec.SECP256R1())
    pre = leaf_builder(ca, leaf_k, start, identity, issuer).sign(ca["inter_k"], hashes.SHA256())
    tbs = pre.tbs_certificate_bytes
    ts = int(start.timestamp() * 1000)
    if sct == "unknown-log":
        lst = sct_for(tbs, ca["inter"], ec.generate_private_key(ec.SECP256R1()), ts)
    else:
        lst = sct_for(tbs, ca["inter"], ct_key, ts, corrupt=(sct == "broken"))
    c = leaf_builder(ca, leaf_k, start, identity, issuer, lst).sign(ca["inter_k"], hashes.SHA256())
    assert c.tbs_precertificate_bytes == tbs
    return leaf_k, c


# RFC 6962 2.1 Merkle tree hash and audit path.
def _leaf_hash(d):
    return hashlib.sha256(b"\x00" + d).digest()


def _node(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def _split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    if len(leaves) == 1:
        return _leaf_hash(leaves[0])
    k = _split(len(leaves))
    return _node(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def checkpoint(rekor_k, size, root, sign_key=None):
    note = f"{ORIGIN}\n{size}\n{b64(root)}\n"
    sig = sign256(sign_key or rekor_k, note.encode())
    return note + "\n\u2014 rekor.aisec.test " + b64(log_id(rekor_k)[:4] + sig) + "\n"


def canonical(obj):
    # RFC 8785 for these values (ASCII strings, integers): sorted keys, no spaces.
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def tlog_entry(rekor_k, envelope, leaf_cert, integrated, case):
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    payload = base64.b64decode(envelope["payload"])
    body = canonical({
        "apiVersion": "0.0.1", "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256",
                             "value": hashlib.sha256(canonical(envelope)).hexdigest()},
            "payloadHash": {"algorithm": "sha256",
                            "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{"signature": b64(sig),
                            "verifier": b64(leaf_cert.public_bytes(ser.Encoding.PEM))}],
        },
    })
    index, size = 5, 7
    leaves = [f"other entry {i}".encode() for i in range(size)]
    leaves[index] = body
    root = mth(leaves)
    hashes_ = path(index, leaves)
    if case == "proof-broken":
        h = bytearray(hashes_[1])
        h[0] ^= 1
        hashes_[1] = bytes(h)
    cp_key = ec.generate_private_key(ec.SECP256R1()) if case == "checkpoint-bad-sig" else None
    lid = log_id(rekor_k)
    log_index = 1000 + index
    set_sig = bytearray(sign256(rekor_k, canonical({
        "body": b64(body), "integratedTime": integrated, "logID": lid.hex(),
        "logIndex": log_index})))
    if case == "set-tampered":
        set_sig[-1] ^= 1
    return {
        "logIndex": str(log_index),
        "logId": {"keyId": b64(lid)},
        "kindVersion": {"kind": "dsse", "version": "0.0.1"},
        "integratedTime": str(integrated),
        "inclusionPromise": {"signedEntryTimestamp": b64(bytes(set_sig))},
        "inclusionProof": {
            "logIndex": str(index), "rootHash": b64(root), "treeSize": str(size),
            "hashes": [b64(h) for h in hashes_],
            "checkpoint": {"envelope": checkpoint(rekor_k, size, root, cp_key)},
        },
        "canonicalizedBody": b64(body),
    }


def pubkey(key, start=t(2021)):
    return {"rawBytes": b64(spki(key)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ")}}


def trusted_root(ca, rekor_k, ct_k):
    der = lambda c: {"rawBytes": b64(c.public_bytes(ser.Encoding.DER))}
    return {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{"baseUrl": "https://rekor.aisec.test", "hashAlgorithm": "SHA2_256",
                   "publicKey": pubkey(rekor_k), "logId": {"keyId": b64(log_id(rekor_k))}}],
        "certificateAuthorities": [{
            "subject": {"organization": "aisec test sigstore", "commonName": "aisec test fulcio"},
            "uri": "https://fulcio.aisec.test",
            "certChain": {"certificates": [der(ca["inter"]), der(ca["root"])]},
            "validFor": {"start": "2021-01-01T00:00:00Z"}}],
        "ctlogs": [{"baseUrl": "https://ctfe.aisec.test", "hashAlgorithm": "SHA2_256",
                    "publicKey": pubkey(ct_k), "logId": {"keyId": b64(log_id(ct_k))}}],
        "timestampAuthorities": [],
    }


def trust_config(root):
    svc = lambda u: {"url": u, "majorApiVersion": 1, "operator": "aisec test",
                     "validFor": {"start": "2021-01-01T00:00:00Z"}}
    return {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": root,
        "signingConfig": {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [svc("https://fulcio.aisec.test")],
            "oidcUrls": [svc(ISSUER)],
            "rekorTlogUrls": [svc("https://rekor.aisec.test")],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaUrls": [], "tsaConfig": {"selector": "ANY"},
        },
    }


# name -> (bundle variant, identity, issuer, model folder, what it tests)
CASES = {
    "valid": ("valid", IDENTITY, ISSUER, "model", "everything as Sigstore makes it"),
    "wrong-identity": ("valid", "someone@else.test", ISSUER, "model", "--identity not the SAN"),
    "wrong-issuer": ("valid", IDENTITY, "https://other-oidc.test", "model",
                     "--identity-provider not the OIDC issuer extension"),
    "tampered-file": ("valid", IDENTITY, ISSUER, "tampered",
                      "weights.bin changed after signing"),
    "other-ca": ("other-ca", IDENTITY, ISSUER, "model",
                 "leaf issued by a Fulcio-like CA not in the trust root"),
    "sct-unknown-log": ("sct-unknown-log", IDENTITY, ISSUER, "model",
                        "embedded SCT signed by a CT log not in the trust root"),
    "sct-broken": ("sct-broken", IDENTITY, ISSUER, "model",
                   "embedded SCT whose signature does not verify"),
    "proof-broken": ("proof-broken", IDENTITY, ISSUER, "model",
                     "one inclusion proof hash changed"),
    "checkpoint-bad-sig": ("checkpoint-bad-sig", IDENTITY, ISSUER, "model",
                           "checkpoint signed by another key (right key hint)"),
    "time-outside": ("time-outside", IDENTITY, ISSUER, "model",
                     "integratedTime an hour after the leaf expired (SET re-signed)"),
    "set-tampered": ("set-tampered", IDENTITY, ISSUER, "model",
                     "signed entry timestamp changed"),
    "body-mismatch": ("body-mismatch", IDENTITY, ISSUER, "model",
                      "tlog entry's payload hash is not the envelope's (entry re-signed)"),
}


def make_bundle(variant, ca, other_ca, rekor_k, ct_k, model, tmp):
    start = T0
    use_ca = other_ca if variant == "other-ca" else ca
    sct = {"sct-unknown-log": "unknown-log", "sct-broken": "broken"}.get(variant, "good")
    leaf_k, leaf_c = leaf(use_ca, ct_k, start, sct=sct)
    kp = tmp / f"{variant}.key"
    kp.write_bytes(leaf_k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                        ser.NoEncryption()))
    raw = tmp / f"{variant}.keysig"
    subprocess.run([MS, "sign", "key", str(model), "--signature", str(raw),
                    "--private_key", str(kp)], check=True, capture_output=True)
    bundle = json.loads(raw.read_text())
    env = bundle["dsseEnvelope"]
    integrated = int(start.timestamp()) + 60
    if variant == "time-outside":
        integrated = int(start.timestamp()) + 70 * 60
    entry_env = env
    if variant == "body-mismatch":
        entry_env = copy.deepcopy(env)
        entry_env["payload"] = b64(b"{}")
    entry = tlog_entry(rekor_k, entry_env, leaf_c, integrated, variant)
    bundle["verificationMaterial"] = {
        "certificate": {"rawBytes": b64(leaf_c.public_bytes(ser.Encoding.DER))},
        "tlogEntries": [entry],
        "timestampVerificationData": {"rfc3161Timestamps": []},
    }
    return bundle


def ms_verify(model, sig, trust, identity, issuer):
    r = subprocess.run([MS, "verify", "sigstore", str(model), "--signature", str(sig),
                        "--identity", identity, "--identity_provider", issuer,
                        "--trust_config", str(trust)], capture_output=True, text=True)
    last = (r.stdout + r.stderr).strip().splitlines()
    return r.returncode == 0, (last[-1] if last else "")[:300]


def main(out: pathlib.Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    model = out / "model"
    for rel, data in FILES.items():
        p = model / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    ca, other_ca = fulcio(), fulcio("aisec test other fulcio")
    rekor_k = ec.generate_private_key(ec.SECP256R1())
    ct_k = ec.generate_private_key(ec.SECP256R1())
    root = trusted_root(ca, rekor_k, ct_k)
    (out / "trusted_root.json").write_text(json.dumps(root, indent=1) + "\n")
    (out / "trust_config.json").write_text(json.dumps(trust_config(root), indent=1) + "\n")
    sigs = out / "sigs"
    sigs.mkdir()
    with tempfile.TemporaryDirectory() as td:
        tmp = pathlib.Path(td)
        for variant in sorted({c[0] for c in CASES.values()}):
            b = make_bundle(variant, ca, other_ca, rekor_k, ct_k, model, tmp)
            (sigs / f"{variant}.sig").write_text(json.dumps(b, indent=1) + "\n")
        tampered = tmp / "tampered"
        shutil.copytree(model, tampered)
        (tampered / "weights.bin").write_bytes(b"changed")
        cases = {}
        for case, (variant, identity, issuer, folder, what) in CASES.items():
            m = model if folder == "model" else tampered
            ok, msg = ms_verify(m, sigs / f"{variant}.sig", out / "trust_config.json",
                                identity, issuer)
            cases[case] = {"signature": f"sigs/{variant}.sig", "identity": identity,
                           "identity_provider": issuer, "tamper": folder == "tampered",
                           "what": what, "model_signing_accepts": ok, "model_signing_says": msg}
            print(f"{case:20} model_signing: {'accept' if ok else 'reject'}  {msg[:150]}")
    (out / "cases.json").write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")


def aisec_verify(aisec, model, sig, trust, identity, issuer):
    r = subprocess.run([aisec, "provenance", "verify", str(model), "--signature", str(sig),
                        "--trust-root", str(trust), "--identity", identity,
                        "--identity-provider", issuer, "--fail-on", "low", "--format", "json"],
                       capture_output=True, text=True)
    if r.returncode == 2:
        return False, "exit 2: " + r.stderr.strip()[:200]
    v = json.loads(r.stdout)
    f = v["findings"]
    why = f"{f[0]['rule_id']}: {f[0]['evidence']}" if f else "clean"
    return r.returncode == 0, why[:200]


def check(aisec: str) -> int:
    here = pathlib.Path(__file__).resolve().parent
    rows, disagree = [], 0
    with tempfile.TemporaryDirectory() as td:
        out = pathlib.Path(td) / "fx"
        main(out)
        cases = json.loads((out / "cases.json").read_text())
        tampered = pathlib.Path(td) / "tampered"
        shutil.copytree(out / "model", tampered)
        (tampered / "weights.bin").write_bytes(b"changed")
        for name, c in cases.items():
            model = tampered if c["tamper"] else out / "model"
            for trust in ("trust_config.json", "trusted_root.json"):
                ms_ok = c["model_signing_accepts"]
                if trust == "trusted_root.json":
                    ms_ok = None  # model-signing only takes a client trust config
                a_ok, a_why = aisec_verify(aisec, model, out / c["signature"], out / trust,
                                           c["identity"], c["identity_provider"])
                agree = ms_ok is None or ms_ok == a_ok
                disagree += not agree
                rows.append({"case": name, "trust": trust, "model_signing": ms_ok,
                             "model_signing_says": c["model_signing_says"] if ms_ok is not None else "",
                             "aisec": a_ok, "aisec_says": a_why, "agree": agree})
    (here / "keyless_results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("| case | model-signing | aisec | aisec's reason |")
    print("|---|---|---|---|")
    for r in rows:
        if r["trust"] != "trust_config.json":
            continue
        ms = "accept" if r["model_signing"] else "reject"
        ai = "accept" if r["aisec"] else "reject"
        print(f"| {r['case']} | {ms} | {ai} | {r['aisec_says'][:110]} |")
    print(f"{len(rows)} runs, {disagree} disagreements")
    return 1 if disagree else 0


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        root = pathlib.Path(__file__).resolve().parent.parent.parent
        sys.exit(check(sys.argv[2] if len(sys.argv) > 2 else str(root / "target/debug/aisec")))
    main(pathlib.Path(sys.argv[1]))
