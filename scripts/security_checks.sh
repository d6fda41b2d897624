#!/usr/bin/env bash
# Security checks (run by `make test`, after template-check):
#   1. checkov on template.yaml and on its nested stack operations.yaml: every finding must be fixed
#      or accepted with its reason, in .checkov.yaml (a check accepted for every resource) or inline
#      (`Metadata: checkov: skip:`, a finding accepted for one resource). A broken copy of each
#      template (an unencrypted SNS topic) must still fail: the accepted list hides nothing else.
#   2. checkov's IAM checks on the SAM-transformed template, i.e. on the roles and policies SAM
#      generates (DynamoDBCrudPolicy, SecretsManager policy templates, Function URL permissions),
#      and on operations.yaml (ChatDeliveryRole): no "*" actions, no credentials exposure / data
#      exfiltration / privilege escalation, no unconstrained permissions or write access.
#      Needs .venv-sam (created by scripts/check_template.sh).
#
# checkov's pins conflict with the dev venv (and with SAM CLI), so it lives in its own venv
# (.venv-checkov), created on demand. Runs offline (--skip-download).
# Env: PYTHON (interpreter for the venv, default python3), CHECKOV_VENV (default .venv-checkov),
#      SAM_VENV (default .venv-sam), CHECKOV_VERSION (default 3.3.30).
set -euo pipefail

cd "$(dirname "$0")/.."
TEMPLATE=template.yaml
NESTED=operations.yaml
CHECKOV_VENV=${CHECKOV_VENV:-.venv-checkov}
SAM_VENV=${SAM_VENV:-.venv-sam}
PYTHON=${PYTHON:-python3}
CHECKOV_VERSION=${CHECKOV_VERSION:-3.3.30}
IAM_CHECKS=CKV_AWS_60,CKV_AWS_61,CKV_AWS_62,CKV_AWS_63,CKV_AWS_107,CKV_AWS_108,CKV_AWS_109,CKV_AWS_110,CKV_AWS_111,CKV_AWS_286,CKV_AWS_287,CKV_AWS_288,CKV_AWS_289,CKV_AWS_290,CKV_AWS_355

step() { printf '\n==> %s\n' "$*"; }

if [[ ! -x "$CHECKOV_VENV/bin/checkov" ]]; then
  step "creating $CHECKOV_VENV with checkov $CHECKOV_VERSION (first run only; takes a minute)"
  log=$(mktemp)
  if ! { "$PYTHON" -m venv "$CHECKOV_VENV" \
        && "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "failed to install checkov into $CHECKOV_VENV" >&2
    exit 1
  fi
  rm -f "$log"
fi
checkov() { "$CHECKOV_VENV/bin/checkov" --skip-download --quiet --compact "$@"; }

for template in "$TEMPLATE" "$NESTED"; do
  step "checkov $template (accepted findings: .checkov.yaml and inline, each with a reason)"
  checkov --config-file .checkov.yaml --framework cloudformation -f "$template"
  echo "OK"
done

out_dir=$(mktemp -d)
trap 'rm -rf "$out_dir"' EXIT
for template in "$TEMPLATE" "$NESTED"; do
  step "checkov still fails on a finding nobody accepted (a broken copy of $template)"
  broken="$out_dir/broken-$template"
  sed 's/^Resources:$/Resources:\n  UnreviewedTopic:\n    Type: AWS::SNS::Topic/' "$template" >"$broken"
  grep -q UnreviewedTopic "$broken"
  if checkov --config-file .checkov.yaml --framework cloudformation -f "$broken" >"$broken.log" 2>&1; then
    cat "$broken.log" >&2
    echo "checkov passed a template with an unencrypted SNS topic: the accepted findings hide too much" >&2
    exit 1
  fi
  grep -q "CKV_AWS_26" "$broken.log"
  echo "OK (CKV_AWS_26 found)"
done

if [[ ! -x "$SAM_VENV/bin/python" ]]; then
  echo "$SAM_VENV missing: run scripts/check_template.sh first (it creates it)" >&2
  exit 1
fi
step "checkov IAM checks on the SAM-transformed template (generated roles and policies) and $NESTED"
transformed="$out_dir/template.transformed.json"
AWS_DEFAULT_REGION=us-east-1 "$SAM_VENV/bin/python" scripts/sam_transform.py "$TEMPLATE" "$transformed"
checkov --framework cloudformation -f "$transformed" -f "$NESTED" --check "$IAM_CHECKS"
echo "OK"

step "security checks passed"
