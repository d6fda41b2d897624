"""ConvertFunction with moto: an S3 event in, a published zip + a recorded build + one release start out."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata
from pixelbridge_local.gateway import FakeLambdaContext, function_url_event
from pixelbridge_local.sample_build import ue_like_targz
from tests.support.archives import Member, build_targz, file
from tests.support.aws import MotoAccount, add_release_stub, moto_account


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoAccount]:
    with moto_account(monkeypatch) as moto:
        add_release_stub(moto, monkeypatch)
        yield moto


def push(account: MotoAccount, build_id: str, artifact: bytes) -> None:
    from pixelbridge.handlers import ingest

    body, content_type = encode_custom_deploy(sample_metadata(build_id), artifact)
    event = function_url_event(
        "POST",
        "/builds/upload",
        body=body,
        headers={"Content-Type": content_type, "Authorization": account.upload_authorization},
    )
    assert ingest.handler(event, FakeLambdaContext("IngestFunction"))["statusCode"] == 202


def object_created(account: MotoAccount, key: str, etag: str = "etag-1") -> dict[str, Any]:
    bucket = account.names["ArtifactBucket"]
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1, "etag": etag}},
    }


def convert(event: dict[str, Any]) -> dict[str, Any]:
    from pixelbridge.handlers import convert

    result: dict[str, Any] = convert.handler(event, FakeLambdaContext("ConvertFunction"))
    return result


def record(build_id: str) -> dict[str, Any]:
    from pixelbridge import wiring

    found = wiring.builds().get(build_id)
    assert found is not None
    return found


def executions(account: MotoAccount) -> list[str]:
    response = account.client("stepfunctions").list_executions(
        stateMachineArn=account.names["ReleaseStateMachine"]
    )
    return [execution["name"] for execution in response["executions"]]


def test_pushed_build_is_converted_published_and_released_once(account: MotoAccount) -> None:
    artifact = ue_like_targz(pak_bytes=200_000)
    push(account, "conv-1", artifact)
    event = object_created(account, "inbox/push/conv-1.multipart")
    assert convert(event)["results"][0]["result"] == "converted"
    assert convert(event)["results"][0]["result"] == "converted"  # S3 redelivery: the stored result

    converted = record("conv-1")
    assert converted["status"] == "converted"
    # Only the key (and its token) is stored: the URL is made when upload-file is called.
    assert "zipUrl" not in converted
    assert converted["zipKey"] == f"dl/{converted['handoffToken']}/conv-1.zip"
    assert len(converted["handoffToken"]) >= 32
    assert converted["manifest"]["files"] == 5
    assert converted["manifest"]["executable"].endswith("MyGame.exe")
    assert executions(account) == ["conv-1"]
    assert [entry["event"] for entry in converted["timeline"]].count("converting") == 1

    keys = account.s3_keys("HandoffBucket", "dl/")
    assert keys == [converted["zipKey"]]
    body = account.client("s3").get_object(Bucket=account.names["HandoffBucket"], Key=keys[0])["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        assert "Windows/MyGame.exe" in archive.namelist()


def test_a_new_event_for_an_already_converted_build_does_not_convert_again(account: MotoAccount) -> None:
    push(account, "conv-2", ue_like_targz())
    convert(object_created(account, "inbox/push/conv-2.multipart", etag="a"))
    second = convert(object_created(account, "inbox/push/conv-2.multipart", etag="b"))
    assert second["results"][0]["result"] == "skipped: build is already converted"
    assert executions(account) == ["conv-2"]
    assert len(account.s3_keys("HandoffBucket", "dl/")) == 1


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([file("Windows/readme.txt", b"no exe here")], "no Windows executable at package root"),
        (
            [
                file("Windows/Game.exe", b"MZ"),
                Member("Windows/link", kind="symlink", link_target="/etc/passwd"),
            ],
            "link",
        ),
        ([file("Windows/Game.exe", b"MZ"), file("../escape.txt", b"x")], "escape"),
        ([file("Windows/Game.exe", b"MZ"), file("Windows/CON.txt", b"x")], "CON"),
    ],
)
def test_hostile_archive_fails_with_reason_and_publishes_nothing(
    account: MotoAccount, members: list[Member], reason: str
) -> None:
    push(account, "hostile", build_targz(members))
    assert (
        convert(object_created(account, "inbox/push/hostile.multipart"))["results"][0]["result"] == "failed"
    )
    failed = record("hostile")
    assert failed["status"] == "failed"
    assert reason.lower() in failed["error"].lower()
    assert "zipUrl" not in failed
    assert account.s3_keys("HandoffBucket") == []
    uploads = account.client("s3").list_multipart_uploads(Bucket=account.names["HandoffBucket"])
    assert uploads.get("Uploads", []) == []
    assert executions(account) == []


def test_truncated_gzip_fails(account: MotoAccount) -> None:
    artifact = ue_like_targz(pak_bytes=100_000)
    push(account, "truncated", artifact[: len(artifact) // 2])
    convert(object_created(account, "inbox/push/truncated.multipart"))
    failed = record("truncated")
    assert failed["status"] == "failed"
    assert "truncated" in failed["error"] or "corrupt" in failed["error"]


def test_objects_outside_the_inbox_and_other_buckets_are_ignored(account: MotoAccount) -> None:
    assert convert(object_created(account, "elsewhere/file.tar.gz"))["results"][0]["result"].startswith(
        "ignored"
    )
    other = object_created(account, "inbox/push/x.multipart")
    other["detail"]["bucket"]["name"] = "someone-elses-bucket"
    assert convert(other) == {"results": []}


def test_a_late_event_for_a_push_taken_over_by_a_signed_pull_converts_nothing(account: MotoAccount) -> None:
    from pixelbridge import wiring

    push(account, "conv-taken", ue_like_targz(pak_bytes=1024))
    wiring.builds().set_fields("conv-taken", {"source": "pull", "status": "received"})
    result = convert(object_created(account, "inbox/push/conv-taken.multipart"))["results"][0]["result"]
    assert result == "ignored: the build is registered from pull"
    assert record("conv-taken")["status"] == "received" and executions(account) == []


def test_a_duplicate_event_while_the_object_converts_is_answered_not_retried(account: MotoAccount) -> None:
    """S3 delivers at least once: a second event while the first converts must not fail into the DLQ."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from pixelbridge.handlers import convert as convert_handler

    key = "inbox/push/dup-1.multipart"
    persistence = DynamoDBPersistenceLayer(table_name=account.names["IdempotencyTable"])
    persistence.configure(
        convert_handler.IDEMPOTENCY,
        function_name="pixelbridge.handlers.convert.convert_once.<locals>.convert",
    )
    ref = {"bucket": account.names["ArtifactBucket"], "key": key, "etag": "etag-1"}
    persistence.save_inprogress(data=ref, remaining_time_in_millis=600_000)  # the first run, still going
    assert convert(object_created(account, key))["results"] == [{"result": "already converting", "key": key}]
