#!/usr/bin/env bash
# Install, then run the test suite. Tests needing ../shared/data (or $FACEREC_DATA) skip without it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
exec .venv/bin/python -m pytest -q "$@"
