"""A short, deterministic schemathesis run against /openapi.json on the local gateway: no 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok

from pixelbridge_local.stack import EmbeddedStack, StackOptions
from tests.e2e.conftest import push

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(StackOptions(slot_seconds=1)) as running:
        push(running, "fuzz-1")
        running.wait_for_terminal("fuzz-1", timeout=40)
        yield running


def test_no_operation_answers_5xx(stack: EmbeddedStack) -> None:
    document = requests.get(f"{stack.operator_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results  # every operation loads
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 8
    headers = {"Authorization": stack.operator_authorization}
    tried: list[str] = []

    for operation in operations:

        @settings(
            max_examples=20,
            derandomize=True,  # the same examples every run
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), authenticated=st.booleans())
        def no_server_error(case: schemathesis.Case[Any], authenticated: bool) -> None:
            response = case.call(base_url=stack.operator_url, headers=headers if authenticated else {})
            tried.append(f"{case.method} {case.formatted_path} {response.status_code}")
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"
            assert stack.operator_token not in response.text

        no_server_error()
    assert len(tried) >= len(operations)
