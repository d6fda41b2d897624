"""The parallel ranged reader over moto's S3: whole object, pinned version, refused and retried ranges."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from pixelbridge.adapters.ranged_reader import (
    ParallelRangedReader,
    RangedReadConfig,
    RangeRefused,
    S3RangeSource,
)

BUCKET = "artifacts"
KEY = "inbox/pull/b-1.tar.gz"
DATA = random.Random(11).randbytes(300_001)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key=KEY, Body=DATA, Metadata={"source": "pull"})
        yield client


def test_the_object_is_read_whole_through_parallel_ranges(s3: Any) -> None:
    source = S3RangeSource(s3, BUCKET, KEY)
    assert source.size == len(DATA) and source.metadata == {"source": "pull"}
    with ParallelRangedReader(source, RangedReadConfig(range_size=65_536, connections=4)) as reader:
        assert reader.readall() == DATA


def test_a_replaced_object_is_refused_instead_of_mixing_versions(s3: Any) -> None:
    source = S3RangeSource(s3, BUCKET, KEY)
    assert source.fetch(0, 10) == DATA[:10]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"another build")
    with pytest.raises(RangeRefused, match="412"):
        source.fetch(10, 20)


class FlakyClient:
    """moto's client, with the first GET of each listed range failing like a dropped connection or a 503."""

    def __init__(self, client: Any, failures: dict[str, Exception]) -> None:
        self._client = client
        self._failures = failures
        self.ranges: list[str] = []

    def get_object(self, **kwargs: Any) -> Any:
        self.ranges.append(kwargs["Range"])
        failure = self._failures.pop(kwargs["Range"], None)
        if failure is not None:
            raise failure
        return self._client.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_network_errors_and_5xx_are_retried_per_range(s3: Any) -> None:
    answer: Any = {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}
    slow_down = ClientError(answer, "GetObject")
    client = FlakyClient(
        s3,
        {
            "bytes=100000-199999": EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            "bytes=200000-299999": slow_down,
        },
    )
    sleeps: list[float] = []
    config = RangedReadConfig(range_size=100_000, connections=2)
    with ParallelRangedReader(S3RangeSource(client, BUCKET, KEY), config, sleep=sleeps.append) as reader:
        assert reader.readall() == DATA
    assert client.ranges.count("bytes=100000-199999") == 2 and client.ranges.count("bytes=0-99999") == 1
    assert len(sleeps) == 2 and reader.retries == 2


def test_a_missing_object_is_refused_at_once(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="other", Body=b"x")
    source = S3RangeSource(s3, BUCKET, "other")
    s3.delete_object(Bucket=BUCKET, Key="other")
    with pytest.raises(RangeRefused, match="404"):
        source.fetch(0, 1)


def test_the_converter_reads_the_stored_artifact_through_parallel_ranges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pixelbridge import wiring
    from pixelbridge.adapters.multipart import parse_build_upload
    from pixelbridge.adapters.store import InboxStore
    from pixelbridge.convert.pipeline import ConversionLimits
    from pixelbridge.convert.sinks import S3MultipartSink
    from pixelbridge.settings import get_settings
    from pixelbridge.usecases.convert_build import ConvertBuild
    from pixelbridge_local.sample_build import ue_like_targz
    from tests.integration.test_convert_handler import push
    from tests.support.aws import moto_account

    with moto_account(monkeypatch) as account:
        artifact = ue_like_targz(pak_bytes=200_000)
        push(account, "ranged-1", artifact)
        client = FlakyClient(
            wiring.s3_client(), {"bytes=16384-32767": EndpointConnectionError(endpoint_url="x")}
        )
        inbox = InboxStore(
            get_settings().artifact_bucket,
            s3=client,
            reads=RangedReadConfig(range_size=16_384, connections=3, backoff_base_seconds=0.0),
        )
        use_case = ConvertBuild(
            builds=wiring.builds(),
            inbox=inbox,
            handoff=wiring.handoff(),
            workflow=wiring.workflow(),
            open_zip_sink=lambda key, size: S3MultipartSink(
                wiring.s3_client(), get_settings().handoff_bucket, key, expected_size=size
            ),
            parse_upload=parse_build_upload,
            limits=ConversionLimits(),
        )
        assert use_case("inbox/push/ranged-1.multipart").result == "converted"
        stored = wiring.builds().get("ranged-1")
        assert stored is not None and stored["manifest"]["files"] > 0
    assert len(set(client.ranges)) > 3 and client.ranges.count("bytes=16384-32767") == 2
