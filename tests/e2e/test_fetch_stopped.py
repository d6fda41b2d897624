"""FetchFunction stopped on every attempt, on the strict local stack: the build still ends, or restarts.

FetchFunction's Timeout is 2 s here, and BuildPixel's download API answers each attempt 429 with a
Retry-After of a minute: the attempt records itself, waits as told and is stopped by its time limit
mid-run, with none of our error handling running. Lambda's async retry runs it once more, then parks
the event in ConvertDeadLetterQueue. The stall threshold (``STUCK_FETCH_SECONDS``) is 1 s, below one
attempt's Timeout, so by the time the event is parked the download has been silent for longer by
construction: nothing waits on a clock.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from pixelbridge.domain.fetch_attempts import MAX_FETCH_ATTEMPTS
from pixelbridge_local.buildpixel import sample_metadata
from pixelbridge_local.stack import EmbeddedStack
from tests.e2e.conftest import ARTIFACT, events_of, wait_until
from tests.e2e.test_notifications import messages_about
from tests.e2e.test_strict_stack import dead_letters

pytestmark = pytest.mark.e2e


def stopped_on_every_attempt(make_stack: Callable[..., EmbeddedStack], build_id: str) -> EmbeddedStack:
    small_threshold = {"STUCK_FETCH_SECONDS": "1"}
    stack = make_stack(
        slot_seconds=1,
        release_policy="auto",
        timeouts={"FetchFunction": 2},
        function_environment={"ReconcilerFunction": small_threshold, "IngestFunction": small_threshold},
    )
    stack.buildpixel.add_artifact(build_id, ARTIFACT, **sample_metadata(build_id))
    stack.buildpixel.knobs.rate_limit_next = MAX_FETCH_ATTEMPTS  # one 429 for each attempt
    stack.buildpixel.knobs.retry_after_seconds = 60
    assert stack.buildpixel.send_build_complete(build_id).status_code == 202
    (parked,) = wait_until(lambda: dead_letters(stack), timeout=90)
    assert parked["requestContext"]["condition"] == "RetriesExhausted"
    assert ":function:FetchFunction:" in parked["requestContext"]["functionArn"]
    invocations = stack.pools["FetchFunction"].invocations
    assert [invocation.outcome.stopped for invocation in invocations] == [True] * MAX_FETCH_ATTEMPTS
    record = stack.build(build_id)
    assert record is not None and record["status"] == "received"
    assert record["fetchAttempts"] == MAX_FETCH_ATTEMPTS  # each attempt counted itself before it was stopped
    return stack


def allow_a_whole_download(stack: EmbeddedStack) -> None:
    """Past the reserve FetchFunction keeps to checkpoint or record its own failure, so a new attempt can
    download; and no 429 left over (an attempt stopped before it reached the download API leaves its own)."""
    stack.buildpixel.knobs.rate_limit_next = 0
    stack.pools["FetchFunction"].timeout_seconds = 120


def test_a_download_stopped_on_every_attempt_ends_failed_with_the_reason(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = stopped_on_every_attempt(make_stack, "fetch-stopped")
    report = stack.reconcile()
    assert report["actions"] == [{"buildId": "fetch-stopped", "action": "recorded failed"}]
    record = stack.build("fetch-stopped")
    assert record is not None and record["status"] == "failed"
    assert record["error"].startswith("download did not finish: 2 attempt(s) started, none ended")
    assert record["stuck"] is True and "openShard" not in record
    assert {"fetching", "stuck", "reconciled"} <= set(events_of(record))
    (failed,) = wait_until(lambda: messages_about(stack, "fetch-stopped", "is failed"), timeout=20)
    assert "download did not finish" in failed["message"]
    assert stack.reconcile()["checked"] == 0  # terminal builds leave the open index
    # A later delivery finds the build over: it is answered, and starts nothing.
    answer = stack.buildpixel.send_build_complete("fetch-stopped")
    assert (answer.status_code, answer.json()["status"]) == (200, "failed")
    assert len(stack.pools["FetchFunction"].invocations) == MAX_FETCH_ATTEMPTS
    # The operator's retry downloads it again (through BuildPixel's download API) and it ships.
    allow_a_whole_download(stack)
    retried = requests.post(
        f"{stack.operator_url}/builds/fetch-stopped/retry",
        headers={"Authorization": stack.operator_authorization},
        timeout=30,
    )
    assert (retried.status_code, retried.json()["action"]) == (202, "retry:fetch"), retried.text
    record = stack.wait_for_terminal("fetch-stopped", timeout=90)
    assert record["status"] == "live", record.get("error")
    assert [call.endpoint for call in stack.simulator.calls].count("upload-file") == 1


def test_a_later_build_complete_restarts_a_download_stopped_on_every_attempt(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = stopped_on_every_attempt(make_stack, "fetch-restart")
    allow_a_whole_download(stack)
    answer = stack.buildpixel.send_build_complete("fetch-restart")  # a new delivery (its own createdAt)
    assert (answer.status_code, answer.json()) == (202, {"buildId": "fetch-restart", "status": "received"})
    record = stack.wait_for_terminal("fetch-restart", timeout=90)
    assert record["status"] == "live", record.get("error")
    assert record["fetchAttempts"] == MAX_FETCH_ATTEMPTS + 1
    restarts = [entry["detail"] for entry in record["timeline"] if entry.get("event") == "fetch requested"]
    assert restarts[0] == "download started"
    assert restarts[1].startswith("download restarted: the previous one showed no sign of life")
    assert [call.endpoint for call in stack.simulator.calls].count("upload-file") == 1
