"""Who may call the operator API: ``Authorization: Bearer <operatorToken>``, compared in constant time.

The same check runs before request validation (see ``http_errors``): no 400 before the 401.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from pixelbridge import wiring
from pixelbridge.domain.errors import Unauthorized
from pixelbridge.domain.secrets import secrets_equal

OPERATOR_SECURITY: list[dict[str, list[str]]] = [{"operatorToken": []}]


def is_operator(event: BaseProxyEvent) -> bool:
    return secrets_equal(event.headers.get("authorization"), wiring.operator_authorization())


def authenticated_for(route: object, event: BaseProxyEvent) -> bool:
    """Powertools validates parameters before route code runs: a secured route checks its token first."""
    return not getattr(route, "security", None) or is_operator(event)


def require_operator(event: BaseProxyEvent) -> None:
    """Unauthorized unless the request carries the operator token."""
    if not is_operator(event):
        raise Unauthorized("unauthorized", "missing or wrong Authorization header")


def operator_or_uploader(event: BaseProxyEvent) -> bool:
    """True for the operator; False for BuildPixel's upload header (it may read one build's status)."""
    if is_operator(event):
        return True
    if secrets_equal(event.headers.get("authorization"), wiring.upload_authorization()):
        return False
    raise Unauthorized("unauthorized", "missing or wrong Authorization header")
