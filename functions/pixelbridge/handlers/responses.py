"""What every HTTP route answers with: JSON responses, and the raw request body."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

if TYPE_CHECKING:
    from pixelbridge.usecases.intake import Receipt


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
