"""Every build ends true under a stricter Streampixel: events before the answer, lost or late events,
queued uploads, and forged events from a holder of the webhook path secret. Each test ends by
comparing the record with the upload the simulator serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from pixelbridge_local.stack import STREAMPIXEL_PROJECT_ID, EmbeddedStack
from tests.e2e.conftest import events_of, push, wait_until
from tests.support.stack_records import known


def upload_calls(stack: EmbeddedStack) -> list[Any]:
    return [call for call in stack.simulator.calls if call.endpoint == "upload-file"]


def handoff_keys(stack: EmbeddedStack) -> int:
    listing = stack.client("s3").list_objects_v2(Bucket=stack.names["HandoffBucket"])
    return int(listing.get("KeyCount", 0))


def test_auto_route_with_build_approved_lost_is_live_after_the_window(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto", live_window_seconds=2)
    stack.simulator.drop_webhooks("build.approved")
    push(stack, "auto-lost")
    record = stack.wait_for_terminal("auto-lost", timeout=60)  # not ApprovalTimeoutSeconds (300 s)
    assert record["status"] == "live"
    live_entry = [entry for entry in record["timeline"] if entry["event"] == "live"][-1]
    assert "no build.approved within the live window" in live_entry["detail"]
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) == record["uploadId"]


def test_build_uploaded_before_the_upload_answer_keeps_the_answer_facts(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.simulator.announce_before_answer()
    push(stack, "early-1")
    record = stack.wait_for_terminal("early-1", timeout=60)
    assert record["status"] == "live"
    (call,) = upload_calls(stack)
    assert record["uploadId"] == call.upload_id
    assert record["uploadedAt"]
    events = events_of(record)
    assert "uploaded" in events and "build.uploaded" in events
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) == record["uploadId"]


def test_a_lost_answer_with_its_first_webhook_lost_ends_live_on_the_first_upload_uploaded_once(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    """Answer lost (a 500 after processing), first webhook lost, first upload still queued: PixelBridge
    never calls upload-file again; it waits for the upload's events and continues on the upload they name."""
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.simulator.hold_queue()
    stack.simulator.fail_next_calls(1, status=500, after_processing=True)
    stack.simulator.drop_webhooks("build.uploaded", 1)
    push(stack, "again-1")
    wait_until(lambda: (r := stack.build("again-1")) and r.get("waitingFor") == "upload", timeout=60)
    stack.simulator.release_queue()
    record = stack.wait_for_terminal("again-1", timeout=90)
    (upload,) = upload_calls(stack)  # exactly one upload-file call for this build
    assert upload.http_status == 500 and upload.upload_id
    assert record["status"] == "live"
    assert record["uploadId"] == upload.upload_id
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) == upload.upload_id  # the record agrees
    timeline = events_of(record)
    assert "upload outcome unknown" in timeline and "upload skipped" in timeline
    assert wait_until(lambda: handoff_keys(stack) == 0, timeout=30)  # deleted after the download


def test_forged_events_with_the_path_secret_change_nothing(make_stack: Callable[..., EmbeddedStack]) -> None:
    """A leaked webhook path secret: without the build's own fileUrl no event approves, rejects or
    deletes the handoff zip; the real events afterwards still take the build live."""
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.simulator.hold_queue()
    push(stack, "forged-1")
    waiting = wait_until(lambda: (r := stack.build("forged-1")) and r.get("waitingFor") == "approval" and r)
    upload_id = waiting["uploadId"]
    guessed_url = "https://downloads.example.test/dl/" + "A" * 43 + "/forged-1.zip"
    forged: list[dict[str, Any]] = [
        {"event": "build.approved", "projectId": STREAMPIXEL_PROJECT_ID, "uploadId": upload_id},
        {"event": "build.extracting", "uploadId": upload_id, "fileUrl": guessed_url},
        {"event": "build.saving", "projectId": STREAMPIXEL_PROJECT_ID, "uploadId": upload_id},
        {"event": "build.distributing", "projectId": STREAMPIXEL_PROJECT_ID, "uploadId": upload_id},
        {
            "event": "build.rejected",
            "projectId": STREAMPIXEL_PROJECT_ID,
            "uploadId": upload_id,
            "objection": "rolled back\nSubject: pay",
        },
    ]
    for index, body in enumerate(forged):
        response = requests.post(
            stack.streampixel_webhook_url,
            json={**body, "timestamp": f"2026-01-01T00:00:0{index}Z"},
            timeout=10,
        )
        assert response.status_code == 200 and response.json()["matched"] is False
    record = known(stack, "forged-1")
    assert record["status"] == "processing"
    for fact in (
        "approvedAt",
        "liveApprovedAt",
        "rejectedAt",
        "objection",
        "distributionStartedAt",
        "zipDeletedAt",
    ):
        assert fact not in record
    assert handoff_keys(stack) == 1
    stack.simulator.release_queue()
    final = stack.wait_for_terminal("forged-1", timeout=60)
    assert final["status"] == "live"
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) == final["uploadId"] == upload_id


def test_shuffled_and_duplicated_events_still_end_live_on_the_served_upload(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="manual")
    stack.simulator.deliver_late("build.extracting")
    stack.simulator.deliver_late("build.distributing")  # build.approved (live) overtakes it
    stack.simulator.duplicate_webhooks("build.saving")
    stack.simulator.duplicate_webhooks("build.approved", 2)
    push(stack, "shuffled-1")
    record = stack.wait_for_terminal("shuffled-1", timeout=60)
    assert record["status"] == "live"
    hooks = stack.simulator.delivered_events(record["uploadId"])
    assert hooks.index("build.extracting") > hooks.index("build.saving")  # the knob did reorder them
    assert events_of(record).count("live") == 1
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) == record["uploadId"]
    assert wait_until(lambda: handoff_keys(stack) == 0, timeout=30)
