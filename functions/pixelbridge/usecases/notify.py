"""NotifierFunction's use case: one BuildsTable stream record → event, operator message, metrics.

Status changes are observed on the table's stream instead of in every use case that moves a
build, so no transition can forget to notify. The stream is at-least-once (a retried batch
re-delivers records): a repeated event or data point is possible, a lost one is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pixelbridge.domain.notifications import (
    EVENT_DETAIL_TYPE,
    EVENT_SOURCE,
    StatusChange,
    failure_class,
    operator_message,
    status_change,
    time_to_live_seconds,
)
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.ports import EventSink, MessageSink, MetricsPort


@dataclass(frozen=True)
class NotifyOutcome:
    change: StatusChange | None
    notified_operator: bool = False


class NotifyStatusChanges:
    def __init__(self, *, events: EventSink, operators: MessageSink, metrics: MetricsPort) -> None:
        self._events = events
        self._operators = operators
        self._metrics = metrics

    def __call__(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> NotifyOutcome:
        change = status_change(old, new)
        if change is None or new is None:
            return NotifyOutcome(None)
        self._events.put(EVENT_SOURCE, EVENT_DETAIL_TYPE, change.event_detail(), resources=[])
        notified = False
        if change.notify_operator and self._operators.configured:
            subject, message = operator_message(change)
            self._operators.publish(
                subject, message, {"buildId": change.build_id, "status": change.to_status}
            )
            notified = True
        self._record_metrics(change, new)
        return NotifyOutcome(change, notified)

    def _record_metrics(self, change: StatusChange, record: dict[str, Any]) -> None:
        if change.stuck:
            self._metrics.record("BuildsStuck", 1)
            return
        to = change.to_status
        if change.from_status is None and to == BuildStatus.RECEIVED:
            self._metrics.record("BuildsReceived", 1)
            self._metrics.record("BuildsReceivedBySource", 1, source=str(record.get("source", "unknown")))
        elif to == BuildStatus.CONVERTED:
            self._metrics.record("BuildsConverted", 1)
            speed = (record.get("manifest") or {}).get("mb_per_s")
            if isinstance(speed, int | float) and speed > 0:
                self._metrics.record("ConvertMBps", float(speed), unit="mbps")
        elif to == BuildStatus.LIVE:
            self._metrics.record("BuildsLive", 1)
            seconds = time_to_live_seconds(record)
            if seconds is not None:
                self._metrics.record("TimeToLiveSeconds", seconds, unit="seconds")
        elif to == BuildStatus.FAILED:
            self._metrics.record("BuildsFailed", 1)
            self._metrics.record("BuildsFailedByReason", 1, reasonClass=failure_class(change))
        elif to == BuildStatus.REJECTED:
            self._metrics.record("BuildsRejected", 1)
