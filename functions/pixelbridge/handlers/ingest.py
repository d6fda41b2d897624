"""IngestFunction: one Function URL, three APIs, each a Powertools Router in its own module.

``GET /openapi.json`` is generated from the routes (Powertools validation parses and checks the
query and path parameters); every refusal goes through the one error map in ``http_errors``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixelbridge.handlers import buildpixel_webhook, operator_actions, operator_reads, push, status_page
from pixelbridge.handlers.http_errors import register_error_map
from pixelbridge.observability import logger, metrics
from pixelbridge.settings import get_settings

app = LambdaFunctionUrlResolver(enable_validation=True)
register_error_map(app)
app.include_router(push.router)
app.include_router(buildpixel_webhook.router)
# -- the operator API: one include_router line per operator module -----------------------------------
app.include_router(operator_reads.router)
app.include_router(operator_actions.router)
app.include_router(status_page.router)


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[Any]:
    document = app.get_openapi_json_schema(
        title="PixelBridge",
        version="1.0.0",
        description="BuildPixel push/webhook ingest and the operator API "
        "(Authorization: Bearer <operatorToken>).",
        security_schemes={"operatorToken": HTTPBearer()},
    )
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    get_settings()  # validate configuration at cold start
    return app.resolve(event, context)
