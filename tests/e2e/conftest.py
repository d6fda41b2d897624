"""End-to-end tests drive the embedded local stack: real handlers, real ASL in moto, the simulator."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata
from pixelbridge_local.sample_build import ue_like_targz
from pixelbridge_local.stack import EmbeddedStack, StackOptions

ARTIFACT = ue_like_targz(pak_bytes=8192)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def make_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    started: list[EmbeddedStack] = []

    def start(**options: Any) -> EmbeddedStack:
        stack = EmbeddedStack(StackOptions(**options)).start()
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.stop()


def push(
    stack: EmbeddedStack, build_id: str, artifact: bytes = ARTIFACT, **metadata: Any
) -> requests.Response:
    body, content_type = encode_custom_deploy(sample_metadata(build_id, **metadata), artifact)
    return requests.post(
        stack.upload_url,
        data=body,
        timeout=30,
        headers={"Content-Type": content_type, "Authorization": stack.upload_authorization},
    )


def events_of(record: dict[str, Any]) -> list[str]:
    return [entry["event"] for entry in record["timeline"]]


def write_call_gaps(stack: EmbeddedStack, user_id: str) -> list[float]:
    """Seconds between consecutive accepted-or-refused write calls Streampixel saw for one user."""
    times = [
        call.monotonic
        for call in stack.simulator.calls
        if call.user_id == user_id and call.endpoint in {"upload-file", "distribute-file"}
    ]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def wait_until(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def rolled_back(stack: EmbeddedStack, build_id: str, timeout: float) -> dict[str, Any]:
    """The record once a rollback to ``build_id`` went live again and left no redistribution behind."""
    record: dict[str, Any] = wait_until(
        lambda: (
            (r := stack.build(build_id))
            and "rollback live" in events_of(r)
            and "redistribution" not in r
            and r
        ),
        timeout=timeout,
    )
    return record


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The IAM usage table of every stack this run started (bench/out/iam-usage.md)."""
    from pixelbridge_local import iam_report

    iam_report.write()
