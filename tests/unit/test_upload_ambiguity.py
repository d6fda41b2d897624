"""A Release task stopped during a Streampixel call (Lambda.Unknown), or an upload-file whose answer was
lost (read timeout, connection broken after sending, 5xx): no second upload-file for one build.

The task writes its intent before the call; a stopped upload-file with an intent waits for Streampixel's
own events of that upload (matched through the build's fileUrl token) instead of uploading again; a
stopped distribute-file is asked again only in a new slot, and not at all once Streampixel said it started.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pixelbridge.domain.errors import Transient
from pixelbridge.domain.streampixel_webhook import StreampixelEvent
from pixelbridge.domain.timeline import iso
from pixelbridge.domain.waiting import awaited_outcome
from pixelbridge.ports import DistributeResult, StreampixelCredentials, TestWebhookResult, UploadResult
from pixelbridge.usecases.release import (
    CALL_IN_FLIGHT,
    GaveUp,
    ReleaseConfig,
    ReleaseTasks,
    UploadOutcomeUnknown,
)
from pixelbridge.usecases.slot_gate import SlotGate
from pixelbridge.usecases.streampixel_events import StreampixelEvents
from tests.support.fakes import InMemoryBuilds, RecordingHandoff, RecordingWorkflow

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PROJECT = "67944b8a3f323be4b89a2272"
TOKEN = "T" * 43
ZIP_URL = f"https://downloads.example.test/dl/{TOKEN}/b-1.zip"
SERVED = "0123456789abcdef01234567"
ASL = json.loads((Path(__file__).resolve().parents[2] / "statemachine" / "release.asl.json").read_text())
STATES: dict[str, dict[str, Any]] = ASL["States"]


class SandboxStopped(Exception):
    """Lambda stopped the process mid-call: no answer, nothing recorded after this point."""


class StoppingStreampixel:
    """Counts calls, notes what the record said at each call, and is stopped mid-call when told."""

    def __init__(
        self,
        builds: InMemoryBuilds,
        *,
        stop_uploads: int = 0,
        stop_distributes: int = 0,
        upload_errors: tuple[Transient, ...] = (),
        distribute_errors: tuple[Transient, ...] = (),
    ) -> None:
        self._builds = builds
        self.stop_uploads = stop_uploads
        self.stop_distributes = stop_distributes
        self.upload_errors = list(upload_errors)  # raised by the next calls (Streampixel processed them)
        self.distribute_errors = list(distribute_errors)
        self.uploads = 0
        self.distributes = 0
        self.intents: list[Any] = []

    def upload_file(
        self, creds: StreampixelCredentials, project_id: str, file_url: str, *, auto_release: bool
    ) -> UploadResult:
        self.uploads += 1
        self.intents.append((self._builds.get("b-1") or {}).get(CALL_IN_FLIGHT))
        if self.uploads <= self.stop_uploads:
            raise SandboxStopped
        if self.upload_errors:
            raise self.upload_errors.pop(0)
        return UploadResult(SERVED, "Build queued for processing")

    def distribute_file(
        self, creds: StreampixelCredentials, project_id: str, upload_id: str
    ) -> DistributeResult:
        self.distributes += 1
        self.intents.append((self._builds.get("b-1") or {}).get(CALL_IN_FLIGHT))
        if self.distributes <= self.stop_distributes:
            raise SandboxStopped
        if self.distribute_errors:
            raise self.distribute_errors.pop(0)
        return DistributeResult("Distribution triggered", None)

    def test_webhook(self, creds: StreampixelCredentials, project_id: str) -> TestWebhookResult:
        raise AssertionError("not called")


class FreeSlots:
    def __init__(self) -> None:
        self.reserved = 0

    def reserve(self, user_id: str, not_before: datetime, spacing_seconds: float) -> datetime:
        self.reserved += 1
        return not_before

    def claim_call(self, user_id: str, now: datetime, spacing_seconds: float) -> datetime | None:
        return None

    def call_ended(self, user_id: str, at: datetime) -> None:
        return None


def build(**facts: Any) -> dict[str, Any]:
    return {
        "buildId": "b-1",
        "status": "queued",
        "route": "-",
        "zipKey": f"dl/{TOKEN}/b-1.zip",
        "handoffToken": TOKEN,
        "release": {"streampixelProjectId": PROJECT, "policy": "auto", "account": "default"},
        **facts,
    }


def setup(
    record: dict[str, Any], **stops: Any
) -> tuple[ReleaseTasks, InMemoryBuilds, StoppingStreampixel, RecordingWorkflow, StreampixelEvents]:
    builds = InMemoryBuilds(record, clock=lambda: NOW)
    streampixel = StoppingStreampixel(builds, **stops)
    workflow = RecordingWorkflow()
    tasks = ReleaseTasks(
        builds=builds,
        slots=FreeSlots(),
        streampixel=streampixel,
        credentials=lambda account: StreampixelCredentials("user", "key"),
        workflow=workflow,
        config=ReleaseConfig(
            slot_seconds=0,
            approval_timeout_seconds=60,
            live_window_seconds=1,
            max_rate_limited_attempts=3,
            upload_event_window_seconds=90,
        ),
        clock=lambda: NOW,
        sleep=lambda seconds: None,
        handoff_url=RecordingHandoff().url_for,
    )
    webhook = StreampixelEvents(builds=builds, workflow=workflow, handoff=RecordingHandoff())
    return tasks, builds, streampixel, workflow, webhook


def event(name: str, upload_id: str = SERVED, second: int = 0) -> StreampixelEvent:
    return StreampixelEvent.model_validate(
        {
            "event": name,
            "projectId": PROJECT,
            "uploadId": upload_id,
            "fileUrl": ZIP_URL,
            "timestamp": f"2026-05-01T12:00:0{second}Z",
        }
    )


def events_of(builds: InMemoryBuilds) -> list[str]:
    return [entry["event"] for entry in builds.records["b-1"]["timeline"]]


def stopped_upload(tasks: ReleaseTasks) -> None:
    with pytest.raises(SandboxStopped):
        tasks.upload("b-1")


def test_the_intent_is_written_before_upload_file_and_removed_only_with_its_answer() -> None:
    tasks, builds, streampixel, _, _ = setup(build())
    assert tasks.upload("b-1") == {"uploadId": SERVED}
    intent = {"call": "upload-file", "startedAt": "2026-05-01T12:00:00.000Z", "slotAt": ""}
    assert streampixel.intents == [intent]
    record = builds.records["b-1"]
    assert record["uploadId"] == SERVED and CALL_IN_FLIGHT not in record


def test_a_task_stopped_during_upload_file_waits_for_streampixels_events_and_never_uploads_again() -> None:
    tasks, builds, streampixel, workflow, webhook = setup(build(), stop_uploads=1)
    stopped_upload(tasks)
    assert builds.records["b-1"][CALL_IN_FLIGHT]["call"] == "upload-file"  # visible on the record
    assert tasks.interrupted("b-1", "upload-file") == {"next": "wait"}
    record = builds.records["b-1"]
    assert record["uploadOutcomeUnknownAt"] == "2026-05-01T12:00:00.000Z" and CALL_IN_FLIGHT not in record
    assert "upload outcome unknown" in events_of(builds)
    tasks.await_event("b-1", "upload", "token-1")
    assert workflow.answers == []  # nothing known yet: the task token waits
    outcome = webhook.handle(event("build.uploaded"))
    assert outcome.matched
    assert builds.records["b-1"]["uploadId"] == SERVED
    assert workflow.answers == [("success", "token-1", {"event": "build.uploaded"})]
    assert streampixel.uploads == 1


def test_events_held_while_the_task_was_stopped_are_adopted_at_once() -> None:
    tasks, builds, streampixel, _, webhook = setup(build(), stop_uploads=1)
    stopped_upload(tasks)
    assert not webhook.handle(event("build.uploaded")).matched  # no uploadId yet: held
    assert not webhook.handle(event("build.downloading", second=1)).matched
    assert tasks.interrupted("b-1", "upload-file") == {"next": "continue"}
    record = builds.records["b-1"]
    assert record["uploadId"] == SERVED and record["status"] == "processing"
    assert record["seenEvents"] == {"uploadId": SERVED, "events": ["build.downloading", "build.uploaded"]}
    assert streampixel.uploads == 1


def test_an_event_held_between_the_interruption_and_the_wait_is_adopted_by_the_wait() -> None:
    tasks, builds, _, workflow, _ = setup(build(), stop_uploads=1)
    stopped_upload(tasks)
    builds.records["b-1"]["uploadOutcomeUnknownAt"] = "2026-05-01T12:00:00Z"  # flag set, not yet parked
    builds.records["b-1"]["heldEvents"] = [
        {"event": "build.uploaded", "uploadId": SERVED, "projectMatches": True, "tokenMatches": True}
    ]
    tasks.await_event("b-1", "upload", "token-2")
    assert builds.records["b-1"]["uploadId"] == SERVED
    assert workflow.answers == [("success", "token-2", {"event": "build.uploaded"})]


def test_an_event_read_before_the_interruption_was_recorded_is_still_adopted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The webhook read the build before the release task set the flag: it decides on a fresh read."""
    tasks, builds, _, workflow, webhook = setup(build(), stop_uploads=1)
    stopped_upload(tasks)
    stale = builds.get("b-1")
    assert tasks.interrupted("b-1", "upload-file") == {"next": "wait"}
    tasks.await_event("b-1", "upload", "token-4")
    monkeypatch.setattr(builds, "find_by_handoff_token", lambda token: stale)
    assert webhook.handle(event("build.uploaded")).matched
    assert builds.records["b-1"]["uploadId"] == SERVED
    assert workflow.answers == [("success", "token-4", {"event": "build.uploaded"})]


