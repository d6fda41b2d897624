"""ReconcilerFunction's use case: find builds without progress, flag them stuck, recover the truth.

Streampixel never retries a webhook, so a dropped ``build.approved`` leaves a task token parked
forever (until the workflow's own timeout). Every run reads the sparse ``open-index`` (non-terminal
builds only, range key ``updatedAt``: builds touched recently are not even read), then per build:

- flags it ``stuck`` once (flag + ``stuckAt`` + timeline entry; the status never moves backwards);
  the table stream turns that into the notification;
- a parked task token whose facts are already on the record is answered (``awaited_outcome``);
- a parked token older than the threshold with no facts is failed as ``Stuck`` so the execution
  records ``failed`` with the reason: tokens are resolved, never leaked;
- without a token, the build's current release execution (``<buildId>``, ``<buildId>-retry-<n>`` after
  an operator retry, or the operator release's) is described: one that already ended
  FAILED/TIMED_OUT/ABORTED while the record is still open makes the record ``failed``;
- a build nothing will move any more ends ``failed`` with the reason: a conversion older than any
  attempt can run (Lambda has no retry left), a requested download silent for longer than every
  FetchFunction attempt can run (stopped by its time limit or memory), a held build past the hold window;
- a held build that a newer build of its route has overtaken ends ``superseded``.

One build that cannot be read or written is counted in ``errors`` and the run goes on with the next.

Streampixel's read API is no help here: the documented endpoints (projects-status, userStats,
liveStats) carry no per-upload status, and the only one listing files (``GET /projects/{id}``)
is in the older, unverified doc set - so the reconciler trusts our records and Step Functions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pixelbridge.domain.competition import competitors
from pixelbridge.domain.reconciliation import Recovery, StuckThresholds, assess, execution_verdict, is_held
from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.release_runs import release_execution_name
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.timeline import Clock, iso, utc_now
from pixelbridge.domain.waiting import awaited_outcome
from pixelbridge.ports import BuildsPort, WorkflowPort
from pixelbridge.usecases.waiting import answer_waiting_task

STUCK_ERROR = "Stuck"


@dataclass
class ReconcileReport:
    checked: int = 0
    actions: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "actions": self.actions, "errors": self.errors}


class ReconcileBuilds:
    def __init__(
        self,
        *,
        builds: BuildsPort,
        workflow: WorkflowPort,
        thresholds: StuckThresholds,
        clock: Clock = utc_now,
        max_builds: int = 200,
    ) -> None:
        self._builds = builds
        self._workflow = workflow
        self._thresholds = thresholds
        self._clock = clock
        self._max_builds = max_builds

    def __call__(self) -> ReconcileReport:
        report = ReconcileReport()
        cutoff = iso(self._clock() - timedelta(seconds=self._thresholds.smallest))
        for candidate in self._builds.open_builds(updated_before=cutoff, limit=self._max_builds):
            build_id = str(candidate["buildId"])
            try:
                record = self._builds.get(build_id)  # the index may lag: read it consistently
                if record is None:
                    continue
                report.checked += 1
                action = self._reconcile(record)
            except Exception as error:  # one build's failure must not hide every other build
                report.errors.append({"buildId": build_id, "error": type(error).__name__})
                continue
            if action:
                report.actions.append({"buildId": build_id, "action": action})
        return report

    def _reconcile(self, record: BuildRecord) -> str | None:
        if is_held(record) and not record.get("releaseRequestedAt"):
            superseded = self._supersede_held(record)
            if superseded:
                return superseded
        waiting_for = str(record.get("waitingFor") or "")
        outcome = awaited_outcome(record, waiting_for) if record.get("waitToken") else None
        verdict = assess(record, self._clock(), self._thresholds, facts_answer_token=outcome is not None)
        if not verdict.stuck:
            return None
        flagged = (
            not record.get("stuck") and self._builds.mark_stuck(record["buildId"], verdict.reason) is not None
        )
        if verdict.recovery is Recovery.END_BUILD:
            return self._end(record, BuildStatus.FAILED, verdict.reason)
        resolved = self._resolve_wait(record, verdict.recovery, verdict.reason, outcome)
        if resolved:
            return resolved
        if verdict.recovery is not Recovery.NONE:
            # A stale token (execution over) falls through here too: the execution has the truth.
            ended = self._record_execution_end(record)
            if ended:
                return ended
        return "flagged stuck" if flagged else None

    def _resolve_wait(
        self, record: BuildRecord, recovery: Recovery, reason: str, outcome: tuple[str, dict[str, Any]] | None
    ) -> str | None:
        """Answer the parked task from the facts, or fail it as Stuck; None if it was not ours to answer."""
        if recovery is Recovery.ANSWER_WAIT and outcome is not None:
            if answer_waiting_task(self._workflow, self._builds, record, outcome):
                self._note(record, f"answered the parked task from recorded facts ({outcome[0]})")
                return "answered token"
        elif recovery is Recovery.FAIL_WAIT:
            failure = ("failure", {"error": STUCK_ERROR, "cause": reason})
            if answer_waiting_task(self._workflow, self._builds, record, failure):
                self._note(record, "failed the parked task as Stuck")
                return "failed token"
        return None

    def _record_execution_end(self, record: BuildRecord) -> str | None:
        if not self._workflow.configured:
            return None
        # The current attempt's execution: after a retry the one named <buildId> is an old, ended one.
        name = str(record.get("releaseExecution") or release_execution_name(record))
        execution = self._workflow.execution(name)
        if execution is None:
            return None
        verdict = execution_verdict(execution["status"], execution["error"], execution["cause"])
        if verdict is None:
            return None
        status, reason = verdict
        return self._end(record, status, f"{reason} [execution {name}]")

    def _supersede_held(self, record: BuildRecord) -> str | None:
        """A newer build of the route has overtaken this held one: releasing it would go backwards."""
        route = record.get("route")
        if not route or route == "-":
            return None
        newer = competitors(record, self._builds.builds_for_route(str(route), limit=25), newer=True)
        if not newer:
            return None
        reason = f"held build overtaken: build {newer[0]['buildId']} is newer on route {route}"
        return self._end(record, BuildStatus.SUPERSEDED, reason)

    def _end(self, record: BuildRecord, status: BuildStatus, reason: str) -> str | None:
        moved = self._builds.transition(
            record["buildId"], status, event="reconciled", detail=reason, fields={"error": reason}
        )
        if moved is not None and moved.get("waitToken"):
            self._builds.clear_wait_token(record["buildId"], str(moved["waitToken"]))
        return f"recorded {status}" if moved is not None else None

    def _note(self, record: BuildRecord, detail: str) -> None:
        self._builds.record_event(record["buildId"], "reconciled", detail)
