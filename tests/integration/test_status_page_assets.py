"""GET /status on IngestFunction's Function URL: the page and its assets, with strict response headers.

The browser behaviour is tested in tests/e2e/test_status_page.py; here: what is served, with which
headers, and that the page can run under its own Content-Security-Policy (no inline script or style)
and never turns outside text into markup.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pixelbridge_local.gateway import FakeLambdaContext, function_url_event
from tests.support.aws import MotoAccount, moto_account


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Any:
    with moto_account(monkeypatch) as moto:
        from pixelbridge import wiring

        wiring.reset()
        yield moto


def get(path: str) -> dict[str, Any]:
    from pixelbridge.handlers import ingest

    answer: dict[str, Any] = ingest.handler(
        function_url_event("GET", path), FakeLambdaContext("IngestFunction")
    )
    return answer


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/status", "text/html", "<title>PixelBridge status</title>"),
        ("/status/status.js", "text/javascript", "sessionStorage"),
        ("/status/status.css", "text/css", ":focus-visible"),
    ],
)
def test_status_page_assets_are_served_with_strict_headers(
    account: MotoAccount, path: str, content_type: str, marker: str
) -> None:
    answer = get(path)
    headers = {key.lower(): value for key, value in answer["headers"].items()}
    assert answer["statusCode"] == 200
    assert headers["content-type"].startswith(content_type)
    assert marker in answer["body"]
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"


def test_the_page_needs_no_token_and_carries_no_inline_script_or_style(account: MotoAccount) -> None:
    html = get("/status")["body"]
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts == [(' src="/status/status.js" defer', "")]
    assert not re.search(r"\sstyle=|<style\b|\son[a-z]+=", html)
    assert re.search(r'<label for="token">', html) and 'id="token" type="password"' in html


def test_the_script_never_turns_outside_text_into_markup_or_stores_the_token_for_long(
    account: MotoAccount,
) -> None:
    script = get("/status/status.js")["body"]
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "localStorage"):
        assert sink not in script, sink
    assert "textContent" in script and "sessionStorage.setItem" in script


def test_the_status_page_is_not_part_of_the_operator_api_document(account: MotoAccount) -> None:
    document = json.loads(get("/openapi.json")["body"])
    assert "/builds" in document["paths"]
    assert not [path for path in document["paths"] if path.startswith("/status")]
