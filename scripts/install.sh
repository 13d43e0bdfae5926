#!/usr/bin/env bash
# Create .venv (if missing) and install the pinned stack + facerec in editable mode.
# `install.sh --dev` adds what training, the dlib peer and the tests need (requirements-dev.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
REQ=requirements.txt
[ "${1:-}" = "--dev" ] && REQ=requirements-dev.txt
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$REQ"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
