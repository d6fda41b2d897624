"""The HTTP edge's ONE error map (domain refusal -> status + ``{"error", "message"}``), on every resolver."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from pixelbridge.domain import errors
from pixelbridge.domain.errors import MissingSecretValue, Rejected
from pixelbridge.handlers.operator_auth import authenticated_for
from pixelbridge.handlers.responses import error_response
from pixelbridge.observability import logger

HTTP_STATUS: dict[type[Rejected], int] = {
    errors.Invalid: 400,
    errors.Unauthorized: 401,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.UnsupportedFormat: 415,
    errors.Unavailable: 503,
}

NOT_CONFIGURED = "PixelBridge is not configured yet (a secret is not filled)"


def status_of(error: Rejected) -> int:
    return next((HTTP_STATUS[kind] for kind in type(error).__mro__ if kind in HTTP_STATUS), 400)


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
        if not authenticated_for(app.context.get("_route"), app.current_event):  # 401 before any 400
            return error_response(401, "unauthorized", "missing or wrong Authorization header")
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', 'invalid')}"
            for item in error.errors()[:5]
        )
        return error_response(400, "invalid_request", problems or "invalid request")

    @app.not_found
    def no_such_endpoint(_: Exception) -> Response[Any]:
        return error_response(404, "not_found", "no such endpoint")
