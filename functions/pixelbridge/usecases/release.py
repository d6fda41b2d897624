"""The release workflow's tasks (ReleaseFunction): each is one step of ``statemachine/release.asl.json``.

The state machine owns order, waiting and retries; these tasks own facts: they read and write
the build record, reserve rate-limit slots and call Streampixel. Errors are raised by class name
(``RateLimited``, ``Transient``, ``Superseded``, ``StreampixelError``) for the ASL to route.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from pixelbridge.domain.competition import competitors
from pixelbridge.domain.errors import PixelBridgeError, RateLimited, StreampixelError, Superseded, Transient
from pixelbridge.domain.records import BuildRecord, release_policy, release_terms
from pixelbridge.domain.slots import call_spacing_seconds, transient_backoff_seconds
from pixelbridge.domain.statuses import BuildStatus, is_terminal
from pixelbridge.domain.streampixel_webhook import distribution_witnessed
from pixelbridge.domain.timeline import Clock, iso, utc_now
from pixelbridge.domain.waiting import awaited_outcome, describe_error
from pixelbridge.ports import BuildsPort, SlotsPort, StreampixelCredentials, StreampixelPort, WorkflowPort
from pixelbridge.usecases.redistribute import RedistributionRefused, Redistributor
from pixelbridge.usecases.slot_gate import SlotGate
from pixelbridge.usecases.streampixel_events import StreampixelEvents
from pixelbridge.usecases.waiting import answer_waiting_task

CallResult = TypeVar("CallResult")

MAX_TRANSIENT_ATTEMPTS = 8
# The Streampixel write call a task has started and not yet recorded an answer for.
CALL_IN_FLIGHT = "callInFlight"


class BuildNotFound(PixelBridgeError):
    """The execution names a build that has no record."""


class GaveUp(PixelBridgeError):
    """Too many failed attempts: the build fails with the last reason."""


class UploadOutcomeUnknown(PixelBridgeError):
    """upload-file may have reached Streampixel but its answer was lost: never called again blindly,
    the state machine waits for Streampixel's events of that upload (as for a stopped task)."""


@dataclass(frozen=True)
class ReleaseConfig:
    slot_seconds: int
    approval_timeout_seconds: int
    live_window_seconds: int
    max_rate_limited_attempts: int
    upload_event_window_seconds: int = 1800


