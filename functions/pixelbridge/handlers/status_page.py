"""GET /status: the operator status page (static HTML, CSS, JS shipped as package data; no framework).

The page holds no data and needs no token: its script asks for the operator token once, keeps it in the
tab's ``sessionStorage`` and reads the operator API. The CSP allows only this origin (no inline script).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from pixelbridge.domain.errors import NotFound

router = Router()

STATIC_PACKAGE = "pixelbridge.handlers"
STATIC_FOLDER = "status_static"
CONTENT_TYPES = {
    "status.html": "text/html; charset=utf-8",
    "status.js": "text/javascript; charset=utf-8",
    "status.css": "text/css; charset=utf-8",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@cache
def asset_text(name: str) -> str:
    return files(STATIC_PACKAGE).joinpath(STATIC_FOLDER, name).read_text(encoding="utf-8")


@router.get("/status", include_in_schema=False)
def status_page() -> Response[Any]:
    return status_asset("status.html")


@router.get("/status/<asset>", include_in_schema=False)
def status_asset(asset: str) -> Response[Any]:
    if asset not in CONTENT_TYPES:
        raise NotFound("not_found", "no such endpoint")
    body = asset_text(asset)
    return Response(status_code=200, content_type=CONTENT_TYPES[asset], body=body, headers=SECURITY_HEADERS)
