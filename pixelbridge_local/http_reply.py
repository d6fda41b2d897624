"""One way the local HTTP fronts (Function URL gateway, IAM proxy) write an answer."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def send_reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
    """Status, headers and an exact Content-Length; a HEAD request gets the headers only."""
    request.send_response(status)
    for key, value in headers.items():
        request.send_header(key, value)
    request.send_header("Content-Length", str(len(payload)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(payload)
