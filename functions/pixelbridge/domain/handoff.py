"""Handoff URLs: ``.../dl/<token>/<build id>.zip``; the token is the capability and is never logged."""

from __future__ import annotations

import re

HANDOFF_PREFIX = "dl/"
_TOKEN_IN_URL = re.compile(r"/dl/([A-Za-z0-9_-]{32,})/[^/]+\.zip$")


def token_from_url(file_url: str | None) -> str | None:
    """The handoff token inside a fileUrl Streampixel echoes back (query string ignored)."""
    if not file_url:
        return None
    match = _TOKEN_IN_URL.search(file_url.split("?", 1)[0])
    return match.group(1) if match else None
