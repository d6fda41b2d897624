"""Secret comparison: always constant time, never logged."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit


def secrets_equal(presented: str | None, expected: str) -> bool:
    """True when ``presented`` equals ``expected``, compared in constant time.

    An empty expected value never matches: an unfilled secret must not open the door.
    """
    if presented is None or not expected:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def host_of(url: str) -> str:
    """The host of a URL: what may be named of a capability URL (never its path or query)."""
    return urlsplit(url).hostname or "?"
