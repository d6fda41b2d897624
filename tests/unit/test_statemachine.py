"""Structure of statemachine/release.asl.json: the promises the workflow makes, checked as a graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ASL = json.loads((Path(__file__).resolve().parents[2] / "statemachine" / "release.asl.json").read_text())
STATES: dict[str, dict[str, Any]] = ASL["States"]
RECORDING = {
    name
    for name, state in STATES.items()
    if state.get("Parameters", {}).get("Payload", {}).get("action") == "finish"
}


def successors(state: dict[str, Any]) -> set[str]:
    targets = {state["Next"]} if "Next" in state else set()
    targets |= {catcher["Next"] for catcher in state.get("Catch", [])}
    targets |= {choice["Next"] for choice in state.get("Choices", [])}
    if "Default" in state:
        targets.add(state["Default"])
    return targets


def test_every_end_is_reached_only_through_a_recording_state() -> None:
    ends = {name for name, state in STATES.items() if state["Type"] in {"Succeed", "Fail"}}
    for name, state in STATES.items():
        if successors(state) & ends:
            assert name in RECORDING, f"{name} ends the execution without recording the build's state"


def test_every_state_is_reachable_and_every_target_exists() -> None:
    seen, todo = set(), [ASL["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for target in successors(STATES[name]):
            assert target in STATES, f"{name} → unknown state {target}"
            todo.append(target)
    assert seen == set(STATES)


@pytest.mark.parametrize("name", [n for n, s in STATES.items() if s["Type"] == "Task" and n not in RECORDING])
def test_every_working_task_catches_everything(name: str) -> None:
    catchers = STATES[name].get("Catch", [])
    assert any(catcher["ErrorEquals"] == ["States.ALL"] for catcher in catchers)
    assert catchers[-1]["ErrorEquals"] == ["States.ALL"]  # States.ALL must come last


@pytest.mark.parametrize(
    ("call", "reserve"), [("Upload", "ReserveUploadSlot"), ("Distribute", "ReserveDistributeSlot")]
)
def test_streampixel_calls_wait_for_a_slot_and_retry_through_a_new_one(call: str, reserve: str) -> None:
    wait = STATES[reserve]["Next"]
    assert STATES[wait] == {"Type": "Wait", "TimestampPath": "$.slot.value.at", "Next": call}
    catchers = {tuple(c["ErrorEquals"]): c["Next"] for c in STATES[call]["Catch"]}
    assert catchers[("RateLimited", "Transient")] == reserve
    assert STATES[call]["Parameters"]["Payload"]["slotAt.$"] == "$.slot.value.at"
    # no bare retry of a Streampixel error: only Lambda service errors are retried in place
    for retrier in STATES[call]["Retry"]:
        assert all(error.startswith(("Lambda.", "States.TaskFailed")) for error in retrier["ErrorEquals"])


@pytest.mark.parametrize("name", ["WaitForApproval", "WaitForDistribution", "WaitForLive"])
def test_waits_for_streampixel_use_task_tokens_with_a_timeout(name: str) -> None:
    state = STATES[name]
    assert state["Resource"] == "arn:${Partition}:states:::lambda:invoke.waitForTaskToken"
    assert state["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
    assert "TimeoutSecondsPath" in state
    assert any(c["ErrorEquals"] == ["Rejected"] and c["Next"] == "RecordRejected" for c in state["Catch"])


def test_policy_routing_after_approval() -> None:
    choices = {c["StringEquals"]: c["Next"] for c in STATES["AfterApproval"]["Choices"]}
    assert choices == {
        "build.distributing": "WaitForLive",
        "manual": "ReserveDistributeSlot",
        "hold": "RecordHeld",
    }
    assert STATES["AfterApproval"]["Default"] == "RecordLive"


def test_an_auto_build_that_started_distributing_gets_the_live_window() -> None:
    """build.approved lost after build.distributing: live with a note after the window, not a failure."""
    first = STATES["AfterApproval"]["Choices"][0]
    assert first == {"Variable": "$.event.event", "StringEquals": "build.distributing", "Next": "WaitForLive"}
    catchers = {tuple(c["ErrorEquals"]): c["Next"] for c in STATES["WaitForLive"]["Catch"]}
    assert catchers[("States.Timeout",)] == "RecordLiveAfterWindow"
    assert STATES["WaitForLive"]["TimeoutSecondsPath"] == "$.build.value.liveWindowSeconds"


def test_only_the_release_function_and_partition_are_substituted() -> None:
    text = json.dumps(ASL)
    import re

    assert set(re.findall(r"\$\{(\w+)\}", text)) == {"ReleaseFunctionArn", "Partition"}
