"""One pass for pulled builds: FetchFunction downloads, keeps the raw artifact and publishes the zip."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from pixelbridge.adapters.builds import BuildRepository
from pixelbridge.adapters.store import InboxStore, pull_key
from pixelbridge.convert.pipeline import ConversionLimits
from pixelbridge.convert.sinks import S3MultipartSink
from pixelbridge.domain.release_runs import release_input
from pixelbridge.usecases.convert_build import ConvertBuild, Publication
from pixelbridge.usecases.fetch_artifact import OnePass
from tests.integration.test_checkpoint_chain import (
    BUCKET,
    HANDOFF,
    FakeClock,
    Lambda,
    MeteredBuildPixel,
    aws,
    events,
    one_pass,
    open_uploads,
    received,
)
from tests.support.archives import build_targz, file, make_ue_like_targz
from tests.support.fakes import RecordingHandoff, RecordingWorkflow

__all__ = ["aws"]  # the fixture, shared with the chained-invocation tests

MiB = 1024 * 1024
FAST = 1e12  # bytes per fake second: the whole build fits in one invocation


@pytest.fixture(scope="module")
def artifact() -> bytes:
    out = io.BytesIO()
    make_ue_like_targz(out, pak_bytes=12 * MiB, small_files=60, seed=3)
    return out.getvalue()


def handoff_keys(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=HANDOFF).get("Contents", [])]


def convert_function(s3: Any, builds: BuildRepository, workflow: RecordingWorkflow) -> ConvertBuild:
    return ConvertBuild(
        builds=builds,
        inbox=InboxStore(BUCKET, s3=s3),
        handoff=RecordingHandoff(),
        workflow=workflow,
        open_zip_sink=lambda key, size: S3MultipartSink(s3, HANDOFF, key, expected_size=size),
        parse_upload=lambda body, content_type: pytest.fail("a pull is not a multipart body"),
        limits=ConversionLimits(),
    )


def test_one_pass_publishes_the_zip_keeps_the_artifact_and_starts_the_release_once(
    aws: tuple[Any, BuildRepository], artifact: bytes
) -> None:
    s3, builds = aws
    workflow = RecordingWorkflow()
    fetch_lambda = Lambda(
        s3, builds, MeteredBuildPixel(artifact, FakeClock(), FAST), one_pass(s3, builds, workflow)
    )
    received(builds, "one")
    assert fetch_lambda.invoke("one") == "converted"

    record = builds.get("one") or {}
    assert record["status"] == "converted" and record["convertedBy"] == "fetch"
    assert record["zipKey"] in handoff_keys(s3) and record["artifactKey"] == pull_key("one")
    with zipfile.ZipFile(
        io.BytesIO(s3.get_object(Bucket=HANDOFF, Key=record["zipKey"])["Body"].read())
    ) as zipped:
        assert zipped.testzip() is None and "Windows/MyGame.exe" in zipped.namelist()
    # The raw artifact is kept, byte-exact, and was completed after the build was recorded converted.
    assert s3.get_object(Bucket=BUCKET, Key=pull_key("one"))["Body"].read() == artifact
    assert events(builds, "one")[-3:] == ["converted", "stored", "release started"]
    assert workflow.started == [("one", release_input("one"))]

    # Its S3 event reaches ConvertFunction, which converts nothing a second time.
    outcome = convert_function(s3, builds, workflow)(pull_key("one"))
    assert outcome.result == "skipped: build is already converted"
    assert len(handoff_keys(s3)) == 1 and len(workflow.started) == 1
    assert open_uploads(s3, BUCKET) == [] and open_uploads(s3, HANDOFF) == []


def test_an_md5_mismatch_discards_the_published_zip_and_fails_the_build(
    aws: tuple[Any, BuildRepository], artifact: bytes
) -> None:
    s3, builds = aws
    workflow = RecordingWorkflow()
    source = MeteredBuildPixel(artifact, FakeClock(), FAST, md5="0" * 32)
    fetch_lambda = Lambda(s3, builds, source, one_pass(s3, builds, workflow))
    received(builds, "md5")
    assert fetch_lambda.invoke("md5") == "failed"
    record = builds.get("md5") or {}
    assert record["status"] == "failed" and "MD5" in record["error"]
    assert handoff_keys(s3) == [] and open_uploads(s3, HANDOFF) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0 and open_uploads(s3, BUCKET) == []
    assert workflow.started == []


def test_an_archive_the_converter_rejects_fails_with_its_reason(aws: tuple[Any, BuildRepository]) -> None:
    s3, builds = aws
    workflow = RecordingWorkflow()
    escaping = build_targz([file("Windows/MyGame.exe", b"MZ"), file("../../etc/passwd", b"x")])
    fetch_lambda = Lambda(
        s3, builds, MeteredBuildPixel(escaping, FakeClock(), FAST), one_pass(s3, builds, workflow)
    )
    received(builds, "bad")
    assert fetch_lambda.invoke("bad") == "failed"
    record = builds.get("bad") or {}
    assert record["status"] == "failed" and ".." in record["error"]
    assert handoff_keys(s3) == [] and open_uploads(s3, HANDOFF) == [] and open_uploads(s3, BUCKET) == []


class BrokenZipSink(S3MultipartSink):
    def write(self, data: Any, /) -> int:
        raise ConnectionError("the handoff bucket is unavailable")


def test_a_failed_zip_upload_falls_back_to_storing_the_artifact_for_convert_function(
    aws: tuple[Any, BuildRepository], artifact: bytes
) -> None:
    s3, builds = aws
    workflow = RecordingWorkflow()
    publication = Publication(builds=builds, handoff=RecordingHandoff(), workflow=workflow)
    broken = OnePass(publication, lambda key, size: BrokenZipSink(s3, HANDOFF, key), ConversionLimits())
    fetch_lambda = Lambda(s3, builds, MeteredBuildPixel(artifact, FakeClock(), FAST), broken)
    received(builds, "fallback")
    assert fetch_lambda.invoke("fallback") == "stored"
    assert "one pass failed" in events(builds, "fallback")
    assert open_uploads(s3, HANDOFF) == [] and workflow.started == []
    assert s3.get_object(Bucket=BUCKET, Key=pull_key("fallback"))["Body"].read() == artifact
    assert convert_function(s3, builds, workflow)(pull_key("fallback")).result == "converted"
