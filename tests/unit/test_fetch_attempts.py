"""A download stopped on every attempt (time limit, memory) ends ``failed``; a later delivery restarts one.

Lambda stops FetchFunction without running any of its code, so the record alone must tell when the
download is over: attempts are counted, and ``fetchRequestedAt`` / ``fetchHeartbeatAt`` say when it
last showed life. Clocks are injected: nothing here waits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pixelbridge.domain.fetch_attempts import (
    FETCH_STALL_SECONDS,
    FETCH_TIMEOUT_SECONDS,
    MAX_FETCH_ATTEMPTS,
    fetch_last_alive_at,
    fetch_silent_for,
    fetch_stall_reason,
)
from pixelbridge.domain.reconciliation import StuckThresholds
from pixelbridge.domain.signatures import sign
from pixelbridge.domain.timeline import iso
from pixelbridge.domain.uploads import UploadState
from pixelbridge.ports import (
    ArtifactReader,
    ArtifactResponse,
    DistributeResult,
    DownloadInfo,
    ResumableArtifactSink,
    StreampixelCredentials,
    TestWebhookResult,
    UploadResult,
)
from pixelbridge.usecases.fetch_artifact import FetchArtifact, FetchLimits
from pixelbridge.usecases.ingest_webhook import IngestWebhook
from pixelbridge.usecases.operator import OperatorApi
from pixelbridge.usecases.reconcile import ReconcileBuilds
from pixelbridge_local.template import function_properties
from tests.support.fakes import InMemoryBuilds, RecordingWorkflow

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_fetch_attempts"
STALL = timedelta(seconds=FETCH_STALL_SECONDS)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Stopped(BaseException):
    """Lambda stopping the sandbox: no ``except Exception`` of ours runs, nothing more is written."""


class StoppedMidDownload:
    """BuildPixel's side of a download that never ends within the invocation."""

    def download_info(self, build_id: str) -> DownloadInfo:
        raise Stopped

    def open_artifact(
        self, url: str, *, start: int = 0, stop: int | None = None, read_timeout: float | None = None
    ) -> ArtifactResponse:
        raise AssertionError("the invocation was stopped before")


def no_sink(key: str, size: int | None, resume: UploadState | None, part_size: int) -> ResumableArtifactSink:
    raise AssertionError("nothing was downloaded")


def no_reader(url: str, size: int | None, start: int, budget: Callable[[], float]) -> ArtifactReader:
    raise AssertionError("nothing was downloaded")


def pull_record(**fields: Any) -> dict[str, Any]:
    return {"buildId": "b-1", "status": "received", "source": "pull", "sources": ["pull"], **fields}


def stopped_fetch(builds: InMemoryBuilds) -> None:
    fetch = FetchArtifact(
        builds=builds,
        source=StoppedMidDownload(),
        open_reader=no_reader,
        open_sink=no_sink,
        limits=FetchLimits(max_bytes=1 << 20),
    )
    with pytest.raises(Stopped):
        fetch("b-1")


def reconciler(builds: InMemoryBuilds, clock: Clock) -> ReconcileBuilds:
    return ReconcileBuilds(
        builds=builds, workflow=RecordingWorkflow(), thresholds=StuckThresholds(), clock=clock
    )


def test_the_template_gives_fetch_the_attempts_the_code_assumes_and_parks_the_last_in_the_dlq() -> None:
    fetch = function_properties("FetchFunction")
    assert fetch["Timeout"] == FETCH_TIMEOUT_SECONDS
    config = fetch["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] + 1 == MAX_FETCH_ATTEMPTS
    # The conversion dead-letter queue (and its alarm) takes stopped downloads too.
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["ConvertDeadLetterQueue", "Arn"]},
    }


