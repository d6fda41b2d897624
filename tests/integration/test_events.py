"""The sample events in events/ (for ``sam local invoke -e``) are valid input for the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pixelbridge_local.gateway import FakeLambdaContext
from tests.support.aws import MotoAccount, moto_account

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoAccount]:
    with moto_account(monkeypatch) as moto:
        yield moto


def load(name: str, **replacements: str) -> dict[str, Any]:
    text = (EVENTS / name).read_text()
    for placeholder, value in replacements.items():
        text = text.replace(placeholder, value)
    document: dict[str, Any] = json.loads(text)
    return document


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        ("ingest-push.json", 202, None),
        ("ingest-push-linux-skipped.json", 202, None),
        ("ingest-push-no-authorization.json", 401, "unauthorized"),
        ("ingest-push-not-multipart.json", 415, "unsupported_media_type"),
        ("ingest-push-metadata-not-json.json", 400, "invalid_metadata"),
        ("ingest-push-missing-artifact.json", 400, "missing_artifact"),
        ("ingest-push-artifact-not-gzip.json", 400, "artifact_not_gzip"),
    ],
)
def test_ingest_events(account: MotoAccount, name: str, status: int, error: str | None) -> None:
    from pixelbridge.handlers import ingest

    token = account.secrets["BuildPixelSecret"]["uploadAuthToken"]
    event = load(name, REPLACE_WITH_uploadAuthToken=token)
    response = ingest.handler(event, FakeLambdaContext("IngestFunction"))
    body = json.loads(response["body"])
    assert response["statusCode"] == status
    assert body.get("error") == error


@pytest.mark.parametrize(
    "name",
    ["streampixel-build-approved.json", "streampixel-build-rejected.json", "streampixel-webhook-test.json"],
)
def test_streampixel_events_are_accepted_and_unknown_uploads_ignored(account: MotoAccount, name: str) -> None:
    from pixelbridge.handlers import streampixel_webhook

    secret = account.secrets["StreampixelWebhookSecret"]["pathSecret"]
    response = streampixel_webhook.handler(
        load(name, REPLACE_WITH_pathSecret=secret), FakeLambdaContext("StreampixelWebhookFunction")
    )
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"received": True, "matched": False}


def test_streampixel_event_with_the_placeholder_secret_is_404(account: MotoAccount) -> None:
    from pixelbridge.handlers import streampixel_webhook

    response = streampixel_webhook.handler(
        load("streampixel-build-approved.json"), FakeLambdaContext("StreampixelWebhookFunction")
    )
    assert response["statusCode"] == 404


@pytest.mark.parametrize("name", ["convert-eventbridge-object-created.json", "convert-s3-notification.json"])
def test_convert_events_name_an_inbox_build(account: MotoAccount, name: str) -> None:
    from pixelbridge.handlers import convert

    convert.convert_once.cache_clear()
    event = load(name, REPLACE_WITH_ArtifactBucketName=account.names["ArtifactBucket"])
    result = convert.handler(event, FakeLambdaContext("ConvertFunction"))
    build_id = "sample-build"
    assert result == {"results": [{"buildId": build_id, "result": "ignored: no build record"}]}


def test_release_events_reach_the_release_tasks(account: MotoAccount) -> None:
    from pixelbridge.handlers import release
    from pixelbridge.usecases.release import BuildNotFound

    with pytest.raises(BuildNotFound):
        release.handler(load("release-prepare.json"), FakeLambdaContext("ReleaseFunction"))
