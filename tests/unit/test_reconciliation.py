"""Stuck-build decisions (pure) and the reconcile use case against in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pixelbridge.domain.reconciliation import (
    Recovery,
    StuckThresholds,
    assess,
    execution_verdict,
)
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.timeline import iso
from pixelbridge.usecases.reconcile import ReconcileBuilds
from tests.support.fakes import InMemoryBuilds, RecordingWorkflow

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
THRESHOLDS = StuckThresholds(
    ingest_seconds=3600, convert_seconds=1200, queue_seconds=3600, release_seconds=7200
)


def ago(minutes: float) -> str:
    return iso(NOW - timedelta(minutes=minutes))


def build(status: str, progress_minutes_ago: float, **fields: Any) -> dict[str, Any]:
    timeline = [{"at": ago(progress_minutes_ago), "event": status, "status": status}]
    timeline += fields.pop("extra_timeline", [])
    return {"buildId": "b-1", "status": status, "route": "r", "timeline": timeline, **fields}


def test_thresholds_per_status_and_release_default() -> None:
    derived = StuckThresholds.from_settings(ingest=1, convert=2, queue=3, release=0, approval_timeout=600)
    assert derived.release_seconds == 600 + 900
    assert derived.for_status("converting") == 2 and derived.for_status("live") is None
    assert derived.smallest == 1


def test_recent_progress_terminal_and_held_builds_are_not_stuck() -> None:
    assert not assess(build("converting", 19), NOW, THRESHOLDS, facts_answer_token=False).stuck
    assert not assess(build("failed", 999), NOW, THRESHOLDS, facts_answer_token=False).stuck
    held = build("approved", 999, release={"policy": "hold"})
    assert not assess(held, NOW, THRESHOLDS, facts_answer_token=False).stuck


def test_notes_are_not_progress() -> None:
    record = build("queued", 61, extra_timeline=[{"at": ago(1), "event": "slot reserved"}])
    verdict = assess(record, NOW, THRESHOLDS, facts_answer_token=False)
    assert verdict.stuck and verdict.recovery is Recovery.CHECK_EXECUTION
    assert "no progress for 61 min in status queued" in verdict.reason


def test_pre_workflow_builds_are_only_flagged() -> None:
    verdict = assess(build("received", 61), NOW, THRESHOLDS, facts_answer_token=False)
    assert verdict.stuck and verdict.recovery is Recovery.NONE


def test_a_conversion_older_than_any_attempt_can_run_ends_the_build() -> None:
    verdict = assess(build("converting", 21, convertAttempts=2), NOW, THRESHOLDS, facts_answer_token=False)
    assert verdict.stuck and verdict.recovery is Recovery.END_BUILD
    assert "conversion did not finish: 2 attempt(s) started" in verdict.reason


def test_a_held_build_expires_after_the_hold_window_only() -> None:
    window = StuckThresholds(hold_seconds=3 * 86_400)
    held = build("approved", 3 * 24 * 60 - 1, release={"policy": "hold"})
    assert not assess(held, NOW, window, facts_answer_token=False).stuck
    expired = assess(
        build("approved", 3 * 24 * 60, release={"policy": "hold"}), NOW, window, facts_answer_token=False
    )
    assert expired.recovery is Recovery.END_BUILD and "hold window expired" in expired.reason
    derived = StuckThresholds.from_settings(
        ingest=1, convert=2, queue=3, release=4, approval_timeout=5, hold=6
    )
    assert derived.hold_seconds == 6


def test_parked_token_answered_from_facts_or_failed_when_old() -> None:
    waiting = [{"at": ago(125), "event": "waiting"}]
    record = build("processing", 130, waitToken="tok", waitingFor="approval", extra_timeline=waiting)
    assert assess(record, NOW, THRESHOLDS, facts_answer_token=True).recovery is Recovery.ANSWER_WAIT
    failed = assess(record, NOW, THRESHOLDS, facts_answer_token=False)
    assert failed.recovery is Recovery.FAIL_WAIT and "never retries" in failed.reason
    young = build("processing", 130, waitToken="tok", extra_timeline=[{"at": ago(5), "event": "waiting"}])
    assert assess(young, NOW, THRESHOLDS, facts_answer_token=False).recovery is Recovery.NONE


def test_execution_verdicts() -> None:
    assert execution_verdict("RUNNING", "", "") is None
    assert execution_verdict("SUCCEEDED", "", "") is None
    assert execution_verdict(None, None, None) is None
    assert execution_verdict("ABORTED", "", "") == (BuildStatus.FAILED, "release execution aborted")
    assert execution_verdict("FAILED", "States.Runtime", "boom") == (
        BuildStatus.FAILED,
        "release execution failed (States.Runtime: boom)",
    )


# ------------------------------------------------------------------------------ use case with fakes


class FakeBuilds(InMemoryBuilds):
    """Every record counts as open; notes are kept for the assertions."""

    def __init__(self, *records: dict[str, Any]) -> None:
        super().__init__(*records, clock=lambda: NOW)
        self.notes: list[tuple[str, str]] = []
        self.queried_before: str | None = None

    def open_builds(self, *, updated_before: str, limit: int = 200) -> list[dict[str, Any]]:
        self.queried_before = updated_before
        return list(self.records.values())

    def record_event(
        self,
        build_id: str,
        event: str,
        detail: str = "",
        *,
        fields: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        self.notes.append((event, detail))
        return super().record_event(build_id, event, detail, fields=fields, data=data)


def reconcile(builds: FakeBuilds, workflow: RecordingWorkflow) -> list[dict[str, str]]:
    use_case = ReconcileBuilds(builds=builds, workflow=workflow, thresholds=THRESHOLDS, clock=lambda: NOW)
    return use_case().actions


def test_dropped_approval_fails_the_parked_task_as_stuck() -> None:
    builds = FakeBuilds(build("processing", 130, waitToken="tok-1", waitingFor="approval"))
    workflow = RecordingWorkflow()
    assert reconcile(builds, workflow) == [{"buildId": "b-1", "action": "failed token"}]
    ((kind, token, (error, cause)),) = workflow.answers
    assert (kind, token, error) == ("failure", "tok-1", "Stuck")
    assert "no Streampixel event for approval" in cause
    assert builds.records["b-1"]["stuck"] is True and "waitToken" not in builds.records["b-1"]
    assert builds.queried_before == iso(NOW - timedelta(seconds=1200))


def test_facts_on_the_record_answer_the_parked_task() -> None:
    record = build("processing", 130, waitToken="tok-2", waitingFor="approval", approvedAt=ago(100))
    workflow = RecordingWorkflow()
    assert reconcile(FakeBuilds(record), workflow) == [{"buildId": "b-1", "action": "answered token"}]
    assert workflow.answers == [("success", "tok-2", {"event": "build.approved"})]


def test_stale_token_falls_back_to_the_execution_status() -> None:
    record = build("processing", 130, waitToken="tok-3", waitingFor="approval")
    builds = FakeBuilds(record)
    workflow = RecordingWorkflow(execution={"status": "TIMED_OUT", "error": "", "cause": ""}, alive=False)
    assert reconcile(builds, workflow) == [{"buildId": "b-1", "action": "recorded failed"}]
    assert builds.records["b-1"]["status"] == "failed"
    assert builds.records["b-1"]["error"] == "release execution timed_out [execution b-1]"


def test_running_execution_without_token_is_only_flagged_once() -> None:
    builds = FakeBuilds(build("queued", 90))
    workflow = RecordingWorkflow(execution={"status": "RUNNING", "error": "", "cause": ""})
    assert reconcile(builds, workflow) == [{"buildId": "b-1", "action": "flagged stuck"}]
    assert reconcile(builds, workflow) == []  # already flagged: no second flag, no new action
    assert builds.records["b-1"]["status"] == "queued"


class NamedExecutions(RecordingWorkflow):
    """Executions by name, like Step Functions: a retried build has an old one and a current one."""

    def __init__(self, executions: dict[str, dict[str, str]]) -> None:
        super().__init__()
        self.executions = executions
        self.described: list[str] = []

    def execution(self, execution_name: str) -> dict[str, str] | None:
        self.described.append(execution_name)
        return self.executions.get(execution_name)


def test_a_retried_build_is_judged_by_its_current_execution_not_the_old_failed_one() -> None:
    builds = FakeBuilds(build("queued", 90, retryCount=1))
    workflow = NamedExecutions(
        {
            "b-1": {"status": "FAILED", "error": "Old", "cause": "first attempt"},
            "b-1-retry-1": {"status": "RUNNING", "error": "", "cause": ""},
        }
    )
    assert reconcile(builds, workflow) == [{"buildId": "b-1", "action": "flagged stuck"}]
    assert workflow.described == ["b-1-retry-1"] and builds.records["b-1"]["status"] == "queued"
    workflow.executions["b-1-retry-1"] = {"status": "ABORTED", "error": "", "cause": ""}
    assert reconcile(builds, workflow) == [{"buildId": "b-1", "action": "recorded failed"}]
    assert "b-1-retry-1" in builds.records["b-1"]["error"]


def test_a_killed_conversion_ends_failed_with_the_reason() -> None:
    builds = FakeBuilds(build("converting", 21, convertAttempts=2))
    assert reconcile(builds, RecordingWorkflow()) == [{"buildId": "b-1", "action": "recorded failed"}]
    record = builds.records["b-1"]
    assert record["status"] == "failed" and "conversion did not finish" in record["error"]


def test_a_download_stopped_on_every_attempt_ends_failed_with_the_reason() -> None:
    # No status progress since "received" 41 min ago is under the ingest threshold (60 min): the
    # download's own limit (2 attempts x 15 min + 10 min) decides.
    stopped = build("received", 41, source="pull", fetchRequestedAt=ago(41), fetchAttempts=2)
    verdict = assess(stopped, NOW, THRESHOLDS, facts_answer_token=False)
    assert verdict.recovery is Recovery.END_BUILD
    builds = FakeBuilds(stopped)
    assert reconcile(builds, RecordingWorkflow()) == [{"buildId": "b-1", "action": "recorded failed"}]
    record = builds.records["b-1"]
    assert record["status"] == "failed"
    assert record["error"].startswith("download did not finish: 2 attempt(s) started, none ended")
    assert "no sign of life for 41 min (limit 40 min)" in record["error"]


def test_a_download_within_its_attempts_is_not_stuck_however_old_the_build() -> None:
    running = build("received", 600, source="pull", fetchRequestedAt=ago(600), fetchHeartbeatAt=ago(39))
    assert not assess(running, NOW, THRESHOLDS, facts_answer_token=False).stuck


class OneBrokenRecord(FakeBuilds):
    def get(self, build_id: str) -> dict[str, Any] | None:
        if build_id == "b-broken":
            raise RuntimeError("ValidationException: item too large")
        return super().get(build_id)


def test_one_record_that_cannot_be_handled_does_not_stop_the_run() -> None:
    broken = {**build("converting", 21), "buildId": "b-broken"}
    builds = OneBrokenRecord(broken, build("converting", 21, convertAttempts=1))
    use_case = ReconcileBuilds(
        builds=builds, workflow=RecordingWorkflow(), thresholds=THRESHOLDS, clock=lambda: NOW
    )
    report = use_case()
    assert report.errors == [{"buildId": "b-broken", "error": "RuntimeError"}]
    assert report.actions == [{"buildId": "b-1", "action": "recorded failed"}]
    assert report.to_dict()["errors"] == report.errors


def held(build_id: str, received: str, **fields: Any) -> dict[str, Any]:
    return {
        **build("approved", 60, release={"policy": "hold"}, receivedAt=received, **fields),
        "buildId": build_id,
    }


def test_a_held_build_overtaken_by_a_newer_build_of_its_route_ends_superseded() -> None:
    builds = FakeBuilds(
        held("b-old", ago(120)), {**build("queued", 1, receivedAt=ago(30)), "buildId": "b-new"}
    )
    actions = reconcile(builds, RecordingWorkflow())
    assert {"buildId": "b-old", "action": "recorded superseded"} in actions
    assert builds.records["b-old"]["status"] == "superseded" and "b-new" in builds.records["b-old"]["error"]
    assert builds.records["b-new"]["status"] == "queued"


def test_a_held_build_past_the_hold_window_ends_failed() -> None:
    builds = FakeBuilds(
        {**held("b-held", ago(9000)), "timeline": [{"at": ago(8 * 24 * 60), "status": "approved"}]}
    )
    assert reconcile(builds, RecordingWorkflow()) == [{"buildId": "b-held", "action": "recorded failed"}]
    assert "hold window expired" in builds.records["b-held"]["error"]


def test_a_counted_repeat_of_progress_counts_from_its_last_time() -> None:
    record = build("queued", 600)
    record["timeline"][0].update(repeats=3, lastAt=ago(5))
    assert not assess(record, NOW, THRESHOLDS, facts_answer_token=False).stuck
