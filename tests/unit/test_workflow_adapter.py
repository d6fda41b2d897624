"""The workflow adapter: bounded unique execution names, collisions that are never swallowed, 256 KB input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pixelbridge.adapters.workflow import (
    MAX_EXECUTION_INPUT_BYTES,
    ExecutionInputTooLarge,
    ExecutionNameConflict,
    Workflow,
    bounded_execution_name,
)

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:release"


class FakeStepFunctions:
    """Keeps executions by name and answers like Step Functions: a reused name is ExecutionAlreadyExists."""

    def __init__(self) -> None:
        self.executions: dict[str, str] = {}

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
        assert stateMachineArn == ARN
        if name in self.executions:
            error = {"Error": {"Code": "ExecutionAlreadyExists", "Message": name}}
            raise ClientError(error, "StartExecution")  # type: ignore[arg-type]
        self.executions[name] = input
        return {"executionArn": f"{ARN}:{name}"}

    def describe_execution(self, *, executionArn: str) -> dict[str, Any]:
        name = executionArn.rsplit(":", 1)[1]
        assert executionArn == ARN.replace(":stateMachine:", ":execution:") + f":{name}"
        return {"status": "RUNNING", "input": self.executions[name]}


def test_names_are_bounded_valid_and_unique_per_intent() -> None:
    build_id = "b" * 70
    first, second = (bounded_execution_name(f"{build_id}-neverdark-2026112921{n}") for n in (1, 2))
    assert len(first) == len(second) == 80
    assert first != second  # cutting at 80 characters made these two the same name
    assert bounded_execution_name("build-1-retry-2") == "build-1-retry-2"  # short valid names unchanged
    odd = bounded_execution_name("build 1/retry:2")
    assert len(odd) <= 80 and all(ch.isalnum() or ch in "-_" for ch in odd)
    assert odd != bounded_execution_name("build-1-retry-2")


def test_same_name_same_input_is_idempotent() -> None:
    sfn = FakeStepFunctions()
    workflow = Workflow(ARN, sfn=sfn)
    assert workflow.start("build-1", {"buildId": "build-1", "stage": "upload"}) is True
    assert workflow.start("build-1", {"buildId": "build-1", "stage": "upload"}) is False
    assert len(sfn.executions) == 1


def test_same_name_different_input_is_an_error_the_caller_sees() -> None:
    sfn = FakeStepFunctions()
    workflow = Workflow(ARN, sfn=sfn)
    workflow.start("build-1-release-1", {"buildId": "build-1", "stage": "upload"})
    with pytest.raises(ExecutionNameConflict, match="build-1-release-1"):
        workflow.start("build-1-release-1", {"buildId": "build-1", "stage": "distribute"})


def test_long_names_are_looked_up_under_the_name_they_started_with() -> None:
    sfn = FakeStepFunctions()
    workflow = Workflow(ARN, sfn=sfn)
    intent = "x" * 100
    workflow.start(intent, {"buildId": "x"})
    assert list(sfn.executions) == [bounded_execution_name(intent)]
    assert workflow.execution(intent) == {"status": "RUNNING", "error": "", "cause": ""}


def test_input_over_256_kb_is_refused_before_calling_step_functions() -> None:
    sfn = FakeStepFunctions()
    workflow = Workflow(ARN, sfn=sfn)
    payload = {"buildId": "b", "blob": "x" * MAX_EXECUTION_INPUT_BYTES}
    with pytest.raises(ExecutionInputTooLarge, match="Step Functions allows 262144"):
        workflow.start("b", payload)
    assert sfn.executions == {}
    fits = {"buildId": "b", "blob": "x" * (MAX_EXECUTION_INPUT_BYTES - 100)}
    assert len(json.dumps(fits)) <= MAX_EXECUTION_INPUT_BYTES
    assert workflow.start("b", fits) is True


def test_an_empty_state_machine_arn_is_refused_not_a_skipped_release() -> None:
    with pytest.raises(ValueError, match="STATE_MACHINE_ARN"):
        Workflow("", sfn=FakeStepFunctions())
