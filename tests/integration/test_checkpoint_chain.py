"""No size that fails: a pull too slow for one invocation continues from checkpoints, on an injected clock.

The real case is a 24 GiB artifact from a host giving 10 MB/s, with Lambda's 900 s and a 60 s reserve:
840 s x 10 MB/s = 8.4 GB per invocation, so the artifact is ~3.07 invocations' worth of bytes. These tests
keep that ratio with a 48 MiB artifact (S3's 5 MiB part minimum is the smallest checkpoint step moto
accepts) and a host whose rate is set so that 48 MiB is again 3.07 invocations' worth. Time is a fake
clock advanced by the bytes the host serves: no test waits on the wall clock.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import rehashes
from moto import mock_aws

from pixelbridge.adapters.builds import BuildRepository
from pixelbridge.adapters.ranged_reader import RangedReadConfig, artifact_readers
from pixelbridge.adapters.store import InboxStore, pull_key
from pixelbridge.convert.pipeline import ConversionLimits
from pixelbridge.convert.sinks import S3MultipartSink, resumable_s3_sinks
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.timeline import iso
from pixelbridge.ports import ArtifactResponse, ArtifactUrlRefused, DownloadInfo
from pixelbridge.usecases.convert_build import ConvertBuild, Publication
from pixelbridge.usecases.fetch_artifact import (
    CHECKPOINT_FIELD,
    HEARTBEAT_FIELD,
    FetchArtifact,
    FetchLimits,
    OnePass,
)
from pixelbridge_local.template import create_tables
from tests.support.archives import make_ue_like_targz
from tests.support.fakes import RecordingHandoff, RecordingWorkflow

MiB = 1024 * 1024
BUCKET = "artifacts"
HANDOFF = "handoff"
LAMBDA_TIMEOUT = 900.0
LIMITS = FetchLimits(max_bytes=24 * 1024**3)  # reserve 60 s, as deployed
PART = 5 * MiB
READS = RangedReadConfig(range_size=1 * MiB, connections=2)
FAST_ENOUGH = 1e12  # bytes per fake second
INVOCATIONS_WORTH = 24 * 1024**3 / (10e6 * (LAMBDA_TIMEOUT - LIMITS.reserve_seconds))  # ~3.07


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@dataclass
class MeteredBuildPixel:
    """BuildPixel's download API and artifact host in memory; serving a byte costs 1/rate fake seconds."""

    data: bytes
    clock: FakeClock
    rate: float
    md5: str = ""
    served: int = 0
    requests: list[tuple[int, int | None]] = field(default_factory=list)

    def download_info(self, build_id: str) -> DownloadInfo:
        md5 = self.md5 or hashlib.md5(self.data, usedforsecurity=False).hexdigest()
        return DownloadInfo("https://artifacts.example.test/a?sig=s", None, len(self.data), md5)

    def open_artifact(
        self, url: str, *, start: int = 0, stop: int | None = None, read_timeout: float | None = None
    ) -> ArtifactResponse:
        self.requests.append((start, stop))
        return ArtifactResponse(start, len(self.data), self._chunks(start), close=lambda: None)

    def _chunks(self, start: int) -> Iterator[bytes]:
        for offset in range(start, len(self.data), 64 * 1024):
            chunk = self.data[offset : offset + 64 * 1024]
            self.clock.advance(len(chunk) / self.rate)
            self.served += len(chunk)
            yield chunk


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(1_700_000_000 + seconds, UTC)


