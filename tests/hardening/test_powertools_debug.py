"""POWERTOOLS_DEBUG must not log the Streampixel webhook path secret (issue 13 item 8).

Powertools reads POWERTOOLS_DEBUG when it is first imported, so each case runs in a fresh interpreter:
a Function URL resolver with a ``<path_secret>`` route, as the Streampixel webhook function has.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PATH_SECRET = "pathsecret" + "Q" * 30
SCRIPT = f"""
import json
IMPORT_LINE
from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver
from pixelbridge_local.gateway import FakeLambdaContext, function_url_event

app = LambdaFunctionUrlResolver()

@app.post("/webhooks/streampixel/<path_secret>")
def webhook(path_secret: str) -> dict[str, bool]:
    return {{"received": True}}

event = function_url_event("POST", "/webhooks/streampixel/{PATH_SECRET}", body=b"{{}}", headers={{}})
print(json.dumps(app.resolve(event, FakeLambdaContext("StreampixelWebhookFunction"))["statusCode"]))
"""


def run(import_line: str) -> str:
    environment = {**os.environ, "POWERTOOLS_DEBUG": "true"}
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("IMPORT_LINE", import_line)],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
        timeout=120,
    )
    assert completed.stdout.strip().endswith("200"), completed.stdout[-500:] + completed.stderr[-500:]
    return completed.stdout + completed.stderr


@pytest.mark.parametrize("with_observability", [False, True])
def test_powertools_debug_does_not_log_the_path_secret(with_observability: bool) -> None:
    output = run("import pixelbridge.observability" if with_observability else "")
    # Without PixelBridge's logging setup the secret is logged (the attack); with it, never.
    assert (PATH_SECRET in output) is (not with_observability)
