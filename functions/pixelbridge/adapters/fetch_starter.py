"""Starts FetchFunction asynchronously (``InvocationType=Event``): the webhook answer does not wait."""

from __future__ import annotations

import json
from typing import Any

import boto3


class FetchNotStarted(RuntimeError):
    """Lambda did not accept the asynchronous invocation (or no FetchFunction is configured)."""


class LambdaFetchStarter:
    """The real ``ArtifactFetchStarter``: one async invoke of FetchFunction per build.

    The payload is ``{"buildId"}`` only: a failed async invocation lands in the dead-letter queue (kept
    14 days), so no bearer URL may travel in it; FetchFunction asks the download API for one. The
    Lambda client is created on the first start, so rejected webhooks never pay for it.
    """

    def __init__(self, function_name: str, *, lambda_client: Any = None) -> None:
        self._function_name = function_name
        self._lambda = lambda_client

    def start(self, build_id: str) -> None:
        if not self._function_name:
            raise FetchNotStarted("FETCH_FUNCTION_NAME is not configured")
        if self._lambda is None:
            self._lambda = boto3.client("lambda")
        payload = json.dumps({"buildId": build_id}).encode("utf-8")
        answer = self._lambda.invoke(
            FunctionName=self._function_name, InvocationType="Event", Payload=payload
        )
        if int(answer.get("StatusCode", 0)) != 202:
            raise FetchNotStarted(f"Lambda answered {answer.get('StatusCode')} to the async invoke")
