"""Pure release rules: slot math, backoff, which Streampixel facts answer a waiting task, error text."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pixelbridge.domain.slots import call_spacing_seconds, transient_backoff_seconds
from pixelbridge.domain.waiting import awaited_outcome, describe_error


def test_spacing_adds_a_small_margin() -> None:
    assert call_spacing_seconds(120) == 121
    assert call_spacing_seconds(2) == pytest.approx(2.2)
    assert call_spacing_seconds(0) == 0


def test_transient_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    first = [transient_backoff_seconds(1, base=10, rng=rng) for _ in range(50)]
    fourth = [transient_backoff_seconds(4, base=10, rng=rng) for _ in range(50)]
    assert all(5 <= value <= 10 for value in first)
    assert all(40 <= value <= 80 for value in fourth)
    assert len(set(first)) > 1  # jittered
    assert transient_backoff_seconds(50, base=10, cap=600, rng=rng) <= 600


@pytest.mark.parametrize(
    ("facts", "waiting_for", "expected"),
    [
        ({}, "approval", None),
        ({"approvedAt": "t"}, "approval", ("success", {"event": "build.approved"})),
        ({"approvedAt": "t"}, "distribution", None),
        ({"distributionStartedAt": "t"}, "distribution", ("success", {"event": "build.distributing"})),
        (
            {"liveApprovedAt": "t", "distributionStartedAt": "t"},
            "distribution",
            ("success", {"event": "build.approved"}),
        ),
        ({"distributionStartedAt": "t"}, "live", None),
        # auto: Streampixel releases the upload itself, so distribution starts the live window
        ({"distributionStartedAt": "t"}, "approval", ("success", {"event": "build.distributing"})),
        ({"distributionStartedAt": "t", "release": {"policy": "manual"}}, "approval", None),
        ({"liveApprovedAt": "t"}, "live", ("success", {"event": "build.approved"})),
        (
            {"rejectedAt": "t", "objection": "bad zip", "approvedAt": "t"},
            "approval",
            ("failure", {"error": "Rejected", "cause": "bad zip"}),
        ),
    ],
)
def test_awaited_outcome(facts: dict[str, Any], waiting_for: str, expected: object) -> None:
    assert awaited_outcome({"buildId": "b", **facts}, waiting_for) == expected


def test_describe_error_reads_lambda_causes_and_timeouts() -> None:
    lambda_cause = (
        '{"errorType": "StreampixelError", "errorMessage": "Streampixel answered 404: Project not found"}'
    )
    assert describe_error({"Error": "StreampixelError", "Cause": lambda_cause}) == (
        "StreampixelError: Streampixel answered 404: Project not found"
    )
    assert describe_error({"Error": "States.Timeout", "Cause": ""}) == "timed out waiting for Streampixel"
    assert describe_error({"Error": "Rejected", "Cause": "Build contains unsupported file formats."}) == (
        "Rejected: Build contains unsupported file formats."
    )
