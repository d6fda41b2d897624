"""The ReleaseFunction stopped at its Timeout while a Streampixel call is in flight (Lambda.Unknown).

The simulator keeps such a call unanswered until the caller's process is gone, so the kill is certain
and no test races a window. An upload-file answer lost without a stop (connection dropped after
sending, 5xx) takes the same path. Each test ends by comparing the record with what Streampixel serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pixelbridge_local.sandbox import Fault
from pixelbridge_local.stack import STREAMPIXEL_PROJECT_ID, EmbeddedStack
from tests.e2e.conftest import events_of, push
from tests.e2e.test_strict_stack import history_errors

RELEASE_TIMEOUT = {"ReleaseFunction": 8}  # the stopped call's task dies at 8 s, every other task is quick


def calls(stack: EmbeddedStack, endpoint: str) -> list[Any]:
    return [call for call in stack.simulator.calls if call.endpoint == endpoint]


def killed_release_tasks(stack: EmbeddedStack) -> int:
    return [i.outcome.stopped for i in stack.pools["ReleaseFunction"].invocations].count(True)


def test_killed_during_an_upload_streampixel_took_the_build_ends_live_on_that_upload_uploaded_once(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto", timeouts=RELEASE_TIMEOUT)
    stack.simulator.answer_after_the_caller_is_gone(processed=True)
    push(stack, "killed-after-1")
    record = stack.wait_for_terminal("killed-after-1", timeout=180)
    (upload,) = calls(stack, "upload-file")  # exactly one: never uploaded a second time
    assert record["status"] == "live"
    assert record["uploadId"] == upload.upload_id
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) == record["uploadId"]  # the record agrees
    assert "upload outcome unknown" in events_of(record) and "upload skipped" in events_of(record)
    assert history_errors(stack, "killed-after-1") == ["Lambda.Unknown"]
    assert killed_release_tasks(stack) == 1


def test_killed_during_an_upload_streampixel_never_processed_ends_failed_with_the_reason(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(
        slot_seconds=1,
        release_policy="auto",
        timeouts=RELEASE_TIMEOUT,
        function_environment={"ReleaseFunction": {"UPLOAD_EVENT_WINDOW_SECONDS": "2"}},
    )
    stack.simulator.answer_after_the_caller_is_gone(processed=False)
    push(stack, "killed-lost-1")
    record = stack.wait_for_terminal("killed-lost-1", timeout=180)
    (upload,) = calls(stack, "upload-file")
    assert upload.upload_id is None  # counted, never processed: Streampixel has nothing of it
    assert record["status"] == "failed"
    assert record["error"].startswith("upload-file outcome unknown")
    assert "uploadId" not in record
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) is None  # the record agrees
    assert killed_release_tasks(stack) == 1


def test_killed_during_a_distribute_asks_again_only_in_a_new_slot_and_ends_live(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="manual", timeouts=RELEASE_TIMEOUT)
    stack.simulator.answer_after_the_caller_is_gone(processed=False, endpoint="distribute-file")
    push(stack, "killed-dist-1")
    record = stack.wait_for_terminal("killed-dist-1", timeout=180)
    assert record["status"] == "live"
    assert len(calls(stack, "upload-file")) == 1 and len(calls(stack, "distribute-file")) == 2
    assert stack.simulator.count_429() == 0
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) == record["uploadId"]
    timeline = events_of(record)
    unknown = timeline.index("distribute outcome unknown")
    assert "slot reserved" in timeline[unknown:]  # the second distribute-file waited for a new slot
    assert timeline.count("slot reserved") == 3  # upload, distribute, distribute again
    assert killed_release_tasks(stack) == 1


def test_killed_before_upload_file_was_sent_uploads_once_in_a_new_slot(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    """No intent on the record: the call provably never started, so a new slot and one upload-file."""
    stack = make_stack(slot_seconds=1, release_policy="auto", timeouts=RELEASE_TIMEOUT)
    stack.inject_fault("ReleaseFunction", Fault("block", when='"slotAt"'))  # the Upload task, before it runs
    push(stack, "killed-before-1")
    record = stack.wait_for_terminal("killed-before-1", timeout=180)
    (upload,) = calls(stack, "upload-file")
    assert record["status"] == "live" and record["uploadId"] == upload.upload_id
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) == record["uploadId"]
    timeline = events_of(record)
    assert "upload-file interrupted" in timeline and "upload outcome unknown" not in timeline
    assert timeline.count("slot reserved") == 2
    assert killed_release_tasks(stack) == 1


def test_a_dropped_upload_answer_waits_for_the_events_and_ends_live_on_that_upload_uploaded_once(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    """Connection broken after the request was sent (Streampixel processed it): the same path as a
    stopped task, without any task being stopped."""
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.simulator.drop_next_connections(1)
    push(stack, "dropped-1")
    record = stack.wait_for_terminal("dropped-1", timeout=120)
    (upload,) = calls(stack, "upload-file")  # never uploaded a second time
    assert upload.http_status == 0 and upload.upload_id
    assert record["status"] == "live" and record["uploadId"] == upload.upload_id
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) == record["uploadId"]  # the record agrees
    timeline = events_of(record)
    assert "upload outcome unknown" in timeline and "transient failure" not in timeline
    assert killed_release_tasks(stack) == 0


def test_a_5xx_upload_answer_with_no_event_in_the_window_ends_failed_and_is_not_sent_again(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    """A 5xx cannot tell whether the upload was processed: here it was not, so no event comes."""
    stack = make_stack(
        slot_seconds=1,
        release_policy="auto",
        function_environment={"ReleaseFunction": {"UPLOAD_EVENT_WINDOW_SECONDS": "2"}},
    )
    stack.simulator.fail_next_calls(1, status=503)
    push(stack, "refused-1")
    record = stack.wait_for_terminal("refused-1", timeout=120)
    (upload,) = calls(stack, "upload-file")
    assert upload.http_status == 503 and upload.upload_id is None
    assert record["status"] == "failed" and record["error"].startswith("upload-file outcome unknown")
    assert "uploadId" not in record
    assert stack.simulator.live_upload(STREAMPIXEL_PROJECT_ID) is None  # the record agrees
