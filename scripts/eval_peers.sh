#!/usr/bin/env bash
# The peers on the same protocol as scripts/eval_model.sh (same photos, same failure rules); JSON into OUTDIR.
#   bash scripts/eval_peers.sh OUTDIR [DATA] [EMBEDDERS (default: "sface dlib")]
# sface needs `facerec-data fetch-sface`; dlib needs the peer extra (in requirements-dev.txt: `bash scripts/install.sh --dev`).
set -euo pipefail
OUT=${1:?output dir}; DATA=${2:-${FACEREC_DATA:-../shared/data}}; EMBEDDERS=${3:-sface dlib}
L=$DATA/lfw; R=$DATA/rmfrd
mkdir -p "$OUT"
E=".venv/bin/facerec-eval"
for N in $EMBEDDERS; do
  $E verify --embedder "$N" --pairs "$L/pairsDevTest.txt" --images "$L/lfw-deepfunneled" --json > "$OUT/$N-devtest.json"
  $E verify --embedder "$N" --pairs "$L/pairsDevTest.txt" --images "$L/lfw-deepfunneled" --masked --json > "$OUT/$N-devtest_masked.json"
  $E identify --embedder "$N" --manifest "$R/manifest.csv" --images "$R" --distractors "$L/lfw-deepfunneled" --distractor-count 1000 --json > "$OUT/$N-rmfrd_lfw1000.json"
  $E identify --embedder "$N" --manifest "$R/manifest.csv" --images "$R" --json > "$OUT/$N-rmfrd.json"
done
echo "$OUT"
