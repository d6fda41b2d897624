"""Starts ConvertFunction asynchronously for an operator retry (re-convert an inbox artifact)."""

from __future__ import annotations

import json
from typing import Any

import boto3

RETRY_SOURCE = "pixelbridge.operator-retry"  # handlers.convert recognises this event


class ConvertNotStarted(RuntimeError):
    """Lambda did not accept the asynchronous invocation (or no ConvertFunction is configured)."""


class LambdaConvertStarter:
    """Conversion can take up to 15 minutes and 10 GB of memory: it never runs in the API call."""

    def __init__(self, function_name: str, *, lambda_client: Any = None) -> None:
        self._function_name = function_name
        self._lambda = lambda_client

    def start(self, build_id: str, key: str, retry: int) -> None:
        if not self._function_name:
            raise ConvertNotStarted("CONVERT_FUNCTION_NAME is not configured")
        if self._lambda is None:
            self._lambda = boto3.client("lambda")
        payload = {"source": RETRY_SOURCE, "buildId": build_id, "key": key, "retry": retry}
        answer = self._lambda.invoke(
            FunctionName=self._function_name, InvocationType="Event", Payload=json.dumps(payload).encode()
        )
        if int(answer.get("StatusCode", 0)) != 202:
            raise ConvertNotStarted(f"Lambda answered {answer.get('StatusCode')} to the async invoke")
