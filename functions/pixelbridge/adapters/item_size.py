"""DynamoDB item size, estimated the way DynamoDB counts it, and the 400 KB guard.

moto does not refuse items the way DynamoDB does, so the limit is enforced here, before the call,
with an error that says which build and how large instead of a ValidationException mid-pipeline.
Rules (DynamoDB developer guide, "Item sizes and formats"): an attribute is its name's UTF-8 length
plus its value's size; strings count UTF-8 bytes, binary its bytes, numbers about one byte per two
significant digits plus one, booleans and null one byte, lists and maps 3 bytes plus one per element
plus their elements.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

MAX_ITEM_BYTES = 400 * 1024


class ItemTooLarge(ValueError):
    """An item (or the part of it one write adds) is over DynamoDB's 400 KB."""


def value_size(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, int | float | Decimal):
        digits = str(abs(Decimal(str(value)))).replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if isinstance(value, Mapping):
        return 3 + sum(1 + len(str(k).encode("utf-8")) + value_size(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return 3 + sum(1 + value_size(v) for v in value)
    return len(str(value).encode("utf-8"))


def item_size(attributes: Mapping[str, Any]) -> int:
    """Bytes DynamoDB counts for these attributes (names included)."""
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in attributes.items())


def ensure_fits(attributes: Mapping[str, Any], *, what: str) -> None:
    size = item_size(attributes)
    if size > MAX_ITEM_BYTES:
        raise ItemTooLarge(f"{what} is {size} bytes; a DynamoDB item holds at most {MAX_ITEM_BYTES}")
