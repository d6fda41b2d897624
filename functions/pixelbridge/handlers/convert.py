"""ConvertFunction: S3 "Object Created" under ``inbox/`` (EventBridge or S3 notification) → zip → release."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from pixelbridge import wiring
from pixelbridge.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# S3 delivers at least once: one object version converts once (key + eTag), a crashed run again.
IDEMPOTENCY = IdempotencyConfig(expires_after_seconds=7 * 24 * 3600)


@lru_cache(maxsize=1)
def convert_once() -> Any:
    """The conversion wrapped in Powertools idempotency, built once the settings are known."""
    persistence = DynamoDBPersistenceLayer(table_name=wiring.get_settings().idempotency_table)
    use_case = wiring.convert_build()

    @idempotent_function(data_keyword_argument="ref", config=IDEMPOTENCY, persistence_store=persistence)
    def convert(ref: dict[str, str]) -> dict[str, Any]:
        return use_case(ref["key"]).to_dict()

    return convert


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.parser import parse  # pydantic: see __init__

    from pixelbridge.handlers.models.convert import ConvertEventModel, object_refs

    IDEMPOTENCY.register_lambda_context(context)
    results = []
    bucket = wiring.get_settings().artifact_bucket
    for ref in object_refs(parse(event=event, model=ConvertEventModel).root, bucket):
        if ref.bucket != bucket:
            continue
        try:
            outcome = convert_once()(ref=ref.model_dump())
        except IdempotencyAlreadyInProgressError:
            # Answered, not failed into the DLQ; the mark expires with that run's timeout if it is killed.
            outcome = {"result": "already converting", "key": ref.key}
        logger.info(
            "convert handled", extra={"build_id": outcome.get("buildId"), "result": outcome.get("result")}
        )
        results.append(outcome)
    return {"results": results}
