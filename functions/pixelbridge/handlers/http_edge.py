"""The HTTP edge's shared parts: the ONE error map (domain refusal -> status + ``{"error","message"}``),
registered once on each Function URL resolver, and the few helpers every route uses."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from pixelbridge.domain.errors import (
    Conflict,
    Invalid,
    MissingSecretValue,
    NotFound,
    Rejected,
    TooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedFormat,
)
from pixelbridge.observability import logger
from pixelbridge.usecases.intake import Receipt

HTTP_STATUS: dict[type[Rejected], int] = {
    Invalid: 400,
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedFormat: 415,
    Unavailable: 503,
}


NOT_CONFIGURED = "PixelBridge is not configured yet (a secret is not filled)"


def status_of(error: Rejected) -> int:
    return next((HTTP_STATUS[kind] for kind in type(error).__mro__ if kind in HTTP_STATUS), 400)


def json_response(body: dict[str, Any], status: int = 200) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def error_response(status: int, error: str, message: str) -> Response[Any]:
    return json_response({"error": error, "message": message}, status)


def receipt_response(receipt: Receipt, body: dict[str, Any] | None = None) -> Response[Any]:
    """202 when this delivery took the build in (work starts now), 200 when it only reports or ignores."""
    return json_response(receipt.body if body is None else body, 202 if receipt.taken_in else 200)


def raw_body(event: BaseProxyEvent) -> bytes:
    """The request body as bytes: Function URLs base64-encode binary bodies (multipart included)."""
    if not event.body:
        return b""
    return base64.b64decode(event.body) if event.is_base64_encoded else event.body.encode("utf-8")


def register_error_map(app: ApiGatewayResolver) -> None:
    @app.exception_handler(Rejected)
    def rejected(error: Rejected) -> Response[Any]:
        status = status_of(error)
        logger.info("request rejected", extra={"error": error.code, "http_status": status})
        return error_response(status, error.code, error.message)

    @app.exception_handler(MissingSecretValue)
    def unconfigured(error: MissingSecretValue) -> Response[Any]:
        logger.error("PixelBridge is not configured", extra={"problem": str(error)})
        return error_response(503, "not_configured", NOT_CONFIGURED)

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[Any]:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', 'invalid')}"
            for item in error.errors()[:5]
        )
        return error_response(400, "invalid_request", problems or "invalid request")

    @app.not_found
    def no_such_endpoint(_: Exception) -> Response[Any]:
        return error_response(404, "not_found", "no such endpoint")
