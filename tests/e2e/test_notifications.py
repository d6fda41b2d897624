"""Local stack: BuildsTable stream → NotifierFunction → SNS and EventBridge; the reconciler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pixelbridge_local.stack import EmbeddedStack
from tests.e2e.conftest import events_of, push, wait_until


def messages_about(stack: EmbeddedStack, build_id: str, what: str) -> list[dict[str, Any]]:
    return [
        m for m in stack.notifications if m["attributes"].get("buildId") == build_id and what in m["subject"]
    ]


@pytest.mark.e2e
def test_rejected_build_notifies_with_its_objection(make_stack: Callable[..., EmbeddedStack]) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.simulator.reject_next_upload("Build contains unsupported file formats.")
    assert push(stack, "reject-n1").status_code == 202
    assert stack.wait_for_terminal("reject-n1", timeout=45)["status"] == "rejected"

    (message,) = wait_until(lambda: messages_about(stack, "reject-n1", "is rejected"), timeout=10)
    assert message["subject"] == "PixelBridge: build reject-n1 is rejected"
    assert "Objection: Build contains unsupported file formats." in message["message"]
    assert message["attributes"] == {"buildId": "reject-n1", "status": "rejected"}
    events = [e for e in stack.build_events if e["detail"]["buildId"] == "reject-n1"]
    assert {e["source"] for e in events} == {"pixelbridge"}
    assert {e["detail-type"] for e in events} == {"Build Status Changed"}
    final = events[-1]["detail"]
    assert (final["to"], final["reason"]) == ("rejected", "Build contains unsupported file formats.")
    assert events[0]["detail"]["to"] == "received"
    # Nothing published carries the handoff URL or a task token.
    published = str(stack.notifications) + str(stack.build_events)
    assert "/dl/" not in published and "http" not in published


@pytest.mark.e2e
def test_dropped_approval_webhook_is_reconciled_to_failed(make_stack: Callable[..., EmbeddedStack]) -> None:
    # manual: an auto build that lost build.approved after build.distributing is live after the live window
    stack = make_stack(slot_seconds=1, release_policy="manual", environment={"STUCK_RELEASE_SECONDS": "600"})
    stack.simulator.drop_webhooks("build.approved")
    assert push(stack, "dropped-1").status_code == 202
    parked = wait_until(
        lambda: (
            (r := stack.build("dropped-1"))
            and r.get("waitingFor") == "approval"
            and "build.saving" in events_of(r)
            and r
        ),
        timeout=40,
    )
    assert parked["status"] == "processing"
    assert stack.reconcile()["actions"] == []  # progress is recent: not stuck yet
    stack.advance_clock(300)
    assert stack.reconcile()["actions"] == []  # half the threshold later: still not stuck

    stack.advance_clock(301)  # the functions' clock is past the threshold; no real time has to pass
    report = stack.reconcile()
    assert report["actions"] == [{"buildId": "dropped-1", "action": "failed token"}]

    record = stack.wait_for_terminal("dropped-1", timeout=20)
    assert record["status"] == "failed"
    assert record["stuck"] is True
    # "Stuck: <cause>" on AWS; moto's SendTaskFailure drops the cause, so the error is the name alone.
    assert record["error"].startswith("Stuck")
    assert record["stuckReason"].startswith("no progress") and "never retries" in record["stuckReason"]
    assert "waitToken" not in record and "openShard" not in record
    assert {"stuck", "reconciled", "failed"} <= set(events_of(record))
    assert wait_until(lambda: messages_about(stack, "dropped-1", "is stuck"), timeout=10)
    (failed,) = wait_until(lambda: messages_about(stack, "dropped-1", "is failed"), timeout=10)
    assert "Reason: Stuck" in failed["message"]
    assert stack.reconcile()["checked"] == 0  # terminal builds leave the open index
