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
from pixelbridge.domain.streampixel_webhook import distribution_witnessed, is_upload_id
from pixelbridge.domain.timeline import Clock, iso, utc_now
from pixelbridge.domain.waiting import awaited_outcome, describe_error
from pixelbridge.ports import BuildsPort, SlotsPort, StreampixelCredentials, StreampixelPort, WorkflowPort
from pixelbridge.usecases.redistribute import RedistributionRefused, Redistributor
from pixelbridge.usecases.slot_gate import SlotGate
from pixelbridge.usecases.streampixel_events import StreampixelEvents
from pixelbridge.usecases.waiting import answer_waiting_task

CallResult = TypeVar("CallResult")

MAX_TRANSIENT_ATTEMPTS = 8


class BuildNotFound(PixelBridgeError):
    """The execution names a build that has no record."""


class GaveUp(PixelBridgeError):
    """Too many failed attempts: the build fails with the last reason."""


@dataclass(frozen=True)
class ReleaseConfig:
    slot_seconds: int
    approval_timeout_seconds: int
    live_window_seconds: int
    max_rate_limited_attempts: int


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
        adopted = self._upload_seen_after_lost_answer(record)
        if adopted:
            return {"uploadId": adopted}
        if record.get("lastUploadAmbiguousAt"):
            self._builds.record_event(
                build_id,
                "upload decision",
                f"the upload-file call at {record['lastUploadAmbiguousAt']} may have reached Streampixel, "
                "but no Streampixel event for this build's fileUrl arrived since; uploading again",
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
        self._record_upload(
            build_id, f"uploadId {result.upload_id or 'not returned'}: {result.message}", fields
        )
        return {"uploadId": result.upload_id}

    def _record_upload(self, build_id: str, detail: str, fields: dict[str, Any]) -> None:
        """The answer's facts are recorded whatever events came first; then held events are replayed."""
        moved = self._builds.transition(
            build_id, BuildStatus.PROCESSING, event="uploaded", detail=detail, fields=fields, allow_same=True
        )
        if moved is None:  # a status past processing already: keep the facts, not the step back
            self._builds.record_event(build_id, "uploaded", detail, fields=fields)
        self._events.replay_held(build_id)

    def _upload_seen_after_lost_answer(self, record: BuildRecord) -> str | None:
        """After a lost upload-file answer, a held event naming our handoff token and project tells
        which upload Streampixel has: adopt it instead of uploading the build a second time."""
        if not record.get("lastUploadAmbiguousAt"):
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
            record["buildId"],
            "upload skipped",
            f"the lost upload-file answer was uploadId {upload_id}: Streampixel's events for this "
            "build's fileUrl name it, so the build is not uploaded twice",
        )
        now = self._builds.now_iso()
        self._record_upload(
            record["buildId"],
            "uploadId from Streampixel's events",
            {"uploadedAt": now, "uploadId": upload_id},
        )
        return upload_id

    # -- distribute ------------------------------------------------------------------------------
    def distribute(self, build_id: str, slot_at: str | None = None) -> dict[str, Any]:
        record = self._record(build_id)
        self._ensure_not_superseded(record, before="distribute")
        upload_id = record.get("uploadId")
        if not upload_id:
            raise StreampixelError(0, "no uploadId is known for this build; it cannot be distributed")
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
        return {"message": result.message}

    # -- waiting for Streampixel webhooks ----------------------------------------------------------
    def await_event(self, build_id: str, waiting_for: str, token: str) -> None:
        """Park the task token on the record; answer it at once if the awaited event already came."""
        record = self._builds.set_fields(build_id, {"waitToken": token, "waitingFor": waiting_for})
        if record is None:
            raise BuildNotFound(build_id)
        self._builds.record_event(build_id, "waiting", f"waiting for Streampixel: {waiting_for}")
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
        self._gate.wait(credentials.user_id, slot_at)
        try:
            return request(credentials)
        except PixelBridgeError as error:
            self._record_call_failure(record, call, error)
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

    def _record_call_failure(self, record: BuildRecord, call: str, error: PixelBridgeError) -> None:
        build_id = record["buildId"]
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
            if error.ambiguous and call == "upload-file":
                fields["lastUploadAmbiguousAt"] = self._builds.now_iso()
            self._builds.record_event(build_id, "transient failure", f"{call}: {error}", fields=fields)
            if count >= MAX_TRANSIENT_ATTEMPTS:
                raise GaveUp(f"{call} failed {count} times: {error}") from error
        else:
            self._builds.record_event(build_id, "call refused", f"{call}: {error}")
