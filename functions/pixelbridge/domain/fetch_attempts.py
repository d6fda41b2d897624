"""When a pull's download is over without having ended (pure rules: the reconciler and the webhook).

FetchFunction is invoked asynchronously with EventInvokeConfig ``MaximumRetryAttempts: 1`` (template.yaml):
the first invocation and one retry, each stopped at the function's Timeout. A stopped invocation (time
limit, out of memory) runs none of our code, so nothing records its end and the build would stay
``received`` for ever. The record says when the download last showed life: ``fetchRequestedAt`` (the
webhook's invoke) or ``fetchHeartbeatAt`` (FetchFunction, when an invocation starts and at each
checkpoint). After that moment at most ``MAX_FETCH_ATTEMPTS`` invocations of ``FETCH_TIMEOUT_SECONDS``
can still run, plus Lambda's waits between them: a download silent for longer is dead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.timeline import parse_iso

MAX_FETCH_ATTEMPTS = 2  # EventInvokeConfig MaximumRetryAttempts 1: the invocation and one retry
FETCH_TIMEOUT_SECONDS = 900  # FetchFunction's Timeout
# Lambda waits ~1 min, then ~2 min, between async attempts; an event may also queue for a while.
FETCH_RETRY_MARGIN_SECONDS = 600
FETCH_STALL_SECONDS = MAX_FETCH_ATTEMPTS * FETCH_TIMEOUT_SECONDS + FETCH_RETRY_MARGIN_SECONDS
ALIVE_FIELDS = ("fetchRequestedAt", "fetchHeartbeatAt")
# {holder, expiresAt}: the one invocation allowed to download (a duplicate async delivery skips).
FETCH_LEASE_FIELD = "fetchLease"


def stall_seconds(configured: int) -> int:
    """The configured threshold (``STUCK_FETCH_SECONDS``); 0 means ``FETCH_STALL_SECONDS``."""
    return configured or FETCH_STALL_SECONDS


def next_fetch_attempt(record: dict[str, Any]) -> int:
    return int(record.get("fetchAttempts", 0)) + 1


def _utc(text: str) -> datetime:
    moment = parse_iso(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fetch_last_alive_at(record: dict[str, Any]) -> datetime | None:
    return max((_utc(str(record[name])) for name in ALIVE_FIELDS if record.get(name)), default=None)


def fetch_silent_for(record: dict[str, Any], now: datetime, threshold_seconds: int) -> timedelta | None:
    """How long a requested download has shown no life, once that is past any attempt still possible.

    None while it may still be running, and for builds with no download requested or past ``received``.
    """
    if record.get("status") != BuildStatus.RECEIVED:
        return None
    alive = fetch_last_alive_at(record)
    if alive is None:
        return None
    silent = now - alive
    return silent if silent > timedelta(seconds=threshold_seconds) else None


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def fetch_stall_reason(record: dict[str, Any], silent: timedelta, threshold_seconds: int) -> str:
    attempts = int(record.get("fetchAttempts", 0))
    started = f"{attempts} attempt(s) started, none ended" if attempts else "no attempt recorded its start"
    return (
        f"download did not finish: {started} (stopped by the time limit or out of memory); "
        f"no sign of life for {_duration(silent.total_seconds())} (limit {_duration(threshold_seconds)})"
    )
