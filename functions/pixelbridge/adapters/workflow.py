"""Step Functions: start the release of a build, and resume or fail the task a build waits in."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import ClientError

# A task token that was already answered, timed out or belongs to a finished execution.
_STALE_TOKEN_ERRORS = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


class Workflow:
    def __init__(self, state_machine_arn: str, *, sfn: Any = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._sfn = sfn or boto3.client("stepfunctions")

    @property
    def configured(self) -> bool:
        return bool(self.state_machine_arn)

    def start(self, execution_name: str, payload: dict[str, Any]) -> bool:
        """Start an execution; False when one with this name exists (a duplicate start is a no-op)."""
        try:
            self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=execution_name, input=json.dumps(payload)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise
        return True

    def execution(self, execution_name: str) -> dict[str, str] | None:
        """``{"status", "error", "cause"}`` of the execution with this name; None if there is none."""
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{execution_name}"
        try:
            described = self._sfn.describe_execution(executionArn=arn)
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
