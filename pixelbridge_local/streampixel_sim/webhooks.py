"""Webhook deliveries: one POST each, 10-second timeout, no retries (as Streampixel does)."""

from __future__ import annotations

import time
from typing import Any

import requests

from pixelbridge_local.streampixel_sim.contract import WEBHOOK_TIMEOUT_SECONDS, RecordedWebhook


def post_webhook(url: str, payload: dict[str, Any]) -> RecordedWebhook:
    try:
        response = requests.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        return webhook_record(payload, url, None, f"{type(exc).__name__}: {exc}")
    response.close()
    return webhook_record(payload, url, response.status_code, None)


def webhook_record(
    payload: dict[str, Any],
    url: str,
    status_code: int | None,
    error: str | None,
    *,
    dropped: bool = False,
) -> RecordedWebhook:
    return RecordedWebhook(
        monotonic=time.monotonic(),
        wall_time=time.time(),
        event=payload["event"],
        upload_id=payload["uploadId"],
        url=url,
        status_code=status_code,
        error=error,
        payload=payload,
        dropped=dropped,
    )
