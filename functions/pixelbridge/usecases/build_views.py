"""What each caller may see of a build record: views by allow-list.

The upload-token holder (BuildPixel's ``statusUrl``, the answer to a re-push) sees status, times and
reasons only: the token only proves "can push", and a handoff key (``dl/<token>/<build>.zip``)
downloads the converted build. Operators see the whole record except its capabilities.
"""

from __future__ import annotations

from typing import Any

from pixelbridge.domain.records import BuildRecord

# Values that grant access by themselves: the handoff key and URL, the handoff token, a task token.
CAPABILITIES = frozenset({"zipUrl", "zipKey", "handoffToken", "waitToken"})
UPLOADER_FIELDS = (
    "buildId",
    "status",
    "source",
    "reason",
    "error",
    "objection",
    "stuck",
    "stuckReason",
    "receivedAt",
    "updatedAt",
    "uploadedAt",
    "approvedAt",
    "rejectedAt",
    "liveAt",
    "liveSince",
    "stuckAt",
)
UPLOADER_TIMELINE_FIELDS = ("at", "event", "status")


def uploader_view(record: BuildRecord) -> dict[str, Any]:
    """Status, timestamps and reasons; the timeline without details (they may name keys)."""
    view = {key: record[key] for key in UPLOADER_FIELDS if key in record}
    view["timeline"] = [
        {key: entry[key] for key in UPLOADER_TIMELINE_FIELDS if key in entry}
        for entry in record.get("timeline", [])
    ]
    return view


def operator_view(record: BuildRecord) -> dict[str, Any]:
    """Everything operators need to diagnose a build, never a capability."""
    return {key: value for key, value in record.items() if key not in CAPABILITIES}
