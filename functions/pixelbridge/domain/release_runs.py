"""A release run: the state machine's input and the execution name of each run of a build."""

from __future__ import annotations

from typing import Any


def release_input(build_id: str, stage: str = "upload") -> dict[str, Any]:
    """The state machine's input: every path the ASL reads exists from the start."""
    return {"buildId": build_id, "stage": stage, "lastError": None}


def release_execution_name(record: dict[str, Any]) -> str:
    """The build id, or ``<buildId>-retry-<n>`` once an operator re-drove it (names are unique forever)."""
    retries = int(record.get("retryCount", 0))
    return f"{record['buildId']}-retry-{retries}" if retries else str(record["buildId"])