def test_a_task_stopped_after_the_answer_was_recorded_continues_on_that_upload() -> None:
    tasks, builds, streampixel, _, _ = setup(build())
    tasks.upload("b-1")
    builds.records["b-1"][CALL_IN_FLIGHT] = {"call": "upload-file", "startedAt": "t"}  # not yet removed
    assert tasks.interrupted("b-1", "upload-file") == {"next": "continue"}
    assert CALL_IN_FLIGHT not in builds.records["b-1"] and streampixel.uploads == 1


def test_the_interruption_task_run_twice_still_waits_and_never_retries_the_upload() -> None:
    tasks, _, _, _, _ = setup(build(), stop_uploads=1)
    stopped_upload(tasks)
    assert tasks.interrupted("b-1", "upload-file") == {"next": "wait"}
    assert tasks.interrupted("b-1", "upload-file") == {"next": "wait"}  # Lambda retried the task


def test_a_task_stopped_before_upload_file_was_sent_takes_a_new_slot_a_bounded_number_of_times() -> None:
    tasks, builds, streampixel, _, _ = setup(build())
    assert tasks.interrupted("b-1", "upload-file") == {"next": "retry"}  # no intent: nothing was sent
    assert "upload-file interrupted" in events_of(builds)
    assert "uploadOutcomeUnknownAt" not in builds.records["b-1"]
    with pytest.raises(GaveUp):
        for _ in range(10):
            tasks.interrupted("b-1", "upload-file")
    assert streampixel.uploads == 0


