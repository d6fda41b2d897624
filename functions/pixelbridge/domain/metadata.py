"""The metadata BuildPixel sends with every build (the ``metadata`` part of a custom deploy).

Everything in it comes from outside and is stored on the build record (a DynamoDB item of at most
400 KB, numbers of at most 38 digits and magnitude 1e125, nesting of at most 32 levels), so the
whole document is bounded before it is accepted: at most ``MAX_METADATA_BYTES`` as compact JSON,
``MAX_METADATA_DEPTH`` levels of objects and lists, keys of at most ``MAX_KEY_CHARS``, and only numbers
DynamoDB can hold (no ``NaN``, ``Infinity`` or ``1e400``). Strings of unknown fields are truncated to
``MAX_STORED_STRING_CHARS`` where stored.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Build ids become S3 keys and Step Functions execution names (≤ 80 chars of [A-Za-z0-9-_]).
BUILD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 30  # the record nests metadata one level down; DynamoDB allows 32 levels
MAX_KEY_CHARS = 256
MAX_STORED_STRING_CHARS = 1024
MAX_NUMBER_DIGITS = 38  # DynamoDB number precision
MAX_NUMBER_MAGNITUDE = 1e125  # DynamoDB number range: 1e-130 .. 1e125 (either sign)
MIN_NUMBER_MAGNITUDE = 1e-130


def check_bounded_document(document: object) -> None:
    """Raise ``ValueError`` (a 400 through pydantic) unless ``document`` fits the bounds above.

    Walks iteratively: a hostile document must not be able to exhaust the stack.
    """
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > MAX_METADATA_DEPTH:
                raise ValueError(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
            if isinstance(value, dict):
                if any(not isinstance(key, str) or len(key) > MAX_KEY_CHARS for key in value):
                    raise ValueError(f"metadata has a key longer than {MAX_KEY_CHARS} characters")
                pending.extend((item, depth + 1) for item in value.values())
            else:
                pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            _check_number(value)
    size = len(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON, more than {MAX_METADATA_BYTES}")


def _check_number(value: int | float) -> None:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("metadata numbers must be finite (no NaN, Infinity or out-of-range values)")
        if value and not MIN_NUMBER_MAGNITUDE <= abs(value) <= MAX_NUMBER_MAGNITUDE:
            raise ValueError("metadata has a number outside the range a build record can store")
    elif len(str(abs(value))) > MAX_NUMBER_DIGITS:
        raise ValueError(f"metadata has an integer of more than {MAX_NUMBER_DIGITS} digits")


def truncate_strings(value: Any) -> Any:
    """A copy of ``value`` in which every string is at most ``MAX_STORED_STRING_CHARS`` long."""
    if isinstance(value, str) and len(value) > MAX_STORED_STRING_CHARS:
        return value[: MAX_STORED_STRING_CHARS - 1] + "…"
    if isinstance(value, dict):
        return {key: truncate_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [truncate_strings(item) for item in value]
    return value


class BuildMetadata(BaseModel):
    """BuildPixel's metadata: the fields we rely on are typed, unknown fields are kept as sent."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    build_id: str = Field(alias="buildId", pattern=BUILD_ID_PATTERN)
    project_id: str = Field(alias="projectId", min_length=1, max_length=128)
    platform: str = Field(min_length=1, max_length=32)
    build_type: str | None = Field(default=None, alias="buildType", max_length=32)
    ue_version: str | None = Field(default=None, alias="ueVersion", max_length=32)
    branch: str | None = Field(default=None, max_length=256)
    commit: str | None = Field(default=None, max_length=128)

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, document: Any) -> Any:
        check_bounded_document(document)
        return document

    def to_record(self) -> dict[str, object]:
        """The metadata as sent, unknown fields included, strings truncated (for the build record)."""
        record: dict[str, object] = truncate_strings(self.model_dump(by_alias=True, exclude_none=True))
        return record
