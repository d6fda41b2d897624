"""Conversion attempts match Lambda's: the first invocation and one retry, then the build ends."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from pixelbridge.convert.pipeline import ConversionLimits
from pixelbridge.usecases.convert_build import MAX_CONVERT_ATTEMPTS, ConvertBuild
from tests.support.fakes import InMemoryBuilds, MemoryInbox, RecordingHandoff, RecordingWorkflow

NOW = datetime(2026, 5, 1, tzinfo=UTC)
KEY = "inbox/pull/b-1.tar.gz"


class CrashingSink(io.BytesIO):
    """A zip sink whose storage breaks mid-conversion (what a crash of the invocation looks like)."""

    def write(self, data: Any, /) -> int:
        raise ConnectionResetError("S3 went away")

    def hold_from(self, offset: int) -> None:
        return None

    def release_hold(self) -> None:
        return None

    def complete(self) -> None:
        raise AssertionError("never completed")

    def abort(self) -> None:
        return None


def converter(builds: InMemoryBuilds) -> ConvertBuild:
    from pixelbridge_local.sample_build import ue_like_targz

    inbox = MemoryInbox()
    inbox.objects[KEY] = (ue_like_targz(pak_bytes=10_000), "application/gzip")
    return ConvertBuild(
        builds=builds,
        inbox=inbox,
        handoff=RecordingHandoff(),
        workflow=RecordingWorkflow(),
        open_zip_sink=lambda key, size: CrashingSink(),
        parse_upload=lambda body, content_type: pytest.fail("not a push"),
        limits=ConversionLimits(),
    )


def test_lambda_invokes_twice_so_the_second_crash_ends_the_build_failed() -> None:
    assert MAX_CONVERT_ATTEMPTS == 2  # EventInvokeConfig MaximumRetryAttempts 1
    record: dict[str, Any] = {"buildId": "b-1", "status": "stored"}
    builds = InMemoryBuilds(record, clock=lambda: NOW)
    convert = converter(builds)
    with pytest.raises(ConnectionResetError):
        convert(KEY)  # the first invocation: Lambda will retry it
    assert builds.records["b-1"]["status"] == "converting"
    assert convert(KEY).result == "failed"  # the retry: Lambda has no third invocation
    failed = builds.records["b-1"]
    assert failed["status"] == "failed" and "attempt 2; giving up" in failed["error"]
    assert failed["convertAttempts"] == 2
