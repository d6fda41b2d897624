"""What a parked workflow step is waiting for, decided from the facts on the build record."""

from __future__ import annotations

import json
from typing import Any

from pixelbridge.domain.records import BuildRecord, release_policy


def describe_error(error: dict[str, Any]) -> str:
    """A readable reason from a Step Functions error object ``{"Error", "Cause"}``."""
    name = str(error.get("Error", "Error"))
    cause = error.get("Cause", "")
    message = cause
    if isinstance(cause, str) and cause.startswith("{"):
        try:
            message = json.loads(cause).get("errorMessage", cause)
        except ValueError:
            message = cause
    if name == "States.Timeout":
        return "timed out waiting for Streampixel"
    return f"{name}: {message}" if message else name


def awaited_outcome(record: BuildRecord, waiting_for: str) -> tuple[str, dict[str, Any]] | None:
    """What a waiting task should be answered with, given the Streampixel facts on the record.

    ("success", output) or ("failure", {"error", "cause"}), or None to keep waiting.
    """
    if record.get("rejectedAt"):
        return "failure", {
            "error": "Rejected",
            "cause": str(record.get("objection") or "rejected by Streampixel"),
        }
    if waiting_for == "upload" and record.get("uploadId"):
        # an upload-file whose answer was lost, identified by Streampixel's own events for it
        return "success", {"event": "build.uploaded"}
    if waiting_for == "approval" and record.get("approvedAt"):
        return "success", {"event": "build.approved"}
    if waiting_for == "approval" and release_policy(record) == "auto" and record.get("distributionStartedAt"):
        # Streampixel releases auto uploads itself: distribution started, so the live window applies
        return "success", {"event": "build.distributing"}
    if waiting_for == "distribution":
        if record.get("liveApprovedAt"):
            return "success", {"event": "build.approved"}
        if record.get("distributionStartedAt"):
            return "success", {"event": "build.distributing"}
    if waiting_for == "live" and record.get("liveApprovedAt"):
        return "success", {"event": "build.approved"}
    return None
