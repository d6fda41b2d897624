"""DynamoDB items <-> plain JSON-like records, and the opaque listing cursors built from item keys."""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Any

from pixelbridge.ports import InvalidCursor


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    raw = json.dumps(from_dynamo(key), separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, allowed_keys: set[str]) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("the 'next' cursor is not valid") from exc
    if (
        not isinstance(key, dict)
        or set(key) != allowed_keys
        or not all(isinstance(value, str) and value for value in key.values())
    ):
        raise InvalidCursor("the 'next' cursor does not belong to this listing")
    return key


def to_dynamo(value: Any) -> Any:
    """DynamoDB has no float type: store floats as Decimal, recursively."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """Decimals back to int/float so records serialise as plain JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value
