"""The local stack's clock knob reaches the clock wiring hands a sandboxed function, and only where the
stack turns it on; a renewed environment (a new session's credentials) retires the old sandboxes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pixelbridge_local.sandbox import FunctionPool

DAY = 86_400.0
# Far above any gap between the function's two clock reads, far below the offset.
SLACK = 3_600.0


def clock_pool(**environment: str) -> FunctionPool:
    return FunctionPool(
        name="Clock",
        environment={
            "AWS_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": "Clock",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "_HANDLER": "tests.support.sandbox_handlers.clock",
            **environment,
        },
        timeout_seconds=60.0,
        memory_mb=512,
        log=lambda line: None,
    )


def ahead(result: Any) -> float:
    return float(result["wiring"]) - float(result["real"])


def test_advancing_the_clock_moves_what_wiring_hands_the_use_cases() -> None:
    functions = clock_pool(LOCAL_STACK_CLOCK_HOOK="true")
    try:
        assert abs(ahead(functions.invoke({}).result)) < SLACK
        functions.clock_offset_seconds += DAY
        warm = functions.invoke({}).result
        assert DAY - SLACK < ahead(warm) < DAY + SLACK  # the same warm sandbox: read per invocation
        assert functions.cold_starts == 1
    finally:
        functions.stop()


def test_without_the_local_stack_switch_the_function_keeps_the_real_clock() -> None:
    functions = clock_pool()  # a deployed function's environment has no LOCAL_STACK_CLOCK_HOOK
    try:
        functions.clock_offset_seconds = DAY
        assert abs(ahead(functions.invoke({}).result)) < SLACK
    finally:
        functions.stop()


def test_a_renewed_environment_retires_the_sandboxes_that_hold_the_old_one() -> None:
    functions = clock_pool(AWS_ACCESS_KEY_ID="OLD")
    try:
        before = functions.invoke({}).result
        functions.renew_environment({**functions.environment, "AWS_ACCESS_KEY_ID": "NEW"})
        after = functions.invoke({}).result
        assert (before["key"], after["key"]) == ("OLD", "NEW")
        assert after["pid"] != before["pid"] and functions.cold_starts == 2
    finally:
        functions.stop()


def test_production_code_never_reads_the_switch_and_wiring_uses_the_real_clock_by_default() -> None:
    from datetime import UTC, datetime

    from pixelbridge import wiring

    root = Path(__file__).resolve().parents[2]
    deployed = [root / "template.yaml", *sorted((root / "functions").rglob("*.py"))]
    assert not [path for path in deployed if "LOCAL_STACK_CLOCK_HOOK" in path.read_text(encoding="utf-8")]
    before = datetime.now(UTC)
    assert before <= wiring.now() <= datetime.now(UTC)
    with wiring.override(wiring.Overrides(clock=lambda: before.timestamp() + DAY)):
        assert wiring.now().timestamp() == before.timestamp() + DAY
