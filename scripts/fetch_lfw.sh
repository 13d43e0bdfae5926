#!/usr/bin/env bash
# Download LFW deep-funneled + protocol files into DEST/lfw and verify their MD5 sums.
# For users' machines without the shared data (the development machines have no internet).
set -euo pipefail
DEST=${1:?usage: fetch_lfw.sh DEST}
BASE=http://vis-www.cs.umass.edu/lfw
mkdir -p "$DEST/lfw"
cd "$DEST/lfw"
fetch() {  # name md5
  if [ ! -f "$1" ] || [ "$(md5sum "$1" | cut -d' ' -f1)" != "$2" ]; then
    curl -fL --retry 3 -o "$1.part" "$BASE/$1" && mv "$1.part" "$1"
  fi
  [ "$(md5sum "$1" | cut -d' ' -f1)" = "$2" ] || { echo "fetch_lfw: $1: checksum mismatch" >&2; exit 1; }
}
fetch lfw-deepfunneled.tgz 68331da3eb755a505a502b5aacb3c201
fetch pairs.txt 9f1ba174e4e1c508ff7cdf10ac338a7d
fetch pairsDevTest.txt 5132f7440eb68cf58910c8a45a2ac10b
[ -d lfw-deepfunneled ] || tar -xzf lfw-deepfunneled.tgz
echo "$DEST/lfw"
