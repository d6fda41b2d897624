"""Operator API and the pixelbridge CLI on the local stack: release, retry, rollback, never dark."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pixelbridge_cli.main import main as cli
from pixelbridge_local.sample_build import ue_like_targz
from pixelbridge_local.stack import EmbeddedStack
from tests.e2e.conftest import events_of, push, rolled_back, wait_until
from tests.support.stack_records import known

pytestmark = pytest.mark.e2e


def run(stack: EmbeddedStack, *args: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = cli(
        [
            "--url",
            stack.operator_url,
            "--token",
            stack.operator_token,
            "--upload-token",
            stack.upload_token,
            *args,
        ],
        out=lines.append,
    )
    return code, lines


def live(stack: EmbeddedStack, build_id: str, timeout: float = 40) -> dict[str, Any]:
    record: dict[str, Any] = wait_until(
        lambda: (r := stack.build(build_id)) and r["status"] == "live" and r, timeout=timeout
    )
    return record


def distributed_upload_ids(stack: EmbeddedStack) -> list[str | None]:
    return [call.upload_id for call in stack.simulator.calls if call.endpoint == "distribute-file"]


def test_rejected_build_is_redriven_by_retry_without_a_new_push(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    stack.simulator.reject_next_upload("Build is missing an executable", at_event="build.extracting")
    push(stack, "retry-1")
    rejected = stack.wait_for_terminal("retry-1", timeout=40)
    assert rejected["status"] == "rejected"
    code, lines = run(stack, "retry", "retry-1")
    assert code == 0 and "retry:" in lines[0]
    record = live(stack, "retry-1")
    uploads = [call for call in stack.simulator.calls if call.endpoint == "upload-file"]
    assert len(uploads) == 2  # one push, two uploads: the retry re-drove the stored build
    assert record["uploadId"] == uploads[1].upload_id
    assert record["previousUploadIds"] == [rejected["uploadId"]]
    events = events_of(record)
    assert events.index("build.rejected") < events.index("operator retry") < events.index("live")


def test_rollback_redistributes_the_previous_build_and_statuses_stay(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    push(stack, "roll-1")
    first = live(stack, "roll-1")
    push(stack, "roll-2")
    second = live(stack, "roll-2")
    code, lines = run(stack, "--json", "rollback", "default")
    assert code == 0 and '"buildId": "roll-1"' in lines[0]
    rolled = rolled_back(stack, "roll-1", timeout=30)
    assert distributed_upload_ids(stack) == [first["uploadId"]]
    assert rolled["status"] == "live"
    assert rolled["liveSince"] > second["liveSince"]
    assert "rollback requested" in events_of(known(stack, "roll-2"))
    assert known(stack, "roll-2")["status"] == "live"  # no backwards move for the newer build


def test_never_dark_restores_the_previous_live_build_after_a_late_rejection(
    make_stack: Callable[..., EmbeddedStack],
) -> None:
    stack = make_stack(slot_seconds=1, release_policy="manual")
    push(stack, "dark-1")
    first = live(stack, "dark-1")
    stack.simulator.reject_next_upload("Sanity check failed on the workers", at_event="build.distributing")
    push(stack, "dark-2")
    assert stack.wait_for_terminal("dark-2", timeout=40)["status"] == "rejected"
    restored = wait_until(
        lambda: (
            (r := stack.build("dark-1"))
            and "neverdark live" in events_of(r)
            and "redistribution" not in r
            and r
        ),
        timeout=30,
    )
    assert distributed_upload_ids(stack)[-1] == first["uploadId"]
    assert "neverdark requested" in events_of(restored)
    rejected = known(stack, "dark-2")
    assert "never dark" in events_of(rejected)
    assert "dark-1" in next(e for e in rejected["timeline"] if e["event"] == "never dark")["detail"]


def test_held_build_is_released_from_the_cli(make_stack: Callable[..., EmbeddedStack]) -> None:
    stack = make_stack(slot_seconds=1, release_policy="hold")
    push(stack, "held-1")
    wait_until(
        lambda: (r := stack.build("held-1")) and "held for operator release" in events_of(r), timeout=30
    )
    code, _ = run(stack, "release", "held-1")
    assert code == 0
    record = live(stack, "held-1")
    assert [call.endpoint for call in stack.simulator.calls] == ["upload-file", "distribute-file"]
    assert "release requested" in events_of(record)


def test_cli_send_watch_status_and_doctor(make_stack: Callable[..., EmbeddedStack], tmp_path: Path) -> None:
    stack = make_stack(slot_seconds=1, release_policy="auto")
    artifact = tmp_path / "Game.tar.gz"
    artifact.write_bytes(ue_like_targz(pak_bytes=4096))
    code, lines = run(stack, "send", str(artifact), "--build-id", "cli-1")
    assert code == 0 and "status: received" in lines[0]
    code, lines = run(stack, "watch", "cli-1", "--interval", "0.3", "--timeout", "40")
    assert code == 0
    assert lines[-1] == "cli-1 is LIVE"
    assert any("build.approved" in line for line in lines)
    code, lines = run(stack, "status", "--status", "live")
    assert code == 0 and any(line.startswith("cli-1 ") for line in lines)
    code, lines = run(stack, "doctor")
    assert code == 0, lines
    assert any(line.startswith("OK   Streampixel -> bridge webhook (default)") for line in lines)
    assert stack.operator_token not in "\n".join(lines)


def test_cli_reports_a_wrong_token_without_echoing_it(
    make_stack: Callable[..., EmbeddedStack], capsys: pytest.CaptureFixture[str]
) -> None:
    stack = make_stack(slot_seconds=1)
    code = cli(["--url", stack.operator_url, "--token", "not-the-token", "status"])
    assert code == 1
    assert "401 unauthorized" in capsys.readouterr().err