def test_every_stopped_attempt_is_counted_and_the_reconciler_ends_the_build_after_the_last() -> None:
    clock = Clock()
    builds = InMemoryBuilds(pull_record(fetchRequestedAt=iso(START)), clock=clock)
    stopped_fetch(builds)  # the invocation
    clock.now += timedelta(minutes=16)
    stopped_fetch(builds)  # Lambda's one retry
    record = builds.records["b-1"]
    assert record["status"] == "received" and record["fetchAttempts"] == MAX_FETCH_ATTEMPTS
    assert [entry["detail"].split(",")[0] for entry in record["timeline"]] == ["attempt 1", "attempt 2"]

    alive = fetch_last_alive_at(record)  # fetchRequestedAt, or a heartbeat FetchFunction wrote
    assert alive is not None
    clock.now = alive + STALL  # the retry may still be running until then
    assert reconciler(builds, clock)().actions == []
    clock.now += timedelta(seconds=1)
    report = reconciler(builds, clock)()
    assert report.actions == [{"buildId": "b-1", "action": "recorded failed"}]
    failed = builds.records["b-1"]
    assert failed["status"] == "failed" and failed["stuck"] is True
    assert failed["error"].startswith("download did not finish: 2 attempt(s) started, none ended")
    assert "sig=" not in json.dumps(failed)


def test_a_heartbeat_keeps_a_long_download_alive_and_a_silent_one_is_judged_from_it() -> None:
    clock = Clock()
    clock.now = START + 5 * STALL  # e.g. a download continued across invocations from checkpoints
    beating = pull_record(fetchRequestedAt=iso(START), fetchHeartbeatAt=iso(clock.now - STALL))
    builds = InMemoryBuilds(beating, clock=clock)
    report = reconciler(builds, clock)()
    assert report.actions == [] and builds.records["b-1"]["status"] == "received"
    assert "stuck" not in builds.records["b-1"]  # not even flagged: it showed life within its limit
    clock.now += timedelta(seconds=1)
    assert reconciler(builds, clock)().actions == [{"buildId": "b-1", "action": "recorded failed"}]


def test_the_stall_rule_reads_only_open_pulls_with_a_requested_download() -> None:
    late = START + STALL + timedelta(hours=1)
    assert fetch_silent_for(pull_record(), late, FETCH_STALL_SECONDS) is None  # never requested
    stored = pull_record(status="stored", fetchRequestedAt=iso(START))
    assert fetch_silent_for(stored, late, FETCH_STALL_SECONDS) is None
    naive_heartbeat = pull_record(fetchRequestedAt=iso(START), fetchHeartbeatAt="2026-05-01T12:30:00")
    assert fetch_silent_for(naive_heartbeat, late, FETCH_STALL_SECONDS) == late - START - timedelta(
        minutes=30
    )


def test_a_download_stopped_before_it_recorded_an_attempt_says_so() -> None:
    silent = fetch_silent_for(
        pull_record(fetchRequestedAt=iso(START)), START + 2 * STALL, FETCH_STALL_SECONDS
    )
    assert silent is not None
    reason = fetch_stall_reason(pull_record(), silent, FETCH_STALL_SECONDS)
    assert reason.startswith("download did not finish: no attempt recorded its start (stopped by")
    assert reason.endswith("no sign of life for 80 min (limit 40 min)")


def test_the_threshold_is_every_attempt_at_its_longest_unless_configured() -> None:
    assert FETCH_STALL_SECONDS > MAX_FETCH_ATTEMPTS * FETCH_TIMEOUT_SECONDS  # + Lambda's retry delays
    default = StuckThresholds.from_settings(ingest=60, convert=60, queue=60, release=60, approval_timeout=1)
    assert default.fetch_seconds == FETCH_STALL_SECONDS
    configured = StuckThresholds.from_settings(
        ingest=60, convert=60, queue=60, release=60, approval_timeout=1, fetch=5
    )
    assert configured.fetch_seconds == 5 and configured.smallest == 5  # the reconciler reads it in time


class RecordingStarter:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, build_id: str) -> None:
        self.started.append(build_id)


def redelivery(builds: InMemoryBuilds, starter: RecordingStarter) -> tuple[int, dict[str, Any]]:
    document = {
        "type": "build.complete",
        "createdAt": builds.now_iso(),
        "data": {
            "build": {"id": "b-1", "status": "complete", "platform": "Win64", "artifactUrl": "https://a/b"},
            "project": {"id": "665a2b3c4d5e6f7a8b9c0e10"},
        },
    }
    body = json.dumps(document).encode()
    ingest = IngestWebhook(builds=builds, routes=[], fetch_starter=starter, signing_secret=lambda: SECRET)
    receipt = ingest(body=body, signature=sign(body, SECRET))
    return (202 if receipt.taken_in else 200), receipt.body


