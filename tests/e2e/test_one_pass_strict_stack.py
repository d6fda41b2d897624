"""One pass and chained fetches on the strict local stack: FetchFunction's own role, environment and Timeout.

The role is enforced (an authorizing proxy in front of moto): publishing the zip (dl/*), starting the
release and invoking itself again only work if template.yaml grants them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pixelbridge_local.buildpixel import sample_metadata
from pixelbridge_local.sample_build import big_ue_like_targz
from pixelbridge_local.stack import EmbeddedStack
from tests.e2e.conftest import events_of

MiB = 1024 * 1024
pytestmark = pytest.mark.e2e


def test_a_pulled_build_goes_live_from_one_pass_and_is_converted_once(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    artifact = big_ue_like_targz(pak_bytes=6 * MiB)
    stack.buildpixel.add_artifact("one-pass", artifact, **sample_metadata("one-pass"))
    assert stack.buildpixel.send_build_complete("one-pass").status_code == 202
    record = stack.wait_for_terminal("one-pass", timeout=90)
    assert record["status"] == "live", record.get("error")
    assert record["convertedBy"] == "fetch"
    events = events_of(record)
    # FetchFunction converted it; ConvertFunction, started by the kept artifact's S3 event, did not.
    assert "converting" not in events
    assert events.index("converted") < events.index("stored") < events.index("live")
    kept = stack.client("s3").get_object(Bucket=stack.names["ArtifactBucket"], Key=record["artifactKey"])
    assert kept["Body"].read() == artifact


def test_a_pull_longer_than_fetch_functions_timeout_continues_in_new_invocations(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    # FetchFunction gets 14 s (4 s reserve): ~10 s of download per invocation. The host gives 0.5 MiB/s per
    # connection, 8 ranges of 1 MiB in flight: at most ~40 MiB per invocation, so 72 MiB needs 2 or more
    # (test_checkpoint_chain.py counts invocations on an injected clock; here wall time is only bounded).
    stack = make_stack(
        slot_seconds=1,
        release_policy="auto",
        timeouts={"FetchFunction": 14},
        function_environment={"FetchFunction": {"FETCH_RESERVE_SECONDS": "4", "FETCH_RANGE_BYTES": str(MiB)}},
    )
    artifact = big_ue_like_targz(pak_bytes=72 * MiB)
    stack.buildpixel.add_artifact("chained", artifact, **sample_metadata("chained"))
    stack.buildpixel.knobs.bytes_per_second = MiB // 2
    assert stack.buildpixel.send_build_complete("chained").status_code == 202
    record = stack.wait_for_terminal("chained", timeout=240)
    assert record["status"] == "live", record.get("error")
    events = events_of(record)
    assert events.count("fetch checkpoint") >= 1 and "one pass given up" in events
    assert "fetch continued" in events and "converting" in events  # ConvertFunction converted it from S3
    assert "fetchCheckpoint" not in record and "fetchHeartbeatAt" in record
    kept = stack.client("s3").get_object(Bucket=stack.names["ArtifactBucket"], Key=record["artifactKey"])
    assert kept["Body"].read() == artifact
