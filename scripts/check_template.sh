#!/usr/bin/env bash
# Template checks (run by `make test`):
#   1. cfn-lint template.yaml operations.yaml     (dev venv; the SAM template against SAM schemas, and
#      the nested stack's plain CloudFormation; E3043 checks the parameters template.yaml passes it)
#   2. sam validate --lint --region us-east-1      (SAM CLI from .venv-sam)
#   3. SAM transform (aws-sam-translator) + cfn-lint on the transformed CloudFormation JSON.
#      Step 3 is the only one that sees the real resource graph, e.g. E3004 circular dependencies
#      (an S3 event + a policy on the same bucket), generated roles/permissions, Function URLs.
#   4. scripts/deploy_readiness.py: limits and IAM that CloudFormation/the services enforce at deploy time,
#      on template.yaml and its nested stack(s).
#   5. routes files: routes.example.json and, when present, functions/routes.json.
#
# SAM CLI pins conflict with moto, so it lives in its own venv (.venv-sam), created on demand.
# Env: PYTHON (interpreter for .venv-sam, default python3), SAM_VENV (default .venv-sam),
#      CFN_LINT (default .venv/bin/cfn-lint, else cfn-lint on PATH).
set -euo pipefail

cd "$(dirname "$0")/.."
TEMPLATE=template.yaml
NESTED=operations.yaml # nested stack (Operations), uploaded by sam build / sam package
DEV_PYTHON=${DEV_PYTHON:-.venv/bin/python}
SAM_VENV=${SAM_VENV:-.venv-sam}
PYTHON=${PYTHON:-python3}

if [[ -z "${CFN_LINT:-}" ]]; then
  if [[ -x .venv/bin/cfn-lint ]]; then CFN_LINT=.venv/bin/cfn-lint; else CFN_LINT=cfn-lint; fi
fi

step() { printf '\n==> %s\n' "$*"; }

step "cfn-lint $TEMPLATE $NESTED"
"$CFN_LINT" "$TEMPLATE" "$NESTED"
echo "OK"

# scripts/sam.sh creates $SAM_VENV on first use (the same SAM CLI `make build` uses).
SAM_VENV="$SAM_VENV" PYTHON="$PYTHON" scripts/sam.sh --version

step "sam validate --lint"
# SAM_CLI_TELEMETRY=0: no usage metrics from CI / dev machines.
SAM_CLI_TELEMETRY=0 "$SAM_VENV/bin/sam" validate --lint --region us-east-1 --template-file "$TEMPLATE"

step "SAM transform + cfn-lint on the transformed template (circular dependencies, E3004)"
out_dir=$(mktemp -d)
trap 'rm -rf "$out_dir"' EXIT
transformed="$out_dir/template.transformed.json"
AWS_DEFAULT_REGION=us-east-1 "$SAM_VENV/bin/python" scripts/sam_transform.py "$TEMPLATE" "$transformed"
# Next to the transformed template, so E3043 checks what it passes the nested stack. W3002 (a local
# TemplateURL needs `sam package`) is by design: sam build / sam package upload it.
cp "$NESTED" "$out_dir/"
"$CFN_LINT" --ignore-checks W3002 -- "$transformed"
echo "OK"

step "deploy readiness (what CloudFormation and the services would refuse that cfn-lint does not see)"
"$DEV_PYTHON" scripts/deploy_readiness.py "$TEMPLATE"

step "routes files (shipped in the function package: functions/routes.json)"
for routes in routes.example.json functions/routes.json; do
  if [[ -f "$routes" ]]; then
    (cd functions && "../$DEV_PYTHON" -m pixelbridge.domain.routes check "../$routes")
  fi
done

step "template checks passed"
