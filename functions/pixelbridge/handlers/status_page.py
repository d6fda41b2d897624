"""GET /status: the operator status page, served by IngestFunction next to the operator API.

Static HTML, CSS and JavaScript (no build step, no framework) shipped as package data. The page
itself holds no data and needs no token: its script asks for the operator token once, keeps it in
the tab's ``sessionStorage`` and reads everything from the operator API (``Authorization: Bearer``).
Strict headers: the Content-Security-Policy allows only this origin's script, style and API calls
(no inline script), nothing may frame the page, and nothing is cached.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

router = Router()

STATIC_PACKAGE = "pixelbridge.handlers"
STATIC_FOLDER = "status_static"
# path -> (file, content type)
ASSETS = {
    "/status": ("status.html", "text/html; charset=utf-8"),
    "/status/status.js": ("status.js", "text/javascript; charset=utf-8"),
    "/status/status.css": ("status.css", "text/css; charset=utf-8"),
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
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


def asset_response(path: str) -> Response[Any]:
    name, content_type = ASSETS[path]
    return Response(
        status_code=200, content_type=content_type, body=asset_text(name), headers=SECURITY_HEADERS
    )


@router.get("/status", include_in_schema=False)
def status_page() -> Response[Any]:
    return asset_response("/status")


@router.get("/status/status.js", include_in_schema=False)
def status_script() -> Response[Any]:
    return asset_response("/status/status.js")


@router.get("/status/status.css", include_in_schema=False)
def status_style() -> Response[Any]:
    return asset_response("/status/status.css")
