"""The newest build of a route wins (domain.competition) and the slot gate's last-moment claim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pixelbridge.domain.competition import competitors
from pixelbridge.domain.errors import RateLimited
from pixelbridge.usecases.slot_gate import SlotGate


def build(build_id: str, status: str, received: str) -> dict[str, str]:
    return {"buildId": build_id, "status": status, "receivedAt": received, "route": "main"}


ME = build("b-2", "queued", "2026-01-01T00:02:00Z")
ROUTE = [
    build("b-1", "uploading", "2026-01-01T00:01:00Z"),
    build("b-0", "live", "2026-01-01T00:00:00Z"),
    ME,
    build("b-3", "converting", "2026-01-01T00:03:00Z"),
    build("b-4", "failed", "2026-01-01T00:04:00Z"),
]


def test_newer_competitors_are_later_arrivals_that_did_not_fail() -> None:
    assert [other["buildId"] for other in competitors(ME, ROUTE, newer=True)] == ["b-3"]


def test_older_competitors_are_still_in_progress() -> None:
    assert [other["buildId"] for other in competitors(ME, ROUTE, newer=False)] == ["b-1"]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Slots:
    """The previous call of the user ended ``busy_until``; claims before that are refused."""

    def __init__(self, busy_until: datetime) -> None:
        self.busy_until = busy_until
        self.claimed: list[datetime] = []

    def reserve(self, user_id: str, not_before: datetime, spacing_seconds: float) -> datetime:
        return max(not_before, self.busy_until)

    def claim_call(self, user_id: str, now: datetime, spacing_seconds: float) -> datetime | None:
        if now < self.busy_until:
            return self.busy_until
        self.claimed.append(now)
        return None

    def call_ended(self, user_id: str, at: datetime) -> None:
        self.busy_until = at + timedelta(seconds=120)


def test_the_gate_sleeps_until_the_window_is_free_then_claims_it() -> None:
    clock = Clock()
    slots = Slots(busy_until=clock.now + timedelta(seconds=5))
    SlotGate(slots, slot_seconds=120, clock=clock, sleep=clock.sleep).wait("user", None)
    assert slots.claimed == [datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)]


def test_a_window_too_far_away_means_take_a_new_slot() -> None:
    clock = Clock()
    slots = Slots(busy_until=clock.now + timedelta(seconds=60))
    with pytest.raises(RateLimited):
        SlotGate(slots, slot_seconds=120, clock=clock, sleep=clock.sleep).wait("user", None)
    assert slots.claimed == []
