"""Streampixel webhook events: record them on the build, move its status, resume the waiting task.

Streampixel signs nothing and never retries, and events come "roughly" in order, so every event
is matched to a build we submitted (uploadId first, then the handoff token in fileUrl), is
idempotent, and never moves a build backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pixelbridge.domain.handoff import token_from_url
from pixelbridge.domain.records import BuildRecord, release_policy, release_terms
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.streampixel_webhook import StreampixelEvent
from pixelbridge.domain.waiting import awaited_outcome
from pixelbridge.ports import BuildsPort, HandoffPort, WorkflowPort
from pixelbridge.usecases.waiting import answer_waiting_task

BUILD_EVENTS = {
    "build.uploaded",
    "build.downloading",
    "build.extracting",
    "build.saving",
    "build.distributing",
    "build.approved",
    "build.rejected",
}
# Once Streampixel extracts the zip it has its own copy: the handoff URL can stop working.
_DOWNLOADED_EVENTS = {
    "build.extracting",
    "build.saving",
    "build.distributing",
    "build.approved",
    "build.rejected",
}


@dataclass(frozen=True)
class EventOutcome:
    matched: bool
    build_id: str | None = None
    note: str = ""


class StreampixelEvents:
    def __init__(self, *, builds: BuildsPort, workflow: WorkflowPort, handoff: HandoffPort) -> None:
        self._builds = builds
        self._workflow = workflow
        self._handoff = handoff

    def handle(self, payload: StreampixelEvent) -> EventOutcome:
        event = payload.event or ""
        if event == "webhook.test":
            return EventOutcome(False, note="webhook.test received")
        if event not in BUILD_EVENTS:
            return EventOutcome(False, note=f"ignored unknown event {event[:64]!r}")
        record = self._find_build(payload)
        if record is None:
            return EventOutcome(False, note=f"{event} for an upload PixelBridge did not submit")
        if self._is_duplicate(record, event, payload):
            self._answer(record)
            return EventOutcome(True, record["buildId"], "duplicate event")
        updated = self._apply(record, event, payload)
        self._answer(updated)
        self._delete_handoff_zip_once_downloaded(updated, event)
        return EventOutcome(True, record["buildId"], event)

    def _find_build(self, payload: StreampixelEvent) -> BuildRecord | None:
        upload_id = payload.upload_id
        record = self._builds.find_by_upload_id(upload_id) if upload_id else None
        if record is None:
            token = token_from_url(payload.file_url)
            record = self._builds.find_by_handoff_token(token) if token else None
        if record is None:
            return None
        if upload_id and upload_id in (record.get("previousUploadIds") or []):
            return None  # a late event of an upload an operator retry has replaced
        expected_project = release_terms(record).project_id
        if payload.project_id not in (None, expected_project):
            return None
        return record

    @staticmethod
    def _is_duplicate(record: BuildRecord, event: str, payload: StreampixelEvent) -> bool:
        stamp = payload.timestamp
        return (
            any(
                entry.get("event") == event and (entry.get("data") or {}).get("timestamp") == stamp
                for entry in record.get("timeline", [])
            )
            if stamp
            else False
        )

    def _apply(self, record: BuildRecord, event: str, payload: StreampixelEvent) -> BuildRecord:
        build_id = record["buildId"]
        now = self._builds.now_iso()
        fields: dict[str, Any] = {"lastStreampixelEvent": event}
        upload_id = payload.upload_id
        if upload_id and not record.get("uploadId"):
            fields["uploadId"] = upload_id  # matched by fileUrl: the upload response was lost
        status = payload.status or ""
        detail = f"Streampixel: {status}" if status else "Streampixel"
        target: BuildStatus | None = BuildStatus.PROCESSING
        policy = release_policy(record)
        if event == "build.distributing":
            target = BuildStatus.DISTRIBUTING
            fields["distributionStartedAt"] = record.get("distributionStartedAt") or now
        elif event == "build.approved":
            fields["approvedAt"] = record.get("approvedAt") or now
            after_distribution = policy == "auto" or bool(record.get("distributeRequestedAt"))
            if after_distribution:
                fields["liveApprovedAt"] = record.get("liveApprovedAt") or now
                target = None  # the workflow records `live` once it has checked the facts
            else:
                target = BuildStatus.APPROVED
        elif event == "build.rejected":
            objection = payload.objection or "rejected by Streampixel (no objection given)"
            fields.update({"rejectedAt": now, "objection": objection})
            detail = f"Streampixel rejected the build: {objection}"
            target = BuildStatus.REJECTED
            fields["error"] = objection
        data = {"timestamp": payload.timestamp} if payload.timestamp else None
        if target is not None:
            moved = self._builds.transition(
                build_id, target, event=event, detail=detail, fields=fields, data=data, allow_same=True
            )
            if moved is not None:
                return moved
        return self._builds.record_event(build_id, event, detail, fields=fields, data=data) or record

    def _answer(self, record: BuildRecord) -> None:
        waiting_for = record.get("waitingFor")
        if not waiting_for:
            return
        outcome = awaited_outcome(record, str(waiting_for))
        if outcome is not None:
            answer_waiting_task(self._workflow, self._builds, record, outcome)

    def _delete_handoff_zip_once_downloaded(self, record: BuildRecord, event: str) -> None:
        key = record.get("zipKey")
        if event not in _DOWNLOADED_EVENTS or not key or record.get("zipDeletedAt"):
            return
        self._handoff.delete(str(key))
        self._builds.record_event(
            record["buildId"],
            "handoff zip deleted",
            "Streampixel has downloaded it",
            fields={"zipDeletedAt": self._builds.now_iso()},
        )
