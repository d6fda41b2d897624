"""The bootstrap inside one sandbox: a warm Lambda execution environment for one function.

Started by ``pixelbridge_local.sandbox`` as ``python -m pixelbridge_local.sandbox_runtime RESULT_FD``
with exactly the function's environment. Like Lambda's runtime it imports ``_HANDLER`` once (the cold
start), then serves one invocation at a time: a JSON request line on stdin (``event``, ``requestId``,
``deadlineMs``, ``fault``), a JSON result line on RESULT_FD (``result`` or Lambda's error shape
``errorType``/``errorMessage``), after one ``ready`` line once init is done. stdout and stderr are
the function's log stream.

``clockOffsetSeconds`` is the local stack's clock knob: with ``LOCAL_STACK_CLOCK_HOOK=true`` in the
environment (set only by the embedded stack) the runtime installs ``wiring.Overrides(clock=...)`` for the
sandbox's life, a clock that runs the request's offset ahead of the real one; wiring hands that clock to
the use cases and the build repository. Without the variable (any deployed function) nothing changes.

``fault`` is the local stack's fault knob (tests ask the stack for it; a deployed function never
sees one): ``block`` never returns (the stack's timeout then stops the sandbox), ``exit`` ends the
process mid-invocation, ``raise_in_sink`` fails the S3 multipart sink after ``after_bytes`` bytes.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from typing import Any


class LambdaContext:
    """The context object Lambda passes to a Python handler."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        region = os.environ["AWS_REGION"]
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _apply_fault(fault: dict[str, Any] | None) -> None:
    if not fault:
        return
    kind = fault["kind"]
    if kind == "block":
        threading.Event().wait()  # until the stack stops this sandbox
    if kind == "exit":
        os._exit(1)
    if kind == "raise_in_sink":
        from pixelbridge.convert.sinks import S3MultipartSink

        original = S3MultipartSink.write
        written = [0]
        limit = int(fault["after_bytes"])

        def write(self: Any, data: Any, /) -> int:
            written[0] += len(data)
            if written[0] > limit:
                S3MultipartSink.write = original  # type: ignore[method-assign]
                raise ConnectionResetError("converter killed mid-way (injected)")
            return int(original(self, data))

        S3MultipartSink.write = write  # type: ignore[method-assign]


class ShiftedClock:
    """Real time plus the offset of the invocation being served (set per request)."""

    def __init__(self) -> None:
        self.offset_seconds = 0.0
        self.installed: Any = None  # the entered override: held here so it is never collected (and left)

    def __call__(self) -> float:
        return time.time() + self.offset_seconds


def _install_clock_hook() -> ShiftedClock | None:
    if os.environ.get("LOCAL_STACK_CLOCK_HOOK") != "true":
        return None
    from pixelbridge import wiring

    clock = ShiftedClock()
    # Entered for the life of this process and never left: the sandbox serves only this function.
    clock.installed = wiring.override(wiring.Overrides(clock=clock))
    clock.installed.__enter__()
    return clock


def main() -> None:
    results = os.fdopen(int(sys.argv[1]), "w", buffering=1, encoding="utf-8")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    # Lambda's Python runtime: the root logger at the function's application log level, to stdout;
    # Lambda's log-level filter (ApplicationLogLevel) drops records below it, whatever the logger says.
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, stream=sys.stdout)
    logging.getLogger().handlers[0].setLevel(level)
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    handler: Any = None
    init_error: dict[str, str] | None = None
    clock: ShiftedClock | None = None
    try:
        clock = _install_clock_hook()
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # Lambda reports an init failure on every invocation
        init_error = {"errorType": f"Runtime.{type(exc).__name__}", "errorMessage": str(exc)}
    results.write(json.dumps({"ready": True}) + "\n")  # init done: the function's Timeout starts per invoke
    for line in sys.stdin:
        request = json.loads(line)
        if clock is not None:
            clock.offset_seconds = float(request.get("clockOffsetSeconds") or 0.0)
        _apply_fault(request.get("fault"))
        answer: dict[str, Any]
        if init_error:
            answer = {"error": init_error}
        else:
            context = LambdaContext(request["requestId"], int(request["deadlineMs"]))
            try:
                answer = {"result": handler(request["event"], context)}
            except Exception as exc:  # the unhandled-error contract: errorType drives Retry/Catch
                print(f"[ERROR] {type(exc).__name__}: {exc}", flush=True)
                answer = {
                    "error": {
                        "errorType": type(exc).__name__,
                        "errorMessage": str(exc),
                        "stackTrace": traceback.format_tb(exc.__traceback__),
                    }
                }
        try:
            encoded = json.dumps(answer, default=str)
        except (TypeError, ValueError) as exc:
            encoded = json.dumps({"error": {"errorType": "Runtime.MarshalError", "errorMessage": str(exc)}})
        results.write(encoded + "\n")


if __name__ == "__main__":
    main()
