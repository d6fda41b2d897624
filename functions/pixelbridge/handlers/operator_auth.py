"""Who may call the operator API: ``Authorization: Bearer <operatorToken>``, compared in constant time."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from pixelbridge import wiring
from pixelbridge.domain.errors import Unauthorized
from pixelbridge.domain.secrets import secrets_equal

OPERATOR_SECURITY: list[dict[str, list[str]]] = [{"operatorToken": []}]


def require_operator(event: BaseProxyEvent, *, also_buildpixel: bool = False) -> None:
    """Unauthorized unless the request carries the operator token (reads: or BuildPixel's upload header)."""
    presented = event.headers.get("authorization")
    if secrets_equal(presented, wiring.operator_authorization()):
        return
    if also_buildpixel and secrets_equal(presented, wiring.upload_authorization()):
        return
    raise Unauthorized("unauthorized", "missing or wrong Authorization header")