class HeartbeatLog(BuildRepository):
    """The builds table, noting every ``fetchHeartbeatAt`` written (and whether a checkpoint came with it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beats: list[tuple[str, bool]] = []

    def hold_fetch_lease(self, build_id: str, holder: str, **options: Any) -> Any:
        fields = options.get("fields") or {}
        if HEARTBEAT_FIELD in fields:
            self.beats.append((fields[HEARTBEAT_FIELD], CHECKPOINT_FIELD in fields))
        return super().hold_fetch_lease(build_id, holder, **options)


@dataclass
class Lambda:
    """FetchFunction's invocations: each a new use case with its own 900 s on the shared clock."""

    s3: Any
    builds: BuildRepository
    source: MeteredBuildPixel
    one_pass: OnePass | None
    pending: list[str] = field(default_factory=list)  # payloads of self-invocations (build ids)
    outcomes: list[str] = field(default_factory=list)

    def start(self, build_id: str) -> None:
        self.pending.append(build_id)

    def invoke(self, build_id: str, *, limits: FetchLimits = LIMITS) -> str:
        started = self.source.clock.now
        fetch = FetchArtifact(
            builds=self.builds,
            source=self.source,
            open_reader=artifact_readers(self.source, READS, sleep=lambda seconds: None),
            open_sink=resumable_s3_sinks(self.s3, BUCKET, part_size=PART),
            limits=limits,
            one_pass=self.one_pass,
            continue_fetch=self,
            sleep=lambda seconds: None,
            seconds_left=lambda: LAMBDA_TIMEOUT - (self.source.clock.now - started),
        )
        result = fetch(build_id, None).result
        self.outcomes.append(result)
        return result

    def run_chain(self, build_id: str, *, limits: FetchLimits = LIMITS) -> None:
        self.pending.append(build_id)
        while self.pending:
            self.invoke(self.pending.pop(0), limits=limits)


@pytest.fixture(scope="module")
def artifact() -> bytes:
    out = io.BytesIO()
    make_ue_like_targz(out, pak_bytes=48 * MiB, small_files=40, seed=14)
    return out.getvalue()


@pytest.fixture
def aws() -> Iterator[tuple[Any, BuildRepository]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=HANDOFF)
        table = create_tables(boto3.client("dynamodb", region_name="us-east-1"))["BuildsTable"]
        builds = BuildRepository(table, dynamodb=boto3.resource("dynamodb", region_name="us-east-1"))
        yield s3, builds


def one_pass(s3: Any, builds: BuildRepository, workflow: RecordingWorkflow) -> OnePass:
    def open_zip_sink(key: str, size: int | None) -> S3MultipartSink:
        return S3MultipartSink(s3, HANDOFF, key, part_size=PART, expected_size=size)

    publication = Publication(builds=builds, handoff=RecordingHandoff(), workflow=workflow)
    return OnePass(publication, open_zip_sink, ConversionLimits())


def received(builds: BuildRepository, build_id: str) -> None:
    builds.create({"buildId": build_id, "status": "received", "source": "pull"}, event="received")


def events(builds: BuildRepository, build_id: str) -> list[str]:
    return [entry["event"] for entry in (builds.get(build_id) or {})["timeline"]]


