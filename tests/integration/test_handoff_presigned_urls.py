"""Presigned handoff URLs through the local IAM proxy: SigV4, refused once the signing session ended
or past their expiry, and the handoff token read from the path whatever the query string says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from pixelbridge import wiring
from pixelbridge.adapters.handoff import HandoffStore
from pixelbridge.domain.handoff import token_from_url
from pixelbridge_local.iam import (
    Authorizer,
    AuthorizingProxy,
    Principal,
    RequestClassifier,
    presigned_url_expired,
)

BUCKET = "handoff-test"
READ_ZIPS = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/dl/*"}]


@pytest.fixture
def proxy() -> Iterator[AuthorizingProxy]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    admin = _s3(f"http://{host}:{port}", "admin")
    admin.create_bucket(Bucket=BUCKET)
    authorizer = Authorizer(RequestClassifier({}, "arn:sm"), admin_keys={"admin"})
    for key in ("CONVERTER", "RELEASER"):
        authorizer.add_principal(key, Principal(f"role-{key}", READ_ZIPS))
    front = AuthorizingProxy(authorizer, host, int(port))
    front.start()
    try:
        yield front
    finally:
        front.stop()
        requests.post(f"http://{host}:{port}/moto-api/reset", timeout=10)
        server.stop()


def _s3(endpoint: str, key: str) -> Any:
    factory: Any = boto3.client
    return factory(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key="secret",
        config=Config(signature_version="s3v4"),
    )


def _store(proxy: AuthorizingProxy, key: str) -> HandoffStore:
    return HandoffStore(BUCKET, mode="presigned", base_url="", url_ttl_seconds=10_800, s3=_s3(proxy.url, key))


def test_a_url_signed_by_an_ended_session_is_refused_and_a_fresh_one_downloads(
    proxy: AuthorizingProxy,
) -> None:
    converter, releaser = _store(proxy, "CONVERTER"), _store(proxy, "RELEASER")
    location = converter.new_location("Game 1")
    _s3(proxy.url, "admin").put_object(Bucket=BUCKET, Key=location.key, Body=b"PK zip")
    stored = converter.url_for(location.key)
    assert requests.get(stored, timeout=10).content == b"PK zip"

    proxy.authorizer.expire("CONVERTER")  # Lambda's credentials for the converter rotated
    refused = requests.get(stored, timeout=10)
    assert refused.status_code == 400 and b"ExpiredToken" in refused.content
    fresh = releaser.url_for(location.key)
    assert requests.get(fresh, timeout=10).content == b"PK zip"
    # Streampixel echoes the URL it got: the token comes from the path, the signature does not matter.
    assert token_from_url(fresh) == token_from_url(stored) == location.token


def test_a_presigned_url_past_its_expiry_is_refused(proxy: AuthorizingProxy) -> None:
    signed_at = 1_795_996_800  # 2026-11-30T00:00:00Z
    path = "/b/dl/t/x.zip?X-Amz-Date=20261130T000000Z&X-Amz-Expires=60"
    assert not presigned_url_expired(path, now=signed_at + 60)
    assert presigned_url_expired(path, now=signed_at + 61)
    assert not presigned_url_expired("/b/dl/t/x.zip", now=signed_at + 10**9)  # not presigned
    _s3(proxy.url, "admin").put_object(Bucket=BUCKET, Key="dl/t/x.zip", Body=b"PK")
    url = _store(proxy, "RELEASER").url_for("dl/t/x.zip")
    stale = url.replace(url.split("X-Amz-Date=")[1][:16], "20200101T000000Z")
    refused = requests.get(stale, timeout=10)
    assert refused.status_code == 403 and b"Request has expired" in refused.content


def test_production_wiring_signs_handoff_urls_with_sigv4(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore presigns SigV2 in us-east-1 by default; regions opened since 2014 refuse SigV2."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session")
    wiring.reset()
    try:
        store = HandoffStore(
            BUCKET, mode="presigned", base_url="", url_ttl_seconds=10_800, s3=wiring.s3_client()
        )
        url = store.url_for("dl/tok/b.zip")
    finally:
        wiring.reset()
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Credential=ASIAEXAMPLE" in url
    assert "AWSAccessKeyId" not in url and "X-Amz-Expires=10800" in url
