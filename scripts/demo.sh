#!/usr/bin/env bash
# The main job on the default data: install, then detect + align the default celebrity dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
DATA=${FACEREC_DATA:-../shared/data}
if [ ! -d "$DATA/five_celebrity" ]; then
  echo "demo: no data at $DATA (set FACEREC_DATA to a folder holding five_celebrity/)" >&2
  exit 1
fi
OUT=${FACEREC_OUT:-out}
.venv/bin/facerec-data prepare "$DATA/five_celebrity" --out "$OUT/cache/five_celebrity"
