"""Streampixel webhook events against a real (moto) build table: matching, order, duplicates, tokens,
and forged events (a leaked webhook path secret) that must change nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from pixelbridge.adapters.builds import BuildRepository
from pixelbridge.adapters.item_size import item_size
from pixelbridge.domain.streampixel_webhook import StreampixelEvent
from pixelbridge.domain.timeline import SUMMARY_EVENT
from pixelbridge.usecases.streampixel_events import StreampixelEvents
from tests.support.aws import STREAMPIXEL_PROJECT, MotoAccount, moto_account
from tests.support.fakes import RecordingHandoff, RecordingWorkflow

TOKEN = "t" * 32
FILE_URL = f"https://downloads.example.test/dl/{TOKEN}/b1.zip"
UPLOAD = "665a2b3c4d5e6f7a8b9c0e1f"
OTHER_UPLOAD = "665a2b3c4d5e6f7a8b9c0eff"


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoAccount]:
    with moto_account(monkeypatch) as moto:
        yield moto


@pytest.fixture
def builds(account: MotoAccount) -> BuildRepository:
    from pixelbridge import wiring

    repository = wiring.builds()
    repository.create(
        {
            "buildId": "b1",
            "status": "processing",
            "route": "default",
            "release": {
                "streampixelProjectId": STREAMPIXEL_PROJECT,
                "policy": "manual",
                "account": "default",
            },
            "zipKey": f"dl/{TOKEN}/b1.zip",
            "handoffToken": TOKEN,
            "zipUrl": FILE_URL,
            "uploadId": UPLOAD,
        },
        event="received",
    )
    return repository


def event(name: str, **fields: Any) -> StreampixelEvent:
    return StreampixelEvent.model_validate(
        {
            "event": name,
            "projectId": STREAMPIXEL_PROJECT,
            "uploadId": UPLOAD,
            "fileUrl": FILE_URL,
            "status": "",
            "objection": None,
            "timestamp": f"2026-11-22T12:{len(name):02d}:00Z",
            **fields,
        }
    )


def handler(builds: BuildRepository) -> tuple[StreampixelEvents, RecordingWorkflow, RecordingHandoff]:
    workflow, handoff = RecordingWorkflow(), RecordingHandoff()
    return StreampixelEvents(builds=builds, workflow=workflow, handoff=handoff), workflow, handoff


def timeline(builds: BuildRepository) -> list[str]:
    record = builds.get("b1")
    assert record is not None
    return [entry["event"] for entry in record["timeline"]]


def record_of(builds: BuildRepository) -> dict[str, Any]:
    record = builds.get("b1")
    assert record is not None
    return dict(record)


def test_an_event_matching_project_upload_and_file_url_moves_the_build(builds: BuildRepository) -> None:
    events, _, _ = handler(builds)
    outcome = events.handle(event("build.downloading"))
    assert outcome.matched
    assert record_of(builds)["seenEvents"] == {"uploadId": UPLOAD, "events": ["build.downloading"]}


@pytest.mark.parametrize(
    "forged",
    [
        {"uploadId": OTHER_UPLOAD},  # right fileUrl, someone else's uploadId
        {
            "fileUrl": "https://downloads.example.test/dl/" + "x" * 32 + "/b1.zip"
        },  # right uploadId, wrong token
        {"projectId": None},  # no projectId: the project check is not skipped
        {"projectId": "67944b8a3f323be4b89a2273"},
        {"fileUrl": None},
    ],
)
def test_an_event_that_does_not_vouch_for_the_build_is_held_and_changes_nothing(
    builds: BuildRepository, forged: dict[str, Any]
) -> None:
    builds.set_fields("b1", {"waitToken": "task-token", "waitingFor": "approval"})
    events, workflow, handoff = handler(builds)
    for name in ("build.extracting", "build.saving", "build.approved", "build.rejected"):
        outcome = events.handle(event(name, status="Reject", objection="forged", **forged))
        assert not outcome.matched
    record = record_of(builds)
    assert record["status"] == "processing"
    assert record["uploadId"] == UPLOAD
    assert "approvedAt" not in record and "rejectedAt" not in record
    assert workflow.answers == [] and handoff.deleted == []
    assert [entry["event"] for entry in record["heldEvents"]][-1] == "build.rejected"


def test_a_forged_upload_id_is_never_written_onto_a_build_that_has_none(builds: BuildRepository) -> None:
    builds.remove_fields("b1", ["uploadId"])
    events, _, _ = handler(builds)
    assert not events.handle(event("build.uploaded", uploadId=OTHER_UPLOAD)).matched
    assert "uploadId" not in record_of(builds)


def test_held_events_are_bounded(builds: BuildRepository) -> None:
    events, _, _ = handler(builds)
    for index in range(60):
        events.handle(
            event("build.saving", uploadId=OTHER_UPLOAD, timestamp=f"t{index}", objection="o" * 5000)
        )
    held = record_of(builds)["heldEvents"]
    assert len(held) == 20
    assert held[-1]["timestamp"] == "t59"
    assert all(len(entry["objection"]) <= 500 for entry in held)
    assert all("fileUrl" not in entry for entry in held)


def test_other_projects_and_test_events_are_ignored(builds: BuildRepository) -> None:
    events, _, _ = handler(builds)
    assert not events.handle(
        event("build.approved", uploadId="other", fileUrl="https://x/dl/unknown/x.zip")
    ).matched
    assert not events.handle(event("webhook.test")).matched
    assert timeline(builds) == ["received"]


def test_a_duplicate_event_is_recorded_once(builds: BuildRepository) -> None:
    events, _, _ = handler(builds)
    first = events.handle(event("build.extracting"))
    second = events.handle(event("build.extracting"))
    assert (first.note, second.note) == ("build.extracting", "duplicate event")
    assert timeline(builds).count("build.extracting") == 1


def test_out_of_order_events_never_move_the_build_backwards(builds: BuildRepository) -> None:
    events, _, _ = handler(builds)
    events.handle(event("build.saving", status="Saving to Repository"))
    events.handle(event("build.approved", status="Approved"))
    events.handle(event("build.downloading", status="Downloading Files"))
    assert record_of(builds)["status"] == "approved"
    streampixel_events = [name for name in timeline(builds) if name.startswith("build.")]
    assert streampixel_events == ["build.saving", "build.approved", "build.downloading"]


def test_approval_resumes_the_waiting_task_once(builds: BuildRepository) -> None:
    builds.set_fields("b1", {"waitToken": "task-token", "waitingFor": "approval"})
    events, workflow, _ = handler(builds)
    events.handle(event("build.extracting"))
    events.handle(event("build.approved", status="Approved"))
    events.handle(event("build.approved", status="Approved", timestamp="2026-11-22T12:59:00Z"))
    assert workflow.answers == [("success", "task-token", {"event": "build.approved"})]
    assert "waitToken" not in record_of(builds)


def test_an_approval_alone_is_held_until_an_earlier_stage_of_the_same_upload_vouches_for_it(
    builds: BuildRepository,
) -> None:
    """A forged (or early) build.approved records nothing irreversible: no approval, no live."""
    builds.set_fields("b1", {"waitToken": "task-token", "waitingFor": "approval"})
    events, workflow, _ = handler(builds)
    events.handle(event("build.approved", status="Approved"))
    record = record_of(builds)
    assert "approvedAt" not in record and record["status"] == "processing" and workflow.answers == []
    events.handle(event("build.saving"))  # roughly ordered: the stage before it arrives late
    assert record_of(builds)["status"] == "approved"
    assert workflow.answers == [("success", "task-token", {"event": "build.approved"})]


def test_rejection_fails_the_waiting_task_with_the_objection_capped(builds: BuildRepository) -> None:
    builds.set_fields("b1", {"waitToken": "task-token", "waitingFor": "approval"})
    events, workflow, handoff = handler(builds)
    objection = "Build is missing an executable " + "x" * 2000
    events.handle(event("build.rejected", status="Reject", objection=objection))
    record = record_of(builds)
    assert record["status"] == "rejected"
    assert (
        record["objection"].startswith("Build is missing an executable") and len(record["objection"]) == 500
    )
    assert workflow.answers == [("failure", "task-token", ("Rejected", record["objection"]))]
    assert handoff.deleted == []  # one event's word does not delete the handoff zip


def test_the_zip_is_deleted_only_after_two_events_past_the_download(builds: BuildRepository) -> None:
    events, _, handoff = handler(builds)
    events.handle(event("build.downloading"))
    events.handle(event("build.extracting"))
    assert handoff.deleted == []
    events.handle(event("build.saving"))
    assert handoff.deleted == [f"dl/{TOKEN}/b1.zip"]


def test_late_events_of_an_earlier_upload_never_touch_the_build(builds: BuildRepository) -> None:
    """A re-upload after a lost answer: the first upload's events keep the zip the second one needs."""
    events, _, handoff = handler(builds)
    for name in ("build.extracting", "build.saving", "build.rejected"):
        assert not events.handle(event(name, uploadId=OTHER_UPLOAD, status="Reject", objection="old")).matched
    record = record_of(builds)
    assert record["status"] == "processing" and handoff.deleted == []


