"""The sandbox per function: its own process and environment, Timeout as a kill, MemorySize as a cap,
and Lambda's async retry and OnFailure contract (no stack needed: handlers from tests/support)."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from pixelbridge_local.sandbox import AsyncInvoker, Fault, FunctionPool

ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "Probe",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "ONLY_MINE": "1",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
}


def pool(handler: str, *, memory_mb: int = 256, timeout: float = 30.0) -> FunctionPool:
    lines: list[str] = []
    return FunctionPool(
        name="Probe",
        environment={**ENVIRONMENT, "_HANDLER": f"tests.support.sandbox_handlers.{handler}"},
        timeout_seconds=timeout,
        memory_mb=memory_mb,
        log=lines.append,
    )


@pytest.fixture
def probe() -> Any:
    started: list[FunctionPool] = []

    def start(handler: str, **options: Any) -> FunctionPool:
        started.append(pool(handler, **options))
        return started[-1]

    yield start
    for each in started:
        each.stop()


def test_a_sandbox_is_its_own_warm_process_with_exactly_its_environment(probe: Any) -> None:
    functions = probe("echo")
    first, second = functions.invoke({"n": 1}), functions.invoke({"n": 2})
    assert first.result["pid"] == second.result["pid"] != os.getpid()  # warm: the same process
    assert functions.cold_starts == 1
    # Nothing of the parent's environment leaks in (Python adds nothing but LC_CTYPE on some systems).
    assert set(first.result["environment"]) - {"LC_CTYPE"} == {*ENVIRONMENT, "_HANDLER"}
    assert "ONLY_MINE" not in os.environ


def test_the_timeout_stops_the_sandbox_and_the_next_invocation_is_a_cold_start(probe: Any) -> None:
    functions = probe("echo", timeout=1.0)
    warm = functions.invoke({"n": 0}).result["pid"]
    functions.inject(Fault("block", when="stuck"))
    timed_out = functions.invoke({"n": "stuck"})
    assert timed_out.stopped and timed_out.error is not None
    assert "Task timed out after 1.00 seconds" in timed_out.error["errorMessage"]
    assert "errorType" not in timed_out.error  # Step Functions reports it as Lambda.Unknown
    assert not _alive(warm)
    after = functions.invoke({"n": 2})
    assert after.result["pid"] != warm and functions.cold_starts == 2


def test_a_sandbox_that_exits_mid_invocation_fails_it_and_is_replaced(probe: Any) -> None:
    functions = probe("echo")
    functions.inject(Fault("exit", when="crash"))
    crashed = functions.invoke({"n": "crash"})
    assert crashed.stopped and crashed.error is not None
    assert crashed.error["errorType"] == "Runtime.ExitError"
    assert not functions.invoke({"n": 1}).failed and functions.cold_starts == 2


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_DATA caps a process on Linux")
def test_memory_size_caps_the_sandbox(probe: Any) -> None:
    small = probe("allocate", memory_mb=256)
    refused = small.invoke({"mb": 400})
    assert refused.error is not None and refused.error["errorType"] == "MemoryError"
    assert small.invoke({"mb": 64}).result == 64 * 1024 * 1024  # the same sandbox still serves
    assert probe("allocate", memory_mb=1024).invoke({"mb": 400}).result == 400 * 1024 * 1024


def test_async_invocations_are_retried_then_sent_to_the_on_failure_destination(probe: Any) -> None:
    functions = probe("echo")
    sent: list[tuple[str, dict[str, Any]]] = []
    invoker = AsyncInvoker(lambda arn, record: sent.append((arn, record)), retry_delay_seconds=0)
    functions.inject(Fault("exit", when="twice", times=2))
    functions.inject(Fault("exit", when="once", times=1))
    invoker.invoke(functions, {"n": "once"}, max_retries=1, on_failure="arn:dlq")
    invoker.invoke(functions, {"n": "twice"}, max_retries=1, on_failure="arn:dlq")
    for thread in invoker.threads:
        thread.join(timeout=60)
    attempts = [invocation.event["n"] for invocation in functions.invocations]
    assert sorted(attempts) == ["once", "once", "twice", "twice"]
    assert [arn for arn, _ in sent] == ["arn:dlq"]  # only the one that failed twice
    record = sent[0][1]
    assert record["requestPayload"] == {"n": "twice"}
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responsePayload"]["errorType"] == "Runtime.ExitError"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # the pool reaps what it stops: a stopped sandbox's pid is gone
    except ProcessLookupError:
        return False
    return True
