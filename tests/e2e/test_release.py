"""The release workflow end to end: push → convert → real ASL in moto → Streampixel simulator → live."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import requests

from pixelbridge_local.stack import STREAMPIXEL_PROJECT_ID, STREAMPIXEL_USER_ID, EmbeddedStack
from tests.e2e.conftest import events_of, push, wait_until, write_call_gaps
from tests.support.stack_records import known


def test_auto_policy_goes_live_after_one_upload(make_stack: Callable[..., EmbeddedStack]) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    assert push(stack, "auto-1").status_code == 202
    record = stack.wait_for_terminal("auto-1", timeout=60)
    assert record["status"] == "live"
    assert record["uploadId"]
    assert [call.endpoint for call in stack.simulator.calls] == ["upload-file"]
    assert stack.simulator.upload_state(record["uploadId"]) is not None
    events = events_of(record)
    for expected in (
        "received",
        "stored",
        "converting",
        "converted",
        "slot reserved",
        "uploaded",
        "build.uploaded",
        "build.approved",
        "live",
    ):
        assert expected in events
    assert "handoff zip deleted" in events
    assert stack.client("s3").list_objects_v2(Bucket=stack.names["HandoffBucket"]).get("KeyCount", 0) == 0


def test_manual_policy_distributes_after_approval_with_spaced_calls(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=2, release_policy="manual")
    push(stack, "manual-1")
    record = stack.wait_for_terminal("manual-1", timeout=60)
    assert record["status"] == "live", record.get("error")
    assert [call.endpoint for call in stack.simulator.calls] == ["upload-file", "distribute-file"]
    assert all(gap >= 2.0 for gap in write_call_gaps(stack, STREAMPIXEL_USER_ID))
    events = events_of(record)
    assert events.index("build.approved") < events.index("distribute requested") < events.index("live")
    assert stack.simulator.count_429() == 0


def test_hold_policy_stops_at_approved(make_stack: Callable[..., EmbeddedStack]) -> None:
    stack = make_stack(slot_seconds=1, release_policy="hold")
    push(stack, "hold-1")
    record = wait_until(
        lambda: (r := stack.build("hold-1")) and "held for operator release" in events_of(r) and r
    )
    assert record["status"] == "approved"
    assert [call.endpoint for call in stack.simulator.calls] == ["upload-file"]


def test_burst_for_one_user_all_go_live_with_zero_429(make_stack: Callable[..., EmbeddedStack]) -> None:
    projects = {f"{index:024x}": STREAMPIXEL_USER_ID for index in range(1, 11)}
    routes = [
        {"id": f"r{index}", "buildpixelProjectId": f"bp{index}", "streampixelProjectId": project}
        for index, project in enumerate(projects, start=1)
    ]
    slot = 1
    stack = make_stack(
        slot_seconds=slot, release_policy="auto", routes_json=json.dumps(routes), extra_projects=projects
    )
    started = time.monotonic()
    for index in range(1, 11):
        assert push(stack, f"burst-{index}", projectId=f"bp{index}").status_code == 202
    records = [stack.wait_for_terminal(f"burst-{index}", timeout=120) for index in range(1, 11)]
    elapsed = time.monotonic() - started
    assert [record["status"] for record in records] == ["live"] * 10
    assert stack.simulator.count_429() == 0
    gaps = write_call_gaps(stack, STREAMPIXEL_USER_ID)
    assert len(gaps) == 9
    assert min(gaps) >= slot
    print(
        f"\nburst of 10 (auto, slot {slot}s): {elapsed:.1f}s, bound (N-1)*slot = {9 * slot}s, "
        f"min gap {min(gaps):.2f}s, 429s {stack.simulator.count_429()}"
    )


def test_injected_500s_on_distribute_are_retried_in_new_slots_until_live(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    # A distribute-file of a processed upload may be asked again (it only re-pushes that upload); an
    # upload-file 5xx is ambiguous and is never re-sent (tests/e2e/test_upload_ambiguity.py).
    stack = make_stack(slot_seconds=1, release_policy="manual")
    stack.simulator.fail_next_calls(2, status=500, endpoint="distribute-file")
    push(stack, "flaky-1")
    record = stack.wait_for_terminal("flaky-1", timeout=120)
    assert record["status"] == "live", record.get("error")
    assert events_of(record).count("transient failure") == 2
    assert [(call.endpoint, call.http_status) for call in stack.simulator.calls] == [
        ("upload-file", 200),
        ("distribute-file", 500),
        ("distribute-file", 500),
        ("distribute-file", 200),
    ]
    assert all(gap >= 1.0 for gap in write_call_gaps(stack, STREAMPIXEL_USER_ID))


def test_a_429_anyway_takes_a_new_slot_and_is_not_lost(make_stack: Callable[..., EmbeddedStack]) -> None:
    # Streampixel answers 429 inside our slot (clock skew, another tool using the key): injected, so
    # the 429 happens however fast or slow the machine is.
    stack = make_stack(slot_seconds=1, release_policy="manual")
    stack.simulator.disable_rate_limit()
    stack.simulator.fail_next_calls(1, status=429)
    push(stack, "skew-1")
    record = stack.wait_for_terminal("skew-1", timeout=90)
    assert record["status"] == "live"
    assert stack.simulator.count_429() == 1
    assert "rate limited" in events_of(record)


def test_lost_upload_response_is_recognised_by_file_url_and_not_uploaded_twice(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(
        slot_seconds=1, release_policy="auto", environment={"STREAMPIXEL_TIMEOUT_SECONDS": "1"}
    )
    # A warm webhook sandbox: the build.uploaded event must reach the record before the next 1 s slot
    # (with 120 s slots as deployed, a cold start is far inside that window).
    assert (
        requests.post(f"{stack.webhooks.url}/webhooks/streampixel/warm", json={}, timeout=30).status_code
        == 404
    )
    stack.simulator.slow_next_calls(1, seconds=3)  # processed, but the answer comes after our timeout
    push(stack, "lost-1")
    record = stack.wait_for_terminal("lost-1", timeout=90)
    assert record["status"] == "live"
    uploads = [call for call in stack.simulator.calls if call.endpoint == "upload-file"]
    assert len(uploads) == 1
    assert record["uploadId"] == uploads[0].upload_id
    assert "upload skipped" in events_of(record)


def test_rejection_is_recorded_with_the_objection(make_stack: Callable[..., EmbeddedStack]) -> None:
    stack = make_stack(slot_seconds=1, release_policy="manual")
    for build_id, stage in (("rej-extract", "build.extracting"), ("rej-download", "build.downloading")):
        stack.simulator.reject_next_upload(
            f"Build contains unsupported file formats ({stage})", at_event=stage
        )
        push(stack, build_id, projectId=build_id)
        record = stack.wait_for_terminal(build_id, timeout=60)
        assert record["status"] == "rejected"
        assert record["objection"] == f"Build contains unsupported file formats ({stage})"
        assert "build.rejected" in events_of(record)


def test_no_approval_within_the_timeout_fails_with_reason(make_stack: Callable[..., EmbeddedStack]) -> None:
    stack = make_stack(slot_seconds=1, release_policy="manual", approval_timeout_seconds=3)
    stack.simulator.drop_webhooks("build.approved")
    push(stack, "timeout-1")
    record = stack.wait_for_terminal("timeout-1", timeout=60)
    assert record["status"] == "failed"
    assert "timed out waiting for Streampixel" in record["error"]


def test_duplicate_s3_event_starts_one_execution(make_stack: Callable[..., EmbeddedStack]) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    push(stack, "dup-event")
    stack.wait_for_terminal("dup-event", timeout=60)
    bucket = stack.names["ArtifactBucket"]
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": "inbox/push/dup-event.multipart", "size": 1, "eTag": "x"},
                },
            }
        ]
    }
    assert not stack.invoke("ConvertFunction", event).failed
    executions = stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)[
        "executions"
    ]
    assert [execution["name"] for execution in executions] == ["dup-event"]
    assert len([call for call in stack.simulator.calls if call.endpoint == "upload-file"]) == 1


def test_newer_build_on_the_route_supersedes_older_waiting_ones(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=3, release_policy="manual")
    stack.simulator.drop_webhooks("build.approved")  # the first build waits for approval
    push(stack, "old-1")
    wait_until(lambda: (r := stack.build("old-1")) and r.get("waitingFor") == "approval", timeout=30)
    push(stack, "old-2")  # waits for a slot behind old-1's upload ...
    time.sleep(0.5)
    push(stack, "new-3")  # ... and is superseded by this one before its slot comes
    assert stack.wait_for_terminal("old-1", timeout=60)["status"] == "superseded"
    assert stack.wait_for_terminal("old-2", timeout=60)["status"] == "superseded"
    assert stack.wait_for_terminal("new-3", timeout=60)["status"] == "live"
    uploaded = [call.project_id for call in stack.simulator.calls if call.endpoint == "upload-file"]
    assert len(uploaded) == 2  # old-1 and new-3; old-2 never reached Streampixel
    assert "new-3" in known(stack, "old-2")["error"]


def test_webhook_with_a_wrong_secret_is_404_and_records_nothing(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1)
    push(stack, "secret-1")
    record = stack.wait_for_terminal("secret-1", timeout=60)
    before = len(record["timeline"])
    payload = {
        "event": "build.rejected",
        "projectId": STREAMPIXEL_PROJECT_ID,
        "uploadId": record["uploadId"],
        "status": "Reject",
        "objection": "forged",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    response = requests.post(
        f"{stack.webhooks.url}/webhooks/streampixel/not-the-secret", json=payload, timeout=10
    )
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert len(known(stack, "secret-1")["timeline"]) == before


def test_without_approval_after_distribution_live_is_recorded_after_the_window(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="manual", live_window_seconds=2)
    stack.simulator.approve_after_distribute = False  # the docs leave open what follows distribution
    push(stack, "window-1")
    record = stack.wait_for_terminal("window-1", timeout=60)
    assert record["status"] == "live"
    live_entry = [entry for entry in record["timeline"] if entry["event"] == "live"][-1]
    assert "no build.approved within the live window" in live_entry["detail"]


def test_duplicated_webhooks_change_nothing(make_stack: Callable[..., EmbeddedStack]) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.simulator.duplicate_webhooks("build.approved")
    stack.simulator.duplicate_webhooks("build.uploaded")
    push(stack, "dup-hooks")
    record = stack.wait_for_terminal("dup-hooks", timeout=60)
    assert record["status"] == "live"
    assert events_of(record).count("build.approved") == 1
    assert events_of(record).count("build.uploaded") == 1
    assert events_of(record).count("live") == 1
