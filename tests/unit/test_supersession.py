"""A build superseded while its release runs is never uploaded, and leaves the reconciler's work list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pixelbridge.domain.errors import Superseded
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.ports import DistributeResult, StreampixelCredentials, TestWebhookResult, UploadResult
from pixelbridge.usecases.release import GaveUp, ReleaseConfig, ReleaseTasks
from tests.support.fakes import InMemoryBuilds, RecordingHandoff, RecordingWorkflow

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class EndsBeforeUpload(InMemoryBuilds):
    """BuildPixel's ``build.superseded`` (or a reconciler) lands between the task's read and its write."""

    def __init__(self, record: dict[str, Any], ending: BuildStatus) -> None:
        super().__init__(record, clock=lambda: NOW)
        self._ending = ending

    def transition(self, build_id: str, to: BuildStatus, **kwargs: Any) -> dict[str, Any] | None:
        if to is BuildStatus.UPLOADING:
            self.records[build_id]["status"] = str(self._ending)
        return super().transition(build_id, to, **kwargs)


class CountingStreampixel:
    def __init__(self) -> None:
        self.uploads = 0

    def upload_file(
        self, creds: StreampixelCredentials, project_id: str, file_url: str, *, auto_release: bool
    ) -> UploadResult:
        self.uploads += 1
        return UploadResult("0123456789abcdef01234567", "ok")

    def distribute_file(
        self, creds: StreampixelCredentials, project_id: str, upload_id: str
    ) -> DistributeResult:
        raise AssertionError("not called")

    def test_webhook(self, creds: StreampixelCredentials, project_id: str) -> TestWebhookResult:
        raise AssertionError("not called")


class FreeSlots:
    def reserve(self, user_id: str, not_before: datetime, spacing_seconds: float) -> datetime:
        return not_before

    def claim_call(self, user_id: str, now: datetime, spacing_seconds: float) -> datetime | None:
        return None

    def call_ended(self, user_id: str, at: datetime) -> None:
        return None


@pytest.mark.parametrize(
    ("ending", "refusal"), [(BuildStatus.SUPERSEDED, Superseded), (BuildStatus.FAILED, GaveUp)]
)
def test_a_build_that_ended_while_the_upload_task_ran_is_never_uploaded(
    ending: BuildStatus, refusal: type[Exception]
) -> None:
    record = {
        "buildId": "b-1",
        "status": "queued",
        "route": "-",
        "zipKey": "dl/t/b-1.zip",
        "release": {"streampixelProjectId": "p" * 24, "policy": "auto", "account": "default"},
    }
    builds = EndsBeforeUpload(record, ending)
    streampixel = CountingStreampixel()
    tasks = ReleaseTasks(
        builds=builds,
        slots=FreeSlots(),
        streampixel=streampixel,
        credentials=lambda account: StreampixelCredentials("user", "key"),
        handoff_url=RecordingHandoff().url_for,
        workflow=RecordingWorkflow(),
        config=ReleaseConfig(
            slot_seconds=0, approval_timeout_seconds=60, live_window_seconds=0, max_rate_limited_attempts=3
        ),
        clock=lambda: NOW,
        sleep=lambda seconds: None,
    )
    with pytest.raises(refusal):
        tasks.upload("b-1")
    assert streampixel.uploads == 0 and builds.records["b-1"]["status"] == str(ending)
