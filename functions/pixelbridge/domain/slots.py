"""Slot spacing for Streampixel's rate limit: one write call per ``SLOT_SECONDS`` per userId.

A slot is reserved atomically (``adapters.slots``): ``slot = max(not_before, next_free)`` and
``next_free = slot + spacing`` (SLOT_SECONDS plus a small margin). Every caller of one userId gets
a distinct slot, spaced by at least SLOT_SECONDS, however many executions race for it.
"""

from __future__ import annotations

import random


def call_spacing_seconds(slot_seconds: float) -> float:
    """Seconds between two write calls of one user: the slot plus a margin for network jitter.

    Streampixel measures its window from when a request arrives, which differs from when we send
    it by the network latency; a margin of 10 % of the slot (at most 1 s) absorbs that.
    """
    return slot_seconds + min(1.0, 0.1 * slot_seconds)


def transient_backoff_seconds(
    attempt: int, *, base: float = 5.0, cap: float = 600.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter for the ``attempt``-th transient failure (1-based)."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random.SystemRandom()).uniform(ceiling / 2, ceiling)
