"""BuildPixel webhook signatures: ``X-BuildPixel-Signature: sha256=<hex HMAC-SHA256(raw body, secret)>``.

Pure functions: the HMAC is computed over the exact bytes received (never a re-serialised JSON), and
compared in constant time so the answer time says nothing about how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-BuildPixel-Signature"
SIGNATURE_PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value BuildPixel sends for ``body`` (the simulator and tests sign with this too)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_PREFIX}{digest}"


def signature_valid(body: bytes, header_value: str | None, secret: str) -> bool:
    """True only for a well-formed ``sha256=<hex>`` header that matches ``body`` under ``secret``.

    An empty secret never verifies anything: an unfilled secret must not open the door.
    """
    if not header_value or not secret:
        return False
    presented = header_value.strip()
    if not presented.startswith(SIGNATURE_PREFIX):
        return False
    expected = sign(body, secret)
    # Hex case is not significant; bytes (not str) so non-ASCII input compares instead of raising.
    return hmac.compare_digest(presented.lower().encode("utf-8"), expected.encode("utf-8"))
