"""Traces never hold a response: Powertools' Tracer (it captures responses by default) is not shipped."""

from __future__ import annotations

import re
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
TRACER_IMPORT = re.compile(r"aws_lambda_powertools(\.tracing|\s+import\s+.*\bTracer\b)|aws_xray_sdk")


def test_no_function_module_imports_a_tracer() -> None:
    offenders = [
        str(path.relative_to(FUNCTIONS))
        for path in FUNCTIONS.rglob("*.py")
        if TRACER_IMPORT.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_xray_sdk_is_not_packaged() -> None:
    requirements = (FUNCTIONS / "requirements.txt").read_text(encoding="utf-8").lower()
    assert "xray" not in requirements and "[tracer]" not in requirements and "[all]" not in requirements
    assert TRACER_IMPORT.search("from aws_lambda_powertools import Logger, Tracer")  # the pattern bites
