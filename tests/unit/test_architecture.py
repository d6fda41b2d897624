"""The layering docs/ARCHITECTURE.md promises, checked on the source tree (scripts/module_map.py)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "pixelbridge"


def module_map() -> ModuleType:
    spec = importlib.util.spec_from_file_location("module_map", ROOT / "scripts" / "module_map.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["module_map"] = module
    spec.loader.exec_module(module)
    return module


def test_no_import_goes_against_the_layering(capsys: pytest.CaptureFixture[str]) -> None:
    assert module_map().main(["--root", str(ROOT)]) == 0, capsys.readouterr().out


def test_a_use_case_importing_an_adapter_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, text in {
        "__init__.py": "",
        "adapters/__init__.py": "",
        "adapters/s3.py": "import boto3\n",
        "usecases/__init__.py": "",
        "usecases/store.py": "def run() -> None:\n    from pixelbridge.adapters.s3 import boto3\n",
    }.items():
        path = tmp_path / "functions" / "pixelbridge" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert module_map().main(["--root", str(tmp_path)]) == 1
    assert "WRONG WAY: pixelbridge.usecases.store imports the adapters layer" in capsys.readouterr().out


# What an HTTP answer is made of. Streampixel's own answers (its 429, test-webhook results) are facts
# the use cases read, not statuses they answer with.
HTTP_STATUS = re.compile(r"\b(status_code|http_status|HTTPStatus|RequestRejected)\b|\bis [1-5][0-9][0-9]\b")


@pytest.mark.parametrize("layer", ["usecases", "domain"])
def test_use_cases_and_domain_never_name_our_http_statuses(layer: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((PACKAGE / layer).glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if HTTP_STATUS.search(line) and "answer.status_code" not in line  # Streampixel test-webhook result
    ]
    assert offenders == []


def test_every_handler_module_is_thin() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in (PACKAGE / "handlers").glob("*.py")}
    assert {name: size for name, size in sizes.items() if size > 60} == {}


NEVER_CONVERT = ["ingest", "streampixel_webhook", "release", "notifier", "reconciler"]


def test_functions_that_never_convert_do_not_load_the_converter() -> None:
    """Cold start: only ConvertFunction (and FetchFunction's S3 sink) pay for the converter's imports."""
    probe = (
        "import importlib, sys\n"
        f"for handler in {NEVER_CONVERT!r}:\n"
        "    importlib.import_module('pixelbridge.handlers.' + handler)\n"
        "    print(handler, sorted(name for name in sys.modules if name.startswith('pixelbridge.convert')))\n"
    )
    environment = {**os.environ, "BUILDS_TABLE": "builds", "ARTIFACT_BUCKET": "artifacts"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT / "functions", env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{handler} []" for handler in NEVER_CONVERT]