def test_an_event_after_the_build_ended_does_not_revive_it() -> None:
    tasks, builds, _, _, webhook = setup(build(), stop_uploads=1)
    stopped_upload(tasks)
    tasks.interrupted("b-1", "upload-file")
    tasks.finish("b-1", "failed", None, note="upload-file outcome unknown: no event")
    assert not webhook.handle(event("build.uploaded")).matched
    record = builds.records["b-1"]
    assert record["status"] == "failed" and "uploadId" not in record


def test_an_operator_retry_after_an_unknown_outcome_uploads_again_with_the_decision_recorded() -> None:
    tasks, builds, streampixel, _, _ = setup(build(uploadOutcomeUnknownAt="2026-05-01T11:00:00Z"))
    assert tasks.upload("b-1") == {"uploadId": SERVED}
    assert "upload decision" in events_of(builds) and "uploadOutcomeUnknownAt" not in builds.records["b-1"]
    assert streampixel.uploads == 1


# -- an upload-file answer lost in an ambiguous way (the request may have been processed) -----------

LOST_ANSWERS = [
    Transient("Streampixel did not answer /projects/upload-file in time (ReadTimeout)", ambiguous=True),
    Transient("Connection to Streampixel broke during /projects/upload-file (reset)", ambiguous=True),
    Transient("Streampixel answered 503 for /projects/upload-file: busy", ambiguous=True),
]


@pytest.mark.parametrize("lost", LOST_ANSWERS, ids=["read-timeout", "broken-connection", "5xx"])
def test_a_lost_upload_answer_waits_for_the_events_adopts_the_first_upload_and_goes_live(
    lost: Transient,
) -> None:
    tasks, builds, streampixel, workflow, webhook = setup(build(), upload_errors=(lost,))
    with pytest.raises(UploadOutcomeUnknown, match="upload-file outcome unknown"):
        tasks.upload("b-1")
    record = builds.records["b-1"]
    assert record["uploadOutcomeUnknownAt"] == "2026-05-01T12:00:00.000Z" and CALL_IN_FLIGHT not in record
    assert "upload outcome unknown" in events_of(builds) and "transient failure" not in events_of(builds)
    tasks.await_event("b-1", "upload", "token-u")  # the state machine's WaitForUploadEvents
    assert workflow.answers == []
    assert webhook.handle(event("build.downloading", second=1)).matched  # the first upload's event
    assert workflow.answers == [("success", "token-u", {"event": "build.uploaded"})]
    tasks.await_event("b-1", "approval", "token-a")
    assert webhook.handle(event("build.extracting", second=2)).matched
    assert webhook.handle(event("build.approved", second=3)).matched
    assert workflow.answers[-1][:2] == ("success", "token-a")
    assert tasks.finish("b-1", "live", None) == {"status": "live"}
    assert builds.records["b-1"]["uploadId"] == SERVED and streampixel.uploads == 1


