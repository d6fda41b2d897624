"""A squat push still converting when a signed pull takes the build over publishes nothing onto it."""

from __future__ import annotations

import io
from typing import Any

from pixelbridge.adapters.multipart import parse_build_upload
from pixelbridge.convert.pipeline import ConversionLimits
from pixelbridge.domain.inbox import pull_key, push_key
from pixelbridge.domain.records import BuildRecord
from pixelbridge.usecases.convert_build import TAKEN_OVER, ConvertBuild
from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata
from pixelbridge_local.sample_build import ue_like_targz
from tests.support.fakes import InMemoryBuilds, MemoryInbox, RecordingHandoff, RecordingWorkflow


class MemoryZipSink(io.BytesIO):
    def hold_from(self, offset: int) -> None:
        """BytesIO keeps every byte patchable."""

    def release_hold(self) -> None:
        """Nothing to release."""

    def complete(self) -> None:
        """Nothing to finish."""

    def abort(self) -> None:
        """Nothing to undo."""


class TakenOverWhileReading(MemoryInbox):
    """The signed pull takes the build over at the moment the converter opens the pushed body."""

    def __init__(self, builds: InMemoryBuilds) -> None:
        super().__init__()
        self._builds = builds

    def open(self, key: str) -> tuple[Any, int, str]:
        build_id = key.removeprefix("inbox/push/").removesuffix(".multipart")
        self._builds.set_fields(build_id, {"source": "pull", "status": "received"})
        self._builds.remove_fields(build_id, ["artifactKey"])
        return super().open(key)


def converter(
    builds: InMemoryBuilds, inbox: MemoryInbox
) -> tuple[ConvertBuild, RecordingHandoff, RecordingWorkflow]:
    handoff, workflow = RecordingHandoff(), RecordingWorkflow()
    use_case = ConvertBuild(
        builds=builds,
        inbox=inbox,
        handoff=handoff,
        workflow=workflow,
        open_zip_sink=lambda key, size: MemoryZipSink(),
        parse_upload=parse_build_upload,
        limits=ConversionLimits(),
    )
    return use_case, handoff, workflow


def pushed(builds: InMemoryBuilds, inbox: MemoryInbox, build_id: str, archive: bytes) -> None:
    body, content_type = encode_custom_deploy(sample_metadata(build_id), archive)
    inbox.objects[push_key(build_id)] = (body, content_type)
    record: BuildRecord = {"buildId": build_id, "status": "stored", "source": "push", "sources": ["push"]}
    assert builds.create(record, event="received")


def test_a_conversion_finished_after_the_takeover_is_dropped_not_published() -> None:
    builds = InMemoryBuilds()
    inbox = TakenOverWhileReading(builds)
    pushed(builds, inbox, "sq-1", ue_like_targz(pak_bytes=512))
    use_case, handoff, workflow = converter(builds, inbox)
    outcome = use_case(push_key("sq-1"))
    assert outcome.result == TAKEN_OVER
    record = builds.get("sq-1")
    assert record is not None and record["status"] == "received" and "zipKey" not in record
    assert [key.rsplit("/", 1)[-1] for key in handoff.deleted] == ["sq-1.zip"] and workflow.started == []


def test_a_rejection_after_the_takeover_does_not_fail_the_pulled_build() -> None:
    builds = InMemoryBuilds()
    inbox = TakenOverWhileReading(builds)
    pushed(builds, inbox, "sq-2", b"not a gzip stream")
    use_case, _, _ = converter(builds, inbox)
    assert use_case(push_key("sq-2")).result == TAKEN_OVER
    record = builds.get("sq-2")
    assert record is not None and record["status"] == "received" and "error" not in record


def test_without_a_takeover_the_same_conversion_publishes() -> None:
    builds = InMemoryBuilds()
    inbox = MemoryInbox()
    pushed(builds, inbox, "sq-3", ue_like_targz(pak_bytes=512))
    use_case, handoff, workflow = converter(builds, inbox)
    assert use_case(push_key("sq-3")).result == "converted"
    record = builds.get("sq-3")
    assert record is not None and record["status"] == "converted" and handoff.deleted == []
    assert len(workflow.started) == 1 and pull_key("sq-3") != record["artifactKey"]
