"""Timeline entries: every step of a build, in order, with time and a human detail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z, sortable as text (also what Step Functions wants)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse what ``iso`` writes (and any ISO-8601 with an offset or Z)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def timeline_entry(
    at: datetime,
    event: str,
    detail: str = "",
    *,
    status: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": iso(at), "event": event}
    if detail:
        entry["detail"] = detail
    if status:
        entry["status"] = status
    if data:
        entry["data"] = data
    return entry
