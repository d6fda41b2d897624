"""IngestFunction push endpoint: handler in, S3 object + DynamoDB record out, for every answer it gives."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest

from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata
from pixelbridge_local.gateway import FakeLambdaContext, function_url_event
from pixelbridge_local.sample_build import ue_like_targz
from tests.support.aws import MotoAccount, moto_account

ARTIFACT = ue_like_targz(pak_bytes=4096)


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoAccount]:
    with moto_account(monkeypatch) as moto:
        yield moto


def call(
    body: bytes, headers: dict[str, str], path: str = "/builds/upload", method: str = "POST"
) -> tuple[int, Any]:
    from pixelbridge.handlers import ingest

    response = ingest.handler(
        function_url_event(method, path, body=body, headers=headers), FakeLambdaContext("IngestFunction")
    )
    return response["statusCode"], json.loads(response["body"])


def push(
    account: MotoAccount, metadata: dict[str, Any], artifact: bytes = ARTIFACT, **header_overrides: str
) -> tuple[int, Any]:
    body, content_type = encode_custom_deploy(metadata, artifact)
    headers = {
        "Content-Type": content_type,
        "Authorization": account.upload_authorization,
        **header_overrides,
    }
    return call(body, headers)


def record(build_id: str) -> dict[str, Any] | None:
    from pixelbridge import wiring

    return wiring.builds().get(build_id)


def test_valid_push_is_stored_before_the_202(account: MotoAccount) -> None:
    status, body = push(account, sample_metadata("b-valid"))
    assert status == 202
    assert body["buildId"] == "b-valid"
    assert body["status"] == "received"
    assert body["statusUrl"].endswith("/builds/b-valid")
    assert account.s3_keys("ArtifactBucket") == ["inbox/push/b-valid.multipart"]
    stored = record("b-valid")
    assert stored is not None
    assert stored["status"] == "stored"
    assert stored["source"] == "push"
    assert stored["artifactKey"] == "inbox/push/b-valid.multipart"
    assert stored["metadata"]["commit"] == "a1b2c3d4e5f6"
    assert [entry["event"] for entry in stored["timeline"]] == ["received", "stored"]


def test_the_root_path_is_the_same_endpoint(account: MotoAccount) -> None:
    body, content_type = encode_custom_deploy(sample_metadata("b-root"), ARTIFACT)
    status, _ = call(
        body, {"Content-Type": content_type, "Authorization": account.upload_authorization}, path="/"
    )
    assert status == 202


def test_same_build_again_answers_200_with_the_record_and_writes_nothing_twice(account: MotoAccount) -> None:
    push(account, sample_metadata("b-dup"))
    s3 = account.client("s3")
    first_etag = s3.head_object(Bucket=account.names["ArtifactBucket"], Key="inbox/push/b-dup.multipart")[
        "ETag"
    ]
    status, body = push(account, sample_metadata("b-dup"), artifact=ue_like_targz(pak_bytes=8192, seed=9))
    assert status == 200
    assert body["buildId"] == "b-dup"
    assert body["status"] == "stored"
    assert "timeline" in body
    assert (
        s3.head_object(Bucket=account.names["ArtifactBucket"], Key="inbox/push/b-dup.multipart")["ETag"]
        == first_etag
    )


@pytest.mark.parametrize("authorization", [None, "", "Bearer wrong", "bearer {token}", "Bearer {token} "])
def test_wrong_or_missing_authorization_is_401(account: MotoAccount, authorization: str | None) -> None:
    token = account.secrets["BuildPixelSecret"]["uploadAuthToken"]
    body, content_type = encode_custom_deploy(sample_metadata("b-auth"), ARTIFACT)
    headers = {"Content-Type": content_type}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=token)
    status, answer = call(body, headers)
    assert (status, answer["error"]) == (401, "unauthorized")
    assert token not in json.dumps(answer)
    assert record("b-auth") is None
    assert account.s3_keys("ArtifactBucket") == []


@pytest.mark.parametrize("content_type", [None, "application/json", "multipart/form-data", "text/plain"])
def test_not_multipart_is_415(account: MotoAccount, content_type: str | None) -> None:
    headers = {"Authorization": account.upload_authorization}
    if content_type:
        headers["Content-Type"] = content_type
    status, answer = call(b'{"buildId": "x"}', headers)
    assert (status, answer["error"]) == (415, "unsupported_media_type")


def raw_multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    chunks = [
        f'--B0undary\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + content + b"\r\n"
        for name, content in parts
    ]
    return b"".join(chunks) + b"--B0undary--\r\n", "multipart/form-data; boundary=B0undary"


@pytest.mark.parametrize(
    ("parts", "error"),
    [
        ([("artifact", ARTIFACT)], "missing_metadata"),
        ([("metadata", b"{not json"), ("artifact", ARTIFACT)], "invalid_metadata"),
        ([("metadata", b"[1, 2]"), ("artifact", ARTIFACT)], "invalid_metadata"),
        (
            [("metadata", b'{"buildId": "b1", "platform": "Win64"}'), ("artifact", ARTIFACT)],
            "invalid_metadata",
        ),
        (
            [
                ("metadata", b'{"buildId": "../etc", "projectId": "p", "platform": "Win64"}'),
                ("artifact", ARTIFACT),
            ],
            "invalid_metadata",
        ),
        ([("metadata", json.dumps(sample_metadata("b1")).encode())], "missing_artifact"),
        (
            [("metadata", json.dumps(sample_metadata("b1")).encode()), ("artifact", b"PK\x03\x04not gzip")],
            "artifact_not_gzip",
        ),
    ],
)
def test_bad_body_is_400_and_nothing_is_stored(
    account: MotoAccount, parts: list[tuple[str, bytes]], error: str
) -> None:
    body, content_type = raw_multipart(parts)
    status, answer = call(body, {"Content-Type": content_type, "Authorization": account.upload_authorization})
    assert (status, answer["error"]) == (400, error)
    assert answer["message"]
    assert account.s3_keys("ArtifactBucket") == []
    assert record("b1") is None


def test_invalid_metadata_message_names_the_field(account: MotoAccount) -> None:
    body, content_type = raw_multipart(
        [("metadata", b'{"buildId": "b1", "platform": "Win64"}'), ("artifact", ARTIFACT)]
    )
    _, answer = call(body, {"Content-Type": content_type, "Authorization": account.upload_authorization})
    assert "projectId" in answer["message"]


def test_body_over_the_configured_maximum_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_account(monkeypatch, parameters={"MaxPushBytes": "1024"}) as account:
        status, answer = push(
            account, sample_metadata("b-big"), artifact=gzip.compress(b"x" * 10) + bytes(4096)
        )
        assert (status, answer["error"]) == (413, "payload_too_large")
        assert "pull" in answer["message"]
        assert record("b-big") is None


def test_non_windows_build_is_accepted_and_recorded_skipped(account: MotoAccount) -> None:
    status, answer = push(account, sample_metadata("b-linux", platform="Linux"))
    assert status == 202
    assert answer["status"] == "skipped"
    assert "Win64" in answer["reason"]
    skipped = record("b-linux")
    assert skipped is not None
    assert skipped["status"] == "skipped"
    assert "Linux" in skipped["error"]
    assert account.s3_keys("ArtifactBucket") == []


def test_unrouted_build_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    routes = json.dumps([{"id": "only-p9", "buildpixelProjectId": "p9", "streampixelProjectId": "sp9"}])
    with moto_account(monkeypatch, parameters={"Routes": routes}) as account:
        status, answer = push(account, sample_metadata("b-unrouted"))
        assert (status, answer["status"]) == (202, "skipped")
        assert "no route matches" in answer["reason"]


def test_unfilled_secret_is_503_not_configured(account: MotoAccount) -> None:
    from pixelbridge import wiring

    account.client("secretsmanager").put_secret_value(
        SecretId=account.names["BuildPixelSecret"], SecretString=json.dumps({"uploadAuthToken": "REPLACE_ME"})
    )
    wiring.reset()
    status, answer = push(account, sample_metadata("b-unconfigured"), Authorization="Bearer REPLACE_ME")
    assert (status, answer["error"]) == (503, "not_configured")


def test_unknown_path_is_404_json(account: MotoAccount) -> None:
    status, answer = call(b"", {}, path="/nope", method="GET")
    assert (status, answer["error"]) == (404, "not_found")
