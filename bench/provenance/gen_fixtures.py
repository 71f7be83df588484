"""Regenerates the signed fixtures of crates/aisec-provenance/tests/fixtures/.

Run by bench/provenance/check.sh --regen (needs the venv it makes). Signs a
small model folder with the OpenSSF `model-signing` package (v1.1.1, from
PyPI; Apache-2.0), key-based and offline: a fresh P-256 key is generated
with `cryptography` each time, and only its public half is kept. Also
writes:

- other.pub: a second public key (a signature must not verify with it);
- compat.sig: the same statement signed over model-signing 0.2's buggy PAE
  (`pae_compat`, which model-signing 1.x still accepts), so aisec's
  fallback is tested against a signature made by model-signing's own code.

The fixture files are made up here (no third-party data).
"""

import base64
import json
import pathlib
import shutil
import subprocess
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing._signing import sign_sigstore_pb

FILES = {
    "config.json": b'{"model_type": "mlp", "hidden": [16, 8]}\n',
    "weights.dat": bytes(range(256)) * 4,
    "tokenizer/vocab.txt": "a\nb\nc\n\u00e9\n".encode(),
    "a-c.txt": b"sorts after a/b.txt in model-signing's manifest\n",
    "a/b.txt": b"nested\n",
    "empty.bin": b"",
    # Ignored by default (git paths), so not in the manifest.
    ".github/README.txt": b"ignored\n",
}


def write_key(path: pathlib.Path, key) -> None:
    path.write_bytes(
        key.public_key().public_bytes(
            ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo
        )
    )


def main(out: pathlib.Path, tmp: pathlib.Path) -> None:
    model = out / "signed"
    if model.exists():
        shutil.rmtree(model)
    for rel, data in FILES.items():
        p = model / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    key = ec.generate_private_key(ec.SECP256R1())
    tmp.mkdir(parents=True, exist_ok=True)
    priv = tmp / "fixture_key.pem"
    priv.write_bytes(
        key.private_bytes(
            ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()
        )
    )
    write_key(out / "key.pub", key)
    write_key(out / "other.pub", ec.generate_private_key(ec.SECP256R1()))
    sig = model / "model.sig"
    subprocess.run(
        [
            str(pathlib.Path(sys.executable).parent / "model_signing"),
            "sign", "key", str(model),
            "--private_key", str(priv),
            "--signature", str(sig),
        ],
        check=True,
    )
    # The same payload, signed over the pre-1.0 PAE.
    bundle = json.loads(sig.read_text())
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    raw = key.sign(sign_sigstore_pb.pae_compat(payload), ec.ECDSA(hashes.SHA256()))
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(raw).decode()
    (out / "compat.sig").write_text(json.dumps(bundle))
    priv.unlink()


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))
