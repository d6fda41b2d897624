"""Timeline entries: every step of a build, in order, with time and a human detail.

A build record is one DynamoDB item (400 KB at most), and outside parties decide how many events a
build gets and how long their strings are. So every entry is bounded (``bounded``), and the timeline
is summarised once it grows (``compact_timeline``): the first entries (how the build started), the
latest ones (what the reconciler and the operator read), repeats counted, and the number left out.
"""

from __future__ import annotations

import json
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
    entry: dict[str, Any] = {"at": iso(at), "event": bounded(event, MAX_EVENT_CHARS)}
    if detail:
        entry["detail"] = bounded(detail, MAX_DETAIL_CHARS)
    if status:
        entry["status"] = status
    if data:
        entry["data"] = bounded_data(data)
    return entry


MAX_EVENT_CHARS = 100
MAX_DETAIL_CHARS = 500
MAX_DATA_STRING_CHARS = 300
MAX_DATA_ITEMS = 20
MAX_DATA_BYTES = 1500
# Kept whole when the timeline is summarised: how the build started, and what happened last.
KEEP_FIRST = 10
KEEP_LAST = 60
# Summarise only once this many entries pile up beyond the kept ones (one extra write per batch).
COMPACT_SLACK = 30
SUMMARY_EVENT = "timeline summarised"


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... (+{len(text) - limit} characters)"


def bounded_value(value: Any, string_limit: int = MAX_DATA_STRING_CHARS) -> Any:
    """Strings cut, lists and maps cut to their first ``MAX_DATA_ITEMS`` (nested the same way)."""
    if isinstance(value, str):
        return bounded(value, string_limit)
    if isinstance(value, dict):
        items = list(value.items())
        kept = {bounded(str(k), 100): bounded_value(v, string_limit) for k, v in items[:MAX_DATA_ITEMS]}
        if len(items) > MAX_DATA_ITEMS:
            kept["omittedKeys"] = len(items) - MAX_DATA_ITEMS
        return kept
    if isinstance(value, list | tuple):
        kept_items = [bounded_value(v, string_limit) for v in value[:MAX_DATA_ITEMS]]
        if len(value) > MAX_DATA_ITEMS:
            kept_items.append(f"... (+{len(value) - MAX_DATA_ITEMS} items)")
        return kept_items
    return value


def bounded_data(data: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = bounded_value(data)
    size = len(json.dumps(kept, default=str).encode("utf-8"))
    return kept if size <= MAX_DATA_BYTES else {"omitted": f"{size} bytes of event data"}


def needs_compaction(timeline: list[dict[str, Any]]) -> bool:
    return len(timeline) > KEEP_FIRST + KEEP_LAST + COMPACT_SLACK


def compact_timeline(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline summarised: repeats counted, the middle left out and counted.

    A repeat is an entry equal to the one before it but for its time: it becomes ``repeats`` and
    ``lastAt`` on that entry. The left-out count (``omitted``) is carried in one summary entry
    after the first ones, so summarising again adds to it.
    """
    collapsed: list[dict[str, Any]] = []
    omitted = 0
    for entry in timeline:
        if entry.get("event") == SUMMARY_EVENT:
            omitted += int(entry.get("omitted", 0))
            continue
        previous = collapsed[-1] if collapsed else None
        if previous is not None and _same_but_time(previous, entry):
            previous["repeats"] = int(previous.get("repeats", 1)) + int(entry.get("repeats", 1))
            previous["lastAt"] = entry.get("lastAt", entry.get("at"))
            continue
        collapsed.append(dict(entry))
    if len(collapsed) > KEEP_FIRST + KEEP_LAST:
        middle = collapsed[KEEP_FIRST:-KEEP_LAST]
        omitted += sum(int(entry.get("repeats", 1)) for entry in middle)
        collapsed = collapsed[:KEEP_FIRST] + collapsed[-KEEP_LAST:]
    if omitted:
        summary = {
            "at": collapsed[min(KEEP_FIRST, len(collapsed) - 1)]["at"],
            "event": SUMMARY_EVENT,
            "detail": f"{omitted} earlier entries left out to keep the record small",
            "omitted": omitted,
        }
        collapsed.insert(min(KEEP_FIRST, len(collapsed)), summary)
    return collapsed


def _same_but_time(one: dict[str, Any], other: dict[str, Any]) -> bool:
    ignored = {"at", "lastAt", "repeats"}
    return {k: v for k, v in one.items() if k not in ignored} == {
        k: v for k, v in other.items() if k not in ignored
    }
