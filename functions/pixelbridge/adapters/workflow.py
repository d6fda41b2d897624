"""Step Functions: start the release of a build, and resume or fail the task a build waits in."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import boto3
from botocore.exceptions import ClientError

from pixelbridge.domain.errors import Conflict

# Step Functions: execution names are 1-80 characters; input and state are at most 256 KB.
MAX_EXECUTION_NAME = 80
MAX_EXECUTION_INPUT_BYTES = 256 * 1024
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_NAME_DIGEST = 16


class ExecutionNameConflict(Conflict):
    """An execution with this name exists for a different intent (another input): answered 409."""

    def __init__(self, detail: str) -> None:
        super().__init__("conflict", f"a different release of this build was already started ({detail})")


class ExecutionInputTooLarge(ValueError):
    """The execution input exceeds Step Functions' 256 KB."""


def bounded_execution_name(intent: str) -> str:
    """A valid execution name for ``intent``, unique per intent.

    Characters outside [A-Za-z0-9_-] become "-"; a name that is still too long keeps its start
    (readable in the console) and ends with a digest of the whole intent, so two long intents that
    share a prefix never collide (cutting at 80 characters made them collide).
    """
    name = _NAME_UNSAFE.sub("-", intent) or "-"
    if len(name) <= MAX_EXECUTION_NAME and name == intent:
        return name
    digest = hashlib.sha256(intent.encode("utf-8")).hexdigest()[:_NAME_DIGEST]
    return f"{name[: MAX_EXECUTION_NAME - _NAME_DIGEST - 1]}-{digest}"


# A task token that was already answered, timed out or belongs to a finished execution.
_STALE_TOKEN_ERRORS = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


class Workflow:
    def __init__(self, state_machine_arn: str, *, sfn: Any = None) -> None:
        if not state_machine_arn:  # never a silently skipped release
            raise ValueError("a workflow needs the state machine ARN (STATE_MACHINE_ARN)")
        self.state_machine_arn = state_machine_arn
        self._sfn = sfn or boto3.client("stepfunctions")

    @property
    def configured(self) -> bool:
        return bool(self.state_machine_arn)

    def start(self, execution_name: str, payload: dict[str, Any]) -> bool:
        """Start an execution; False when this very execution (same name, same input) already exists.

        The same name with a different input is a different intent that cannot start: it raises
        ExecutionNameConflict rather than pretending the release is under way.
        """
        name = bounded_execution_name(execution_name)
        document = json.dumps(payload)
        size = len(document.encode("utf-8"))
        if size > MAX_EXECUTION_INPUT_BYTES:
            raise ExecutionInputTooLarge(
                f"execution input is {size} bytes; Step Functions allows {MAX_EXECUTION_INPUT_BYTES}"
            )
        try:
            self._sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=document)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
            existing = self._sfn.describe_execution(executionArn=self._execution_arn(name))
            if json.loads(existing.get("input") or "null") != payload:
                raise ExecutionNameConflict(
                    f"execution {name} already exists with a different input"
                ) from error
            return False
        return True

    def _execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def execution(self, execution_name: str) -> dict[str, str] | None:
        """``{"status", "error", "cause"}`` of the execution with this name; None if there is none."""
        try:
            described = self._sfn.describe_execution(
                executionArn=self._execution_arn(bounded_execution_name(execution_name))
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise
        return {key: str(described.get(key) or "") for key in ("status", "error", "cause")}

    def resume(self, token: str, output: dict[str, Any]) -> bool:
        """Complete a waiting task; False when the token is no longer waiting."""
        return self._answer(lambda: self._sfn.send_task_success(taskToken=token, output=json.dumps(output)))

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._answer(
            lambda: self._sfn.send_task_failure(taskToken=token, error=error[:256], cause=cause[:32_000])
        )

    @staticmethod
    def _answer(call: Any) -> bool:
        try:
            call()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _STALE_TOKEN_ERRORS:
                return False
            raise
        return True
