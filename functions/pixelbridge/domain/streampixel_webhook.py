"""The event Streampixel posts to our webhook URL, as a parser model.

Streampixel signs nothing and may add fields, so the model is lenient on purpose: a field that is not
a non-empty string reads as absent (a forged or odd event then simply matches no build), and unknown
fields are ignored. Only a body that is not a JSON object is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


Text = Annotated[str | None, BeforeValidator(text_or_none)]


class StreampixelEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    event: Text = None
    upload_id: Text = Field(default=None, alias="uploadId")
    file_url: Text = Field(default=None, alias="fileUrl", repr=False)  # carries the handoff token
    project_id: Text = Field(default=None, alias="projectId")
    status: Text = None
    objection: Text = None
    timestamp: Text = None


# Outside text is stored and shown capped: an objection longer than this is cut with an ellipsis.
MAX_OBJECTION_CHARS = 500
# Events that did not vouch for their build are kept on it for later matching, at most this many.
MAX_HELD_EVENTS = 20

# Streampixel only sends these once it has downloaded the zip (it extracts its own copy).
DOWNLOADED_EVENTS = frozenset(
    {"build.extracting", "build.saving", "build.distributing", "build.approved", "build.rejected"}
)
# Events that must come before an approval of the same upload for the approval to count.
BEFORE_APPROVAL_EVENTS = frozenset({"build.extracting", "build.saving", "build.distributing"})


def is_upload_id(text: str) -> bool:
    """Streampixel's uploadIds are 24 hex digits (Mongo ObjectIds)."""
    return re.fullmatch(r"[0-9a-f]{24}", text) is not None


def capped(text: str, limit: int = MAX_OBJECTION_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def seen_events(record: Mapping[str, Any]) -> frozenset[str]:
    """The Streampixel events that vouched for the build's current upload (``seenEvents``)."""
    seen = record.get("seenEvents") or {}
    if not record.get("uploadId") or seen.get("uploadId") != record.get("uploadId"):
        return frozenset()
    return frozenset(str(name) for name in seen.get("events") or [])


def approval_confirmed(record: Mapping[str, Any]) -> bool:
    """An approval counts only after an earlier stage of the same upload: one event's word is not enough."""
    return bool(seen_events(record) & BEFORE_APPROVAL_EVENTS)


def handoff_downloaded(record: Mapping[str, Any]) -> bool:
    """Two different events after the download, for the current upload, before the zip may go."""
    return len(seen_events(record) & DOWNLOADED_EVENTS) >= 2


def distribution_witnessed(record: Mapping[str, Any]) -> bool:
    """Streampixel itself said it distributed the current upload (not only that we asked it to)."""
    return "build.distributing" in seen_events(record)