def open_uploads(s3: Any, bucket: str) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@pytest.mark.parametrize(
    "projection_after", [10.0, 1e9], ids=["one-pass-given-up-early", "one-pass-to-deadline"]
)
def test_a_pull_three_invocations_long_completes_from_checkpoints_and_converts(
    aws: tuple[Any, BuildRepository], artifact: bytes, projection_after: float
) -> None:
    s3, builds = aws
    clock = FakeClock()
    rate = len(artifact) / (INVOCATIONS_WORTH * (LAMBDA_TIMEOUT - LIMITS.reserve_seconds))
    source = MeteredBuildPixel(artifact, clock, rate)
    workflow = RecordingWorkflow()
    fetch_lambda = Lambda(s3, builds, source, one_pass(s3, builds, workflow))
    received(builds, "slow")
    limits = FetchLimits(max_bytes=LIMITS.max_bytes, projection_after_seconds=projection_after)

    fetch_lambda.run_chain("slow", limits=limits)

    invocations = len(fetch_lambda.outcomes)
    assert fetch_lambda.outcomes == ["continuing"] * (invocations - 1) + ["stored"]
    assert invocations >= 4  # 3.07 invocations' worth of bytes cannot fit in 3
    stored = s3.get_object(Bucket=BUCKET, Key=pull_key("slow"))["Body"].read()
    assert stored == artifact  # byte-exact, and its MD5 was checked against the announced one
    record = builds.get("slow") or {}
    assert record["status"] == "stored" and "MD5 verified" in record["timeline"][-1]["detail"]
    assert CHECKPOINT_FIELD not in record and HEARTBEAT_FIELD in record
    # The zip of the first invocation was given up and its upload aborted: nothing half-published.
    assert "one pass given up" in events(builds, "slow")
    assert s3.list_objects_v2(Bucket=HANDOFF).get("KeyCount") == 0 and open_uploads(s3, HANDOFF) == []
    assert open_uploads(s3, BUCKET) == [] and workflow.started == []
    # Each invocation boundary costs at most the part being filled plus the ranges read ahead, once.
    gap = PART + READS.connections * READS.range_size
    assert source.served <= len(artifact) + (invocations - 1) * gap
    assert events(builds, "slow").count("fetch checkpoint") == invocations - 1

    # The completed artifact's S3 event: ConvertFunction converts it from S3 with the parallel reader.
    convert = ConvertBuild(
        builds=builds,
        inbox=InboxStore(BUCKET, s3=s3),
        handoff=RecordingHandoff(),
        workflow=workflow,
        open_zip_sink=lambda key, size: S3MultipartSink(s3, HANDOFF, key, expected_size=size),
        parse_upload=lambda body, content_type: pytest.fail("a pull is not a multipart body"),
        limits=ConversionLimits(),
    )
    assert convert(pull_key("slow")).result == "converted"
    assert workflow.started and workflow.started[0][0] == "slow"


def test_every_invocation_writes_a_heartbeat_and_the_checkpoint_resumes_the_md5(
    aws: tuple[Any, BuildRepository], artifact: bytes
) -> None:
    s3, _ = aws
    clock = FakeClock()
    # The records' clock is the fake one too: each heartbeat is the (fake) time it was written.
    builds = HeartbeatLog(
        create_tables(boto3.client("dynamodb", region_name="us-east-1"), prefix="clocked")["BuildsTable"],
        dynamodb=boto3.resource("dynamodb", region_name="us-east-1"),
        clock=lambda: at(clock.now),
    )
    source = MeteredBuildPixel(artifact, clock, rate=len(artifact) / (2.5 * 840))
    fetch_lambda = Lambda(s3, builds, source, one_pass=None)
    received(builds, "beat")
    assert fetch_lambda.invoke("beat") == "continuing"
    first = builds.get("beat") or {}
    checkpoint = first[CHECKPOINT_FIELD]
    assert checkpoint["offset"] % PART == 0 and len(checkpoint["etags"]) == checkpoint["offset"] // PART
    # The saved MD5 state is the MD5 of exactly the bytes before the checkpoint's offset.
    state = rehashes.PyMd5.deserialize(base64.b64decode(checkpoint["md5State"]))
    state.update(artifact[int(checkpoint["offset"]) :])
    assert state.finalize() == hashlib.md5(artifact, usedforsecurity=False).hexdigest()
    # The next invocation asks for bytes from the checkpoint on, never from byte 0.
    asked_before = len(source.requests)
    clock.advance(5)
    invocation_two = clock.now
    assert fetch_lambda.invoke("beat") == "continuing"
    assert min(start for start, _ in source.requests[asked_before:]) == checkpoint["offset"]
    invocation_three = clock.now
    assert fetch_lambda.invoke("beat") == "stored"
    assert s3.get_object(Bucket=BUCKET, Key=pull_key("beat"))["Body"].read() == artifact
    # A heartbeat when each invocation starts, and one with every checkpoint (two: invocations 1 and 2).
    starts = [0.0, invocation_two, invocation_three]
    at_start = [beat for beat, with_checkpoint in builds.beats if not with_checkpoint]
    assert at_start == [iso(at(seconds)) for seconds in starts]
    assert sum(with_checkpoint for _, with_checkpoint in builds.beats) >= 2
    assert [beat for beat, _ in builds.beats] == sorted(beat for beat, _ in builds.beats)


