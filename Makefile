# PixelBridge — every target bootstraps its own virtualenv (.venv) from requirements-dev.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo test lint types template-check security unit e2e figures bench bench-converter bench-cold-start build clean events

help:
	@echo "make demo        run the whole pipeline locally (no AWS account): push build -> live"
	@echo "make test        lint, types, template checks and the test suite (what CI runs)"
	@echo "make bench       shaped Lambda<->S3 benchmark: time to published zip (SIZE_MB=512 by default)"
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

test: lint types template-check security unit

lint: $(STAMP)
	$(BIN)/ruff check functions local tests bench scripts pixelbridge_cli
	$(BIN)/ruff format --check functions local tests bench scripts pixelbridge_cli

types: $(STAMP)
	$(BIN)/mypy

template-check: $(STAMP)
	scripts/check_template.sh

security: $(STAMP) template-check
	scripts/security_checks.sh

unit: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

# Fault-injection, load and burst figures (printed; the suite asserts them too).
figures: $(STAMP)
	$(BIN)/python -m pytest -s -q -p no:randomly tests/hardening/test_faults_and_load.py \
		tests/e2e/test_release.py::test_burst_for_one_user_all_go_live_with_zero_429

# Shaped Lambda<->S3 links: time to published zip, converter vs gunzip, largest build in 15 min.
# SIZE_MB=2048 for the 2 GB figures (slow on a small machine). Converter variants: make bench-converter.
bench: $(STAMP)
	$(BIN)/python bench/io_bench.py --size-mb $(or $(SIZE_MB),512) --repeat $(or $(REPEAT),1)

bench-converter: $(STAMP)
	$(BIN)/python bench/convert_bench.py --size-mb $(or $(SIZE_MB),1024) --repeat $(or $(REPEAT),1)

# Handler import cost on Python 3.13 vs import boto3 alone, and the per-function package size.
bench-cold-start: $(STAMP)
	$(BIN)/python bench/cold_start.py

events: $(STAMP)
	$(BIN)/python scripts/make_events.py

build:
	PYENV_VERSION=3.13.0:3.12.1:3.11.7 sam build

clean:
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam .pytest_cache .mypy_cache .ruff_cache