def test_a_lost_upload_answer_with_no_event_in_the_window_ends_failed_and_is_never_uploaded_again() -> None:
    tasks, builds, streampixel, workflow, _ = setup(build(), upload_errors=(LOST_ANSWERS[0],))
    with pytest.raises(UploadOutcomeUnknown):
        tasks.upload("b-1")
    tasks.await_event("b-1", "upload", "token-u")
    assert workflow.answers == []  # the window runs out in the state machine: RecordUploadNeverSeen
    note = STATES["RecordUploadNeverSeen"]["Parameters"]["Payload"]["note"]
    assert tasks.finish("b-1", "failed", None, note) == {"status": "failed"}
    record = builds.records["b-1"]
    assert record["error"].startswith("upload-file outcome unknown") and "uploadId" not in record
    assert streampixel.uploads == 1


def test_a_task_stopped_between_the_lost_answer_and_dropping_the_intent_still_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tasks, builds, streampixel, _, _ = setup(build(), upload_errors=(LOST_ANSWERS[1],))
    remove_fields = builds.remove_fields

    def stopped_right_after(build_id: str, names: list[str]) -> None:
        remove_fields(build_id, names)
        raise SandboxStopped  # Lambda stopped the task just after the intent was dropped

    monkeypatch.setattr(builds, "remove_fields", stopped_right_after)
    with pytest.raises(SandboxStopped):
        tasks.upload("b-1")
    monkeypatch.undo()
    assert tasks.interrupted("b-1", "upload-file") == {"next": "wait"}
    assert streampixel.uploads == 1


def test_an_unambiguous_upload_failure_takes_a_new_slot_and_uploads_again() -> None:
    refused = Transient("Could not reach Streampixel for /projects/upload-file (refused)", ambiguous=False)
    tasks, builds, streampixel, _, _ = setup(build(), upload_errors=(refused,))
    with pytest.raises(Transient):
        tasks.upload("b-1")
    record = builds.records["b-1"]
    assert "uploadOutcomeUnknownAt" not in record and record["transientAttempts"] == 1
    assert tasks.upload("b-1") == {"uploadId": SERVED}  # after ReserveUploadSlot (the ASL below)
    assert streampixel.uploads == 2


def test_the_state_machine_waits_for_events_after_a_lost_answer_and_retries_others_in_a_new_slot() -> None:
    catchers = {tuple(c["ErrorEquals"]): (c["Next"], c["ResultPath"]) for c in STATES["Upload"]["Catch"]}
    assert catchers[("UploadOutcomeUnknown",)] == ("WaitForUploadEvents", "$.lastError")
    assert catchers[("RateLimited", "Transient")] == ("ReserveUploadSlot", "$.lastError")


def test_an_ambiguous_distribute_file_failure_stays_a_transient_for_a_new_slot() -> None:
    lost = Transient("Streampixel did not answer /projects/distribute-file in time", ambiguous=True)
    tasks, builds, streampixel, _, _ = setup(manual_approved(), distribute_errors=(lost,))
    with pytest.raises(Transient):
        tasks.distribute("b-1")
    assert builds.records["b-1"]["transientAttempts"] == 1 and CALL_IN_FLIGHT not in builds.records["b-1"]
    assert tasks.distribute("b-1") == {"message": "Distribution triggered"}
    assert streampixel.distributes == 2


def manual_approved() -> dict[str, Any]:
    return build(
        status="approved",
        release={"streampixelProjectId": PROJECT, "policy": "manual", "account": "default"},
        uploadId=SERVED,
        approvedAt="2026-05-01T11:59:00Z",
        seenEvents={"uploadId": SERVED, "events": ["build.approved", "build.extracting", "build.saving"]},
    )


def test_a_stopped_distribute_file_is_asked_again_in_a_new_slot() -> None:
    tasks, builds, streampixel, _, _ = setup(manual_approved(), stop_distributes=1)
    with pytest.raises(SandboxStopped):
        tasks.distribute("b-1")
    assert tasks.interrupted("b-1", "distribute-file") == {"next": "retry"}
    assert builds.records["b-1"]["distributeOutcomeUnknownAt"] == "2026-05-01T12:00:00.000Z"
    assert "distribute outcome unknown" in events_of(builds)
    tasks.distribute("b-1")
    assert streampixel.distributes == 2
    record = builds.records["b-1"]
    assert record["status"] == "distributing" and "distributeOutcomeUnknownAt" not in record


