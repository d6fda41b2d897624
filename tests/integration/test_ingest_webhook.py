"""POST /webhooks/buildpixel through the real IngestFunction handler (moto account, fake fetch starter)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from pixelbridge.domain.signatures import sign
from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata
from pixelbridge_local.gateway import FakeLambdaContext, function_url_event
from pixelbridge_local.sample_build import ue_like_targz
from tests.support.aws import MotoAccount, moto_account

SIGNING_SECRET = "whsec_unit_test_0123456789"
ARTIFACT_URL = "https://artifacts.buildpixel.example/b/abc.tar.gz?X-Sig=very-secret-signature"
PROJECT = "665a2b3c4d5e6f7a8b9c0e10"


class RecordingStarter:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.fail_next = False

    def start(self, build_id: str) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("Lambda throttled")
        self.started.append(build_id)


@pytest.fixture
def starter() -> Iterator[RecordingStarter]:
    from pixelbridge import wiring

    recording = RecordingStarter()
    with wiring.override(wiring.Overrides(fetch_starter=recording)):
        yield recording


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoAccount]:
    with moto_account(monkeypatch) as moto:
        yield moto


@pytest.fixture
def account(unconfigured: MotoAccount) -> MotoAccount:
    from pixelbridge import wiring

    secret = {**unconfigured.secrets["BuildPixelSecret"], "webhookSigningSecret": SIGNING_SECRET}
    unconfigured.client("secretsmanager").put_secret_value(
        SecretId=unconfigured.names["BuildPixelSecret"], SecretString=json.dumps(secret)
    )
    unconfigured.secrets["BuildPixelSecret"] = secret
    wiring.reset()
    return unconfigured


def envelope(event_type: str, build_id: str, **build: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": event_type,
        "createdAt": datetime.now(UTC).isoformat(),  # signed webhooks are accepted within ±5 min
        "organizationId": "664f00aa11bb22cc33dd44ee",
        "data": {
            "build": {
                "id": build_id,
                "status": event_type.removeprefix("build."),
                "platform": "Win64",
                "buildType": "Development",
                "branch": "main",
                "commit": "a1b2c3d4e5f6",
                "durationMs": 754000,
                "artifactUrl": ARTIFACT_URL,
                **build,
            },
            "project": {"id": PROJECT, "name": "Demo"},
        },
    }
    return document


def post(
    body: bytes, signature: str | None, *, base64_encoded: bool = True
) -> tuple[int, dict[str, Any], str]:
    from pixelbridge.handlers import ingest

    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-BuildPixel-Signature"] = signature
    event = function_url_event("POST", "/webhooks/buildpixel", body=body, headers=headers)
    if not base64_encoded:  # Function URLs pass text bodies (application/json) as plain strings
        event["body"], event["isBase64Encoded"] = body.decode("utf-8"), False
    response = ingest.handler(event, FakeLambdaContext("IngestFunction"))
    return response["statusCode"], json.loads(response["body"]), response["body"]


def send(document: dict[str, Any] | bytes, *, base64_encoded: bool = True) -> tuple[int, dict[str, Any], str]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return post(body, sign(body, SIGNING_SECRET), base64_encoded=base64_encoded)


def record(build_id: str) -> dict[str, Any] | None:
    from pixelbridge import wiring

    return wiring.builds().get(build_id)


def events_of(build_id: str) -> list[str]:
    found = record(build_id)
    assert found is not None
    return [entry["event"] for entry in found["timeline"]]


# -- build.complete ------------------------------------------------------------------------------------


@pytest.mark.parametrize("base64_encoded", [True, False])
def test_build_complete_registers_a_pull_and_starts_the_fetch(
    account: MotoAccount, starter: RecordingStarter, base64_encoded: bool
) -> None:
    status, body, raw = send(envelope("build.complete", "wh-1"), base64_encoded=base64_encoded)
    assert (status, body) == (202, {"buildId": "wh-1", "status": "received"})
    assert starter.started == ["wh-1"]
    stored = record("wh-1")
    assert stored is not None
    assert stored["status"] == "received"
    assert stored["source"] == "pull"
    assert stored["metadata"]["projectId"] == PROJECT
    assert stored["metadata"]["platform"] == "Win64"
    assert stored["metadata"]["durationMs"] == 754000
    assert stored["fetchRequestedAt"]
    assert events_of("wh-1") == ["received", "fetch requested"]
    # The signed URL is a capability: neither stored nor echoed.
    assert "very-secret-signature" not in json.dumps(stored) + raw


def test_build_complete_without_artifact_url_still_starts_the_fetch(
    account: MotoAccount, starter: RecordingStarter
) -> None:
    document = envelope("build.complete", "wh-nourl")
    del document["data"]["build"]["artifactUrl"]
    assert send(document)[0] == 202
    assert starter.started == ["wh-nourl"]


def test_replayed_build_complete_is_harmless(account: MotoAccount, starter: RecordingStarter) -> None:
    document = envelope("build.complete", "wh-replay")
    assert send(document)[0] == 202
    status, body, _ = send(document)  # the same signed delivery again: refused as a replay
    assert (status, body["error"]) == (409, "duplicate_webhook")
    assert len(starter.started) == 1
    assert "pull arrival" not in events_of("wh-replay")  # refused before the build is touched


def test_build_already_pushed_is_not_fetched(account: MotoAccount, starter: RecordingStarter) -> None:
    from pixelbridge.handlers import ingest

    multipart, content_type = encode_custom_deploy(
        sample_metadata("wh-pushed"), ue_like_targz(pak_bytes=1024)
    )
    push_event = function_url_event(
        "POST",
        "/builds/upload",
        body=multipart,
        headers={"Content-Type": content_type, "Authorization": account.upload_authorization},
    )
    assert ingest.handler(push_event, FakeLambdaContext("IngestFunction"))["statusCode"] == 202
    status, body, _ = send(envelope("build.complete", "wh-pushed"))
    assert status == 200
    assert body["status"] == "stored"
    assert starter.started == []
    stored = record("wh-pushed")
    assert stored is not None and stored["source"] == "push"
    assert events_of("wh-pushed") == ["received", "stored", "pull arrival"]


def push_as_uploader(account: MotoAccount, build_id: str, **metadata: str) -> int:
    from pixelbridge.handlers import ingest

    multipart, content_type = encode_custom_deploy(
        sample_metadata(build_id, **metadata), ue_like_targz(pak_bytes=1024)
    )
    headers = {"Content-Type": content_type, "Authorization": account.upload_authorization}
    push_event = function_url_event("POST", "/builds/upload", body=multipart, headers=headers)
    status: int = ingest.handler(push_event, FakeLambdaContext("IngestFunction"))["statusCode"]
    return status


def test_a_squatted_linux_push_does_not_block_the_signed_pull(
    account: MotoAccount, starter: RecordingStarter
) -> None:
    # An upload-token holder registers the id of a coming build as a Linux build: it ends skipped.
    assert push_as_uploader(account, "wh-squat", platform="Linux") == 202
    assert record("wh-squat")["status"] == "skipped"  # type: ignore[index]
    status, body, _ = send(envelope("build.complete", "wh-squat"))
    assert (status, body) == (202, {"buildId": "wh-squat", "status": "received"})
    assert starter.started == ["wh-squat"]
    taken = record("wh-squat")
    assert taken is not None and taken["status"] == "received" and taken["source"] == "pull"
    assert taken["sources"] == ["push", "pull"] and taken["metadata"]["platform"] == "Win64"
    assert taken["route"] != "-" and "error" not in taken
    assert events_of("wh-squat")[-3:] == ["pull arrival", "pull took over", "fetch requested"]
    assert "differs from the push in platform" in taken["timeline"][-2]["detail"]


def test_a_differing_push_not_yet_uploaded_is_stopped_and_taken_over(
    account: MotoAccount, starter: RecordingStarter
) -> None:
    assert push_as_uploader(account, "wh-squat2", branch="attacker", commit="0000") == 202
    assert record("wh-squat2")["status"] == "stored"  # type: ignore[index]
    status, body, _ = send(envelope("build.complete", "wh-squat2"))
    assert (status, body["status"]) == (202, "received")
    assert starter.started == ["wh-squat2"]
    taken = record("wh-squat2")
    assert taken is not None and taken["source"] == "pull" and taken["metadata"]["branch"] == "main"
    assert "artifactKey" not in taken  # the pushed artifact is not the pulled build's
    assert events_of("wh-squat2")[-3:] == ["push stopped", "pull took over", "fetch requested"]
    assert "differs from the push in branch, commit" in taken["timeline"][-2]["detail"]


def test_a_differing_push_streampixel_already_has_is_not_taken_over(
    account: MotoAccount, starter: RecordingStarter
) -> None:
    from pixelbridge import wiring

    assert push_as_uploader(account, "wh-sent", branch="other") == 202
    wiring.builds().set_fields("wh-sent", {"status": "uploading", "uploadId": "u-sent"})
    status, body, _ = send(envelope("build.complete", "wh-sent"))
    assert (status, body["status"]) == (200, "uploading")
    assert starter.started == []
    kept = record("wh-sent")
    assert kept is not None and kept["source"] == "push" and kept["metadata"]["branch"] == "other"
    assert events_of("wh-sent")[-2:] == ["pull arrival", "pull not taken over"]


def test_unrouted_platform_is_skipped_without_fetch(account: MotoAccount, starter: RecordingStarter) -> None:
    status, body, _ = send(envelope("build.complete", "wh-linux", platform="Linux"))
    assert status == 202
    assert body["status"] == "skipped"
    assert "Linux" in body["reason"] or "Win64" in body["reason"]
    assert starter.started == []
    stored = record("wh-linux")
    assert stored is not None and stored["status"] == "skipped"


def test_fetch_that_cannot_start_answers_503_and_the_retry_starts_it(
    account: MotoAccount, starter: RecordingStarter
) -> None:
    starter.fail_next = True
    document = envelope("build.complete", "wh-throttled")
    status, body, _ = send(document)
    assert (status, body["error"]) == (503, "fetch_unavailable")
    assert "fetch not started" in events_of("wh-throttled")
    status, _, _ = send(document)  # BuildPixel retries non-2xx with backoff
    assert status == 202
    assert starter.started == ["wh-throttled"]


# -- authentication ------------------------------------------------------------------------------------


def test_missing_signature_is_401(account: MotoAccount, starter: RecordingStarter) -> None:
    status, body, _ = post(json.dumps(envelope("build.complete", "wh-nosig")).encode(), None)
    assert (status, body["error"]) == (401, "unauthorized")
    assert record("wh-nosig") is None


def test_wrong_signature_is_401(account: MotoAccount, starter: RecordingStarter) -> None:
    body = json.dumps(envelope("build.complete", "wh-badsig")).encode()
    status, answer, raw = post(body, sign(body, "not-the-secret"))
    assert (status, answer["error"]) == (401, "unauthorized")
    assert SIGNING_SECRET not in raw
    assert record("wh-badsig") is None


def test_tampered_body_is_401(account: MotoAccount, starter: RecordingStarter) -> None:
    original = json.dumps(envelope("build.complete", "wh-orig")).encode()
    tampered = original.replace(b"wh-orig", b"wh-evil")
    status, _, _ = post(tampered, sign(original, SIGNING_SECRET))
    assert status == 401
    assert record("wh-evil") is None and starter.started == []


@pytest.mark.parametrize("base64_encoded", [True, False])
def test_signature_is_checked_over_the_exact_raw_bytes(
    account: MotoAccount, starter: RecordingStarter, base64_encoded: bool
) -> None:
    # Byte-exact: unusual spacing and non-ASCII text verify as sent, whichever way the URL encoded them.
    document = envelope("build.complete", f"wh-raw-{base64_encoded}")
    document["data"]["project"]["name"] = "Démo — Ünreal"
    body = json.dumps(document, indent=3, ensure_ascii=False).encode("utf-8")
    assert send(body, base64_encoded=base64_encoded)[0] == 202


def test_unfilled_signing_secret_is_503_not_configured(
    unconfigured: MotoAccount, starter: RecordingStarter
) -> None:
    body = json.dumps(envelope("build.complete", "wh-unconf")).encode()
    status, answer, _ = post(body, sign(body, "REPLACE_ME"))
    assert (status, answer["error"]) == (503, "not_configured")
    assert record("wh-unconf") is None


# -- envelope validation -------------------------------------------------------------------------------


def test_non_json_body_is_400(account: MotoAccount, starter: RecordingStarter) -> None:
    status, body, _ = send(b"type=build.complete")
    assert (status, body["error"]) == (400, "invalid_webhook")


@pytest.mark.parametrize("document", [[], {"data": {}}, {"type": 7}])
def test_body_without_a_type_is_400(account: MotoAccount, starter: RecordingStarter, document: Any) -> None:
    status, body, _ = send(json.dumps(document).encode())
    assert (status, body["error"]) == (400, "invalid_webhook")


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        (("data", "build", "id"), "id"),
        (("data", "build", "platform"), "platform"),
        (("data", "project"), "project"),
        (("data",), "data"),
    ],
)
def test_build_complete_missing_fields_is_400(
    account: MotoAccount, starter: RecordingStarter, path: tuple[str, ...], fragment: str
) -> None:
    document = envelope("build.complete", "wh-missing")
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    status, body, _ = send(document)
    assert (status, body["error"]) == (400, "invalid_webhook")
    assert fragment in body["message"]
    assert starter.started == []


def test_unsafe_build_id_is_400(account: MotoAccount, starter: RecordingStarter) -> None:
    status, body, _ = send(envelope("build.complete", "../../etc"))
    assert (status, body["error"]) == (400, "invalid_webhook")


def test_unknown_fields_are_allowed_and_kept(account: MotoAccount, starter: RecordingStarter) -> None:
    document = envelope("build.complete", "wh-extra", ueVersion="5.4", artifactSha="abc")
    document["deliveryAttempt"] = 2
    assert send(document)[0] == 202
    stored = record("wh-extra")
    assert stored is not None and stored["metadata"]["ueVersion"] == "5.4"


@pytest.mark.parametrize("event_type", ["build.created", "build.running", "project.deleted"])
def test_other_events_are_ignored_with_200(
    account: MotoAccount, starter: RecordingStarter, event_type: str
) -> None:
    status, body, _ = send({"type": event_type, "createdAt": datetime.now(UTC).isoformat(), "data": {}})
    assert (status, body["ignored"]) == (200, True)
    assert starter.started == []


# -- build.failed / build.superseded -------------------------------------------------------------------


def test_build_failed_for_a_known_build_is_recorded_once(
    account: MotoAccount, starter: RecordingStarter
) -> None:
    send(envelope("build.complete", "wh-f"))
    failed = envelope("build.failed", "wh-f")
    assert send(failed)[0] == 200
    assert send(failed)[0] == 409  # the same signed delivery again: a replay
    assert events_of("wh-f").count("build.failed") == 1
    stored = record("wh-f")
    assert stored is not None and stored["status"] == "received"


def test_events_for_unknown_builds_are_ignored(account: MotoAccount, starter: RecordingStarter) -> None:
    for event_type in ("build.failed", "build.superseded"):
        status, body, _ = send(envelope(event_type, "wh-unknown"))
        assert (status, body["ignored"]) == (200, True)
    assert record("wh-unknown") is None


def test_superseded_stops_a_build_not_yet_uploaded(account: MotoAccount, starter: RecordingStarter) -> None:
    send(envelope("build.complete", "wh-s"))
    status, body, _ = send(envelope("build.superseded", "wh-s"))
    assert (status, body["status"]) == (200, "superseded")
    stored = record("wh-s")
    assert stored is not None
    assert stored["status"] == "superseded"
    assert "superseded in BuildPixel" in stored["error"]
    assert "openShard" not in stored  # out of the reconciler's work list (the sparse open-index)
    assert send(envelope("build.superseded", "wh-s"))[1]["ignored"] is True  # terminal now


def test_superseded_leaves_a_build_already_uploading_alone(
    account: MotoAccount, starter: RecordingStarter
) -> None:
    from pixelbridge import wiring

    send(envelope("build.complete", "wh-up"))
    wiring.builds().set_fields("wh-up", {"status": "uploading"})
    status, body, _ = send(envelope("build.superseded", "wh-up"))
    assert (status, body["status"]) == (200, "uploading")
    assert "build.superseded" in events_of("wh-up")
