"""How the simulator reads an API request, with the errors Streampixel answers for bad ones."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from pixelbridge_local.streampixel_sim.contract import API_PREFIX, ApiError


def endpoint_of(path: str) -> str | None:
    prefix = f"{API_PREFIX}/projects/"
    route = path.split("?", 1)[0]
    return route[len(prefix) :] if route.startswith(prefix) else None


def parse_json_body(content_type: str, raw_body: bytes) -> dict[str, Any]:
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(415, "Unsupported Media Type: send application/json")
    try:
        body = json.loads(raw_body or b"null")
    except ValueError:
        raise ApiError(400, "Malformed JSON body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Malformed JSON body: expected an object")
    return body


def optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value.strip() else None


def validated_file_url(file_url: str, *, allow_query: bool) -> str:
    parts = urlsplit(file_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, "Invalid fileUrl: must be an http(s) URL")
    if parts.query and not allow_query:
        raise ApiError(400, "Invalid fileUrl: query strings are not allowed")
    if not parts.path.lower().endswith(".zip"):
        raise ApiError(400, "Invalid fileUrl: must point to a .zip file")
    return file_url


def auto_release_flag(body: dict[str, Any]) -> bool:
    value = body.get("autoRelease", True)  # documented default: true
    if not isinstance(value, bool):
        raise ApiError(400, "Invalid field: autoRelease must be a boolean")
    return value
