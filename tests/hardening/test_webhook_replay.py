"""A captured signed BuildPixel webhook cannot be replayed (issue 13 item 3): through the real
IngestFunction handler on a moto account, with an injected clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pixelbridge.adapters.delivery_ledger import DynamoDeliveryLedger
from pixelbridge.domain.signatures import REPLAY_WINDOW_SECONDS, delivery_key, sign, stale_reason
from pixelbridge.ports import DeliveryLedger
from pixelbridge_local.gateway import FakeLambdaContext, function_url_event
from tests.support.aws import MotoAccount, moto_account

SIGNING_SECRET = "whsec_replay_" + "5" * 24
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


class Starter:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.fail_next = False

    def start(self, build_id: str) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("Lambda throttled")
        self.started.append(build_id)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def starter() -> Starter:
    return Starter()


@pytest.fixture
def account(clock: Clock, starter: Starter) -> Iterator[MotoAccount]:
    with pytest.MonkeyPatch.context() as monkeypatch, moto_account(monkeypatch) as moto:
        from pixelbridge import wiring

        secret = {**moto.secrets["BuildPixelSecret"], "webhookSigningSecret": SIGNING_SECRET}
        moto.client("secretsmanager").put_secret_value(
            SecretId=moto.names["BuildPixelSecret"], SecretString=json.dumps(secret)
        )
        wiring.reset()
        with wiring.override(wiring.Overrides(fetch_starter=starter, clock=clock)):
            yield moto


def complete(build_id: str, created_at: datetime | None = NOW) -> bytes:
    document: dict[str, Any] = {
        "type": "build.complete",
        "organizationId": "664f00aa11bb22cc33dd44ee",
        "data": {
            "build": {"id": build_id, "status": "complete", "platform": "Win64"},
            "project": {"id": "665a2b3c4d5e6f7a8b9c0e10", "name": "Demo"},
        },
    }
    if created_at is not None:
        document["createdAt"] = created_at.isoformat().replace("+00:00", "Z")
    return json.dumps(document).encode()


def post(body: bytes) -> tuple[int, dict[str, Any]]:
    from pixelbridge.handlers import ingest

    headers = {"Content-Type": "application/json", "X-BuildPixel-Signature": sign(body, SIGNING_SECRET)}
    event = function_url_event("POST", "/webhooks/buildpixel", body=body, headers=headers)
    response = ingest.handler(event, FakeLambdaContext("IngestFunction"))
    return response["statusCode"], json.loads(response["body"])


def build(build_id: str) -> dict[str, Any] | None:
    from pixelbridge import wiring

    return wiring.builds().get(build_id)


def test_a_replayed_delivery_is_refused_with_409(account: MotoAccount, starter: Starter) -> None:
    body = complete("rp-dup")
    assert post(body)[0] == 202
    status, answer = post(body)
    assert (status, answer["error"]) == (409, "duplicate_webhook") and set(answer) == {"error", "message"}
    assert starter.started == ["rp-dup"]


@pytest.mark.parametrize(
    ("created_at", "reason"),
    [
        (NOW - timedelta(seconds=REPLAY_WINDOW_SECONDS + 1), "ago"),
        (NOW - timedelta(days=30), "ago"),
        (NOW + timedelta(seconds=REPLAY_WINDOW_SECONDS + 1), "future"),
        (None, "no createdAt"),
    ],
)
def test_a_delivery_outside_five_minutes_of_its_own_timestamp_is_refused_with_401(
    account: MotoAccount, starter: Starter, created_at: datetime | None, reason: str
) -> None:
    status, answer = post(complete("rp-stale", created_at))
    assert (status, answer["error"]) == (401, "stale_webhook") and reason in answer["message"]
    assert starter.started == [] and build("rp-stale") is None


def test_a_capture_replayed_after_the_window_is_stale_not_new(
    account: MotoAccount, starter: Starter, clock: Clock
) -> None:
    body = complete("rp-late")
    assert post(body)[0] == 202
    clock.now += 3600  # the attacker waits for the ledger entry to expire: the timestamp still gives it away
    assert post(body)[0] == 401
    assert starter.started == ["rp-late"]


def test_a_delivery_that_failed_with_503_is_accepted_when_buildpixel_retries(
    account: MotoAccount, starter: Starter
) -> None:
    body = complete("rp-retry")
    starter.fail_next = True
    assert post(body)[0] == 503
    assert post(body)[0] == 202  # BuildPixel's retry of the same delivery
    assert starter.started == ["rp-retry"]


def test_two_deliveries_of_one_build_with_their_own_signatures_are_both_judged(
    account: MotoAccount, starter: Starter
) -> None:
    assert post(complete("rp-two"))[0] == 202
    later = complete("rp-two", NOW + timedelta(seconds=1))  # a different signed body: not a replay
    assert post(later)[0] == 200  # the build is known already: nothing started twice
    assert starter.started == ["rp-two"]


@pytest.mark.parametrize("offset", [-REPLAY_WINDOW_SECONDS, 0, REPLAY_WINDOW_SECONDS])
def test_the_window_is_inclusive(offset: int) -> None:
    moment = (NOW + timedelta(seconds=offset)).isoformat()
    assert stale_reason(moment, NOW.timestamp()) is None
    assert stale_reason("yesterday", NOW.timestamp()) is not None


def test_the_ledger_admits_a_key_once_until_it_expires(account: MotoAccount) -> None:
    import boto3

    ledger: DeliveryLedger = DynamoDeliveryLedger(
        account.environment["IDEMPOTENCY_TABLE"], dynamodb=boto3.resource("dynamodb", region_name="us-east-1")
    )
    key = delivery_key("sha256=abc")
    assert ledger.first_seen(key, now=100, expires_at=200)
    assert not ledger.first_seen(key, now=150, expires_at=250)
    assert ledger.first_seen(key, now=201, expires_at=300)  # expired, not yet swept by TTL
    ledger.forget(key)
    assert ledger.first_seen(key, now=202, expires_at=300)
