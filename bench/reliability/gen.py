#!/usr/bin/env python3
"""Generates the scanner-side hostile inputs of issue 19 into a directory.

Every input is small on disk; what it expands to is in the comment.
Usage: gen.py OUTDIR
"""
import io
import os
import struct
import sys
import zipfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

LAMBDA = (
    '{"module":"keras","class_name":"Sequential","config":{"layers":[{"module":"keras.layers",'
    '"class_name":"Lambda","config":{"name":"l","function":{"class_name":"__lambda__","config":'
    '{"code":"4wAAAA==","defaults":null,"closure":null}}}}]},"pad":'
)


def keras(path, config):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", '{"keras_version":"3.8.0"}')
        z.writestr("config.json", config)
        z.writestr("model.weights.h5", b"")


# 1. Keras v3 Lambda, config padded with 63 MB of one-entry objects
#    (was: 5.8 GB peak; then: under the byte limit, parsed -> critical).
keras(f"{out}/keras_objbomb.keras", LAMBDA + "[" + '{"":0},' * 9_000_000 + "0]}")
# 2. Keras v3 Lambda padded past 64 MiB with whitespace
#    (was: medium "over limit", exit 0).
keras(f"{out}/keras_padded.keras", LAMBDA + " " * (65 << 20) + "0}")
# 3. Unpadded control (critical).
keras(f"{out}/keras_plain.keras", LAMBDA + "0}")

# 4. safetensors with a 10 MB header of one-entry objects (was 931 MB).
h = "{" + ",".join(f'"t{i}":{{"":0}}' for i in range(1_000_000)) + "}"
hb = h.encode()
with open(f"{out}/objbomb.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb)


# 5. 42.zip style: 4 levels of 16 zips, leaves 4 MiB of zeros
#    (1 TiB if fully inflated... 16^4 x 4 MiB = 256 GiB).
def zip_of(members):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members:
            z.writestr(n, d)
    return b.getvalue()


z = zip_of([(f"{i:x}.bin", b"\0" * (4 << 20)) for i in range(16)])
for _ in range(3):
    z = zip_of([(f"{i:x}.zip", z) for i in range(16)])
open(f"{out}/nested42.zip", "wb").write(z)

# 6. Overlapping entries: 5,000 central-directory records share one
#    deflate stream of 16 MiB of zeros (80 GB if each is inflated).
one = zip_of([("m0000.bin", b"\0" * (16 << 20))])
eocd = len(one) - 22
cd_size, cd_off = struct.unpack("<II", one[eocd + 12 : eocd + 20])
rec = one[cd_off : cd_off + cd_size]
body = bytearray(one[: cd_off + cd_size])
n = 5000
for i in range(1, n):
    r = bytearray(rec)
    r[46:55] = f"m{i:04d}.bin".encode()
    body += r
e = bytearray(one[eocd:])
e[8:10] = struct.pack("<H", n)
e[10:12] = struct.pack("<H", n)
e[12:16] = struct.pack("<I", cd_size * n)
open(f"{out}/overlap.zip", "wb").write(bytes(body + e))

for name in sorted(os.listdir(out)):
    print(f"{name}\t{os.path.getsize(os.path.join(out, name))}")
