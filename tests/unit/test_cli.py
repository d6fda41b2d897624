"""The pixelbridge CLI without a stack: options, help, errors (sentences, JSON), status, show, watch, send.

HTTP answers come from `responses`; the stack lookup is replaced where a test needs an AWS failure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import responses
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from pixelbridge_cli import client
from pixelbridge_cli.main import main, parser

URL = "http://127.0.0.1:9"
CONNECT = ["--url", URL, "--token", "op-token"]


def run(*args: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = main(list(args), out=lines.append)
    return code, lines


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_and_every_option_has_a_help_text() -> None:
    commands = subcommands()
    assert set(commands) == {"status", "show", "watch", "release", "retry", "rollback", "send", "doctor"}
    for name, sub in [("pixelbridge", parser()), *commands.items()]:
        if name != "pixelbridge":
            assert sub.description, name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.dest}"


@pytest.mark.parametrize(
    "argv",
    [
        ["--url", "u", "--token", "t", "--json", "status"],
        ["status", "--url", "u", "--token", "t", "--json"],
        ["--url", "u", "status", "--token", "t", "--json"],
    ],
)
def test_connection_options_are_accepted_before_and_after_the_subcommand(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    assert (args.url, args.token, args.json, args.stack) == ("u", "t", True, "pixelbridge")


def test_environment_variables_give_the_url_and_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELBRIDGE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("PIXELBRIDGE_TOKEN", "from-env")
    args = parser().parse_args(["status"])
    assert (args.url, args.token) == ("http://127.0.0.1:1", "from-env")


def test_usage_errors_are_json_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["status", "--json", "--no-such-option"])
    assert exited.value.code == 2
    error = json.loads(capsys.readouterr().out)
    assert error["error"] == "usage" and "--no-such-option" in error["message"]


@responses.activate
def test_api_errors_are_sentences_with_what_to_do_and_json_with_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = {"error": "not_found", "message": "build 'nope' does not exist"}
    responses.get(f"{URL}/builds/nope", status=404, json=body)
    code, lines = run(*CONNECT, "show", "nope", "--json")
    assert code == 1
    error = json.loads(lines[0])
    assert error["error"] == "not_found"
    assert error["message"].startswith("build 'nope' does not exist (404 not_found): check the id")
    code, lines = run(*CONNECT, "show", "nope")
    assert code == 1 and not lines
    assert "does not exist (404 not_found): check the id with `pixelbridge status`" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("problem", "code", "says"),
    [
        (NoRegionError(), "no_region", "pass --region"),
        (NoCredentialsError(), "no_credentials", "run `aws configure`"),
        (
            ClientError(
                {"Error": {"Code": "ValidationError", "Message": "Stack with id pixelbridge does not exist"}},
                "DescribeStacks",
            ),
            "stack_not_found",
            "pass --stack with the name you gave `sam deploy`",
        ),
        (ModuleNotFoundError("No module named 'boto3'"), "no_boto3", "pip install boto3"),
    ],
)
def test_stack_lookup_failures_say_what_to_do(
    monkeypatch: pytest.MonkeyPatch, problem: Exception, code: str, says: str
) -> None:
    def fail(stack: str, region: str | None) -> dict[str, str]:
        raise problem

    monkeypatch.setattr(client, "stack_outputs", fail)
    monkeypatch.delenv("PIXELBRIDGE_URL", raising=False)
    monkeypatch.delenv("PIXELBRIDGE_TOKEN", raising=False)
    exit_code, lines = run("status", "--json")
    error = json.loads(lines[0])
    assert exit_code == 1 and error["error"] == code
    assert says in error["message"] and "--url and --token" in error["message"]
    assert type(problem).__name__ not in error["message"]


def summary(build_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "buildId": build_id,
        "status": status,
        "route": "default",
        "receivedAt": "2026-01-01T00:00:00Z",
        **fields,
    }


@responses.activate
def test_status_shows_the_one_build_each_route_serves_and_marks_earlier_ones() -> None:
    builds = [
        summary("b3", "rejected", objection="missing executable"),
        summary("b2", "live", uploadId="u2", liveSince="2026-01-02T00:00:00Z"),
        # rolled back to: older build, most recently made live
        summary("b1", "live", uploadId="u1", liveSince="2026-01-03T00:00:00Z"),
        summary("b0", "failed", error="upload-file answered 500"),
    ]
    responses.get(f"{URL}/builds", json={"builds": builds, "next": None})
    code, lines = run(*CONNECT, "status")
    assert code == 0
    assert lines[1].split() == ["default", "b1", "2026-01-03T00:00:00Z"]
    rows = {line.split()[0]: line for line in lines if line.startswith("b")}
    assert "LIVE NOW" in rows["b1"] and "upload u1" in rows["b1"]
    assert "live (earlier)" in rows["b2"] and "now b1" in rows["b2"]
    assert "LIVE NOW" not in rows["b2"]
    assert rows["b3"].endswith("Streampixel: missing executable")
    assert rows["b0"].endswith("upload-file answered 500")
    code, lines = run(*CONNECT, "status", "--json")
    page = json.loads(lines[0])
    assert page["liveNow"] == {"default": "b1"}
    assert [b["liveNow"] for b in page["builds"]] == [False, False, True, False]


HELD = {
    "buildId": "h1",
    "status": "approved",
    "route": "default",
    "release": {"policy": "hold"},
    "manifest": {"files": 5, "bytes_out": 1234, "notes": []},
    "timeline": [
        {"at": "2026-01-01T00:00:00Z", "event": "received", "status": "received", "detail": "push"},
        {"at": "2026-01-01T00:00:09Z", "event": "held for operator release", "status": "approved"},
    ],
}


@responses.activate
def test_show_prints_one_build_with_its_timeline_and_how_to_release_it() -> None:
    responses.get(f"{URL}/builds/h1", json=HELD)
    code, lines = run(*CONNECT, "show", "h1")
    assert code == 0
    assert "status:      approved" in lines
    assert "manifest:    files 5, bytes_out 1234" in lines
    assert any("held for operator release" in line and "[approved]" in line for line in lines)
    assert lines[-1] == "held: release it with `pixelbridge release h1`"


@responses.activate
def test_watch_ends_on_a_held_build_with_the_release_command() -> None:
    responses.get(f"{URL}/builds/h1", json=HELD)
    code, lines = run(*CONNECT, "watch", "h1", "--interval", "0")
    assert code == 0
    assert lines[-1] == "h1 is APPROVED and held for an operator: run `pixelbridge release h1`"
    code, lines = run(*CONNECT, "watch", "h1", "--json")
    assert json.loads(lines[-1]) == {
        "buildId": "h1",
        "status": "approved",
        "held": True,
        "next": "pixelbridge release h1",
    }


@responses.activate
def test_watch_keeps_following_a_build_whose_release_was_asked() -> None:
    released = {**HELD, "releaseRequestedAt": "2026-01-01T00:01:00Z"}
    live = {**released, "status": "live"}
    responses.get(f"{URL}/builds/h1", json=released)
    responses.get(f"{URL}/builds/h1", json=live)
    code, lines = run(*CONNECT, "watch", "h1", "--interval", "0")
    assert code == 0 and lines[-1] == "h1 is LIVE"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: tmp / "missing.tar.gz", "does not exist: give the path of your build's .tar.gz file"),
        (lambda tmp: tmp, "is a directory: give the build's .tar.gz file"),
    ],
)
def test_send_explains_a_bad_path_in_one_sentence(tmp_path: Path, make: Any, says: str) -> None:
    code, lines = run(*CONNECT, "--upload-token", "up", "--json", "send", str(make(tmp_path)))
    error = json.loads(lines[0])
    assert code == 1 and says in error["message"]


def test_send_refuses_a_build_too_big_to_push_and_names_the_pull_path(tmp_path: Path) -> None:
    big = tmp_path / "Big.tar.gz"
    big.write_bytes(b"\0" * (5 * 1024 * 1024))
    code, lines = run(
        *CONNECT, "--upload-token", "up", "--json", "send", str(big)
    )  # no HTTP mock: none is sent
    error = json.loads(lines[0])
    assert code == 1 and error["error"] == "too_big_to_push"
    assert "pull path" in error["message"] and "4.5 MiB" in error["message"]


def test_boto3_is_a_dependency_of_the_installed_command() -> None:
    from importlib.metadata import requires

    assert any(requirement.startswith("boto3") for requirement in requires("pixelbridge") or [])
