"""Streampixel webhook events against a real (moto) build table: matching, order, duplicates, tokens."""

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
        },
        event="received",
    )
    return repository


def event(name: str, **fields: Any) -> StreampixelEvent:
    return StreampixelEvent.model_validate(
        {
            "event": name,
            "projectId": STREAMPIXEL_PROJECT,
            "uploadId": "u1",
            "fileUrl": FILE_URL,
            "status": "",
            "objection": None,
            "timestamp": f"2026-11-22T12:00:0{len(name) % 10}Z",
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


def test_unknown_upload_id_is_matched_by_the_file_url_and_remembered(builds: BuildRepository) -> None:
    events, _, _ = handler(builds)
    outcome = events.handle(event("build.uploaded", uploadId="lost-response-id"))
    assert outcome.matched
    assert builds.get("b1")["uploadId"] == "lost-response-id"  # type: ignore[index]


def test_events_for_other_uploads_or_projects_are_ignored(builds: BuildRepository) -> None:
    events, _, _ = handler(builds)
    assert not events.handle(
        event("build.approved", uploadId="other", fileUrl="https://x/dl/unknown/x.zip")
    ).matched
    assert not events.handle(event("build.approved", projectId="someone-else")).matched
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
    events.handle(event("build.approved", status="Approved"))
    events.handle(event("build.downloading", status="Downloading Files"))
    record = builds.get("b1")
    assert record is not None
    assert record["status"] == "approved"
    streampixel_events = [name for name in timeline(builds) if name.startswith("build.")]
    assert streampixel_events == ["build.approved", "build.downloading"]


def test_approval_resumes_the_waiting_task_once(builds: BuildRepository) -> None:
    builds.set_fields("b1", {"waitToken": "task-token", "waitingFor": "approval"})
    events, workflow, _ = handler(builds)
    events.handle(event("build.approved", status="Approved"))
    events.handle(event("build.approved", status="Approved", timestamp="2026-11-22T12:09:00Z"))
    assert workflow.answers == [("success", "task-token", {"event": "build.approved"})]
    assert "waitToken" not in builds.get("b1")  # type: ignore[operator]


def test_rejection_fails_the_waiting_task_with_the_objection_and_deletes_the_zip(
    builds: BuildRepository,
) -> None:
    builds.set_fields("b1", {"waitToken": "task-token", "waitingFor": "approval"})
    events, workflow, handoff = handler(builds)
    events.handle(event("build.rejected", status="Reject", objection="Build is missing an executable"))
    record = builds.get("b1")
    assert record is not None
    assert record["status"] == "rejected"
    assert record["objection"] == "Build is missing an executable"
    assert workflow.answers == [("failure", "task-token", ("Rejected", "Build is missing an executable"))]
    assert handoff.deleted == [f"dl/{TOKEN}/b1.zip"]


def test_the_zip_is_deleted_once_streampixel_has_extracted_it(builds: BuildRepository) -> None:
    events, _, handoff = handler(builds)
    events.handle(event("build.downloading"))
    assert handoff.deleted == []
    events.handle(event("build.extracting"))
    events.handle(event("build.saving"))
    assert handoff.deleted == [f"dl/{TOKEN}/b1.zip"]


def test_late_events_of_an_upload_replaced_by_a_retry_are_ignored(builds: BuildRepository) -> None:
    builds.set_fields("b1", {"uploadId": "u2", "previousUploadIds": ["u1"]})
    events, _, _ = handler(builds)
    assert not events.handle(event("build.rejected", uploadId="u1", status="Reject", objection="old")).matched
    record = builds.get("b1")
    assert record is not None
    assert record["status"] == "processing"


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
