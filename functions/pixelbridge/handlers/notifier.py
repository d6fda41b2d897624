"""NotifierFunction: BuildsTable stream (NEW_AND_OLD_IMAGES) → EventBridge, SNS and metrics.

Partial batch responses: a record that fails is reported alone (with bisect-on-error in the
template), so one bad record never blocks the shard or re-sends the whole batch.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pixelbridge import wiring
from pixelbridge.adapters.dynamo_items import from_dynamo
from pixelbridge.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def processor() -> BatchProcessor:
    """The parser model validates each stream record and deserialises both images (pydantic: see __init__)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
    from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel

    return BatchProcessor(event_type=EventType.DynamoDBStreams, model=DynamoDBStreamRecordModel)


def image(raw: object) -> dict[str, Any] | None:
    return from_dynamo(dict(raw)) if isinstance(raw, dict) and raw else None


def record_handler(record: DynamoDBStreamRecordModel) -> None:
    stream = record.dynamodb
    outcome = wiring.notify_status_changes()(image(stream.OldImage), image(stream.NewImage))
    if outcome.change is not None:
        logger.info(
            "build status change",
            extra={
                "build_id": outcome.change.build_id,
                "from": outcome.change.from_status,
                "to": outcome.change.to_status,
                "stuck": outcome.change.stuck,
                "notified_operator": outcome.notified_operator,
            },
        )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    wiring.get_settings()
    return dict(process_partial_response(event, record_handler, processor(), context))