def test_a_host_that_stalls_a_whole_invocation_fails_the_build_instead_of_chaining_forever(
    aws: tuple[Any, BuildRepository], artifact: bytes
) -> None:
    s3, builds = aws
    source = MeteredBuildPixel(artifact, FakeClock(), rate=1.0)  # 1 byte per second: no part in 840 s
    fetch_lambda = Lambda(s3, builds, source, one_pass=None)
    received(builds, "stalled")
    fetch_lambda.run_chain("stalled")
    record = builds.get("stalled") or {}
    assert fetch_lambda.outcomes[-1] == "failed" and record["status"] == "failed"
    assert "nothing could be kept" in record["error"] or "no progress" in record["error"]
    assert open_uploads(s3, BUCKET) == []


def test_a_wrong_md5_after_a_chained_download_fails_and_keeps_nothing(
    aws: tuple[Any, BuildRepository], artifact: bytes
) -> None:
    s3, builds = aws
    source = MeteredBuildPixel(artifact, FakeClock(), rate=len(artifact) / (1.5 * 840), md5="0" * 32)
    fetch_lambda = Lambda(s3, builds, source, one_pass=None)
    received(builds, "bad-md5")
    fetch_lambda.run_chain("bad-md5")
    assert fetch_lambda.outcomes == ["continuing", "failed"]
    assert "MD5" in (builds.get("bad-md5") or {})["error"]
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0 and open_uploads(s3, BUCKET) == []


def test_the_checkpoint_of_a_24_gib_upload_fits_a_build_record_with_room_to_spare() -> None:
    from pixelbridge.adapters.item_size import MAX_ITEM_BYTES, item_size
    from pixelbridge.convert.sinks import choose_part_size
    from pixelbridge.domain.uploads import UploadState
    from pixelbridge.usecases.fetch_artifact import FetchCheckpoint
    from pixelbridge.wiring import FETCH_PART_SIZE

    size = 24 * 1024**3
    part_size = choose_part_size(FETCH_PART_SIZE, size)
    parts = size // part_size  # every part but the last is in a checkpoint at most
    etag = '"' + "0123456789abcdef" * 2 + '"'
    upload = UploadState(pull_key("b" * 64), "u" * 128, part_size, (etag,) * parts)
    checkpoint = FetchCheckpoint(upload, parts * part_size, b"s" * 88, 30).to_record()
    assert parts == 1536
    assert item_size({CHECKPOINT_FIELD: checkpoint}) < MAX_ITEM_BYTES // 6  # ~57 KB of the 400 KB item


def test_a_fetch_that_fails_after_the_build_moved_on_leaves_it_as_it_is(
    aws: tuple[Any, BuildRepository], artifact: bytes
) -> None:
    s3, builds = aws

    class StoredMeanwhile(MeteredBuildPixel):
        """A duplicate invocation stores the build, then this one's host refuses the URL."""

        def open_artifact(
            self, url: str, *, start: int = 0, stop: int | None = None, read_timeout: float | None = None
        ) -> ArtifactResponse:
            builds.transition(
                "dup", BuildStatus.STORED, event="stored", fields={"artifactKey": pull_key("dup")}
            )
            raise ArtifactUrlRefused("artifact URL refused: not an allowed artifact host")

    fetch_lambda = Lambda(s3, builds, StoredMeanwhile(artifact, FakeClock(), FAST_ENOUGH), one_pass=None)
    received(builds, "dup")
    assert fetch_lambda.invoke("dup").startswith("abandoned: artifact URL refused")
    assert (builds.get("dup") or {})["status"] == "stored"
