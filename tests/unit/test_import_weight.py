"""Cold start: importing a Lambda handler loads none of the heavy modules and builds no AWS client.

Deterministic stand-in for bench/cold_start.py's timings: each handler is imported in a fresh interpreter
and the heavy modules present afterwards are listed. pydantic (settings, event models, Powertools'
parser, OpenAPI validation), requests and the converter load with the first event that needs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pixelbridge.settings import FUNCTION_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
HANDLER_MODULES = sorted(handler.rsplit(".", 1)[0] for handler in FUNCTION_SETTINGS)
VALIDATION = "aws_lambda_powertools.event_handler.middlewares.openapi_validation"
HEAVY = (
    "pydantic",
    "requests",
    "requests_toolbelt",
    "isal",
    "pixelbridge.convert",
    "pixelbridge.settings",
    "aws_lambda_powertools.utilities.parser",
    VALIDATION,
)
# Records every boto3 client/resource built, runs the statements given on the command line, then
# prints, as JSON, the heavy modules loaded and the AWS clients built.
PROBE = f"""
import json, sys
import boto3.session

built = []
for method in ("client", "resource"):
    real = getattr(boto3.session.Session, method)
    def record(self, *args, _real=real, **kwargs):
        built.append(args[0] if args else kwargs.get("service_name"))
        return _real(self, *args, **kwargs)
    setattr(boto3.session.Session, method, record)
for statement in sys.argv[1:]:
    exec(statement)
heavy = sorted(name for name in {HEAVY!r} if name in sys.modules)
print(json.dumps({{"heavy": heavy, "clients": built}}))
"""


def loaded_after(*statements: str) -> dict[str, list[str]]:
    environment = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": os.pathsep.join([str(FUNCTIONS), str(ROOT)]),
    }
    child = subprocess.run(
        [sys.executable, "-c", PROBE, *statements],
        cwd=FUNCTIONS,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    result: dict[str, list[str]] = json.loads(child.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_a_handler_import_loads_no_heavy_module_and_builds_no_client(module: str) -> None:
    assert loaded_after(f"import {module}") == {"heavy": [], "clients": []}


def test_every_lambda_handler_is_checked() -> None:
    assert len(HANDLER_MODULES) == 7


def test_the_probe_sees_what_the_operator_api_loads_when_it_is_built() -> None:
    """The operator API's validation is built on its first request: then pydantic and OpenAPI load."""
    loaded = loaded_after("import pixelbridge.handlers.ingest as ingest", "ingest.operator_api.app()")
    assert loaded["heavy"] == [VALIDATION, "pydantic"]


INGEST_REQUEST = [
    "from pixelbridge_local.gateway import FakeLambdaContext, function_url_event",
    "import pixelbridge.handlers.ingest as ingest",
    "answer = ingest.handler(function_url_event('GET', PATH), FakeLambdaContext('IngestFunction'))",
]


def test_ingest_serves_the_status_page_without_building_the_operator_api() -> None:
    """Push, BuildPixel's webhook and the status page never pay for the operator API's validation."""
    loaded = loaded_after(
        "PATH = '/status'",
        *INGEST_REQUEST,
        "assert answer['statusCode'] == 200, answer",
        "assert ingest.operator_api.app.cache_info().currsize == 0",
    )
    assert VALIDATION not in loaded["heavy"]


def test_ingest_passes_a_request_it_has_no_route_for_to_the_operator_api() -> None:
    loaded = loaded_after(
        "PATH = '/no/such/endpoint'",
        *INGEST_REQUEST,
        "import json",
        "assert (answer['statusCode'], json.loads(answer['body'])['error']) == (404, 'not_found'), answer",
    )
    assert VALIDATION in loaded["heavy"]


def test_the_probe_sees_a_client_built() -> None:
    assert loaded_after("import boto3", "boto3.client('s3')")["clients"] == ["s3"]
