"""Lambda's Invoke API in moto server, answered by the function sandboxes.

moto's Docker-less Lambda echoes the payload; this routes ``Invoke`` to the sandboxes instead, with
Lambda's contract: ``RequestResponse`` runs the function and answers its result, or ``FunctionError:
Unhandled`` with its error payload; ``Event`` queues an async invocation (202). Payloads over Lambda's
limits are refused before anything runs (``RequestEntityTooLargeException``, 413).

Callers: functions come through the authorizing proxy (their role was checked there). Step Functions
calls Lambda inside moto with its own fixed access key ("ak"): here that call is checked against the
state machine role's ``lambda:InvokeFunction``.

Step Functions names a failed task by the payload's ``errorType``; when the payload has none (Lambda's
timeout report), AWS names it ``Lambda.Unknown``, where moto says ``Exception``: patched to match.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from unittest import mock

from moto.core.exceptions import JsonRESTError

from pixelbridge_local.iam import _access_key
from pixelbridge_local.sandbox import Outcome

SYNC_PAYLOAD_LIMIT = 6_291_456  # bytes: RequestResponse invoke payload
ASYNC_PAYLOAD_LIMIT = 1_048_576  # bytes: Event invoke payload (256 KB until 2025)
STEP_FUNCTIONS_ACCESS_KEY = "ak"  # what moto's Step Functions interpreter signs its Lambda calls with
REGION_ACCOUNT = "us-east-1:123456789012"


class _AccessDenied(JsonRESTError):
    code = 403

    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


class _TooLarge(JsonRESTError):
    code = 413

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            "RequestEntityTooLargeException",
            f"{size} byte payload is too large for this invocation ({limit})",
        )


def route_lambda_invocations(
    invoke_sync: Callable[[str, Any], Outcome],
    invoke_async: Callable[[str, Any], None],
    state_machine_may_invoke: Callable[[str], bool],
) -> list[Any]:
    """Start the patches; returns them (the caller stops them)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda as sfn_lambda,
    )

    def invoke(
        backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        name = function_name.split(":function:")[-1].split(":")[0]
        arn = f"arn:aws:lambda:{REGION_ACCOUNT}:function:{name}"
        access_key, _ = _access_key(headers, "")
        if access_key == STEP_FUNCTIONS_ACCESS_KEY and not state_machine_may_invoke(arn):
            raise _AccessDenied(f"The state machine's role may not perform lambda:InvokeFunction on {arn}")
        raw = body if isinstance(body, bytes) else (body or "").encode("utf-8")
        event = json.loads(raw or b"{}")
        if headers.get("X-Amz-Invocation-Type") == "Event":
            if len(raw) > ASYNC_PAYLOAD_LIMIT:
                raise _TooLarge(len(raw), ASYNC_PAYLOAD_LIMIT)
            invoke_async(name, event)
            return b""
        if len(raw) > SYNC_PAYLOAD_LIMIT:
            raise _TooLarge(len(raw), SYNC_PAYLOAD_LIMIT)
        outcome = invoke_sync(name, event)
        if outcome.failed:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(outcome.error).encode()
        return json.dumps(outcome.result).encode()

    original_from_error = sfn_lambda.StateTaskServiceLambda._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        failure = original_from_error(self, env, ex)
        if isinstance(ex, sfn_lambda.lambda_eval_utils.LambdaFunctionErrorException):
            try:
                typed = "errorType" in json.loads(ex.payload)
            except ValueError:
                typed = False
            if not typed:
                cause = (
                    "The cause could not be determined because Lambda did not return an error type. "
                    f"Returned payload: {ex.payload}"
                )
                details: Any = sfn_lambda.EventDetails  # a TypedDict: one of its many optional keys
                return sfn_lambda.FailureEvent(
                    env=env,
                    error_name=sfn_lambda.CustomErrorName("Lambda.Unknown"),
                    event_type=sfn_lambda.HistoryEventType.TaskFailed,
                    event_details=details(
                        taskFailedEventDetails=sfn_lambda.TaskFailedEventDetails(
                            error="Lambda.Unknown",
                            cause=cause,
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                        )
                    ),
                )
        return failure

    patches: list[Any] = [
        mock.patch.object(LambdaSimpleBackend, "invoke", invoke),
        mock.patch.object(sfn_lambda.StateTaskServiceLambda, "_from_error", from_error),
    ]
    for patch in patches:
        patch.start()
    return patches
