"""No secret value in any log line or error response of a full local run.

The run covers push (live), pull (live, through a download cut mid-stream), a failing build, the
Streampixel webhooks the simulator fires, forged/hostile webhook and push requests, and error answers.
Captured: every line each function's sandbox wrote (its log stream: the Powertools JSON logger and
Lambda's root logger at DEBUG, since the stack runs with LogLevel=DEBUG), every Python logging record of
this process with the root logger at DEBUG, plus everything written to fd 1/2. DEBUG matters: in Lambda,
``LogLevel=DEBUG`` puts the root logger at DEBUG, and botocore/urllib3 then log response bodies
(Secrets Manager values) and URLs with their query strings (signed artifact URLs) —
``pixelbridge.observability`` caps those loggers at INFO.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from pixelbridge_local.buildpixel import sample_metadata
from pixelbridge_local.sample_build import big_ue_like_targz
from pixelbridge_local.stack import EmbeddedStack, StackOptions
from tests.e2e.conftest import push
from tests.support.archives import Member, build_targz, file

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024
SIMULATED_AWS = ("moto", "werkzeug")


class Capture(logging.Handler):
    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._json = formatter

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(SIMULATED_AWS):  # the fake AWS side (moto server), not our code
            return
        try:
            self.lines.append(self._json.format(record) if self._json else self.format(record))
        except Exception:  # a formatter that cannot render the record: keep the raw parts
            self.lines.append(f"{record.getMessage()} {record.__dict__}")
        self.lines.append(repr(record.__dict__.get("args")))


@contextmanager
def captured_logs() -> Iterator[_Joined]:
    from pixelbridge.observability import logger as powertools_logger

    root = logging.getLogger()
    plain = Capture(None)
    powertools = Capture(powertools_logger.registered_formatter)
    saved = (root.level, powertools_logger.log_level)
    root.setLevel(logging.DEBUG)
    root.addHandler(plain)
    powertools_logger.setLevel("DEBUG")
    powertools_logger.addHandler(powertools)
    try:
        yield _Joined(plain, powertools)
    finally:
        root.removeHandler(plain)
        logging.getLogger(powertools_logger.name).removeHandler(powertools)  # Powertools has no removeHandler
        root.setLevel(saved[0])
        powertools_logger.setLevel(saved[1])


class _Joined(list[str]):
    """Both captures, read at assertion time."""

    def __init__(self, *captures: Capture) -> None:
        super().__init__()
        self._captures = captures

    def all(self) -> list[str]:
        return [line for capture in self._captures for line in capture.lines]


def test_a_full_run_logs_no_secret_and_errors_echo_none(capfd: pytest.CaptureFixture[str]) -> None:
    stack = EmbeddedStack(StackOptions(slot_seconds=1, release_policy="auto", log_level="DEBUG")).start()
    capfd.readouterr()  # the stack's own setup output is not part of the run
    responses: list[str] = []
    capture = captured_logs()
    logs = capture.__enter__()
    try:
        # One route (the default): one build at a time, or the newest supersedes the others.
        assert push(stack, "sec-push").status_code == 202
        records = {"sec-push": stack.wait_for_terminal("sec-push", timeout=90)}
        stack.buildpixel.add_artifact(
            "sec-pull", big_ue_like_targz(pak_bytes=2 * MiB), **sample_metadata("sec-pull")
        )
        stack.buildpixel.knobs.fail_after_bytes = 500_000
        assert stack.buildpixel.send_build_complete("sec-pull").status_code == 202
        records["sec-pull"] = stack.wait_for_terminal("sec-pull", timeout=90)
        bad = build_targz(
            [file("Windows/Game.exe", b"MZ"), Member("Windows/l", kind="symlink", link_target="/")]
        )
        assert push(stack, "sec-bad", bad).status_code == 202
        records["sec-bad"] = stack.wait_for_terminal("sec-bad", timeout=90)
        assert [records[b]["status"] for b in ("sec-push", "sec-pull", "sec-bad")] == [
            "live",
            "live",
            "failed",
        ]

        # Hostile and forged requests: every error answer is collected and checked too.
        upload = stack.upload_url
        for headers, body in (
            ({"Authorization": "Bearer wrong", "Content-Type": "multipart/form-data; boundary=x"}, b"x"),
            ({"Authorization": stack.upload_authorization, "Content-Type": "text/plain"}, b"x"),
            (
                {
                    "Authorization": stack.upload_authorization,
                    "Content-Type": "multipart/form-data; boundary=x",
                },
                b"--x--",
            ),
        ):
            responses.append(requests.post(upload, data=body, headers=headers, timeout=10).text)
        envelope = stack.buildpixel.build_event("build.complete", "sec-pull")
        responses.append(stack.buildpixel.send_event(envelope, signature="sha256=" + "0" * 64).text)
        responses.append(stack.buildpixel.send_event({"type": 5}).text)
        hook = stack.streampixel_webhook_url
        responses.append(requests.post(hook, data=b"not json", timeout=10).text)
        responses.append(requests.post(hook + "x", json={"event": "build.approved"}, timeout=10).text)
        responses.append(
            requests.post(hook, json={"event": "build.rejected", "uploadId": "nope"}, timeout=10).text
        )
        responses.append(requests.get(f"{stack.ingest.url}/builds/sec-push", timeout=10).text)

        secrets: dict[str, str] = {
            "Streampixel apiKey": stack.api_key,
            "BuildPixel upload token": stack.upload_token,
            "BuildPixel signing secret": stack.buildpixel_signing_secret,
            "BuildPixel API token": stack.buildpixel_api_token,
            "Streampixel webhook path secret": stack.webhook_path_secret,
        }
        for build_id, record in records.items():
            if record.get("handoffToken"):
                secrets[f"handoff token of {build_id}"] = record["handoffToken"]
        fresh_signed_url = stack.buildpixel.signed_url("sec-pull")
        function_lines = stack.function_logs()
        levels = {
            (env["POWERTOOLS_LOG_LEVEL"], env["AWS_LAMBDA_LOG_LEVEL"])
            for env in stack.environments().values()
        }
    finally:
        capture.__exit__(None, None, None)
        stack.stop()

    out, err = capfd.readouterr()
    corpus = "\n".join([*logs.all(), *function_lines, out, err])
    assert len(function_lines) > 20  # the capture really saw the run
    assert levels == {("DEBUG", "DEBUG")}  # every sandbox logged at DEBUG
    assert "push handled" in corpus and "streampixel event" in corpus
    leaks = {name for name, value in secrets.items() if value and value in corpus}
    assert leaks == set(), f"secret values in logs: {sorted(leaks)}"
    signed_query = re.search(r"\?(.*)$", fresh_signed_url)
    assert signed_query and "sig=" in signed_query.group(1)
    assert not re.search(r"[?&]sig=[0-9a-f]{16,}", corpus), "a signed artifact URL was logged"
    assert "/dl/" not in corpus or not any(f"/dl/{v}" in corpus for k, v in secrets.items() if "handoff" in k)
    answered = "\n".join(responses)
    assert {name for name, value in secrets.items() if value in answered} == set()
    for response in responses:
        document = json.loads(response)
        assert "zipUrl" not in document and "handoffToken" not in document and "waitToken" not in document
