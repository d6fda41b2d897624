"""A bad routes file: every IngestFunction request answers a JSON 503 naming the route, never a crash."""

from __future__ import annotations

import json

import pytest

from pixelbridge_local.buildpixel import sample_metadata
from tests.integration.test_ingest_push import call, push
from tests.integration.test_operator_api import operator_auth
from tests.support.aws import moto_account

BAD_ROUTES = json.dumps(
    [
        {"id": "main", "streampixelProjectId": "67944b8a3f323be4b89a2272"},
        {"id": "win-only", "streampixelProjectId": "67944b8a3f323be4b89a2272", "platform": "Win64"},
    ]
)


def test_push_webhook_and_operator_api_answer_503_naming_the_bad_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with moto_account(monkeypatch, parameters={"Routes": BAD_ROUTES}) as account:
        answers = [
            push(account, sample_metadata("b-routes")),
            call(b"{}", {"Content-Type": "application/json"}, path="/webhooks/buildpixel"),
            call(b"", operator_auth(account), path="/doctor/test-webhook"),
        ]
    for status, body in answers:
        assert status == 503
        assert body["error"] == "routes_invalid"
        assert "route 1 ('win-only'): platform: Extra inputs are not permitted" in body["message"]
