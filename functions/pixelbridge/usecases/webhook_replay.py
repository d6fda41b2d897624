"""Signed BuildPixel webhooks are accepted once, and only near their own ``createdAt``.

The HMAC proves BuildPixel wrote the body, not that BuildPixel sent it now: without this, a captured
delivery could be replayed at will. A delivery is refused with 401 when its ``createdAt`` is outside
±5 minutes of our clock, and with 409 when the same signed body was already accepted (a conditional
put in the replay ledger). A delivery we could not process (unavailable, any unexpected error) is forgotten
again, so BuildPixel's own retry of it is still accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from pixelbridge.domain.errors import Conflict, Unauthorized, Unavailable
from pixelbridge.domain.signatures import REPLAY_WINDOW_SECONDS, delivery_key, stale_reason
from pixelbridge.ports import DeliveryLedger


class WebhookReplayGuard:
    def __init__(
        self,
        ledger: DeliveryLedger,
        *,
        clock: Callable[[], float] = time.time,
        window_seconds: int = REPLAY_WINDOW_SECONDS,
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._window = window_seconds

    @contextmanager
    def delivery(self, document: Mapping[str, object], signature: str) -> Iterator[None]:
        """Admit one verified delivery for the duration of the ``with`` block, or refuse it."""
        now = self._clock()
        reason = stale_reason(document.get("createdAt"), now, self._window)
        if reason:
            raise Unauthorized("stale_webhook", reason)
        key = delivery_key(signature)
        # Kept past the window's far end, so the delivery is stale before its ledger entry expires.
        if not self._ledger.first_seen(key, now=int(now), expires_at=int(now) + 2 * self._window + 60):
            raise Conflict("duplicate_webhook", "this signed delivery was already received")
        try:
            yield
        except Unavailable:  # answered 503: BuildPixel's retry of this delivery must still pass
            self._ledger.forget(key)
            raise
        except BaseException:
            self._ledger.forget(key)
            raise