def test_held_events_of_the_build_s_own_upload_are_replayed_once_its_upload_id_is_known(
    builds: BuildRepository,
) -> None:
    """build.uploaded before the upload-file answer: held, then applied after the answer."""
    builds.remove_fields("b1", ["uploadId"])
    events, _, _ = handler(builds)
    assert not events.handle(event("build.uploaded", status="pending")).matched
    assert record_of(builds)["heldEvents"][0]["tokenMatches"] is True
    builds.set_fields("b1", {"uploadId": UPLOAD})
    assert events.replay_held("b1") == 1
    assert "build.uploaded" in timeline(builds)


# moto re-reads the whole item on every write (~0.3 s per event here): the default flood summarises
# the timeline twice; PIXELBRIDGE_EVENT_FLOOD=10000 runs the full flood (about an hour).
EVENT_FLOOD = int(os.environ.get("PIXELBRIDGE_EVENT_FLOOD", "130"))


def test_a_flood_of_events_keeps_the_record_small_and_the_real_approval_still_resumes(
    builds: BuildRepository,
) -> None:
    """Outside parties decide how many events a build gets and how long their strings are."""
    builds.set_fields("b1", {"waitToken": "task-token", "waitingFor": "approval"})
    events, workflow, _ = handler(builds)
    huge = "x" * 60_000
    for number in range(EVENT_FLOOD):
        stamp = f"2026-11-22T12:{number // 600 % 60:02d}:{number // 10 % 60:02d}.{number % 10}Z"
        outcome = events.handle(event("build.downloading", status=f"Processing {huge}", timestamp=stamp))
        assert outcome.matched
    # An approval counts after an earlier stage of the same upload (one event's word is not enough).
    events.handle(event("build.extracting", status="Processing", timestamp="2026-11-22T12:59:59Z"))
    events.handle(event("build.approved", status="Approved", timestamp="2026-11-22T13:00:00Z"))
    assert workflow.answers == [("success", "task-token", {"event": "build.approved"})]
    record = builds.get("b1")
    assert record is not None
    assert record["status"] == "approved" and "waitToken" not in record
    assert item_size(record) < 350 * 1024, item_size(record)
    entries = record["timeline"]
    assert entries[0]["event"] == "received" and "build.approved" in [
        entry["event"] for entry in entries[-3:]
    ]
    (summary,) = [entry for entry in entries if entry["event"] == SUMMARY_EVENT]
    kept = sum(int(entry.get("repeats", 1)) for entry in entries if entry["event"] == "build.downloading")
    assert summary["omitted"] + kept == EVENT_FLOOD  # every event counted, none lost without a trace
