"""What changed between two versions of a build record, and what users are told about it.

Pure: the notifier feeds it the old and new images of a DynamoDB stream record. Events and
messages carry ids, statuses and human reasons only, never ``zipUrl``, task tokens or any URL
(a reason text may quote a signed URL, so URLs are redacted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.timeline import parse_iso

EVENT_SOURCE = "pixelbridge"
EVENT_DETAIL_TYPE = "Build Status Changed"
# Statuses (and the stuck flag) an operator is emailed about; everything else is EventBridge only.
NOTIFIED_STATUSES = frozenset({BuildStatus.FAILED, BuildStatus.REJECTED, BuildStatus.LIVE})
PRE_RELEASE = frozenset(
    {BuildStatus.RECEIVED, BuildStatus.STORED, BuildStatus.CONVERTING, BuildStatus.CONVERTED}
)

MAX_REASON_CHARS = 1000
_URL = re.compile(r"\b(?:https?|s3)://\S+", re.IGNORECASE)


@dataclass(frozen=True)
class StatusChange:
    build_id: str
    route: str
    from_status: str | None  # None: the record was just created
    to_status: str
    reason: str
    stuck: bool = False  # the stuck flag turned on (the status itself did not change)

    def event_detail(self) -> dict[str, Any]:
        return {
            "buildId": self.build_id,
            "route": self.route,
            "from": self.from_status,
            "to": self.to_status,
            "reason": self.reason,
            "stuck": self.stuck,
        }

    @property
    def notify_operator(self) -> bool:
        return self.stuck or (self.from_status != self.to_status and self.to_status in NOTIFIED_STATUSES)


def redact(text: str) -> str:
    """Reasons come from error texts and Streampixel's objections (outside text): drop URLs (they may
    be signed), show control, bidi and zero-width characters escaped, and cap the length."""
    cleaned = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text
    )
    cleaned = _URL.sub("<url>", cleaned).strip()
    return cleaned if len(cleaned) <= MAX_REASON_CHARS else cleaned[: MAX_REASON_CHARS - 1] + "…"


def status_change(old: dict[str, Any] | None, new: dict[str, Any] | None) -> StatusChange | None:
    """The change a stream record represents, or None when neither status nor stuck flag changed."""
    if not new or "status" not in new:
        return None  # deleted, or not a build record
    before = str(old["status"]) if old and "status" in old else None
    after = str(new["status"])
    turned_stuck = bool(new.get("stuck")) and not bool((old or {}).get("stuck"))
    if before == after and not turned_stuck:
        return None
    stuck = turned_stuck and before == after
    return StatusChange(
        build_id=str(new.get("buildId", "")),
        route=str(new.get("route", "-")),
        from_status=before,
        to_status=after,
        reason=redact(change_reason(new, stuck=stuck)),
        stuck=stuck,
    )


def change_reason(record: dict[str, Any], *, stuck: bool = False) -> str:
    """Why the build is where it is: the stuck reason, the error/objection, else the latest detail."""
    status = str(record.get("status"))
    if stuck and record.get("stuckReason"):
        return str(record["stuckReason"])
    if status == BuildStatus.REJECTED and record.get("objection"):
        return str(record["objection"])
    if status in {BuildStatus.FAILED, BuildStatus.SKIPPED, BuildStatus.SUPERSEDED} and record.get("error"):
        return str(record["error"])
    for entry in reversed(record.get("timeline") or []):
        if entry.get("detail"):
            return str(entry["detail"])
    return ""


def operator_message(change: StatusChange) -> tuple[str, str]:
    """(subject, body) for the SNS topic. SNS subjects: ASCII, ≤ 100 characters, one line."""
    what = "is stuck" if change.stuck else f"is {change.to_status}"
    subject = f"PixelBridge: build {change.build_id} {what}"
    subject = re.sub(r"[^\x20-\x7e]", "?", subject)[:100]
    lines = [
        f"Build {change.build_id} (route {change.route}) {what}.",
        f"Status: {change.from_status or '-'} -> {change.to_status}",
    ]
    if change.reason:
        label = "Objection" if change.to_status == BuildStatus.REJECTED else "Reason"
        lines.append(f"{label}: {change.reason}")
    return subject, "\n".join(lines)


def failure_class(change: StatusChange) -> str:
    """A small, stable set of reasons for the BuildsFailed metric dimension."""
    reason = change.reason.lower()
    if reason.startswith("stuck"):
        return "stuck"
    if "timed out" in reason or "timeout" in reason:
        return "timeout"
    if change.from_status in PRE_RELEASE:
        return "conversion"
    return "release"


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        seconds = (parse_iso(end) - parse_iso(start)).total_seconds()
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def time_to_live_seconds(record: dict[str, Any]) -> float | None:
    """receivedAt → liveAt (or the record's last update if liveAt is missing)."""
    return seconds_between(record.get("receivedAt"), record.get("liveAt") or record.get("updatedAt"))
