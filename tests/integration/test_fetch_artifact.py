"""FetchArtifact against the BuildPixel simulator over loopback HTTP, writing into moto S3 + DynamoDB."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pixelbridge.adapters.buildpixel import BuildPixelClient
from pixelbridge.adapters.builds import BuildRepository
from pixelbridge.adapters.ranged_reader import RangedReadConfig, artifact_readers
from pixelbridge.adapters.secrets import MissingSecretValue
from pixelbridge.adapters.store import pull_key
from pixelbridge.adapters.url_guard import UrlPolicy
from pixelbridge.convert.sinks import resumable_s3_sinks
from pixelbridge.ports import DownloadInfo
from pixelbridge.usecases.fetch_artifact import FetchArtifact, FetchLimits
from pixelbridge_local.buildpixel_sim import BuildPixelSimulator
from pixelbridge_local.template import create_tables

BUCKET = "artifacts"
API_TOKEN = "bp_integration_token_0123456789"
MiB = 1024 * 1024
ARTIFACT = random.Random(5).randbytes(3 * MiB + 12345)


@dataclass
class Harness:
    sim: BuildPixelSimulator
    builds: BuildRepository
    s3: Any
    sleeps: list[float] = field(default_factory=list)

    def fetcher(
        self,
        *,
        max_bytes: int = 24 * 1024**3,
        api_token: str | None = API_TOKEN,
        max_rate_limit_wait: float = 300.0,
        first_url_expires: bool = False,
    ) -> FetchArtifact:
        def token() -> str:
            if api_token is None:
                raise MissingSecretValue("secret field 'apiToken' is not set")
            return api_token

        client = (FirstUrlExpires if first_url_expires else BuildPixelClient)(
            self.sim.url,
            token,
            sleep=self.sleeps.append,
            max_rate_limit_wait=max_rate_limit_wait,
            artifact_urls=UrlPolicy(allowed_hosts=frozenset(), allow_loopback_http=True),  # the simulator
        )

        if isinstance(client, FirstUrlExpires):
            client.sim = self.sim
        return FetchArtifact(
            builds=self.builds,
            source=client,
            open_reader=artifact_readers(client, sleep=self.sleeps.append),
            open_sink=resumable_s3_sinks(self.s3, BUCKET, part_size=5 * MiB),
            limits=FetchLimits(max_bytes=max_bytes),
            sleep=self.sleeps.append,
        )

    def received(self, build_id: str, data: bytes = ARTIFACT) -> None:
        self.sim.add_artifact(build_id, data)
        self.builds.create(
            {"buildId": build_id, "status": "received", "source": "pull", "route": "default"},
            event="received",
        )

    def record(self, build_id: str) -> dict[str, Any]:
        found = self.builds.get(build_id)
        assert found is not None
        return found

    def stored_bytes(self, build_id: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=BUCKET, Key=pull_key(build_id))["Body"].read())

    def objects(self) -> list[str]:
        return [item["Key"] for item in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]

    def open_multipart_uploads(self) -> list[Any]:
        return list(self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))

    def served_bytes(self) -> int:
        return sum(request.body_bytes for request in self.sim.requests_to("/artifacts/"))


class FirstUrlExpires(BuildPixelClient):
    """The first URL the download API signs is revoked at once: it has expired before it is used."""

    sim: BuildPixelSimulator | None = None

    def download_info(self, build_id: str) -> DownloadInfo:
        info = super().download_info(build_id)
        if self.sim is not None:
            self.sim.expire_urls_now()
            self.sim = None
        return info


@pytest.fixture
def harness() -> Iterator[Harness]:
    sim = BuildPixelSimulator(signing_secret="unused", api_token=API_TOKEN)
    sim.start()
    try:
        with mock_aws():
            dynamodb = boto3.client("dynamodb", region_name="us-east-1")
            table = create_tables(dynamodb)["BuildsTable"]
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            builds = BuildRepository(table, dynamodb=boto3.resource("dynamodb", region_name="us-east-1"))
            yield Harness(sim=sim, builds=builds, s3=s3)
    finally:
        sim.stop()


def assert_no_capability_leaked(record: dict[str, Any]) -> None:
    text = json.dumps(record)
    assert "sig=" not in text and "/artifacts/" not in text and API_TOKEN not in text


def test_pull_with_the_webhook_url_stores_verified_bytes(harness: Harness) -> None:
    harness.received("f-ok")
    outcome = harness.fetcher()("f-ok")
    assert outcome.result == "stored", harness.record("f-ok").get("error")
    record = harness.record("f-ok")
    assert record["status"] == "stored"
    assert record["artifactKey"] == pull_key("f-ok")
    assert harness.stored_bytes("f-ok") == ARTIFACT
    assert "MD5 verified" in record["timeline"][-1]["detail"]
    assert harness.open_multipart_uploads() == []
    assert_no_capability_leaked(record)


def test_without_artifact_url_the_download_api_is_used(harness: Harness) -> None:
    harness.received("f-api")
    assert harness.fetcher()("f-api", None).result == "stored"
    assert harness.stored_bytes("f-api") == ARTIFACT
    assert [r.status for r in harness.sim.requests_to("/builds/f-api/download")] == [200]


def test_expired_url_is_renewed_through_the_download_api(harness: Harness) -> None:
    harness.received("f-exp")
    assert harness.fetcher(first_url_expires=True)("f-exp").result == "stored"
    assert harness.stored_bytes("f-exp") == ARTIFACT
    statuses = [r.status for r in harness.sim.requests_to("/artifacts/f-exp")]
    assert statuses == [403, 206]
    assert len(harness.sim.requests_to("/builds/f-exp/download")) == 2  # checksum lookup + renewal
    record = harness.record("f-exp")
    assert "artifact URL renewed" in [entry["event"] for entry in record["timeline"]]
    assert_no_capability_leaked(record)


def test_md5_mismatch_fails_the_build_and_leaves_no_object(harness: Harness) -> None:
    harness.received("f-md5")
    harness.sim.knobs.wrong_md5 = True
    assert harness.fetcher()("f-md5").result == "failed"
    record = harness.record("f-md5")
    assert record["status"] == "failed"
    assert "MD5" in record["error"]
    assert harness.objects() == []
    assert harness.open_multipart_uploads() == []


def test_retry_after_is_honoured_on_the_download_api(harness: Harness) -> None:
    harness.received("f-429")
    harness.sim.knobs.rate_limit_next = 2
    harness.sim.knobs.retry_after_seconds = 7
    assert harness.fetcher()("f-429", None).result == "stored"
    assert harness.sleeps == [7.0, 7.0]
    assert [r.status for r in harness.sim.requests_to("/builds/f-429/download")] == [429, 429, 200]


def test_endless_429_fails_after_a_bounded_wait(harness: Harness) -> None:
    harness.received("f-429x")
    harness.sim.knobs.rate_limit_next = 100
    harness.sim.knobs.retry_after_seconds = 30
    assert harness.fetcher(max_rate_limit_wait=60)("f-429x", None).result == "failed"
    assert harness.sleeps == [30.0, 30.0]
    assert "429" in harness.record("f-429x")["error"]


def test_truncated_download_retries_only_the_cut_range(harness: Harness) -> None:
    harness.received("f-cut")
    harness.sim.knobs.fail_after_bytes = 1 * MiB + 7
    assert harness.fetcher()("f-cut").result == "stored"
    downloads = harness.sim.requests_to("/artifacts/f-cut")
    assert [r.status for r in downloads] == [206, 206]
    # The one range (the artifact is smaller than a range) is asked for again, from its own start.
    assert downloads[0].range == downloads[1].range == f"bytes=0-{len(ARTIFACT) - 1}"
    assert harness.stored_bytes("f-cut") == ARTIFACT
    assert harness.sleeps == [RangedReadConfig().backoff(1)]


def test_server_without_range_support_is_read_again_and_skipped(harness: Harness) -> None:
    harness.received("f-norange")
    harness.sim.knobs.fail_after_bytes = 2 * MiB
    harness.sim.knobs.ignore_range = True
    assert harness.fetcher()("f-norange").result == "stored"
    assert [r.status for r in harness.sim.requests_to("/artifacts/f-norange")] == [200, 200]
    assert harness.stored_bytes("f-norange") == ARTIFACT


def test_announced_size_over_the_limit_fails_before_downloading(harness: Harness) -> None:
    harness.received("f-big")
    assert harness.fetcher(max_bytes=1 * MiB)("f-big").result == "failed"
    assert "limit" in harness.record("f-big")["error"]
    assert harness.sim.requests_to("/artifacts/") == []
    assert harness.objects() == []


def test_a_webhook_url_is_not_fetched_unless_the_download_api_confirms_the_build(harness: Harness) -> None:
    harness.received("f-unconfirmed")
    fetch = harness.fetcher(api_token=None)  # the download API cannot be asked
    assert fetch("f-unconfirmed").result == "failed"
    record = harness.record("f-unconfirmed")
    assert record["status"] == "failed" and "did not confirm the build" in record["error"]
    assert harness.sim.requests_to("/artifacts/") == []
    assert harness.objects() == [] and harness.open_multipart_uploads() == []


def test_missing_artifact_fails_with_the_api_error(harness: Harness) -> None:
    harness.builds.create({"buildId": "f-gone", "status": "received", "source": "pull"}, event="received")
    assert harness.fetcher()("f-gone", None).result == "failed"
    record = harness.record("f-gone")
    assert "404" in record["error"] and "not_found" in record["error"]


def test_repeated_invocation_after_success_does_nothing(harness: Harness) -> None:
    harness.received("f-twice")
    fetch = harness.fetcher()
    assert fetch("f-twice", None).result == "stored"
    assert fetch("f-twice", None).result == "skipped: build is already stored"
    assert len(harness.sim.requests_to("/artifacts/f-twice")) == 1


def test_stored_object_md5_matches_the_artifact(harness: Harness) -> None:
    data = random.Random(9).randbytes(11 * MiB)  # several multipart parts
    harness.received("f-parts", data)
    assert harness.fetcher()("f-parts", None).result == "stored"
    assert (
        hashlib.md5(harness.stored_bytes("f-parts"), usedforsecurity=False).hexdigest()
        == hashlib.md5(data, usedforsecurity=False).hexdigest()
    )
