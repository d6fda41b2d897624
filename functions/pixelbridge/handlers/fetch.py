"""FetchFunction: invoked asynchronously with ``{"buildId"}`` (by the BuildPixel webhook, the operator's
retry, and itself to continue a download).

The event carries no URL: the use case asks BuildPixel's download API for a freshly signed one at every
invocation. Lambda's request id names this invocation in the download's lease.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pixelbridge import wiring
from pixelbridge.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def seconds_left_in(context: LambdaContext | None) -> Callable[[], float]:
    return lambda: context.get_remaining_time_in_millis() / 1000 if context else float("inf")


@logger.inject_lambda_context(clear_state=True, log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.parser import ValidationError, parse  # pydantic: see __init__

    from pixelbridge.handlers.models.fetch import FetchRequest

    try:
        request = parse(event=event, model=FetchRequest)
    except ValidationError:
        logger.warning("fetch request without a valid buildId ignored")
        return {"buildId": None, "result": "ignored: invalid request"}
    own_arn = getattr(context, "invoked_function_arn", None)  # a continued download invokes itself again
    fetch = wiring.fetch_artifact(seconds_left_in(context), own_arn)
    outcome = fetch(request.build_id, getattr(context, "aws_request_id", None))
    logger.info("fetch handled", extra={"build_id": request.build_id, "result": outcome.result})
    return outcome.to_dict()
