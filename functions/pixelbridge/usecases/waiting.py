"""Answering a parked workflow step (task token) once, whoever learns the outcome first."""

from __future__ import annotations

from typing import Any

from pixelbridge.domain.records import BuildRecord
from pixelbridge.ports import BuildsPort, WorkflowPort


def answer_waiting_task(
    workflow: WorkflowPort, builds: BuildsPort, record: BuildRecord, outcome: tuple[str, dict[str, Any]]
) -> bool:
    """Resume or fail the task the build waits in, once: the token is cleared only if still ours."""
    token = record.get("waitToken")
    if not token or not builds.clear_wait_token(record["buildId"], str(token)):
        return False  # nobody waits, or another event answered this token first
    kind, payload = outcome
    if kind == "success":
        return workflow.resume(str(token), payload)
    return workflow.fail(str(token), payload["error"], payload["cause"])
