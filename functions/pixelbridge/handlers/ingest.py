"""IngestFunction: one Function URL, three APIs, each a Powertools Router in its own module.

Push, BuildPixel's webhook and the status page are served by ``app``, a resolver without request
validation. A request it has no route for goes to the operator API's resolver (``operator_api``), built on
the first such request: its OpenAPI validation (pydantic and the OpenAPI models) costs more cold start
than everything else here, and only the operator API's parameters need it. Every refusal goes through
the one error map in ``http_errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types

from pixelbridge import wiring
from pixelbridge.handlers import operator_api
from pixelbridge.handlers.http_errors import register_error_map
from pixelbridge.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = LambdaFunctionUrlResolver()
register_error_map(app)
for router in operator_api.UNVALIDATED_ROUTERS:
    app.include_router(router)
NOT_HERE = "for the operator API"  # what app answers for a request it has no route for (never sent out)


@app.not_found
def for_the_operator_api(_: Exception) -> Response[Any]:
    return Response(status_code=404, content_type=content_types.TEXT_PLAIN, body=NOT_HERE)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    wiring.get_settings()  # validate configuration at cold start
    answer = app.resolve(event, context)
    if answer["statusCode"] == 404 and answer["body"] == NOT_HERE:
        return operator_api.app().resolve(event, context)
    return answer
