"""The handoff zip that Streampixel downloads: ``dl/<random token>/<name>.zip`` in ``HandoffBucket``.

The token is the capability: 192 random bits in the path make the URL unguessable, so it can be a
plain HTTPS URL ending in ``.zip`` with no query string (what Streampixel's strictest rule wants).
It is never logged.
"""

from __future__ import annotations

import secrets
from typing import Any

import boto3

from pixelbridge.domain.handoff import HANDOFF_PREFIX, token_from_url
from pixelbridge.ports import HandoffLocation

__all__ = ["HandoffLocation", "HandoffStore", "handoff_key", "new_token", "token_from_url"]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def handoff_key(token: str, build_id: str) -> str:
    return f"{HANDOFF_PREFIX}{token}/{build_id}.zip"


class HandoffStore:
    """Publishes keys as download URLs in one of three modes.

    ``cloudfront`` (default): ``<distribution>/<key>`` served from a private bucket through OAC.
    ``public``: ``<base>/<key>`` for a bucket or endpoint that serves objects directly (local stack).
    ``presigned``: an S3 presigned GET (has a query string; for accounts without CloudFront). It is
    signed with the calling function's session credentials and dies with that session whatever its
    expiry says, so no URL is ever stored: the record keeps the key, and the function that calls
    upload-file asks for a fresh URL at that moment (``url_for``).
    """

    def __init__(
        self, bucket: str, *, mode: str, base_url: str, url_ttl_seconds: int, s3: Any = None
    ) -> None:
        self.bucket = bucket
        self._mode = mode
        self._base_url = base_url.rstrip("/")
        self._ttl = url_ttl_seconds
        self._s3 = s3 or boto3.client("s3")

    def new_location(self, build_id: str) -> HandoffLocation:
        token = new_token()
        return HandoffLocation(token=token, key=handoff_key(token, build_id))

    def url_for(self, key: str) -> str:
        if self._mode == "presigned":
            return str(
                self._s3.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self._ttl
                )
            )
        if not self._base_url:
            raise ValueError(f"HANDOFF_BASE_URL is required in {self._mode} mode")
        return f"{self._base_url}/{key}"

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=key)