def test_a_stopped_distribute_file_that_streampixel_started_is_not_asked_again_and_goes_live() -> None:
    tasks, builds, streampixel, workflow, webhook = setup(manual_approved(), stop_distributes=1)
    with pytest.raises(SandboxStopped):
        tasks.distribute("b-1")
    tasks.interrupted("b-1", "distribute-file")
    assert webhook.handle(event("build.distributing", second=5)).matched
    assert webhook.handle(event("build.approved", second=6)).matched
    assert builds.records["b-1"]["liveApprovedAt"]  # the approval after that distribution means live
    assert tasks.distribute("b-1") == {"message": "distribution already started"}
    assert streampixel.distributes == 1 and "distribute skipped" in events_of(builds)
    tasks.await_event("b-1", "distribution", "token-3")
    assert workflow.answers == [("success", "token-3", {"event": "build.approved"})]


def test_a_waiting_upload_is_answered_by_an_upload_id_or_a_rejection() -> None:
    assert awaited_outcome({"buildId": "b"}, "upload") is None
    assert awaited_outcome({"buildId": "b", "uploadId": SERVED}, "upload") == (
        "success",
        {"event": "build.uploaded"},
    )
    rejected = {"buildId": "b", "uploadId": SERVED, "rejectedAt": "t", "objection": "no exe"}
    assert awaited_outcome(rejected, "upload") == ("failure", {"error": "Rejected", "cause": "no exe"})


# -- the state machine -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "interrupted"), [("Upload", "UploadInterrupted"), ("Distribute", "DistributeInterrupted")]
)
def test_a_stopped_streampixel_call_is_never_retried_in_place(call: str, interrupted: str) -> None:
    retried = {error for retrier in STATES[call]["Retry"] for error in retrier["ErrorEquals"]}
    assert "Lambda.Unknown" not in retried and "States.ALL" not in retried
    first = STATES[call]["Catch"][0]
    assert first == {"ErrorEquals": ["Lambda.Unknown"], "ResultPath": "$.lastError", "Next": interrupted}
    assert STATES[interrupted]["Parameters"]["Payload"]["action"] == "interrupted"


def test_an_unknown_upload_outcome_waits_for_events_then_ends_failed_with_the_reason() -> None:
    choices = {c["StringEquals"]: c["Next"] for c in STATES["AfterUploadInterrupted"]["Choices"]}
    assert choices == {"retry": "ReserveUploadSlot", "continue": "WaitForApproval"}
    assert STATES["AfterUploadInterrupted"]["Default"] == "WaitForUploadEvents"
    wait = STATES["WaitForUploadEvents"]
    assert wait["Parameters"]["Payload"]["waitingFor"] == "upload"
    assert wait["TimeoutSecondsPath"] == "$.build.value.uploadEventWindowSeconds"
    assert wait["Next"] == "WaitForApproval"
    catchers = {tuple(c["ErrorEquals"]): c["Next"] for c in wait["Catch"]}
    assert catchers[("States.Timeout",)] == "RecordUploadNeverSeen"
    ending = STATES["RecordUploadNeverSeen"]["Parameters"]["Payload"]
    assert ending["outcome"] == "failed" and ending["note"].startswith("upload-file outcome unknown")
    assert STATES["DistributeInterrupted"]["Next"] == "ReserveDistributeSlot"


def test_prepare_hands_the_upload_event_window_to_the_state_machine() -> None:
    tasks, _, _, _, _ = setup(build())
    assert tasks.prepare("b-1")["uploadEventWindowSeconds"] == 90


def test_the_intent_is_written_after_the_slot_sleep_and_never_between_a_claim_and_its_call() -> None:
    """A write between the claim and the call would delay the call past its claim (spacing at risk)."""
    steps: list[str] = []
    now = [NOW]

    class ToppingUpSlots(FreeSlots):
        def claim_call(self, user_id: str, at: datetime, spacing_seconds: float) -> datetime | None:
            steps.append("claim")
            return None if steps.count("claim") > 1 else at + timedelta(seconds=1)  # one top-up

    def sleep(seconds: float) -> None:
        steps.append("sleep")
        now[0] += timedelta(seconds=seconds)

    gate = SlotGate(ToppingUpSlots(), slot_seconds=1, clock=lambda: now[0], sleep=sleep)
    gate.wait("user", iso(NOW + timedelta(seconds=2)), before_claim=lambda: steps.append("intent"))
    assert steps == ["sleep", "intent", "claim", "sleep", "claim"]
