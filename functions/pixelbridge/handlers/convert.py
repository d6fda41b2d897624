"""ConvertFunction: S3 "Object Created" under ``inbox/`` (EventBridge or S3 notification) → zip → release."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixelbridge import wiring
from pixelbridge.adapters.convert_starter import RETRY_SOURCE
from pixelbridge.observability import logger, metrics, tracer
from pixelbridge.settings import get_settings

# S3 delivers at least once: one object version converts once (key + eTag), a crashed run again.
IDEMPOTENCY = IdempotencyConfig(expires_after_seconds=7 * 24 * 3600)


def object_refs(event: dict[str, Any]) -> list[dict[str, str]]:
    """(bucket, key, eTag) of every object in an EventBridge or S3-notification event."""
    if event.get("source") == RETRY_SOURCE:  # operator retry: re-convert an inbox object
        # The idempotency key is the whole ref: "retry-<n>" makes each operator retry run once.
        return [
            {
                "bucket": get_settings().artifact_bucket,
                "key": str(event["key"]),
                "etag": f"retry-{int(event['retry'])}",
            }
        ]
    if event.get("detail-type") == "Object Created":
        detail = S3EventBridgeNotificationEvent(event).detail
        return [
            {
                "bucket": detail.bucket.name,
                "key": unquote_plus(detail.object.key),
                "etag": detail.object.etag or "",
            }
        ]
    # Notification keys are URL-encoded ("+" for space; moto even encodes "/").
    return [
        {
            "bucket": record.s3.bucket.name,
            "key": unquote_plus(record.s3.get_object.key),
            "etag": record.s3.get_object.etag or "",
        }
        for record in S3Event(event).records
    ]


@lru_cache(maxsize=1)
def convert_once() -> Any:
    """The conversion wrapped in Powertools idempotency, built once the settings are known."""
    persistence = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table)
    use_case = wiring.convert_build()

    @idempotent_function(data_keyword_argument="ref", config=IDEMPOTENCY, persistence_store=persistence)
    def convert(ref: dict[str, str]) -> dict[str, Any]:
        return use_case(ref["key"]).to_dict()

    return convert


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY.register_lambda_context(context)
    results = []
    for ref in object_refs(event):
        if ref["bucket"] != get_settings().artifact_bucket:
            continue
        outcome = convert_once()(ref=ref)
        logger.info(
            "convert handled", extra={"build_id": outcome.get("buildId"), "result": outcome.get("result")}
        )
        results.append(outcome)
    return {"results": results}
