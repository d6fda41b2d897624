"""Streampixel webhook events: record them on the build, move its status, resume the waiting task.

Streampixel signs nothing and never retries, and events come "roughly" in order. An event changes a
build only when it vouches for it: its projectId, its uploadId and the handoff token in its fileUrl
(a secret only Streampixel and we know) all match the build. Any other event found through one of
those keys is held on the build (bounded) and changes nothing; it is replayed once the upload-file
answer tells us the uploadId. Irreversible steps need more than one event's word (see
``domain/streampixel_webhook.py``). Events are idempotent and never move a build backwards.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from pixelbridge.domain.handoff import token_from_url
from pixelbridge.domain.records import BuildRecord, release_policy, release_terms
from pixelbridge.domain.statuses import BuildStatus, is_terminal
from pixelbridge.domain.streampixel_webhook import (
    BEFORE_APPROVAL_EVENTS,
    MAX_HELD_EVENTS,
    StreampixelEvent,
    approval_confirmed,
    capped,
    handoff_downloaded,
    is_upload_id,
    seen_events,
)
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


@dataclass(frozen=True)
class EventOutcome:
    matched: bool
    build_id: str | None = None
    note: str = ""


def _same_secret(given: str | None, expected: object) -> bool:
    return bool(given) and isinstance(expected, str) and hmac.compare_digest(str(given), expected)


def vouches_for(record: BuildRecord, payload: StreampixelEvent) -> bool:
    """projectId, uploadId and the fileUrl's handoff token all match the build's own."""
    return (
        payload.project_id == release_terms(record).project_id
        and bool(record.get("uploadId"))
        and payload.upload_id == record.get("uploadId")
        and _same_secret(token_from_url(payload.file_url), record.get("handoffToken"))
    )


def held_entry(record: BuildRecord, payload: StreampixelEvent) -> dict[str, Any]:
    """What is kept of an event that did not vouch for the build: no URL, capped texts."""
    return {
        "event": str(payload.event),
        "uploadId": capped(payload.upload_id or "", 64),
        "timestamp": capped(payload.timestamp or "", 40),
        "status": capped(payload.status or "", 64),
        "objection": capped(payload.objection or ""),
        "projectMatches": payload.project_id == release_terms(record).project_id,
        "tokenMatches": _same_secret(token_from_url(payload.file_url), record.get("handoffToken")),
    }


class StreampixelEvents:
    def __init__(self, *, builds: BuildsPort, workflow: WorkflowPort, handoff: HandoffPort | None) -> None:
        self._builds = builds
        self._workflow = workflow
        self._handoff = handoff  # None: replaying held events, the zip is left for the next event

    def handle(self, payload: StreampixelEvent) -> EventOutcome:
        event = payload.event or ""
        if event == "webhook.test":
            return EventOutcome(False, note="webhook.test received")
        if event not in BUILD_EVENTS:
            return EventOutcome(False, note=f"ignored unknown event {event[:64]!r}")
        record = self._find_build(payload)
        if record is None:
            return EventOutcome(False, note=f"{event} for an upload PixelBridge did not submit")
        if not vouches_for(record, payload):
            build_id = record["buildId"]
            self._hold(record, payload)
            if self._upload_outcome_unknown(build_id) and self.adopt_unanswered_upload(build_id):
                return EventOutcome(True, build_id, f"{event}: the upload of the lost answer")
            return EventOutcome(False, build_id, f"{event} held: it does not match the build")
        return self._accept(record, payload)

    def adopt_unanswered_upload(self, build_id: str) -> str | None:
        """After an upload-file call whose answer never came, a held event naming our handoff token and
        project tells which upload Streampixel has: the build continues on it (never uploaded twice)."""
        record = self._builds.get(build_id)
        if record is None or record.get("uploadId") or is_terminal(record["status"]):
            return None  # an ended build stays ended: a late event is kept as a fact, not a revival
        if not record.get("uploadOutcomeUnknownAt"):
            return None
        previous = set(record.get("previousUploadIds") or [])
        candidates = [
            str(entry["uploadId"])
            for entry in record.get("heldEvents") or []
            if entry.get("tokenMatches")
            and entry.get("projectMatches")
            and entry.get("uploadId")
            and entry["uploadId"] not in previous
            and is_upload_id(str(entry["uploadId"]))
        ]
        if not candidates:
            return None
        upload_id = candidates[-1]  # queued uploads are processed in order: the last one serves
        self._builds.record_event(
            build_id,
            "upload skipped",
            f"the lost upload-file answer was uploadId {upload_id}: Streampixel's events for this "
            "build's fileUrl name it, so the build is not uploaded twice",
        )
        fields = {"uploadedAt": self._builds.now_iso(), "uploadId": upload_id}
        self.record_upload(build_id, "uploadId from Streampixel's events", fields)
        self._answer(self._builds.get(build_id) or record)
        return upload_id

    def _upload_outcome_unknown(self, build_id: str) -> bool:
        """Read after the hold is written: the release task sets the flag (task stopped, or answer lost),
        then reads the held events, so one of the two sees the other's write and the upload is adopted."""
        record = self._builds.get(build_id)
        return bool(record and record.get("uploadOutcomeUnknownAt"))

    def record_upload(self, build_id: str, detail: str, fields: dict[str, Any]) -> None:
        """The answer's facts are recorded whatever events came first; then held events are replayed."""
        moved = self._builds.transition(
            build_id, BuildStatus.PROCESSING, event="uploaded", detail=detail, fields=fields, allow_same=True
        )
        if moved is None:  # a status past processing already: keep the facts, not the step back
            self._builds.record_event(build_id, "uploaded", detail, fields=fields)
        self.replay_held(build_id)

    def replay_held(self, build_id: str) -> int:
        """Apply the held events that vouch for the build now that its uploadId is known."""
        record = self._builds.get(build_id)
        if record is None or not record.get("uploadId"):
            return 0
        held = [entry for entry in record.get("heldEvents") or [] if self._held_vouches(record, entry)]
        for entry in held:
            current = self._builds.get(build_id) or record
            self._accept(current, self._replayable(current, entry))
        return len(held)

    def _accept(self, record: BuildRecord, payload: StreampixelEvent) -> EventOutcome:
        event = str(payload.event)
        if self._is_duplicate(record, event, payload):
            self._answer(record)
            return EventOutcome(True, record["buildId"], "duplicate event")
        updated = self._apply(record, event, payload)
        held_approval = updated.get("approvalHeldAt") and not updated.get("approvedAt")
        if event in BEFORE_APPROVAL_EVENTS and held_approval and approval_confirmed(updated):
            # an approval that came before the stages vouching for it counts now
            updated = self._apply(updated, "build.approved", payload.model_copy(update={"timestamp": None}))
        self._answer(updated)
        self._delete_handoff_zip_once_downloaded(updated)
        return EventOutcome(True, record["buildId"], event)

    def _find_build(self, payload: StreampixelEvent) -> BuildRecord | None:
        upload_id = payload.upload_id
        record = self._builds.find_by_upload_id(upload_id) if upload_id else None
        if record is None:
            token = token_from_url(payload.file_url)
            record = self._builds.find_by_handoff_token(token) if token else None
        return record

    def _hold(self, record: BuildRecord, payload: StreampixelEvent) -> None:
        held = list(record.get("heldEvents") or [])[-(MAX_HELD_EVENTS - 1) :]
        held.append(held_entry(record, payload))
        self._builds.set_fields(record["buildId"], {"heldEvents": held})

    @staticmethod
    def _held_vouches(record: BuildRecord, entry: dict[str, Any]) -> bool:
        return bool(
            entry.get("projectMatches")
            and entry.get("tokenMatches")
            and entry.get("uploadId") == record.get("uploadId")
        )

    @staticmethod
    def _replayable(record: BuildRecord, entry: dict[str, Any]) -> StreampixelEvent:
        """The held event as it vouched (its URL was not kept, and no stored URL is needed: it matched)."""
        return StreampixelEvent.model_validate(
            {
                "event": entry.get("event"),
                "projectId": release_terms(record).project_id,
                "uploadId": entry.get("uploadId"),
                "status": entry.get("status"),
                "objection": entry.get("objection"),
                "timestamp": entry.get("timestamp"),
            }
        )

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
        seen = sorted(seen_events(record) | {event})
        fields: dict[str, Any] = {
            "lastStreampixelEvent": event,
            "seenEvents": {"uploadId": record["uploadId"], "events": seen},
        }
        status = capped(payload.status or "", 64)
        detail = f"Streampixel: {status}" if status else "Streampixel"
        data = {"timestamp": payload.timestamp} if payload.timestamp else None
        if is_terminal(record["status"]) and not record.get("redistribution"):
            # a late (or forged) event of an ended build is a fact, not a change
            return self._builds.record_event(build_id, event, detail, data=data) or record
        target: BuildStatus | None = BuildStatus.PROCESSING
        if event == "build.distributing":
            target = BuildStatus.DISTRIBUTING
            fields["distributionStartedAt"] = record.get("distributionStartedAt") or now
        elif event == "build.approved":
            if not approval_confirmed({**record, **fields}):
                fields["approvalHeldAt"] = record.get("approvalHeldAt") or now
                detail = "Streampixel sent build.approved before any earlier stage of this upload: held"
                target = None
            else:
                target = self._approve(record, fields, now)
        elif event == "build.rejected":
            objection = capped(payload.objection or "rejected by Streampixel (no objection given)")
            fields.update({"rejectedAt": now, "objection": objection, "error": objection})
            detail = f"Streampixel rejected the build: {objection}"
            target = BuildStatus.REJECTED
        if target is not None:
            moved = self._builds.transition(
                build_id, target, event=event, detail=detail, fields=fields, data=data, allow_same=True
            )
            if moved is not None:
                return moved
        return self._builds.record_event(build_id, event, detail, fields=fields, data=data) or record

    @staticmethod
    def _approve(record: BuildRecord, fields: dict[str, Any], now: str) -> BuildStatus | None:
        fields["approvedAt"] = record.get("approvedAt") or now
        # after a distribute-file whose answer was lost, an approval can only follow that distribution
        if (
            release_policy(record) == "auto"
            or record.get("distributeRequestedAt")
            or record.get("distributeOutcomeUnknownAt")
        ):
            fields["liveApprovedAt"] = record.get("liveApprovedAt") or now
            return None  # the workflow records `live` once it has checked the facts
        return BuildStatus.APPROVED

    def _answer(self, record: BuildRecord) -> None:
        waiting_for = record.get("waitingFor")
        if not waiting_for:
            return
        outcome = awaited_outcome(record, str(waiting_for))
        if outcome is not None:
            answer_waiting_task(self._workflow, self._builds, record, outcome)

    def _delete_handoff_zip_once_downloaded(self, record: BuildRecord) -> None:
        key = record.get("zipKey")
        if self._handoff is None or not key or record.get("zipDeletedAt") or not handoff_downloaded(record):
            return
        self._handoff.delete(str(key))
        self._builds.record_event(
            record["buildId"],
            "handoff zip deleted",
            "two Streampixel events of this upload show it has downloaded the zip",
            fields={"zipDeletedAt": self._builds.now_iso()},
        )
