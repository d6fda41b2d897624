# PixelBridge — every target bootstraps its own virtualenv (.venv) from requirements-dev.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo serve test lint types template-check security unit integration e2e suite py313 figures bench bench-converter bench-cold-start bench-inflate build clean events

## this list of targets
help:
	@echo "PixelBridge make targets (each bootstraps .venv from requirements-dev.txt when needed):"
	@awk '/^## /{desc=substr($$0,4); next} /^#/{next} /^[a-z][a-z0-9-]*:/{sub(/:.*/,""); printf "  make %-15s %s\n", $$0, desc} {desc=""}' $(MAKEFILE_LIST)

$(STAMP): requirements-dev.txt functions/requirements.txt pixelbridge_cli/requirements.txt pyproject.toml
	@echo "==> installing requirements-dev.txt and this project into $(VENV) (first run: a few minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# every package as it is collected, and pip's own exit status (sh has no pipefail)
	{ $(BIN)/python -m pip install --progress-bar off -r requirements-dev.txt 2>&1; echo $$? > $(VENV)/.pip-status; } \
		| grep --line-buffered -E '^(Collecting|Successfully|ERROR)'; exit $$(cat $(VENV)/.pip-status)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@echo "==> $(VENV) is ready"
	touch $(STAMP)

## create .venv (requirements-dev.txt + this project, editable)
venv: $(STAMP)

## the whole pipeline locally, no AWS (ARGS="my.tar.gz --policy hold --serve", ARGS=--pull)
# With no ARGS: a small build pushed exactly as BuildPixel does, then a build larger than the push
# limit announced by BuildPixel's signed webhook and pulled. With ARGS: one run, e.g. ARGS=my.tar.gz
demo: $(STAMP)
ifeq ($(strip $(ARGS)),)
	$(BIN)/python -W ignore -m pixelbridge_local.demo
	$(BIN)/python -W ignore -m pixelbridge_local.demo --pull
else
	$(BIN)/python -W ignore -m pixelbridge_local.demo $(ARGS)
endif

## keep the local stack running: status page, operator API, upload URL (ARGS="--policy hold")
serve: $(STAMP)
	$(BIN)/python -W ignore -m pixelbridge_local.serve $(ARGS)

## lint, types, template checks, security checks and the test suite (what CI runs)
test: lint types template-check security suite

## ruff check and ruff format --check
lint: $(STAMP)
	$(BIN)/ruff check functions pixelbridge_local tests bench scripts pixelbridge_cli
	$(BIN)/ruff format --check functions pixelbridge_local tests bench scripts pixelbridge_cli

## mypy
types: $(STAMP)
	$(BIN)/mypy

## cfn-lint, sam validate and cfn-lint on the SAM-transformed template
template-check: $(STAMP)
	scripts/check_template.sh

## checkov on the template
security: $(STAMP) template-check
	scripts/security_checks.sh

## the unit tier: pure code and in-memory fakes, no sockets, no slow cases (< 1 min)
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -m "not slow" -n auto $(PYTEST_ARGS)

## handlers and adapters against moto and loopback servers
integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration -n auto --dist loadfile $(PYTEST_ARGS)

## only the end-to-end tests (local stack)
e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e -n auto --dist loadfile $(PYTEST_ARGS)

## every test: unit (slow cases included), integration, hardening and e2e
suite: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

# Lambda runs Python 3.13 while the dev venv is 3.11: the unit tier and mypy once more under 3.13.
VENV313 := .venv-313
$(VENV313)/.installed: requirements-dev.txt functions/requirements.txt pyproject.toml
	test -x $(VENV313)/bin/python || PYENV_VERSION=3.13.0:3.12.1:3.11.7 python3.13 -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install --quiet --upgrade pip
	$(VENV313)/bin/python -m pip install --quiet -r requirements-dev.txt
	$(VENV313)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

## the unit tier and mypy under Python 3.13 (the Lambda runtime)
py313: $(VENV313)/.installed
	$(VENV313)/bin/python -m pytest tests/unit -m "not slow" -n auto -p no:cacheprovider $(PYTEST_ARGS)
	$(VENV313)/bin/mypy --python-version 3.13 --cache-dir .mypy_cache/py313

## fault-injection, load and burst figures (printed; the suite asserts them too)
figures: $(STAMP)
	$(BIN)/python -m pytest -s -q -p no:randomly tests/hardening/test_faults_and_load.py \
		tests/e2e/test_release.py::test_burst_for_one_user_all_go_live_with_zero_429

## shaped Lambda<->S3 benchmark: time to published zip, converter vs gunzip, largest build in 15 min (SIZE_MB=512; 2048 for 2 GB)
bench: $(STAMP)
	$(BIN)/python bench/io_bench.py --size-mb $(or $(SIZE_MB),512) --repeat $(or $(REPEAT),1)

## converter variants (SIZE_MB=1024, REPEAT=1)
bench-converter: $(STAMP)
	$(BIN)/python bench/convert_bench.py --size-mb $(or $(SIZE_MB),1024) --repeat $(or $(REPEAT),1)

## parallel inflate (rapidgzip, 1/2/all-core threads) vs the converter's single-core gunzip (SIZE_MB=512)
bench-inflate: $(STAMP)
	$(BIN)/python bench/inflate_bench.py --size-mb $(or $(SIZE_MB),512) --repeat $(or $(REPEAT),3)

## handler import cost on Python 3.13 vs import boto3 alone, and the package size (BASELINE=<git ref> to compare)
bench-cold-start: $(STAMP)
	$(BIN)/python bench/cold_start.py $(if $(BASELINE),--baseline-ref $(BASELINE))

## regenerate events/ (sample events for sam local invoke)
events: $(STAMP)
	$(BIN)/python scripts/make_events.py

## sam build with the SAM CLI from .venv-sam (installed on first use); deploy-readiness and routes checks first; needs python3.13, no Docker
build: $(STAMP)
	$(BIN)/python scripts/deploy_readiness.py
	test ! -f functions/routes.json || (cd functions && ../$(BIN)/python -m pixelbridge.domain.routes check routes.json)
	PYENV_VERSION=3.13.0:3.12.1:3.11.7 scripts/sam.sh build
	PYENV_VERSION=3.13.0:3.12.1:3.11.7 python3.13 scripts/ship_bytecode.py .aws-sam/build

## remove the virtualenvs and build/test caches
clean:
	rm -rf $(VENV) $(VENV313) .venv-sam .venv-checkov .aws-sam .pytest_cache .mypy_cache .ruff_cache
