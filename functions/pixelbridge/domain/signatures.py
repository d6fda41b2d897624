"""BuildPixel webhook signatures: ``X-BuildPixel-Signature: sha256=<hex HMAC-SHA256(raw body, secret)>``.

Pure functions: the HMAC is computed over the exact bytes received (never a re-serialised JSON), and
compared in constant time so the answer time says nothing about how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

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


# A signed webhook is only valid near the time it says it was created (``createdAt``, inside the signed
# body): a captured delivery cannot be replayed later, and one replayed inside the window is refused
# because its signature was already seen.
REPLAY_WINDOW_SECONDS = 300


def stale_reason(created_at: object, now: float, window_seconds: int = REPLAY_WINDOW_SECONDS) -> str | None:
    """Why a signed event dated ``created_at`` (ISO-8601) must be refused at ``now``, or None if fresh."""
    if not isinstance(created_at, str) or not created_at:
        return "the webhook has no createdAt timestamp"
    try:
        moment = datetime.fromisoformat(created_at.strip().replace("Z", "+00:00"))
    except ValueError:
        return "the webhook's createdAt is not an ISO-8601 timestamp"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    age = now - moment.timestamp()
    if age > window_seconds:
        return f"the webhook was created more than {window_seconds} s ago (a replay or a stale retry)"
    if age < -window_seconds:
        return f"the webhook is dated more than {window_seconds} s in the future"
    return None


def delivery_key(signature: str) -> str:
    """The replay-ledger key of a delivery: one per signed body (a hash, not the signature itself)."""
    digest = hashlib.sha256(signature.strip().lower().encode("utf-8")).hexdigest()
    return f"buildpixel-webhook#{digest}"
