"""The operator API's resolver (IngestFunction): every route, with Powertools request validation.

Validation parses and checks the operator API's query and path parameters and generates
``GET /openapi.json`` from the routes. It is built on the first request the ingest resolver has no route
for: push and BuildPixel's webhook never pay for it (pydantic and the OpenAPI models, at cold start).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types

from pixelbridge.handlers import buildpixel_webhook, push, status_page
from pixelbridge.handlers.http_errors import register_error_map

# Routes without parameters to validate: the ingest resolver serves them without validation.
UNVALIDATED_ROUTERS = (push.router, buildpixel_webhook.router, status_page.router)


@lru_cache(maxsize=1)
def app() -> LambdaFunctionUrlResolver:
    from pixelbridge.handlers import operator_actions, operator_reads

    validating = LambdaFunctionUrlResolver(enable_validation=True)
    register_error_map(validating)
    # -- one include_router line per operator module (the others are listed so /openapi.json has them) --
    validating.include_router(push.router)
    validating.include_router(buildpixel_webhook.router)
    validating.include_router(operator_reads.router)
    validating.include_router(operator_actions.router)
    validating.include_router(status_page.router)

    validating.get("/openapi.json", include_in_schema=False)(openapi_document)
    return validating


def openapi_document() -> Response[Any]:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    document = app().get_openapi_json_schema(
        title="PixelBridge",
        version="1.0.0",
        description="BuildPixel push/webhook ingest and the operator API "
        "(Authorization: Bearer <operatorToken>).",
        security_schemes={"operatorToken": HTTPBearer()},
    )
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document)
