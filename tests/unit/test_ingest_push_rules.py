"""IngestPush against in-memory fakes: every refusal is a domain error, every answer a Receipt."""

from __future__ import annotations

import json

import pytest

from pixelbridge.adapters.multipart import parse_build_upload
from pixelbridge.domain.errors import Invalid, TooLarge, Unauthorized, Unavailable, UnsupportedFormat
from pixelbridge.domain.routes import Route
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.usecases.build_views import UPLOADER_FIELDS
from pixelbridge.usecases.ingest_push import IngestPush
from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata
from pixelbridge_local.sample_build import ue_like_targz
from tests.support.fakes import InMemoryBuilds, MemoryInbox

TOKEN = "Bearer upload-token"
ARTIFACT = ue_like_targz(pak_bytes=512)
ROUTES = [Route.model_validate({"id": "main", "streampixelProjectId": "sp-project"})]


def ingest(builds: InMemoryBuilds, inbox: MemoryInbox, max_body_bytes: int = 1 << 20) -> IngestPush:
    return IngestPush(
        builds=builds,
        inbox=inbox,
        routes=ROUTES,
        expected_authorization=lambda: TOKEN,
        max_body_bytes=max_body_bytes,
        parse_upload=parse_build_upload,
    )


def push_body(build_id: str, **metadata: str) -> tuple[bytes, str]:
    return encode_custom_deploy(sample_metadata(build_id, **metadata), ARTIFACT)


def test_a_new_build_is_stored_and_taken_in() -> None:
    builds, inbox = InMemoryBuilds(), MemoryInbox()
    body, content_type = push_body("p-1")
    receipt = ingest(builds, inbox)(body=body, content_type=content_type, authorization=TOKEN)
    assert receipt.taken_in
    assert receipt.body == {"buildId": "p-1", "status": "received"}
    assert inbox.objects["inbox/push/p-1.multipart"] == (body, content_type)
    record = builds.get("p-1")
    assert record is not None and record["status"] == "stored"
    assert record["release"]["streampixelProjectId"] == "sp-project"


def test_a_repeat_push_reports_the_known_build_and_is_not_taken_in_again() -> None:
    builds, inbox = InMemoryBuilds(), MemoryInbox()
    body, content_type = push_body("p-2")
    use_case = ingest(builds, inbox)
    use_case(body=body, content_type=content_type, authorization=TOKEN)
    again = use_case(body=body, content_type=content_type, authorization=TOKEN)
    assert not again.taken_in
    assert again.body["status"] == "stored"
    assert "zipUrl" not in again.body and "handoffToken" not in again.body


def test_a_repeat_push_of_a_converted_build_learns_no_key_token_or_url() -> None:
    builds, inbox = InMemoryBuilds(), MemoryInbox()
    body, content_type = push_body("p-3")
    use_case = ingest(builds, inbox)
    use_case(body=body, content_type=content_type, authorization=TOKEN)
    handoff = {
        "zipKey": "dl/s3cret/p-3.zip",
        "zipUrl": "https://h/dl/s3cret/p-3.zip",
        "handoffToken": "s3cret",
    }
    builds.transition("p-3", BuildStatus.CONVERTED, event="converted", detail="3 files", fields=handoff)
    again = use_case(body=body, content_type=content_type, authorization=TOKEN)
    assert again.body["status"] == "converted" and again.body["buildId"] == "p-3"
    assert "s3cret" not in json.dumps(again.body)
    assert set(again.body) <= set(UPLOADER_FIELDS) | {"timeline"}
    assert {entry["event"] for entry in again.body["timeline"]} >= {"received", "stored", "converted"}
    assert all(set(entry) <= {"at", "event", "status"} for entry in again.body["timeline"])


@pytest.mark.parametrize(
    ("authorization", "body", "content_type", "refusal", "code"),
    [
        ("Bearer wrong", b"x", "multipart/form-data; boundary=b", Unauthorized, "unauthorized"),
        (TOKEN, b"x" * 2048, "multipart/form-data; boundary=b", TooLarge, "payload_too_large"),
        (TOKEN, b"{}", "application/json", UnsupportedFormat, "unsupported_media_type"),
    ],
)
def test_refusals_are_domain_errors_and_store_nothing(
    authorization: str, body: bytes, content_type: str, refusal: type[Exception], code: str
) -> None:
    builds, inbox = InMemoryBuilds(), MemoryInbox()
    with pytest.raises(refusal) as raised:
        ingest(builds, inbox, max_body_bytes=1024)(
            body=body, content_type=content_type, authorization=authorization
        )
    assert getattr(raised.value, "code", None) == code
    assert builds.records == {} and inbox.objects == {}


def test_bad_metadata_is_invalid() -> None:
    body, content_type = encode_custom_deploy({"buildId": "../etc"}, ARTIFACT)
    with pytest.raises(Invalid) as raised:
        ingest(InMemoryBuilds(), MemoryInbox())(body=body, content_type=content_type, authorization=TOKEN)
    assert raised.value.code == "invalid_metadata"


def test_a_storage_outage_is_unavailable_and_the_build_is_failed_with_the_reason() -> None:
    builds, inbox = InMemoryBuilds(), MemoryInbox()
    inbox.fail_next = True
    body, content_type = push_body("p-3")
    with pytest.raises(Unavailable) as raised:
        ingest(builds, inbox)(body=body, content_type=content_type, authorization=TOKEN)
    assert raised.value.code == "storage_unavailable"
    record = builds.get("p-3")
    assert record is not None and record["status"] == "failed"
    assert record["error"] == "could not store the artifact: ConnectionError"
