#!/usr/bin/env bash
# Runs the SAM CLI from its own virtualenv (.venv-sam), creating it on first use: SAM CLI's pins
# conflict with moto, so it cannot live in .venv. Usage: scripts/sam.sh build | deploy --guided | ...
# Env: PYTHON (interpreter for .venv-sam, default python3), SAM_VENV (default .venv-sam).
set -euo pipefail

cd "$(dirname "$0")/.."
SAM_VENV=${SAM_VENV:-.venv-sam}
PYTHON=${PYTHON:-python3}

if [[ ! -x "$SAM_VENV/bin/sam" ]]; then
  echo "==> installing the SAM CLI (aws-sam-cli) into $SAM_VENV (first run only; takes a minute)" >&2
  log=$(mktemp)
  if ! { "$PYTHON" -m venv "$SAM_VENV" \
        && "$SAM_VENV/bin/pip" install --quiet --disable-pip-version-check aws-sam-cli; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "failed to install aws-sam-cli into $SAM_VENV (see above)" >&2
    exit 1
  fi
  rm -f "$log"
fi
exec "$SAM_VENV/bin/sam" "$@"
