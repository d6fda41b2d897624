"""advance_clock on the local stack: the functions' stamps move, and the release's slot Waits (moto,
real time) are measured on the same moved clock, so a build still ships in seconds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pixelbridge.domain.timeline import parse_iso
from pixelbridge_local.stack import EmbeddedStack
from tests.e2e.conftest import push

HOUR = 3600


def test_a_build_pushed_after_the_clock_moved_an_hour_waits_its_slots_as_usual(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.advance_clock(HOUR)
    pushed_at = datetime.now(UTC)
    assert push(stack, "later-1").status_code == 202
    # Without the Wait on the moved clock, the upload slot (an hour "later") would hold it for an hour.
    record = stack.wait_for_terminal("later-1", timeout=90)
    assert record["status"] == "live"
    assert parse_iso(record["receivedAt"]) >= pushed_at + timedelta(
        seconds=HOUR
    )  # stamped on the moved clock
