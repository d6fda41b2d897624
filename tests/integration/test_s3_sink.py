"""The converter writing through S3MultipartSink into moto's S3."""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pixelbridge.convert.pipeline import convert_targz_to_zip
from pixelbridge.convert.sinks import S3MultipartSink, choose_part_size
from pixelbridge.domain.errors import ArchiveRejected
from tests.support.archives import build_targz, file, zip_header_problems

MiB = 1024 * 1024
BUCKET = "handoff"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


class RecordingClient:
    """Passes calls to the real (moto) client and records the part numbers in upload order."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.part_numbers: list[int] = []

    def upload_part(self, **kwargs: Any) -> Any:
        self.part_numbers.append(kwargs["PartNumber"])
        return self._client.upload_part(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _members() -> list[Any]:
    rng = random.Random(7)
    members = [file("Windows/Game.exe", rng.randbytes(100_000))]
    # Sizes chosen so local headers fall near and across the 5 MiB part boundaries.
    for index, size in enumerate([5 * MiB - 60, 3 * MiB, 2 * MiB + 77, 12 * MiB, 1, 0, 4 * MiB + 3]):
        members.append(file(f"Windows/Game/Content/Paks/p{index}.pak", rng.randbytes(size)))
    members += [file(f"Windows/Config/{index}.ini", b"key=value\n" * (index + 1)) for index in range(50)]
    return members


def test_conversion_through_multipart_upload_is_byte_identical(s3: Any) -> None:
    members = _members()
    client = RecordingClient(s3)
    sink = S3MultipartSink(client, BUCKET, "dl/token/Game.zip", part_size=5 * MiB, max_in_flight=2)
    try:
        manifest = convert_targz_to_zip(io.BytesIO(build_targz(members)), sink)
        sink.complete()
    except BaseException:
        sink.abort()
        raise

    body = s3.get_object(Bucket=BUCKET, Key="dl/token/Game.zip")
    data = body["Body"].read()
    assert body["ContentType"] == "application/zip"
    assert len(data) == manifest.bytes_out
    assert zip_header_problems(io.BytesIO(data)) == []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert {info.filename: archive.read(info) for info in archive.infolist()} == {
            m.name: m.data for m in members
        }
    assert len(client.part_numbers) >= 6
    assert client.part_numbers != sorted(client.part_numbers), (
        "a held part should be uploaded after later ones"
    )
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_abort_leaves_no_multipart_upload_and_no_object(s3: Any) -> None:
    members = [
        file("Windows/readme.txt", random.Random(1).randbytes(12 * MiB))
    ]  # no .exe: rejected at the end
    sink = S3MultipartSink(s3, BUCKET, "dl/x/Game.zip", part_size=5 * MiB)
    with pytest.raises(ArchiveRejected, match="no Windows executable"):
        try:
            convert_targz_to_zip(io.BytesIO(build_targz(members)), sink)
            sink.complete()
        except BaseException:
            sink.abort()
            raise
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_patching_an_uploaded_part_raises(s3: Any) -> None:
    sink = S3MultipartSink(s3, BUCKET, "k", part_size=5 * MiB, max_in_flight=1)
    sink.write(b"a" * (11 * MiB))  # parts 1 and 2 complete and unheld: uploaded
    sink.seek(10)
    with pytest.raises(OSError, match="already uploaded"):
        sink.write(b"patch")
    sink.abort()


def test_held_bytes_stay_patchable_across_a_part_boundary(s3: Any) -> None:
    sink = S3MultipartSink(s3, BUCKET, "k", part_size=5 * MiB)
    sink.write(b"x" * (5 * MiB - 4))
    sink.hold_from(sink.tell())
    sink.write(b"HEADER..")  # straddles parts 1 and 2
    sink.write(b"y" * (11 * MiB))
    sink.seek(5 * MiB - 4)
    sink.write(b"patched!")
    sink.seek(0, 2)
    sink.release_hold()
    sink.write(b"end")
    sink.complete()
    data = s3.get_object(Bucket=BUCKET, Key="k")["Body"].read()
    assert data == b"x" * (5 * MiB - 4) + b"patched!" + b"y" * (11 * MiB) + b"end"


def test_part_size_grows_to_stay_under_10000_parts() -> None:
    assert choose_part_size(16 * MiB, None) == 16 * MiB
    assert choose_part_size(16 * MiB, 1024**3) == 16 * MiB
    grown = choose_part_size(16 * MiB, 400 * 1024**3)
    assert grown % MiB == 0 and 400 * 1024**3 / grown <= 8000
    assert choose_part_size(1, None) == 5 * MiB