class ReleaseTasks:
    def __init__(
        self,
        *,
        builds: BuildsPort,
        slots: SlotsPort,
        streampixel: StreampixelPort,
        credentials: Callable[[str], StreampixelCredentials],
        handoff_url: Callable[[str], str],
        workflow: WorkflowPort,
        config: ReleaseConfig,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._builds = builds
        self._slots = slots
        self._streampixel = streampixel
        self._credentials = credentials
        self._handoff_url = handoff_url  # handoff key -> the URL Streampixel downloads, made per call
        self._workflow = workflow
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._redistributor = Redistributor(builds=builds, workflow=workflow, clock=clock)
        self._gate = SlotGate(slots, slot_seconds=config.slot_seconds, clock=clock, sleep=sleep)
        self._events = StreampixelEvents(builds=builds, workflow=workflow, handoff=None)

    # -- prepare ---------------------------------------------------------------------------------
    def prepare(self, build_id: str) -> dict[str, Any]:
        """Everything the state machine needs to route this build, and supersede older waiting builds."""
        record = self._record(build_id)
        if not record.get("redistribution"):  # a rollback target is older on purpose
            self._supersede_older_waiting_builds(record)
        return {
            "buildId": build_id,
            "policy": release_policy(record),
            "approvalTimeoutSeconds": self._config.approval_timeout_seconds,
            "liveWindowSeconds": max(1, self._config.live_window_seconds),
            "uploadEventWindowSeconds": self._config.upload_event_window_seconds,
        }

    def _supersede_older_waiting_builds(self, record: BuildRecord) -> None:
        for older in competitors(record, self._route_builds(record), newer=False):
            # An auto build is released by Streampixel itself once uploaded: nothing left to stop.
            if (
                release_policy(older) != "auto"
                and older.get("waitToken")
                and older.get("waitingFor") == "approval"
            ):
                self._workflow.fail(
                    str(older["waitToken"]), "Superseded", f"build {record['buildId']} is newer on this route"
                )

    # -- slots -----------------------------------------------------------------------------------
    def reserve_slot(self, build_id: str, purpose: str, last_error: dict[str, Any] | None) -> dict[str, Any]:
        record = self._record(build_id)
        self._ensure_not_superseded(record, before=purpose)
        user_id = self._credentials(self._account(record)).user_id
        now = self._clock()
        not_before = now
        if last_error and last_error.get("Error") == "Transient":
            attempts = int(record.get("transientAttempts", 0))
            backoff = transient_backoff_seconds(attempts, base=max(1.0, float(self._config.slot_seconds)))
            not_before = now + timedelta(seconds=backoff)
        slot = self._slots.reserve(user_id, not_before, call_spacing_seconds(self._config.slot_seconds))
        detail = f"{purpose} slot at {iso(slot)} (in {max(0.0, (slot - now).total_seconds()):.0f} s)"
        if purpose == "upload":
            moved = self._builds.transition(
                build_id, BuildStatus.QUEUED, event="slot reserved", detail=detail, allow_same=True
            )
            if moved is None:
                self._builds.record_event(build_id, "slot reserved", detail)
        else:
            self._builds.record_event(build_id, "slot reserved", detail)
        return {"at": iso(slot)}

    # -- upload ----------------------------------------------------------------------------------
    def upload(self, build_id: str, slot_at: str | None = None) -> dict[str, Any]:
        record = self._record(build_id)
        if record.get("uploadId"):
            self._builds.record_event(
                build_id,
                "upload skipped",
                f"Streampixel already has this build (uploadId {record['uploadId']})",
            )
            return {"uploadId": record["uploadId"]}
        self._ensure_not_superseded(record, before="upload")
        release = record["release"]
        adopted = self._events.adopt_unanswered_upload(build_id)
        if adopted:
            return {"uploadId": adopted}
        if record.get("uploadOutcomeUnknownAt"):  # only an operator retry comes back here
            self._builds.remove_fields(build_id, ["uploadOutcomeUnknownAt"])
            self._builds.record_event(
                build_id,
                "upload decision",
                f"the upload-file call before {record['uploadOutcomeUnknownAt']} was never answered and "
                "Streampixel sent no event for it; uploading again because an operator retried the build",
            )
        moved = self._builds.transition(
            build_id,
            BuildStatus.UPLOADING,
            event="uploading",
            detail=f"upload-file to project {release['streampixelProjectId']}",
            allow_same=True,
        )
        if moved is None:
            self._refuse_upload_of_ended_build(build_id)
        result = self._call_in_slot(
            record,
            "upload-file",
            slot_at,
            lambda credentials: self._streampixel.upload_file(
                credentials,
                release["streampixelProjectId"],
                self._handoff_url(str(record["zipKey"])),
                auto_release=release.get("policy", "auto") == "auto",
            ),
        )
        fields: dict[str, Any] = {"uploadedAt": self._builds.now_iso()}
        if result.upload_id:
            fields["uploadId"] = result.upload_id
        self._events.record_upload(
            build_id, f"uploadId {result.upload_id or 'not returned'}: {result.message}", fields
        )
        self._builds.remove_fields(build_id, [CALL_IN_FLIGHT])  # only once the answer is on the record
        return {"uploadId": result.upload_id}

    # -- distribute ------------------------------------------------------------------------------
    def distribute(self, build_id: str, slot_at: str | None = None) -> dict[str, Any]:
        record = self._record(build_id)
        self._ensure_not_superseded(record, before="distribute")
        upload_id = record.get("uploadId")
        if not upload_id:
            raise StreampixelError(0, "no uploadId is known for this build; it cannot be distributed")
        if self._distribution_seen_after_lost_answer(record):
            return {"message": "distribution already started"}
        release = record["release"]
        result = self._call_in_slot(
            record,
            "distribute-file",
            slot_at,
            lambda credentials: self._streampixel.distribute_file(
                credentials, release["streampixelProjectId"], upload_id
            ),
        )
        requested = {"distributeRequestedAt": self._builds.now_iso()}
        moved = self._builds.transition(
            build_id,
            BuildStatus.DISTRIBUTING,
            event="distribute requested",
            detail=result.message,
            fields=requested,
            allow_same=True,
        )
        if moved is None:  # a live build re-distributed (rollback): the fact, without a status move
            self._builds.record_event(build_id, "distribute requested", result.message, fields=requested)
        self._builds.remove_fields(build_id, [CALL_IN_FLIGHT, "distributeOutcomeUnknownAt"])
        return {"message": result.message}

    def _distribution_seen_after_lost_answer(self, record: BuildRecord) -> bool:
        """A distribute-file whose answer was lost did start distribution if Streampixel said so: then
        the call is not repeated (repeating it would be harmless, but costs a rate-limit window)."""
        if record.get("redistribution") or not record.get("distributeOutcomeUnknownAt"):
            return False
        if not (distribution_witnessed(record) or record.get("liveApprovedAt")):
            return False
        self._builds.record_event(
            record["buildId"],
            "distribute skipped",
            "Streampixel's events show the distribution of the unanswered distribute-file call started",
            fields={"distributeRequestedAt": record["distributeOutcomeUnknownAt"]},
        )
        self._builds.remove_fields(record["buildId"], ["distributeOutcomeUnknownAt"])
        return True

    # -- a task stopped during a Streampixel call (Lambda.Unknown) ---------------------------------
    def interrupted(self, build_id: str, call: str) -> dict[str, str]:
        """The Upload or Distribute task was stopped (timeout, crash): Lambda cannot say whether the
        call reached Streampixel. The intent written just before the call tells whether it may have.

        Answers ``{"next": ...}``: ``retry`` (a new slot), ``wait`` (for Streampixel's events of an
        upload that may exist; upload-file is never called again) or ``continue`` (the events came).
        """
        record = self._record(build_id)
        count = int(record.get("interruptedCalls", 0)) + 1
        fields: dict[str, Any] = {"interruptedCalls": count}
        in_flight = record.get(CALL_IN_FLIGHT) or {}
        if call == "upload-file" and record.get("uploadId"):
            self._builds.record_event(
                build_id, "upload interrupted", "after its answer was recorded", fields=fields
            )
            self._builds.remove_fields(build_id, [CALL_IN_FLIGHT])
            return {"next": "continue"}
        if call == "upload-file" and record.get("uploadOutcomeUnknownAt"):  # this task ran before
            return {"next": "continue" if self._events.adopt_unanswered_upload(build_id) else "wait"}
        if in_flight.get("call") != call:
            self._builds.record_event(
                build_id,
                f"{call} interrupted",
                f"the task stopped before {call} was sent; taking a new slot",
                fields=fields,
            )
            if count >= MAX_TRANSIENT_ATTEMPTS:
                raise GaveUp(f"the {call} task was stopped {count} times")
            return {"next": "retry"}
        started = str(in_flight.get("startedAt", "?"))
        if call == "distribute-file":
            fields["distributeOutcomeUnknownAt"] = record.get("distributeOutcomeUnknownAt") or started
            self._builds.record_event(
                build_id,
                "distribute outcome unknown",
                f"the task stopped during the distribute-file call started at {started}; distributing the "
                "same upload again only re-pushes it, so it is asked again in a new slot unless "
                "Streampixel's events show the distribution started",
                fields=fields,
            )
            self._builds.remove_fields(build_id, [CALL_IN_FLIGHT])
            if count >= MAX_TRANSIENT_ATTEMPTS:
                raise GaveUp(f"the distribute-file task was stopped {count} times")
            return {"next": "retry"}
        self._record_upload_outcome_unknown(build_id, started, "the task stopped during", fields)
        self._builds.remove_fields(build_id, [CALL_IN_FLIGHT])
        return {"next": "continue" if self._events.adopt_unanswered_upload(build_id) else "wait"}

    def _record_upload_outcome_unknown(
        self, build_id: str, started: str, how: str, fields: dict[str, Any]
    ) -> None:
        """From here upload-file is never called again for this attempt (only an operator retry does)."""
        fields["uploadOutcomeUnknownAt"] = started
        self._builds.record_event(
            build_id,
            "upload outcome unknown",
            f"{how} the upload-file call started at {started}; Streampixel may have the build, so "
            "upload-file is not called again: waiting up to "
            f"{self._config.upload_event_window_seconds} s for Streampixel's events for this build's fileUrl",
            fields=fields,
        )

    # -- waiting for Streampixel webhooks ----------------------------------------------------------
    def await_event(self, build_id: str, waiting_for: str, token: str) -> None:
        """Park the task token on the record; answer it at once if the awaited event already came."""
        record = self._builds.set_fields(build_id, {"waitToken": token, "waitingFor": waiting_for})
        if record is None:
            raise BuildNotFound(build_id)
        self._builds.record_event(build_id, "waiting", f"waiting for Streampixel: {waiting_for}")
        if waiting_for == "upload" and self._events.adopt_unanswered_upload(build_id):
            return  # an event held meanwhile named the upload; adopting it answered the token
        outcome = awaited_outcome(record, waiting_for)
        if outcome is not None:
            answer_waiting_task(self._workflow, self._builds, record, outcome)

    # -- endings ---------------------------------------------------------------------------------
    def finish(
        self, build_id: str, outcome: str, error: dict[str, Any] | None, note: str = ""
    ) -> dict[str, Any]:
        record = self._record(build_id)
        reason = describe_error(error) if error else note
        if record.get("redistribution"):
            return self._finish_redistribution(record, outcome, reason)
        target = {
            "live": BuildStatus.LIVE,
            "held": BuildStatus.APPROVED,
            "rejected": BuildStatus.REJECTED,
            "superseded": BuildStatus.SUPERSEDED,
            "failed": BuildStatus.FAILED,
        }[outcome]
        fields: dict[str, Any] = {}
        if target in {BuildStatus.FAILED, BuildStatus.SUPERSEDED}:
            fields["error"] = reason
        if target is BuildStatus.REJECTED:
            fields["objection"] = record.get("objection") or reason
        if target is BuildStatus.LIVE:
            fields["liveAt"] = fields["liveSince"] = self._builds.now_iso()
        event = {"held": "held for operator release"}.get(outcome, outcome)
        moved = self._builds.transition(
            build_id, target, event=event, detail=reason, fields=fields, allow_same=True
        )
        if moved is None:
            current = self._record(build_id)
            self._builds.record_event(
                build_id,
                f"{outcome} not applied",
                f"build is already {current['status']}; {reason}".strip("; "),
            )
            moved = current
        if moved.get("waitToken"):
            self._builds.clear_wait_token(build_id, str(moved["waitToken"]))
        if target is BuildStatus.REJECTED and moved["status"] == BuildStatus.REJECTED:
            self._keep_route_live(record, reason)
        return {"status": moved["status"]}

    def _finish_redistribution(self, record: BuildRecord, outcome: str, reason: str) -> dict[str, Any]:
        """End of a rollback / never dark execution: facts on the timeline, the status stays."""
        build_id = record["buildId"]
        marker = record["redistribution"]
        kind = str(marker.get("kind", "rollback"))
        fields: dict[str, Any] = {}
        if outcome == "live":
            now = self._builds.now_iso()
            fields["liveSince"] = now
            moved = self._builds.transition(  # an approved (never released) target goes live for real
                build_id, BuildStatus.LIVE, event="live", detail=reason, fields={"liveAt": now, **fields}
            )
            detail = f"uploadId {marker.get('uploadId')} is live again on route {record.get('route')}"
            self._builds.record_event(
                build_id, f"{kind} live", f"{detail}. {reason}".strip(". "), fields=fields
            )
            if moved is None and record.get("status") != BuildStatus.LIVE:
                self._builds.record_event(build_id, "live not applied", f"build is {record['status']}")
        else:
            self._builds.record_event(build_id, f"{kind} {outcome}", reason or outcome)
        self._builds.remove_fields(build_id, ["redistribution"])
        current = self._record(build_id)
        if current.get("waitToken"):
            self._builds.clear_wait_token(build_id, str(current["waitToken"]))
        return {"status": current["status"], "redistribution": outcome}

    def _keep_route_live(self, rejected: BuildRecord, reason: str) -> None:
        """Never dark: a release rejected after distribution started may have left the route dark,
        so the route's previous live upload is distributed again (through the same slot queue)."""
        route = rejected.get("route")
        if not (release_terms(rejected).never_dark and route and route != "-"):
            return
        # Two signals, never a rejection alone: Streampixel's own answer to our distribute-file call,
        # or a build.distributing of this same upload, before the rejection that vouched for the build.
        if not (rejected.get("distributeRequestedAt") or distribution_witnessed(rejected)):
            return
        build_id = rejected["buildId"]
        previous = self._redistributor.current_live(str(route), excluding=build_id)
        if previous is None:
            self._builds.record_event(
                build_id, "never dark", "no earlier live build on this route to restore"
            )
            return
        why = f"build {build_id} was rejected after distribution started ({reason})"
        try:
            started_run = self._redistributor.start(previous, kind="neverdark", reason=why)
        except RedistributionRefused as refused:
            self._builds.record_event(build_id, "never dark not started", str(refused))
            return
        self._builds.record_event(
            build_id,
            "never dark",
            f"re-distributing the previous live build {started_run.build_id} "
            f"(uploadId {started_run.upload_id}) so route {route} keeps streaming",
        )

    # -- helpers ---------------------------------------------------------------------------------
    def _call_in_slot(
        self,
        record: BuildRecord,
        call: str,
        slot_at: str | None,
        request: Callable[[StreampixelCredentials], CallResult],
    ) -> CallResult:
        """Make one Streampixel write call inside the user's slot; record why it failed, if it did."""
        credentials = self._credentials(self._account(record))
        intent: dict[str, str] = {}

        def write_intent() -> None:  # a task stopped after this may have reached Streampixel
            intent.update(call=call, startedAt=self._builds.now_iso(), slotAt=slot_at or "")
            self._builds.set_fields(record["buildId"], {CALL_IN_FLIGHT: intent})

        try:
            self._gate.wait(credentials.user_id, slot_at, before_claim=write_intent)
        except RateLimited:  # the queue moved: no call was made
            self._builds.remove_fields(record["buildId"], [CALL_IN_FLIGHT])
            raise
        try:
            return request(credentials)
        except PixelBridgeError as error:
            try:
                self._record_call_failure(record, call, error, started=intent.get("startedAt", "?"))
            finally:  # only once the failure is on the record: a task stopped before still sees the intent
                self._builds.remove_fields(record["buildId"], [CALL_IN_FLIGHT])
            raise
        finally:
            self._slots.call_ended(credentials.user_id, self._clock())

    def _record(self, build_id: str) -> BuildRecord:
        record = self._builds.get(build_id)
        if record is None:
            raise BuildNotFound(f"no build record for {build_id}")
        return record

    @staticmethod
    def _account(record: BuildRecord) -> str:
        return release_terms(record).account

    def _route_builds(self, record: BuildRecord) -> list[BuildRecord]:
        route = record.get("route")
        return self._builds.builds_for_route(route, limit=50) if route and route != "-" else []

    def _refuse_upload_of_ended_build(self, build_id: str) -> None:
        """The build ended while this task ran (superseded in BuildPixel, failed): never upload it."""
        status = BuildStatus(self._record(build_id)["status"])
        if status is BuildStatus.SUPERSEDED:
            raise Superseded(f"build {build_id} was superseded; this build was not sent to Streampixel")
        if is_terminal(status):
            raise GaveUp(f"build {build_id} is already {status}; upload-file was not called")

    def _ensure_not_superseded(self, record: BuildRecord, *, before: str) -> None:
        if record.get("redistribution"):
            return  # an operator rollback / never dark re-distributes an older build on purpose
        newer = competitors(record, self._route_builds(record), newer=True)
        if newer:
            raise Superseded(
                f"build {newer[0]['buildId']} is newer on route {record['route']}; "
                f"this build was not sent to Streampixel ({before} skipped)"
            )

    def _record_call_failure(
        self, record: BuildRecord, call: str, error: PixelBridgeError, *, started: str
    ) -> None:
        build_id = record["buildId"]
        if isinstance(error, Transient) and error.ambiguous and call == "upload-file":
            how = f"the answer was lost ({error}) for"
            self._record_upload_outcome_unknown(build_id, started, how, {})
            raise UploadOutcomeUnknown(f"upload-file outcome unknown: {error}") from error
        if isinstance(error, RateLimited):
            count = int(record.get("rateLimitedCount", 0)) + 1
            self._builds.record_event(
                build_id,
                "rate limited",
                f"{call} answered 429; taking a new slot",
                fields={"rateLimitedCount": count},
            )
            if count >= self._config.max_rate_limited_attempts:
                raise GaveUp(f"{call} was rate limited {count} times in a row") from error
        elif isinstance(error, Transient):
            count = int(record.get("transientAttempts", 0)) + 1
            fields: dict[str, Any] = {"transientAttempts": count}
            self._builds.record_event(build_id, "transient failure", f"{call}: {error}", fields=fields)
            if count >= MAX_TRANSIENT_ATTEMPTS:
                raise GaveUp(f"{call} failed {count} times: {error}") from error
        else:
            self._builds.record_event(build_id, "call refused", f"{call}: {error}")
