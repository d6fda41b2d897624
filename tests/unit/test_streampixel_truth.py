"""The record agrees with Streampixel under unsigned, unretried, roughly ordered webhooks (fakes only).

Each test plays one fault: events before the upload-file answer, a lost answer, a re-upload by an
operator retry, a
lost build.approved on an auto route, and forged events from a holder of the webhook path secret.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from pixelbridge.domain.errors import Transient
from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.streampixel_webhook import StreampixelEvent
from pixelbridge.ports import DistributeResult, StreampixelCredentials, TestWebhookResult, UploadResult
from pixelbridge.usecases.release import ReleaseConfig, ReleaseTasks, UploadOutcomeUnknown
from pixelbridge.usecases.streampixel_events import StreampixelEvents
from tests.support.fakes import InMemoryBuilds, RecordingHandoff, RecordingWorkflow

PROJECT = "67944b8a3f323be4b89a2272"
TOKEN = "k" * 40
ZIP_KEY = f"dl/{TOKEN}/b1.zip"
FILE_URL = f"https://downloads.example.test/{ZIP_KEY}"
FIRST, SECOND = "665a2b3c4d5e6f7a8b9c0e01", "665a2b3c4d5e6f7a8b9c0e02"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class ScriptedStreampixel:
    """``StreampixelPort``: answers upload-file from a script; ``before_answer`` runs inside the call."""

    def __init__(self, answers: list[UploadResult | Exception]) -> None:
        self.answers = answers
        self.uploads: list[str] = []
        self.distributions: list[str] = []
        self.before_answer: Callable[[], object] = lambda: None

    def upload_file(
        self, creds: StreampixelCredentials, project_id: str, file_url: str, *, auto_release: bool
    ) -> UploadResult:
        self.uploads.append(file_url)
        self.before_answer()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def distribute_file(
        self, creds: StreampixelCredentials, project_id: str, upload_id: str
    ) -> DistributeResult:
        self.distributions.append(upload_id)
        return DistributeResult("Distribution triggered", None)

    def test_webhook(self, creds: StreampixelCredentials, project_id: str) -> TestWebhookResult:
        return TestWebhookResult(True, 200, "ok")


class FreeSlots:
    """``SlotsPort`` with every slot free now."""

    def reserve(self, user_id: str, not_before: datetime, spacing_seconds: float) -> datetime:
        return not_before

    def claim_call(self, user_id: str, now: datetime, spacing_seconds: float) -> datetime | None:
        return None

    def call_ended(self, user_id: str, at: datetime) -> None:
        return None


def build(policy: str = "auto", **fields: Any) -> BuildRecord:
    return {
        "buildId": "b1",
        "status": "queued",
        "route": "default",
        "receivedAt": "2026-11-29T11:00:00.000Z",
        "release": {"streampixelProjectId": PROJECT, "policy": policy, "account": "default"},
        "zipKey": ZIP_KEY,
        "handoffToken": TOKEN,
        **fields,
    }


class World:
    def __init__(
        self,
        record: BuildRecord,
        answers: list[UploadResult | Exception],
        handoff: RecordingHandoff | None = None,
    ) -> None:
        self.builds = InMemoryBuilds(record, clock=lambda: NOW)
        self.workflow = RecordingWorkflow()
        self.handoff = handoff or RecordingHandoff()
        self.streampixel = ScriptedStreampixel(answers)
        self.events = StreampixelEvents(builds=self.builds, workflow=self.workflow, handoff=self.handoff)
        self.tasks = ReleaseTasks(
            builds=self.builds,
            slots=FreeSlots(),
            streampixel=self.streampixel,
            credentials=lambda account: StreampixelCredentials("663d00000000000000000001", "key"),
            handoff_url=self.handoff.url_for,
            workflow=self.workflow,
            config=ReleaseConfig(
                slot_seconds=0,
                approval_timeout_seconds=60,
                live_window_seconds=5,
                max_rate_limited_attempts=3,
            ),
            clock=lambda: NOW,
            sleep=lambda seconds: None,
        )

    def send(self, name: str, upload_id: str | None, **fields: Any) -> bool:
        body = {
            "event": name,
            "projectId": PROJECT,
            "uploadId": upload_id,
            "fileUrl": FILE_URL,
            "status": "",
            "timestamp": f"{upload_id}-{name}",
            **fields,
        }
        return self.events.handle(StreampixelEvent.model_validate(body)).matched

    def record(self) -> BuildRecord:
        record = self.builds.get("b1")
        assert record is not None
        return record

    def events_of(self) -> list[str]:
        return [entry["event"] for entry in self.record()["timeline"]]


def test_build_uploaded_before_the_upload_answer_keeps_the_answer_facts() -> None:
    world = World(build(), [UploadResult(FIRST, "Build queued for processing")])
    world.streampixel.before_answer = lambda: world.send("build.uploaded", FIRST, status="pending")
    world.tasks.upload("b1")
    record = world.record()
    assert (record["status"], record["uploadId"], record["uploadedAt"]) == (
        "processing",
        FIRST,
        "2026-11-29T12:00:00.000Z",
    )
    events = world.events_of()
    assert events.index("uploaded") < events.index("build.uploaded")  # held, then replayed after the answer


def test_a_lost_answer_is_recovered_from_the_events_without_a_second_upload() -> None:
    world = World(build(), [Transient("read timed out"), UploadResult(SECOND, "queued")])
    with pytest.raises(UploadOutcomeUnknown):
        world.tasks.upload("b1")
    assert world.send("build.uploaded", FIRST)  # the upload of the lost answer: adopted
    assert len(world.streampixel.uploads) == 1
    assert world.record()["uploadId"] == FIRST
    assert "upload skipped" in world.events_of()


def test_a_re_upload_keeps_the_zip_the_second_upload_needs_and_ends_on_the_upload_streampixel_serves() -> (
    None
):
    """An operator retry after an unknown upload outcome (no event in the window) uploads again, and
    the first upload turns up late. Its events must neither delete the zip nor decide the build; the
    second one is the last to go live on Streampixel, and the record names it."""
    world = World(build(uploadOutcomeUnknownAt="2026-11-29T11:30:00.000Z"), [UploadResult(SECOND, "queued")])
    world.tasks.upload("b1")
    assert len(world.streampixel.uploads) == 1 and "upload decision" in world.events_of()
    world.tasks.await_event("b1", "approval", "approval-token")
    for name in ("build.extracting", "build.saving", "build.distributing", "build.approved"):
        assert not world.send(name, FIRST)
    assert world.handoff.deleted == [] and world.workflow.answers == []
    for name in ("build.downloading", "build.extracting", "build.saving", "build.distributing"):
        assert world.send(name, SECOND)
    assert world.handoff.deleted == [ZIP_KEY]
    assert world.send("build.approved", SECOND)
    assert world.workflow.answers == [("success", "approval-token", {"event": "build.distributing"})]
    world.tasks.await_event("b1", "live", "live-token")
    assert world.workflow.answers[-1] == ("success", "live-token", {"event": "build.approved"})
    assert world.tasks.finish("b1", "live", None)["status"] == "live"
    assert world.record()["uploadId"] == SECOND


def test_auto_route_with_build_approved_lost_gets_the_live_window() -> None:
    world = World(build(status="processing", uploadId=FIRST), [])
    world.tasks.await_event("b1", "approval", "approval-token")
    for name in ("build.downloading", "build.extracting", "build.saving"):
        world.send(name, FIRST)
    assert world.workflow.answers == []
    world.send("build.distributing", FIRST)  # build.approved never comes
    assert world.workflow.answers == [("success", "approval-token", {"event": "build.distributing"})]
    # the state machine then waits the live window and records live with its note (test_statemachine)
    note = "Streampixel sent build.distributing but no build.approved within the live window"
    assert world.tasks.finish("b1", "live", None, note)["status"] == "live"


def test_a_forged_approval_on_an_auto_route_records_nothing_live() -> None:
    world = World(build(status="processing", uploadId=FIRST), [])
    world.tasks.await_event("b1", "approval", "approval-token")
    assert world.send("build.approved", FIRST, status="Approved")  # vouches, but alone
    record = world.record()
    assert "liveApprovedAt" not in record and "approvedAt" not in record
    assert world.workflow.answers == [] and world.handoff.deleted == []


def test_forged_events_with_a_guessed_file_url_delete_nothing() -> None:
    world = World(build(status="processing", uploadId=FIRST), [])
    forged_url = "https://downloads.example.test/dl/" + "a" * 40 + "/b1.zip"
    for name in (
        "build.extracting",
        "build.saving",
        "build.distributing",
        "build.approved",
        "build.rejected",
    ):
        assert not world.send(name, FIRST, fileUrl=forged_url)
    assert world.handoff.deleted == [] and world.record()["status"] == "processing"


def test_a_forged_rejection_after_distribution_does_not_roll_the_route_back() -> None:
    """Never dark re-distributes the previous live build only on a rejection that vouches for the
    build (its own fileUrl) and comes after Streampixel answered our distribute-file call."""
    previous = {
        **build("manual", status="live", uploadId=SECOND, liveSince="2026-11-28T00:00:00.000Z"),
        "buildId": "b0",
        "handoffToken": "z" * 40,
        "receivedAt": "2026-11-28T00:00:00.000Z",
    }
    world = World(build("manual", status="approved", uploadId=FIRST), [])
    world.builds.records["b0"] = previous
    world.send("build.extracting", FIRST)
    world.tasks.distribute("b1")
    world.tasks.await_event("b1", "distribution", "distribution-token")
    forged_url = "https://downloads.example.test/dl/" + "a" * 40 + "/b1.zip"
    assert not world.send("build.rejected", FIRST, fileUrl=forged_url, status="Reject", objection="forged")
    assert not world.send("build.rejected", FIRST, fileUrl=None, status="Reject", objection="forged")
    assert world.workflow.answers == [] and "rejectedAt" not in world.record()
    assert world.send(
        "build.rejected", FIRST, status="Reject", objection="Sanity check failed on the workers"
    )
    assert world.workflow.answers[0][:2] == ("failure", "distribution-token")
    assert world.tasks.finish("b1", "rejected", {"Error": "Rejected", "Cause": "x"})["status"] == "rejected"
    assert [name for name, _ in world.workflow.started] != []  # the real rejection restores b0
    assert "never dark" in world.events_of()


def test_a_late_event_on_a_live_build_changes_nothing() -> None:
    world = World(build(status="live", uploadId=FIRST), [])
    assert world.send("build.rejected", FIRST, status="Reject", objection="late")
    record = world.record()
    assert record["status"] == "live" and "rejectedAt" not in record and "objection" not in record
