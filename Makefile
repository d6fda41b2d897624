# PixelBridge — every target bootstraps its own virtualenv (.venv) from requirements-dev.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo test lint types template-check security unit integration e2e suite py313 figures bench build clean events

help:
	@echo "make demo        run the whole pipeline locally (no AWS account): push build -> live"
	@echo "make test        lint, types, template checks, security and every test (what CI runs)"
	@echo "make unit        the unit tier: pure code and in-memory fakes, no network, no slow cases (< 1 min)"
	@echo "make integration handlers and adapters against moto and loopback servers"
	@echo "make e2e         the whole local stack (slow)"
	@echo "make py313       the unit tier and mypy under Python 3.13 (the Lambda runtime)"
	@echo "make bench       converter benchmark (SIZE_MB=1024 by default)"
	@echo "make build       sam build (needs python3.13 on PATH, no Docker)"

$(STAMP): requirements-dev.txt functions/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# With no ARGS: a small build pushed exactly as BuildPixel does, then a build larger than the push
# limit announced by BuildPixel's signed webhook and pulled. With ARGS: one run, e.g. ARGS=my.tar.gz
demo: $(STAMP)
ifeq ($(strip $(ARGS)),)
	$(BIN)/python -W ignore -m local.demo
	$(BIN)/python -W ignore -m local.demo --pull
else
	$(BIN)/python -W ignore -m local.demo $(ARGS)
endif

test: lint types template-check security suite

lint: $(STAMP)
	$(BIN)/ruff check functions local tests bench scripts pixelbridge_cli
	$(BIN)/ruff format --check functions local tests bench scripts pixelbridge_cli

types: $(STAMP)
	$(BIN)/mypy

template-check: $(STAMP)
	scripts/check_template.sh

security: $(STAMP) template-check
	scripts/security_checks.sh

# Test tiers. unit: tests/unit only (its conftest refuses sockets), without the `slow` cases.
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -m "not slow" -n auto $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration -n auto --dist loadfile $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e -n auto --dist loadfile $(PYTEST_ARGS)

# Every test: unit (slow cases included), integration, hardening and e2e.
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

py313: $(VENV313)/.installed
	$(VENV313)/bin/python -m pytest tests/unit -m "not slow" -n auto -p no:cacheprovider $(PYTEST_ARGS)
	$(VENV313)/bin/mypy --python-version 3.13 --cache-dir .mypy_cache/py313

# Fault-injection, load and burst figures (printed; the suite asserts them too).
figures: $(STAMP)
	$(BIN)/python -m pytest -s -q -p no:randomly tests/hardening/test_faults_and_load.py \
		tests/e2e/test_release.py::test_burst_for_one_user_all_go_live_with_zero_429

bench: $(STAMP)
	$(BIN)/python bench/convert_bench.py --size-mb $(or $(SIZE_MB),1024) --repeat $(or $(REPEAT),1)

events: $(STAMP)
	$(BIN)/python scripts/make_events.py

build:
	PYENV_VERSION=3.13.0:3.12.1:3.11.7 sam build

clean:
	rm -rf $(VENV) $(VENV313) .venv-sam .venv-checkov .aws-sam .pytest_cache .mypy_cache .ruff_cache
