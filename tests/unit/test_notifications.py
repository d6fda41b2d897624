"""Status-change diffing, operator messages and the notify use case (fakes, no AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from pixelbridge.domain.notifications import (
    failure_class,
    operator_message,
    redact,
    status_change,
    time_to_live_seconds,
)
from pixelbridge.usecases.notify import NotifyStatusChanges


def record(status: str, **fields: Any) -> dict[str, Any]:
    return {"buildId": "b-1", "route": "r1", "status": status, "timeline": [], **fields}


def test_no_change_when_status_and_flag_are_unchanged() -> None:
    assert status_change(record("processing"), record("processing", lastStreampixelEvent="x")) is None
    assert status_change(record("processing"), None) is None


def test_insert_is_a_change_from_nothing() -> None:
    change = status_change(
        None, record("received", timeline=[{"at": "t", "event": "received", "detail": "push"}])
    )
    assert change is not None
    assert (change.from_status, change.to_status, change.reason) == (None, "received", "push")
    assert not change.notify_operator


def test_rejected_carries_the_objection_and_notifies() -> None:
    change = status_change(record("processing"), record("rejected", objection="Missing executable"))
    assert change is not None and change.notify_operator
    assert change.event_detail() == {
        "buildId": "b-1",
        "route": "r1",
        "from": "processing",
        "to": "rejected",
        "reason": "Missing executable",
        "stuck": False,
    }
    subject, body = operator_message(change)
    assert subject == "PixelBridge: build b-1 is rejected"
    assert "Objection: Missing executable" in body


def test_stuck_flag_turning_on_is_a_change_without_a_status_move() -> None:
    change = status_change(
        record("processing"), record("processing", stuck=True, stuckReason="no progress for 61 min")
    )
    assert change is not None and change.stuck and change.notify_operator
    assert (change.from_status, change.to_status, change.reason) == (
        "processing",
        "processing",
        "no progress for 61 min",
    )
    assert status_change(record("processing", stuck=True), record("processing", stuck=True)) is None


def test_reason_never_carries_urls_or_unbounded_text() -> None:
    change = status_change(
        record("converted"),
        record(
            "failed", error="fetch of https://bp.example/a.tar.gz?X-Amz-Signature=abc failed " + "x" * 2000
        ),
    )
    assert change is not None
    assert "https://" not in change.reason and "Signature" not in change.reason
    assert len(change.reason) <= 1000
    assert "zipUrl" not in str(change.event_detail())
    assert redact("see s3://bucket/key now") == "see <url> now"


def test_an_objection_from_outside_is_shown_escaped_and_capped_in_operator_messages() -> None:
    """A forged objection cannot add lines or headers to the email, nor hide text with bidi controls."""
    objection = "Bad build\nSubject: wire money\r\nFrom: ceo\u202e\u200b" + "y" * 5000
    change = status_change(record("distributing"), record("rejected", objection=objection))
    assert change is not None
    subject, body = operator_message(change)
    assert "\n" not in subject
    objection_line = body.splitlines()[-1]
    assert objection_line.startswith(
        "Objection: Bad build\\nSubject: wire money\\r\\nFrom: ceo\\u202e\\u200b"
    )
    assert len(body.splitlines()) == 3 and len(objection_line) <= 1100


@pytest.mark.parametrize(
    ("before", "error", "expected"),
    [
        ("processing", "Stuck: no progress for 70 min", "stuck"),
        ("processing", "timed out waiting for Streampixel", "timeout"),
        ("converting", "archive has no .exe", "conversion"),
        ("uploading", "StreampixelError: Streampixel answered 401", "release"),
    ],
)
def test_failure_classes(before: str, error: str, expected: str) -> None:
    change = status_change(record(before), record("failed", error=error))
    assert change is not None and failure_class(change) == expected


def test_time_to_live() -> None:
    live = record("live", receivedAt="2026-01-01T00:00:00.000Z", liveAt="2026-01-01T00:10:30.000Z")
    assert time_to_live_seconds(live) == 630.0
    assert time_to_live_seconds(record("live")) is None


class Recorder:
    def __init__(self, configured: bool = True) -> None:
        self.configured = configured
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.messages: list[tuple[str, str, dict[str, str]]] = []
        self.points: list[tuple[str, float, str, dict[str, str]]] = []

    def put(self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None:
        self.events.append((source, detail_type, detail))

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> None:
        self.messages.append((subject, message, attributes))

    def record(self, name: str, value: float, unit: str = "count", **dimensions: str) -> None:
        self.points.append((name, value, unit, dimensions))


def notifier(sink: Recorder) -> NotifyStatusChanges:
    return NotifyStatusChanges(events=sink, operators=sink, metrics=sink)


def test_every_change_goes_to_eventbridge_only_some_to_operators() -> None:
    sink = Recorder()
    notify = notifier(sink)
    notify(record("queued"), record("uploading"))
    notify(
        record("distributing"),
        record("live", receivedAt="2026-01-01T00:00:00Z", liveAt="2026-01-01T00:01:00Z"),
    )
    assert [e[2]["to"] for e in sink.events] == ["uploading", "live"]
    assert {e[:2] for e in sink.events} == {("pixelbridge", "Build Status Changed")}
    assert [m[0] for m in sink.messages] == ["PixelBridge: build b-1 is live"]
    assert sink.messages[0][2] == {"buildId": "b-1", "status": "live"}
    assert ("BuildsLive", 1, "count", {}) in sink.points
    assert ("TimeToLiveSeconds", 60.0, "seconds", {}) in sink.points


def test_metrics_for_received_converted_failed_rejected_stuck() -> None:
    sink = Recorder(configured=False)
    notify = notifier(sink)
    notify(None, record("received", source="pull"))
    notify(record("converting"), record("converted", manifest={"mb_per_s": 85.5}))
    notify(record("converting"), record("failed", error="bad archive"))
    notify(record("processing"), record("rejected", objection="x"))
    notify(record("processing"), record("processing", stuck=True, stuckReason="slow"))
    names = [(p[0], p[3]) for p in sink.points]
    assert names == [
        ("BuildsReceived", {}),
        ("BuildsReceivedBySource", {"source": "pull"}),
        ("BuildsConverted", {}),
        ("ConvertMBps", {}),
        ("BuildsFailed", {}),
        ("BuildsFailedByReason", {"reasonClass": "conversion"}),
        ("BuildsRejected", {}),
        ("BuildsStuck", {}),
    ]
    assert sink.messages == []  # no topic configured: EventBridge only
    assert len(sink.events) == 5
