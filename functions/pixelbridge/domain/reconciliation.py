"""When a build counts as stuck, and what the reconciler may do about it (pure decisions).

Progress is a status entry on the timeline (every transition, and every same-status Streampixel
event, writes one); plain notes such as "waiting" or "slot reserved" are not progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pixelbridge.domain.fetch_attempts import (
    FETCH_STALL_SECONDS,
    fetch_silent_for,
    fetch_stall_reason,
    stall_seconds,
)
from pixelbridge.domain.records import release_policy
from pixelbridge.domain.statuses import BuildStatus, is_terminal
from pixelbridge.domain.timeline import parse_iso

# Added to the approval timeout: the workflow's own timeout should normally fire first.
RELEASE_MARGIN_SECONDS = 900
HOLD_WINDOW_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class StuckThresholds:
    ingest_seconds: int = 3600  # received, stored: the artifact never reached the converter
    convert_seconds: int = 1200  # converting, converted: a conversion is at most 15 minutes
    queue_seconds: int = 3600  # queued, uploading: waiting for a rate-limit slot / upload-file
    release_seconds: int = 21_600 + RELEASE_MARGIN_SECONDS  # processing, approved, distributing
    hold_seconds: int = HOLD_WINDOW_SECONDS  # a held build (hold policy) waits this long for an operator
    fetch_seconds: int = FETCH_STALL_SECONDS  # a requested download silent this long is dead

    @classmethod
    def from_settings(
        cls,
        *,
        ingest: int,
        convert: int,
        queue: int,
        release: int,
        approval_timeout: int,
        hold: int = HOLD_WINDOW_SECONDS,
        fetch: int = 0,
    ) -> StuckThresholds:
        """``release`` 0 means the approval timeout plus a margin (the workflow times out first);
        ``fetch`` 0 means every attempt Lambda makes at its longest, plus a margin."""
        release = release or approval_timeout + RELEASE_MARGIN_SECONDS
        return cls(ingest, convert, queue, release, hold, stall_seconds(fetch))

    def for_status(self, status: BuildStatus | str) -> int | None:
        status = BuildStatus(status)
        if status in {BuildStatus.RECEIVED, BuildStatus.STORED}:
            return self.ingest_seconds
        if status in {BuildStatus.CONVERTING, BuildStatus.CONVERTED}:
            return self.convert_seconds
        if status in {BuildStatus.QUEUED, BuildStatus.UPLOADING}:
            return self.queue_seconds
        if status in {BuildStatus.PROCESSING, BuildStatus.APPROVED, BuildStatus.DISTRIBUTING}:
            return self.release_seconds
        return None  # terminal

    @property
    def smallest(self) -> int:
        return min(
            self.ingest_seconds,
            self.convert_seconds,
            self.queue_seconds,
            self.release_seconds,
            self.fetch_seconds,
        )


class Recovery(StrEnum):
    NONE = "none"  # nothing to resolve: flag it, tell the operator
    ANSWER_WAIT = "answer_wait"  # the facts on the record answer the parked task
    FAIL_WAIT = "fail_wait"  # a parked task with no facts: fail it as Stuck
    CHECK_EXECUTION = "check_execution"  # no task parked: the execution may have ended
    END_BUILD = "end_build"  # nothing will move it any more: record it failed with the reason


@dataclass(frozen=True)
class Assessment:
    stuck: bool
    reason: str = ""
    recovery: Recovery = Recovery.NONE


def last_progress_at(record: dict[str, Any]) -> datetime | None:
    for entry in reversed(record.get("timeline") or []):
        if entry.get("status") and entry.get("at"):
            return parse_iso(str(entry.get("lastAt") or entry["at"]))  # lastAt: a counted repeat
    stamp = record.get("updatedAt") or record.get("receivedAt")
    return parse_iso(str(stamp)) if stamp else None


def token_parked_at(record: dict[str, Any]) -> datetime | None:
    """When the current task token was parked (the workflow notes "waiting" right after)."""
    for entry in reversed(record.get("timeline") or []):
        if entry.get("event") == "waiting" and entry.get("at"):
            return parse_iso(str(entry.get("lastAt") or entry["at"]))
    return None


def is_held(record: dict[str, Any]) -> bool:
    """A hold-policy build waits at ``approved`` for an operator by design: not stuck."""
    return (
        record.get("status") == BuildStatus.APPROVED
        and release_policy(record) == "hold"
        and not record.get("waitToken")
    )


def assess(
    record: dict[str, Any], now: datetime, thresholds: StuckThresholds, *, facts_answer_token: bool
) -> Assessment:
    """Is this build stuck, and which recovery applies? ``facts_answer_token``: awaited_outcome says so."""
    status = str(record.get("status", ""))
    if not status or is_terminal(status):
        return Assessment(False)
    since = last_progress_at(record)
    if is_held(record) and not record.get("releaseRequestedAt"):
        return _assess_hold(record, now, since, thresholds.hold_seconds)
    if status == BuildStatus.RECEIVED and record.get("fetchRequestedAt"):
        return _assess_fetch(record, now, thresholds.fetch_seconds)
    threshold = thresholds.for_status(status)
    if threshold is None or since is None or now - since < timedelta(seconds=threshold):
        return Assessment(False)
    minutes = int((now - since).total_seconds() // 60)
    reason = f"no progress for {minutes} min in status {status} (threshold {threshold // 60} min)"
    if record.get("waitToken"):
        waiting_for = record.get("waitingFor") or "a Streampixel event"
        if facts_answer_token:
            return Assessment(True, f"{reason}; the recorded facts answer the wait", Recovery.ANSWER_WAIT)
        parked = token_parked_at(record) or since
        if now - parked < timedelta(seconds=threshold):
            return Assessment(True, f"{reason}; waiting for {waiting_for}", Recovery.NONE)
        # Streampixel never retries a webhook: a dropped one leaves the task waiting for nothing.
        return Assessment(
            True,
            f"{reason}; no Streampixel event for {waiting_for} arrived (a webhook may have been "
            "dropped; Streampixel never retries them) - check the build on the Streampixel dashboard",
            Recovery.FAIL_WAIT,
        )
    if status == BuildStatus.CONVERTING:
        # Every attempt writes a "converting" entry and none runs past Lambda's 15 minutes: an attempt
        # this old was killed (time limit, memory), and Lambda has no invocation left to retry it.
        attempts = int(record.get("convertAttempts", 0))
        return Assessment(
            True,
            f"conversion did not finish: {attempts} attempt(s) started, none ended ({reason})",
            Recovery.END_BUILD,
        )
    if status in {BuildStatus.RECEIVED, BuildStatus.STORED}:
        return Assessment(True, reason, Recovery.NONE)  # no execution exists before conversion ends
    return Assessment(True, reason, Recovery.CHECK_EXECUTION)


def _assess_fetch(record: dict[str, Any], now: datetime, threshold_seconds: int) -> Assessment:
    """A requested download either still runs (its own attempts end it) or was stopped with no code run."""
    silent = fetch_silent_for(record, now, threshold_seconds)
    if silent is None:
        return Assessment(False)
    return Assessment(True, fetch_stall_reason(record, silent, threshold_seconds), Recovery.END_BUILD)


def _assess_hold(
    record: dict[str, Any], now: datetime, since: datetime | None, hold_seconds: int
) -> Assessment:
    """A held build ends when nobody released it within the hold window (its release never started)."""
    if since is None or now - since < timedelta(seconds=hold_seconds):
        return Assessment(False)
    days = hold_seconds / 86_400
    return Assessment(
        True,
        f"hold window expired: not released within {days:g} day(s) of approval "
        f"(HOLD_WINDOW_SECONDS={hold_seconds}); Streampixel keeps the upload undistributed",
        Recovery.END_BUILD,
    )


ENDED_BADLY = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


def execution_verdict(
    status: str | None, error: str | None, cause: str | None
) -> tuple[BuildStatus, str] | None:
    """The status a non-terminal build must take given how its release execution ended."""
    if status not in ENDED_BADLY:
        return None  # running, succeeded (the record is the truth then), or never started
    detail = ": ".join(part for part in (error, cause) if part)
    return BuildStatus.FAILED, f"release execution {status.lower()}" + (f" ({detail})" if detail else "")