def test_a_delivery_while_the_download_may_still_run_starts_no_second_one() -> None:
    clock = Clock()
    builds = InMemoryBuilds(pull_record(fetchRequestedAt=iso(START)), clock=clock)
    starter = RecordingStarter()
    clock.now = START + STALL
    assert redelivery(builds, starter) == (200, {"buildId": "b-1", "status": "received"})
    assert starter.started == []


def test_a_delivery_after_the_download_fell_silent_restarts_it() -> None:
    clock = Clock()
    builds = InMemoryBuilds(pull_record(fetchRequestedAt=iso(START), fetchAttempts=2), clock=clock)
    starter = RecordingStarter()
    clock.now = START + STALL + timedelta(minutes=5)
    assert redelivery(builds, starter) == (202, {"buildId": "b-1", "status": "received"})
    assert starter.started == ["b-1"]
    record = builds.records["b-1"]
    assert record["fetchRequestedAt"] == iso(clock.now)  # a new window: the reconciler waits for it
    restart = record["timeline"][-1]
    assert restart["event"] == "fetch requested"
    assert restart["detail"] == "download restarted: the previous one showed no sign of life for 45 min"
    assert reconciler(builds, clock)().actions == []


def test_a_delivery_for_a_build_that_already_ended_failed_changes_nothing() -> None:
    clock = Clock()
    failed = pull_record(status="failed", fetchRequestedAt=iso(START), error="download did not finish")
    builds = InMemoryBuilds(failed, clock=clock)
    starter = RecordingStarter()
    clock.now = START + 2 * STALL
    assert redelivery(builds, starter) == (200, {"buildId": "b-1", "status": "failed"})
    assert starter.started == [] and builds.records["b-1"]["status"] == "failed"


class NoStreampixel:
    """A retry that downloads again talks to BuildPixel only."""

    def upload_file(
        self, creds: StreampixelCredentials, project_id: str, file_url: str, *, auto_release: bool
    ) -> UploadResult:
        raise AssertionError("no upload on retry:fetch")

    def distribute_file(
        self, creds: StreampixelCredentials, project_id: str, upload_id: str
    ) -> DistributeResult:
        raise AssertionError("no distribution on retry:fetch")

    def test_webhook(self, creds: StreampixelCredentials, project_id: str) -> TestWebhookResult:
        raise AssertionError("not a doctor run")


class NoConversion:
    def start(self, build_id: str, key: str, retry: int) -> None:
        raise AssertionError("nothing reached the inbox to convert")


def no_credentials(account: str) -> StreampixelCredentials:
    raise AssertionError("no Streampixel call on retry:fetch")


def operator(builds: InMemoryBuilds, starter: RecordingStarter) -> OperatorApi:
    return OperatorApi(
        builds=builds,
        workflow=RecordingWorkflow(),
        routes=[],
        object_exists=lambda bucket, key: False,
        artifact_bucket="artifacts",
        handoff_bucket="handoff",
        convert_starter=NoConversion(),
        fetch_starter=starter,
        streampixel=NoStreampixel(),
        credentials=no_credentials,
    )


def test_an_operator_retry_downloads_a_pull_again_and_the_stall_rule_starts_over() -> None:
    clock = Clock()
    clock.now = START + 2 * STALL
    error = "download did not finish: 2 attempt(s) started, none ended"
    failed = pull_record(status="failed", fetchRequestedAt=iso(START), fetchAttempts=2, error=error)
    builds = InMemoryBuilds(failed, clock=clock)
    starter = RecordingStarter()
    answer = operator(builds, starter).retry("b-1")
    assert (answer["action"], answer["status"]) == ("retry:fetch", "received")
    assert starter.started == ["b-1"]
    record = builds.records["b-1"]
    assert record["fetchRequestedAt"] == iso(clock.now) and "error" not in record
    assert reconciler(builds, clock)().actions == []  # a new window for the new download


def test_a_push_with_nothing_left_to_redrive_is_still_a_conflict() -> None:
    from pixelbridge.domain.errors import Conflict

    builds = InMemoryBuilds({**pull_record(status="failed"), "source": "push", "sources": ["push"]})
    starter = RecordingStarter()
    with pytest.raises(Conflict, match="push the build again"):
        operator(builds, starter).retry("b-1")
    assert starter.started == []
