"""The last step before a Streampixel write call: sleep out the slot, then claim the user's call window."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from pixelbridge.domain.errors import RateLimited
from pixelbridge.domain.slots import call_spacing_seconds
from pixelbridge.domain.timeline import Clock, parse_iso, utc_now
from pixelbridge.ports import SlotsPort

# A task sleeps at most this long to finish its slot; longer means the queue moved: take a new slot.
MAX_SLOT_TOPUP_SECONDS = 20.0


class SlotGate:
    def __init__(
        self,
        slots: SlotsPort,
        *,
        slot_seconds: int,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._slots = slots
        self._slot_seconds = slot_seconds
        self._clock = clock
        self._sleep = sleep

    def wait(
        self, user_id: str, slot_at: str | None, before_claim: Callable[[], None] = lambda: None
    ) -> None:
        """Sleep out the slot, then claim the user's call window before calling Streampixel.

        Wait states have second granularity (emulators even truncate), and a previous call may
        have happened later than its own slot; Streampixel counts from when calls arrive. So the
        slot is only the queue position: the call itself also needs the atomic claim that the
        previous call is at least one spacing ago.

        ``before_claim`` runs once, after the slot's sleep and before the first claim: nothing may
        sit between a claim and its call (a slow write there delays the call past its claim, and the
        next user's call could then arrive at Streampixel less than a spacing after it).
        """
        deadline = self._clock() + timedelta(seconds=MAX_SLOT_TOPUP_SECONDS)
        ready = parse_iso(slot_at) if slot_at else self._clock()
        spacing = call_spacing_seconds(self._slot_seconds)
        prepared = False
        while True:
            remaining = (ready - self._clock()).total_seconds()
            if remaining > 0:
                if self._clock() + timedelta(seconds=remaining) > deadline:
                    raise RateLimited("the previous call of this user is too recent; taking a new slot")
                self._sleep(remaining)
            if not prepared:
                before_claim()
                prepared = True
            next_ready = self._slots.claim_call(user_id, self._clock(), spacing)
            if next_ready is None:
                return
            ready = next_ready
