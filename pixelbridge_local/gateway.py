"""A local Function URL: turns HTTP requests into Function URL (payload 2.0) events for a function."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from pixelbridge_local.http_reply import send_reply

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class FakeLambdaContext:
    """Just enough of LambdaContext for Powertools (logger, idempotency)."""

    function_name: str
    memory_limit_in_mb: int = 1024
    timeout_ms: int = 900_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def function_url_event(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    query: str = "",
    domain: str = "localhost",
) -> dict[str, Any]:
    """A Function URL event as AWS builds it: lowercase headers, body base64-encoded."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {key.lower(): value for key, value in (headers or {}).items()},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": domain,
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": (headers or {}).get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "",
            "timeEpoch": 0,
        },
        "body": base64.b64encode(body).decode("ascii") if body else None,
        "isBase64Encoded": bool(body),
    }
    if query:
        # Like AWS: parsed parameters too, repeated names joined with commas.
        parsed: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            parsed.setdefault(name, []).append(value)
        event["queryStringParameters"] = {name: ",".join(values) for name, values in parsed.items()}
    return event


class FunctionUrlGateway:
    """Serves one function on 127.0.0.1 like a Function URL, including its 6 MB invoke payload limit.

    ``invoke`` runs the function (in the local stack: its sandbox) and returns its Function URL answer.
    """

    INVOKE_PAYLOAD_LIMIT = 6_291_456  # bytes of event JSON, checked before the function runs

    def __init__(self, invoke: Invoke) -> None:
        self._invoke = invoke
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gateway._serve(self, "GET")

            def do_POST(self) -> None:
                gateway._serve(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the demo prints its own progress

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        path, _, query = request.path.partition("?")
        event = function_url_event(
            method,
            path,
            body=body,
            headers=dict(request.headers.items()),
            query=query,
            domain=self.url.removeprefix("http://"),
        )
        if len(json.dumps(event).encode("utf-8")) > self.INVOKE_PAYLOAD_LIMIT:
            # What AWS answers before the function runs.
            self._reply(
                request, 413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}'
            )
            return
        result = self._invoke(event)
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode("utf-8")
        self._reply(request, int(result.get("statusCode", 200)), result.get("headers") or {}, payload)

    _reply = staticmethod(send_reply)
