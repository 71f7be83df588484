"""A throwaway test PKI and certificate-based model-signing signatures.

Used by gen_cert_fixtures.py (the committed fixtures of aisec-provenance)
and by check.py (the cross-check against model-signing 1.1.1). Everything
is made here with `cryptography`; nothing third-party is copied.

The PKI: root (P-384, self-signed CA) -> intermediate (P-256 CA, path
length 0) -> leaf certificates (P-256 unless said), plus an unrelated root.
Each leaf kind exercises one rule of model-signing's certificate verifier
(model_signing/_signing/sign_certificate.py): OpenSSL's chain check at the
leaf's notBefore, then "KeyUsage digitalSignature or ExtendedKeyUsage
codeSigning".
"""

import datetime as dt
import json
import pathlib
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MS = str(pathlib.Path(sys.executable).parent / "model_signing")


def t(y, m=1, d=1):
    return dt.datetime(y, m, d, tzinfo=dt.timezone.utc)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aisec test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ku(digital_signature=False, key_encipherment=False, cert_sign=False):
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=key_encipherment, data_encipherment=False,
                         key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def cert(subject_cn, key, issuer_cn, issuer_key, start, end, ca=None, usage=None, eku=None,
         hash_alg=None, san=None):
    b = (x509.CertificateBuilder().subject_name(name(subject_cn)).issuer_name(name(issuer_cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end))
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca[0], path_length=ca[1]), critical=True)
    if usage is not None:
        b = b.add_extension(usage, critical=True)
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san is not None:
        b = b.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(san)]), critical=False)
    if hash_alg is None:
        hash_alg = hashes.SHA384() if isinstance(issuer_key.curve, ec.SECP384R1) else hashes.SHA256()
    return b.sign(issuer_key, hash_alg)


def pem(c):
    return c.public_bytes(ser.Encoding.PEM)


def key_pem(k):
    return k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())


# Leaf kinds: name -> (what model-signing does with it, description).
LEAVES = {
    "good": (True, "KeyUsage digitalSignature, EKU codeSigning, valid 2024-2034"),
    "expired": (True, "valid 2022-2023 only: model-signing checks the chain at the leaf's "
                "notBefore, so an expired leaf still verifies"),
    "before-ca": (False, "notBefore 2020-06, before the intermediate's 2021 notBefore"),
    "no-signing-usage": (False, "KeyUsage keyEncipherment only, EKU serverAuth"),
    "eku-server-ku-sign": (True, "EKU serverAuth but KeyUsage digitalSignature (enough)"),
    "eku-only": (True, "no KeyUsage, EKU codeSigning (enough)"),
    "p384": (True, "P-384 leaf key: DSSE signed with SHA-384"),
    "non-ca-issuer": (False, "issued by a certificate without basicConstraints cA"),
    "pathlen-exceeded": (False, "issued by a second CA below the path-length-0 intermediate"),
}


def make(out: pathlib.Path):
    """Writes the PKI to `out`; returns {name: (key_path, cert_path, chain_paths)} and roots."""
    out.mkdir(parents=True, exist_ok=True)
    root_k = ec.generate_private_key(ec.SECP384R1())
    root = cert("aisec test root", root_k, "aisec test root", root_k, t(2020), t(2040),
                ca=(True, None), usage=ku(cert_sign=True))
    other_k = ec.generate_private_key(ec.SECP384R1())
    other = cert("aisec test root", other_k, "aisec test root", other_k, t(2020), t(2040),
                 ca=(True, None), usage=ku(cert_sign=True))
    inter_k = ec.generate_private_key(ec.SECP256R1())
    inter = cert("aisec test intermediate", inter_k, "aisec test root", root_k, t(2021), t(2039),
                 ca=(True, 0), usage=ku(cert_sign=True))
    # A certificate that is not a CA, used as an issuer.
    nonca_k = ec.generate_private_key(ec.SECP256R1())
    nonca = cert("aisec test not a CA", nonca_k, "aisec test root", root_k, t(2021), t(2039),
                 ca=(False, None), usage=ku(digital_signature=True))
    (out / "root.pem").write_bytes(pem(root))
    (out / "other-root.pem").write_bytes(pem(other))
    (out / "intermediate.pem").write_bytes(pem(inter))
    (out / "root-and-intermediate.pem").write_bytes(pem(inter) + pem(root))
    (out / "nonca.pem").write_bytes(pem(nonca))
    # A CA below the intermediate, whose path length (0) forbids it.
    sub_k = ec.generate_private_key(ec.SECP256R1())
    sub = cert("aisec test sub-intermediate", sub_k, "aisec test intermediate", inter_k, t(2021),
               t(2039), ca=(True, None), usage=ku(cert_sign=True))
    (out / "sub-chain.pem").write_bytes(pem(sub) + pem(inter))
    code = [ExtendedKeyUsageOID.CODE_SIGNING]
    specs = {
        "good": dict(start=t(2024), end=t(2034), usage=ku(digital_signature=True), eku=code),
        "expired": dict(start=t(2022), end=t(2023), usage=ku(digital_signature=True), eku=code),
        "before-ca": dict(start=t(2020, 6), end=t(2030), usage=ku(digital_signature=True), eku=code),
        "no-signing-usage": dict(start=t(2024), end=t(2034), usage=ku(key_encipherment=True),
                                 eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
        "eku-server-ku-sign": dict(start=t(2024), end=t(2034), usage=ku(digital_signature=True),
                                   eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
        "eku-only": dict(start=t(2024), end=t(2034), usage=None, eku=code),
        "p384": dict(start=t(2024), end=t(2034), usage=ku(digital_signature=True), eku=code,
                     curve=ec.SECP384R1()),
        "non-ca-issuer": dict(start=t(2024), end=t(2034), usage=ku(digital_signature=True),
                              eku=code, issuer=("aisec test not a CA", nonca_k, "nonca.pem")),
        "pathlen-exceeded": dict(start=t(2024), end=t(2034), usage=ku(digital_signature=True),
                                 eku=code, issuer=("aisec test sub-intermediate", sub_k,
                                                   "sub-chain.pem")),
    }
    leaves = {}
    for leaf, s in specs.items():
        k = ec.generate_private_key(s.get("curve", ec.SECP256R1()))
        icn, ik, ipem = s.get("issuer", ("aisec test intermediate", inter_k, "intermediate.pem"))
        c = cert(f"aisec test signer {leaf}", k, icn, ik, s["start"], s["end"], usage=s["usage"],
                 eku=s["eku"], san="signer@aisec.test")
        (out / f"leaf-{leaf}.key").write_bytes(key_pem(k))
        (out / f"leaf-{leaf}.pem").write_bytes(pem(c))
        leaves[leaf] = (out / f"leaf-{leaf}.key", out / f"leaf-{leaf}.pem", [out / ipem])
    return leaves


def sign(model, sig, leaf):
    """`model_signing sign certificate` with a leaf from make(): bundle chain = leaf + issuer."""
    key, crt, chain = leaf
    cmd = [MS, "sign", "certificate", str(model), "--signature", str(sig),
           "--private_key", str(key), "--signing_certificate", str(crt)]
    for c in chain:
        cmd += ["--certificate_chain", str(c)]
    subprocess.run(cmd, check=True, capture_output=True)


def strip_chain(src, dst):
    """A copy of a bundle with only the leaf in its certificate chain."""
    b = json.loads(pathlib.Path(src).read_text())
    certs = b["verificationMaterial"]["x509CertificateChain"]["certificates"]
    b["verificationMaterial"]["x509CertificateChain"]["certificates"] = certs[:1]
    pathlib.Path(dst).write_text(json.dumps(b))
