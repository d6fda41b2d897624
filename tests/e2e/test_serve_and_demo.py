"""`make serve` and `make demo` on the real local stack: what they print works, and they end cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from pixelbridge.settings import FUNCTION_URL_MAX_RAW_BODY
from pixelbridge_cli.main import main as cli
from pixelbridge_local import demo
from pixelbridge_local.sample_build import big_ue_like_targz, ue_like_targz
from pixelbridge_local.serve import serve
from pixelbridge_local.stack import EmbeddedStack, StackOptions

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def printed_value(lines: list[str], label: str) -> str:
    line = next(line for line in lines if line.strip().startswith(label))
    return line.strip().removeprefix(label).split()[0]


def test_serve_prints_what_the_cli_and_the_status_page_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []
    ready = threading.Event()
    stop = threading.Event()
    running: list[EmbeddedStack] = []

    def started(stack: EmbeddedStack) -> None:
        running.append(stack)
        ready.set()

    thread = threading.Thread(
        target=serve, args=(StackOptions(slot_seconds=1), stop, lines.append, started), daemon=True
    )
    thread.start()
    try:
        assert ready.wait(60), lines
        stack = running[0]
        page = printed_value(lines, "Status page")
        assert page == f"{stack.operator_url}/status"
        assert requests.get(page, timeout=10).status_code == 200
        assert printed_value(lines, "Upload header") == "Authorization:"
        assert f"Authorization: Bearer {stack.upload_token}" in "\n".join(lines)
        assert printed_value(lines, "BuildPixel webhook") == stack.buildpixel_webhook_url
        assert printed_value(lines, "Webhook secret") == stack.buildpixel_signing_secret
        # The printed exports are all the CLI needs: send a build and watch it go live.
        for line in lines:
            if line.strip().startswith("export "):
                name, _, value = line.strip().removeprefix("export ").partition("=")
                monkeypatch.setenv(name, value)
        artifact = tmp_path / "Game.tar.gz"
        artifact.write_bytes(ue_like_targz(pak_bytes=4096))
        assert cli(["send", str(artifact), "--build-id", "serve-1"], out=lambda _: None) == 0
        watched: list[str] = []
        assert cli(["watch", "serve-1", "--interval", "0.3", "--timeout", "60"], out=watched.append) == 0
        assert watched[-1] == "serve-1 is LIVE"
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert lines[-2:] == ["Stopping the local stack...", "Stopped."]


def start_module(*args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(["functions", "."]),
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",  # SIGABRT dumps every thread: what a hung stop was waiting for
    }
    return subprocess.Popen(
        [sys.executable, "-W", "ignore", "-m", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(process: subprocess.Popen[str], marker: str, *, hang_bound: float = 300.0) -> list[str]:
    """The lines up to ``marker``. The bound only stops a hung process (a failure), it times nothing."""
    assert process.stdout is not None
    seen: list[str] = []
    watchdog = threading.Timer(hang_bound, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:
            seen.append(line.rstrip("\n"))
            if marker in line:
                return seen
    finally:
        watchdog.cancel()
    raise AssertionError(f"{marker!r} never printed (the process ended or hung): {seen}")


def ctrl_c(process: subprocess.Popen[str], *, hang_bound: float = 180.0) -> tuple[str, str]:
    """SIGINT, then the rest of the output. The bound only turns a hung stop into a failure with the
    process's thread stacks; it times nothing."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=hang_bound)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        _, dump = process.communicate(timeout=60)
        raise AssertionError(f"no clean stop after Ctrl-C; the process's threads:\n{dump[-8000:]}") from None


def test_serve_stops_cleanly_on_ctrl_c() -> None:
    process = start_module("pixelbridge_local.serve")
    read_until(process, "Ctrl-C stops it")
    rest, errors = ctrl_c(process)
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
    assert rest.rstrip().endswith("Stopped.")


def test_demo_with_hold_exits_0_and_says_how_to_release(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--policy", "hold", "--slot-seconds", "1", "--timeout", "60"]) == 0
    out = capsys.readouterr().out
    assert "is APPROVED and held for an operator" in out
    assert "release demo" in out and "/status" in out
    assert "--policy hold --serve" in out


def test_demo_sends_a_build_too_big_to_push_by_the_pull_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = tmp_path / "Big.tar.gz"
    artifact.write_bytes(big_ue_like_targz(pak_bytes=FUNCTION_URL_MAX_RAW_BODY + 1024))
    assert demo.main([str(artifact), "--policy", "auto", "--slot-seconds", "1", "--timeout", "90"]) == 0
    out = capsys.readouterr().out
    assert "so BuildPixel's webhook + pull path is used" in out
    assert "/webhooks/buildpixel" in out and "/builds/upload" not in out
    assert "is LIVE" in out


def test_demo_with_hold_and_serve_lets_you_release_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    process = start_module("pixelbridge_local.demo", "--policy", "hold", "--slot-seconds", "1", "--serve")
    try:
        lines = read_until(process, "Ctrl-C stops it")
        assert any("is APPROVED and held for an operator" in line for line in lines)
        build_id = next(line.split()[1] for line in lines if line.startswith("Build "))
        lines += read_until(process, "PIXELBRIDGE_UPLOAD_TOKEN")
        for line in lines:
            if line.strip().startswith("export "):
                name, _, value = line.strip().removeprefix("export ").partition("=")
                monkeypatch.setenv(name, value)
        assert cli(["release", build_id], out=lambda _: None) == 0
        read_until(process, "[live]")  # the demo keeps printing the build's steps
    finally:
        rest, errors = ctrl_c(process)
    assert process.returncode == 0 and "Traceback" not in errors
    assert "Stopping the local stack..." in rest


@pytest.mark.parametrize(("path", "says"), [("missing.tar.gz", "does not exist"), (".", "is a directory")])
def test_demo_explains_a_bad_path_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str, says: str
) -> None:
    assert demo.main([str(tmp_path / path)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("demo: ") and says in error and "Traceback" not in error


def test_demo_stops_the_stack_on_ctrl_c_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "follow", interrupted)
    environment = dict(os.environ)
    assert demo.main(["--slot-seconds", "1"]) == 130
    assert "Interrupted; the local stack is stopped." in capsys.readouterr().err
    assert dict(os.environ) == environment  # EmbeddedStack.stop() ran: the AWS environment is restored
