"""Tiny handlers for the sandbox tests (imported inside a sandbox as its ``_HANDLER``)."""

from __future__ import annotations

import os
from typing import Any


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The event, the process id and what the process's environment holds."""
    return {"event": event, "pid": os.getpid(), "environment": sorted(os.environ)}


def allocate(event: dict[str, Any], context: Any) -> int:
    """Touch ``event["mb"]`` MiB of memory."""
    block = bytearray(int(event["mb"]) * 1024 * 1024)
    return len(block)


def clock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The clock wiring hands the use cases, next to the real one, and which credentials this sandbox has."""
    import time

    from pixelbridge import wiring

    return {
        "wiring": wiring.now().timestamp(),
        "real": time.time(),
        "pid": os.getpid(),
        "key": os.environ.get("AWS_ACCESS_KEY_ID"),
    }
