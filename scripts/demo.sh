#!/usr/bin/env bash
# The main job: install, then run the whole challenge on the default data — build a celebrity
# gallery, enrol 10 declared newcomers (RMFRD's report half) from one unmasked photo each, match every
# one of their masked photos, print how many were right and accepted, and the contact sheet's path.
# Data: $FACEREC_DATA, else ../shared/data, else LFW is downloaded (checksummed) into ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
DATA=${FACEREC_DATA:-}
if [ -z "$DATA" ]; then
  if [ -d ../shared/data ]; then DATA=../shared/data; else bash scripts/fetch_lfw.sh data >/dev/null; DATA=data; fi
fi
exec .venv/bin/python scripts/challenge.py --data "$DATA" --out "${FACEREC_OUT:-out/challenge}" "$@"
