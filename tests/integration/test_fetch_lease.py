"""One download at a time (``fetchLease``), and continuations that carry no URL, on an injected clock.

Lambda may deliver one async invocation twice, and retries an invocation it stopped. Each copy of
FetchFunction claims the build's lease with a conditional write; a copy that cannot claim it, or lost it,
answers "skipped" and touches nothing: it never aborts the multipart upload another copy writes. Time is
a fake clock advanced by the bytes the host serves (and by the tests): nothing waits on the wall clock.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pixelbridge.adapters.builds import BuildRepository
from pixelbridge.adapters.fetch_starter import LambdaFetchStarter
from pixelbridge.adapters.ranged_reader import RangedReadConfig, artifact_readers
from pixelbridge.adapters.store import pull_key
from pixelbridge.convert.sinks import resumable_s3_sinks
from pixelbridge.domain.fetch_attempts import FETCH_LEASE_FIELD
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.timeline import iso
from pixelbridge.ports import ArtifactResponse, ArtifactUrlExpired, BuildsPort, DownloadInfo, FetchStarter
from pixelbridge.usecases.fetch_artifact import (
    CHECKPOINT_FIELD,
    HEARTBEAT_FIELD,
    HELD_ELSEWHERE,
    FetchArtifact,
    FetchLimits,
)
from pixelbridge_local.template import create_tables
from tests.integration.test_checkpoint_chain import FakeClock, at
from tests.support.fakes import InMemoryBuilds
from tests.unit.test_fetch_payload import RecordingLambda

MiB = 1024 * 1024
BUCKET = "artifacts"
PART = 5 * MiB
TIMEOUT = 900.0
LIMITS = FetchLimits(max_bytes=1 << 30, checkpoint_every_seconds=1.0)  # reserve 60 s, as deployed
READS = RangedReadConfig(range_size=1 * MiB, connections=2)
DATA = random.Random(14).randbytes(30 * MiB)


class Stopped(BaseException):
    """Lambda stopping the sandbox: no ``except Exception`` of ours runs, nothing more is written."""


@dataclass
class Host:
    """BuildPixel's download API and artifact host in memory. Every URL signed carries a serial; those
    below ``valid_from`` are expired. ``hooks[n]`` runs once when a body passes byte n."""

    clock: FakeClock
    seconds_for_all: float
    serial: int = 0
    valid_from: int = 1
    used: list[int] = field(default_factory=list)
    hooks: dict[int, Callable[[], None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def download_info(self, build_id: str) -> DownloadInfo:
        self.serial += 1
        md5 = hashlib.md5(DATA, usedforsecurity=False).hexdigest()
        return DownloadInfo(f"https://artifacts.example.test/a?v={self.serial}&sig=s", None, len(DATA), md5)

    def open_artifact(
        self, url: str, *, start: int = 0, stop: int | None = None, read_timeout: float | None = None
    ) -> ArtifactResponse:
        serial = int(url.split("v=")[1].split("&")[0])
        self.used.append(serial)
        if serial < self.valid_from:
            raise ArtifactUrlExpired("the artifact URL was refused (403)")
        return ArtifactResponse(start, len(DATA), self._chunks(start, stop or len(DATA)), close=lambda: None)

    def _chunks(self, start: int, stop: int) -> Iterator[bytes]:
        for offset in range(start, stop, 64 * 1024):
            chunk = DATA[offset : min(stop, offset + 64 * 1024)]
            self.clock.advance(len(chunk) * self.seconds_for_all / len(DATA))
            with self._lock:
                due = [mark for mark in self.hooks if offset + len(chunk) >= mark]
                hooks = [self.hooks.pop(mark) for mark in due]
            for hook in hooks:
                hook()
            yield chunk


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        table = create_tables(boto3.client("dynamodb", region_name="us-east-1"))["BuildsTable"]
        yield s3, table


def builds_on(table: str, clock: FakeClock) -> BuildRepository:
    dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
    builds = BuildRepository(table, dynamodb=dynamodb, clock=lambda: at(clock.now))
    builds.create({"buildId": "b-1", "status": "received", "source": "pull"}, event="received")
    return builds


def invocation(
    s3: Any, builds: BuildRepository, host: Host, continue_fetch: FetchStarter | None = None
) -> FetchArtifact:
    """A new FetchFunction invocation: its own 900 s on the shared clock."""
    started = host.clock.now
    return FetchArtifact(
        builds=builds,
        source=host,
        open_reader=artifact_readers(host, READS, sleep=lambda seconds: None),
        open_sink=resumable_s3_sinks(s3, BUCKET, part_size=PART),
        limits=LIMITS,
        continue_fetch=continue_fetch,
        sleep=lambda seconds: None,
        seconds_left=lambda: TIMEOUT - (host.clock.now - started),
    )


def open_uploads(s3: Any) -> list[str]:
    return [upload["UploadId"] for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


def events(builds: BuildRepository) -> list[str]:
    return [entry["event"] for entry in (builds.get("b-1") or {})["timeline"]]


def stored(s3: Any) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=pull_key("b-1"))["Body"].read())


@pytest.mark.parametrize("kind", ["in-memory fake", "DynamoDB (moto)"])
def test_the_lease_is_held_by_one_holder_until_it_expires_or_is_released(aws: Any, kind: str) -> None:
    clock = FakeClock()
    builds: BuildsPort
    if kind == "in-memory fake":
        builds = InMemoryBuilds({"buildId": "b-1", "status": "received"}, clock=lambda: at(clock.now))
    else:
        builds = builds_on(aws[1], clock)
    assert builds.hold_fetch_lease("b-1", "a", seconds=100, fields={"fetchHeartbeatAt": "x"}) is not None
    assert builds.hold_fetch_lease("b-1", "b", seconds=100) is None  # a live lease of another holder
    clock.advance(99)
    assert builds.hold_fetch_lease("b-1", "a", seconds=100) is not None  # renewed by its holder
    clock.advance(99)
    assert builds.hold_fetch_lease("b-1", "b", seconds=100) is None
    clock.advance(2)
    taken = builds.hold_fetch_lease("b-1", "b", seconds=100)  # expired: the holder was stopped
    assert taken is not None and taken[FETCH_LEASE_FIELD]["holder"] == "b"
    assert builds.hold_fetch_lease("b-1", "a", seconds=100, fields={"x": 1}) is None
    freed = builds.hold_fetch_lease("b-1", "b", seconds=100, release=True)
    assert freed is not None and FETCH_LEASE_FIELD not in freed
    assert builds.hold_fetch_lease("b-1", "a", seconds=100) is not None
    builds.transition("b-1", BuildStatus.STORED, event="stored")
    assert builds.hold_fetch_lease("b-1", "a", seconds=100) is None  # only while the build waits


def test_a_duplicate_delivery_during_the_download_is_skipped_and_touches_nothing(aws: Any) -> None:
    s3, table = aws
    clock = FakeClock()
    builds = builds_on(table, clock)
    host = Host(clock, seconds_for_all=100.0)
    duplicate: list[str] = []
    # The same event delivered again (same request id) while the first copy is 12 MiB in.
    host.hooks[12 * MiB] = lambda: duplicate.append(invocation(s3, builds, host)("b-1", "req-1").result)

    assert invocation(s3, builds, host)("b-1", "req-1").result == "stored"

    assert duplicate == [HELD_ELSEWHERE]
    assert stored(s3) == DATA and open_uploads(s3) == []
    record = builds.get("b-1") or {}
    assert record["status"] == "stored" and FETCH_LEASE_FIELD not in record and CHECKPOINT_FIELD not in record
    assert "failed" not in events(builds) and events(builds).count("fetching") == 1


class StallBeforeCheckpoint(BuildRepository):
    """The builds table; ``stall`` runs once, in the holder's own thread, just before it writes a
    checkpoint past ``at_offset``: the holder looks stopped for that long."""

    stall: Callable[[], None] | None = None
    at_offset = 10 * MiB

    def hold_fetch_lease(self, build_id: str, holder: str, **options: Any) -> Any:
        checkpoint = (options.get("fields") or {}).get(CHECKPOINT_FIELD)
        if self.stall is not None and checkpoint and checkpoint["offset"] >= self.at_offset:
            stall, self.stall = self.stall, None
            stall()
        return super().hold_fetch_lease(build_id, holder, **options)


def test_a_copy_that_lost_its_lease_never_aborts_the_upload_and_the_download_goes_on(aws: Any) -> None:
    s3, table = aws
    clock = FakeClock()
    dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
    builds = StallBeforeCheckpoint(table, dynamodb=dynamodb, clock=lambda: at(clock.now))
    builds.create({"buildId": "b-1", "status": "received", "source": "pull"}, event="received")
    host = Host(clock, seconds_for_all=300.0)
    took_over: list[str] = []

    def stop() -> None:
        raise Stopped

    def retried_while_stalled() -> None:
        # The first copy stalls past its lease; Lambda's retry (same request id) takes the download over
        # from the last checkpoint, then is stopped itself with its lease still live.
        clock.advance(TIMEOUT + LIMITS.lease_grace_seconds)
        host.hooks[22 * MiB] = stop
        try:
            invocation(s3, builds, host)("b-1", "req-1")
        except Stopped:
            took_over.append(str((builds.get("b-1") or {})[FETCH_LEASE_FIELD]["holder"]))

    builds.stall = retried_while_stalled
    continuations = RecordingLambda()
    first = invocation(s3, builds, host, LambdaFetchStarter("fetch", lambda_client=continuations))

    assert first("b-1", "req-1").result == HELD_ELSEWHERE  # its checkpoint write was refused

    assert took_over and took_over[0].startswith("req-1/")
    record = builds.get("b-1") or {}
    assert record["status"] == "received" and record[FETCH_LEASE_FIELD]["holder"] == took_over[0]
    assert record[HEARTBEAT_FIELD] >= iso(at(TIMEOUT))  # the second copy's write: the first's was refused
    assert open_uploads(s3) == [record[CHECKPOINT_FIELD]["uploadId"]]  # the shared upload is intact
    assert continuations.invokes == [] and "failed" not in events(builds)
    # A retry while the second copy's lease is live is skipped; once it has expired, the next one finishes.
    assert invocation(s3, builds, host)("b-1", "req-2").result == HELD_ELSEWHERE
    clock.advance(TIMEOUT + LIMITS.lease_grace_seconds)
    assert invocation(s3, builds, host)("b-1", "req-2").result == "stored"
    assert stored(s3) == DATA and open_uploads(s3) == []


def test_a_chain_sends_the_build_id_only_and_each_invocation_downloads_from_a_url_signed_then(
    aws: Any,
) -> None:
    s3, table = aws
    clock = FakeClock()
    builds = builds_on(table, clock)
    host = Host(clock, seconds_for_all=1.5 * (TIMEOUT - LIMITS.reserve_seconds))  # two invocations' worth
    continuations = RecordingLambda()
    starter = LambdaFetchStarter("fetch", lambda_client=continuations)

    assert invocation(s3, builds, host, starter)("b-1", "req-1").result == "continuing"
    assert [json.loads(invoke["Payload"]) for invoke in continuations.invokes] == [{"buildId": "b-1"}]
    host.valid_from = host.serial + 1  # every URL signed so far has expired (say, after 24 h)
    used_before = len(host.used)

    assert invocation(s3, builds, host, starter)("b-1", "req-2").result == "stored"

    assert set(host.used[used_before:]) == {host.serial}  # the URL signed for this invocation, never refused
    assert "artifact URL renewed" not in events(builds)
    assert stored(s3) == DATA and len(continuations.invokes) == 1
    assert all("url" not in invoke["Payload"].decode().lower() for invoke in continuations.invokes)
