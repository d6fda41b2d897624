"""The pull path end to end: BuildPixel's signed webhook → FetchFunction (async) → convert → live."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests

from pixelbridge_local.buildpixel import sample_metadata
from pixelbridge_local.sample_build import big_ue_like_targz
from pixelbridge_local.stack import EmbeddedStack
from tests.e2e.conftest import ARTIFACT, events_of, push
from tests.support.stack_records import known

MiB = 1024 * 1024
# Bigger than a Function URL accepts (4.5 MiB raw), small enough for a quick test.
REAL_SIZE_ARTIFACT = big_ue_like_targz(pak_bytes=6 * MiB)

pytestmark = pytest.mark.e2e


def inbox_keys(stack: EmbeddedStack) -> list[str]:
    listing = stack.client("s3").list_objects_v2(Bucket=stack.names["ArtifactBucket"], Prefix="inbox/")
    return sorted(item["Key"] for item in listing.get("Contents", []))


def upload_calls(stack: EmbeddedStack) -> list[str]:
    return [call.endpoint for call in stack.simulator.calls if call.endpoint == "upload-file"]


def test_real_size_pull_goes_live_and_the_webhook_answers_at_once(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    assert len(REAL_SIZE_ARTIFACT) > 4.5 * MiB
    stack.buildpixel.add_artifact("pull-6mb", REAL_SIZE_ARTIFACT, **sample_metadata("pull-6mb"))
    # The artifact host is throttled so the download takes ~3 s: a webhook answer that waited for it
    # would find the artifact stored. The check is about order (answer, then download), not speed.
    stack.buildpixel.knobs.bytes_per_second = 2 * MiB
    response = stack.buildpixel.send_build_complete("pull-6mb")
    assert (response.status_code, response.json()) == (202, {"buildId": "pull-6mb", "status": "received"})
    assert "stored" not in events_of(known(stack, "pull-6mb"))
    record = stack.wait_for_terminal("pull-6mb", timeout=60)
    assert record["status"] == "live", record.get("error")
    assert record["source"] == "pull"
    assert record["artifactKey"] == "inbox/pull/pull-6mb.tar.gz"
    assert record["artifactBytes"] == len(REAL_SIZE_ARTIFACT)
    events = events_of(record)
    for expected in ("received", "fetch requested", "fetching", "stored", "converted", "uploaded", "live"):
        assert expected in events
    assert upload_calls(stack) == ["upload-file"]
    assert "sig=" not in json.dumps(record)
    assert stack.buildpixel_api_token not in json.dumps(record)


def test_unsigned_webhook_is_refused(make_stack: Callable[..., EmbeddedStack]) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.buildpixel.add_artifact("pull-unsigned", ARTIFACT)
    response = stack.buildpixel.send_event(
        stack.buildpixel.build_event("build.complete", "pull-unsigned"), signature="sha256=" + "0" * 64
    )
    assert response.status_code == 401
    assert stack.build("pull-unsigned") is None
    assert stack.buildpixel.requests_to("/artifacts/") == []


def test_a_webhook_whose_url_expired_still_ships_from_a_url_signed_for_the_download(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.buildpixel.add_artifact("pull-stale", ARTIFACT)
    envelope = stack.buildpixel.build_event("build.complete", "pull-stale")
    stack.buildpixel.expire_urls_now()  # e.g. a webhook retried long after it was first sent
    assert stack.buildpixel.send_event(envelope).status_code == 202
    record = stack.wait_for_terminal("pull-stale", timeout=60)
    assert record["status"] == "live", record.get("error")
    # The webhook's URL is never passed on nor fetched: FetchFunction asks the download API for one.
    statuses = [request.status for request in stack.buildpixel.requests_to("/artifacts/pull-stale")]
    assert statuses and 403 not in statuses
    assert "artifact URL renewed" not in events_of(record)


def send_push(stack: EmbeddedStack, build_id: str) -> requests.Response:
    return push(stack, build_id)


def send_pull(stack: EmbeddedStack, build_id: str) -> requests.Response:
    return stack.buildpixel.send_build_complete(build_id)


def both_concurrently(stack: EmbeddedStack, build_id: str) -> list[int]:
    """Push and build.complete at the same instant, through the Function URL: two sandboxes take them."""
    calls: list[Callable[[], requests.Response]] = [
        lambda: send_push(stack, build_id),
        lambda: send_pull(stack, build_id),
    ]
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = []

    def run(call: Callable[[], requests.Response]) -> None:
        barrier.wait()
        statuses.append(call().status_code)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


@pytest.mark.parametrize("order", ["push-then-pull", "pull-then-push", "concurrent"])
def test_push_and_pull_of_the_same_build_deploy_it_once(
    make_stack: Callable[..., EmbeddedStack], order: str
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    build_id = f"race-{order}"
    stack.buildpixel.add_artifact(build_id, ARTIFACT, **sample_metadata(build_id))
    if order == "concurrent":
        statuses = both_concurrently(stack, build_id)
    else:
        first, second = (send_push, send_pull) if order == "push-then-pull" else (send_pull, send_push)
        statuses = [first(stack, build_id).status_code, second(stack, build_id).status_code]
    assert sorted(statuses) == [200, 202]
    record = stack.wait_for_terminal(build_id, timeout=60)
    assert record["status"] == "live", record.get("error")
    events = events_of(record)
    loser = "pull" if record["source"] == "push" else "push"
    assert events.count("received") == 1
    assert events.count(f"{loser} arrival") == 1
    assert events.count("converted") == 1
    assert upload_calls(stack) == ["upload-file"]
    winner_key = "inbox/push/{}.multipart" if record["source"] == "push" else "inbox/pull/{}.tar.gz"
    assert inbox_keys(stack) == [winner_key.format(build_id)]


def test_superseded_in_buildpixel_before_upload_never_reaches_streampixel(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.buildpixel.add_artifact("pull-sup", REAL_SIZE_ARTIFACT)
    stack.buildpixel.knobs.bytes_per_second = 2 * MiB  # still downloading when the event arrives
    assert stack.buildpixel.send_build_complete("pull-sup").status_code == 202
    superseded = stack.buildpixel.send_event(stack.buildpixel.build_event("build.superseded", "pull-sup"))
    assert (superseded.status_code, superseded.json()["status"]) == (200, "superseded")
    for thread in stack.async_invocations:
        thread.join(timeout=30)
    record: dict[str, Any] | None = stack.build("pull-sup")
    assert record is not None and record["status"] == "superseded"
    assert inbox_keys(stack) == []
    assert upload_calls(stack) == []
