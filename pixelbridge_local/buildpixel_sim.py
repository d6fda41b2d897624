"""A BuildPixel simulator for the pull path: signed webhooks, the download API and signed artifact URLs.

    sim = BuildPixelSimulator(signing_secret="s", api_token="t"); sim.start()
    sim.set_webhook_url("http://127.0.0.1:1234/webhooks/buildpixel")
    sim.add_artifact("b1", tar_gz_bytes)
    sim.send_build_complete("b1")          # POSTs the signed build.complete envelope

What it serves (127.0.0.1 only):
* ``GET /builds/<id>/download`` (``Authorization: Bearer <api token>``) → ``{url, expiresAt, sizeBytes,
  checksumMd5}``; 401 ``invalid_token``, 404 ``not_found``, 429 + ``Retry-After`` on demand.
* ``GET /artifacts/<id>?expires=..&v=..&sig=..`` → the artifact, with ``Range: bytes=N-`` → 206.
  403 once the URL is expired (by time or by ``expire_urls_now()``) or its signature is wrong.

Knobs (``sim.knobs``): slow mode (bytes/s), drop the connection after N bytes once, ignore Range,
429 for the next N download-API calls, announce a wrong MD5. Every request is recorded in
``sim.request_log`` for assertions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from pixelbridge.domain.signatures import SIGNATURE_HEADER, sign

DEFAULT_PROJECT_ID = "665a2b3c4d5e6f7a8b9c0e10"
ORGANIZATION_ID = "664f00aa11bb22cc33dd44ee"
SEND_CHUNK = 256 * 1024


@dataclass
class Artifact:
    data: bytes
    md5: str
    metadata: dict[str, Any]


@dataclass
class Knobs:
    bytes_per_second: float | None = None  # slow mode
    fail_after_bytes: int | None = None  # drop the next artifact connection after N bytes (once)
    ignore_range: bool = False  # answer 200 with the whole body to Range requests
    rate_limit_next: int = 0  # answer 429 to the next N download-API calls
    retry_after_seconds: int = 2
    wrong_md5: bool = False  # the download API announces a wrong checksumMd5
    url_ttl_seconds: float = 24 * 3600


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    status: int
    range: str | None = None
    body_bytes: int = 0  # bytes of artifact sent


@dataclass
class _State:
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    url_serial: int = 0
    oldest_valid_serial: int = 0


class BuildPixelSimulator:
    def __init__(self, *, signing_secret: str, api_token: str) -> None:
        self.signing_secret = signing_secret
        self.api_token = api_token
        self.knobs = Knobs()
        self.webhook_url = ""
        self._url_key = secrets.token_bytes(32)
        self._state = _State()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> str:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                simulator._serve_get(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="buildpixel-sim").start()
        return self.url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the simulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- test/demo controls ------------------------------------------------------------------------
    def set_webhook_url(self, url: str) -> None:
        self.webhook_url = url

    def add_artifact(self, build_id: str, data: bytes, **metadata: Any) -> None:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        with self._lock:
            self._state.artifacts[build_id] = Artifact(data, md5, metadata)

    def expire_urls_now(self) -> None:
        """Every signed URL handed out so far stops working (403), like a 24 h URL past its time."""
        with self._lock:
            self._state.oldest_valid_serial = self._state.url_serial

    def signed_url(self, build_id: str) -> str:
        with self._lock:
            self._state.url_serial += 1
            serial = self._state.url_serial
        expires = int(time.time() + self.knobs.url_ttl_seconds)
        signature = self._url_signature(build_id, expires, serial)
        return f"{self.url}/artifacts/{build_id}?expires={expires}&v={serial}&sig={signature}"

    @property
    def request_log(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        return [r for r in self.request_log if r.path.startswith(path_prefix)]

    # -- webhooks ----------------------------------------------------------------------------------
    def build_event(
        self, event_type: str, build_id: str, *, with_artifact_url: bool = True
    ) -> dict[str, Any]:
        """The BuildPixel webhook envelope for a registered artifact (or a bare build id)."""
        artifact = self._state.artifacts.get(build_id)
        meta = dict(artifact.metadata) if artifact else {}
        build: dict[str, Any] = {
            "id": build_id,
            "status": event_type.removeprefix("build."),
            "platform": meta.get("platform", "Win64"),
            "buildType": meta.get("buildType", "Development"),
            "branch": meta.get("branch", "main"),
            "commit": meta.get("commit", "a1b2c3d4e5f6"),
            "durationMs": meta.get("durationMs", 754_000),
        }
        if event_type == "build.complete" and with_artifact_url:
            build["artifactUrl"] = self.signed_url(build_id)
        return {
            "type": event_type,
            "createdAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "organizationId": ORGANIZATION_ID,
            "data": {
                "build": build,
                "project": {
                    "id": meta.get("projectId", DEFAULT_PROJECT_ID),
                    "name": meta.get("projectName", "Demo"),
                },
            },
        }

    def send_event(
        self, envelope: dict[str, Any] | bytes, *, signature: str | None = None
    ) -> requests.Response:
        """POST a webhook as BuildPixel does (signed with the signing secret unless ``signature`` is set)."""
        body = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature if signature is not None else sign(body, self.signing_secret),
        }
        return requests.post(self.webhook_url, data=body, headers=headers, timeout=30)

    def send_build_complete(self, build_id: str, *, with_artifact_url: bool = True) -> requests.Response:
        return self.send_event(
            self.build_event("build.complete", build_id, with_artifact_url=with_artifact_url)
        )

    # -- serving -----------------------------------------------------------------------------------
    def _serve_get(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        download = re.fullmatch(r"/builds/([^/]+)/download", parts.path)
        artifact = re.fullmatch(r"/artifacts/([^/]+)", parts.path)
        if download:
            self._download_api(request, download.group(1), parts.path)
        elif artifact:
            self._artifact(request, artifact.group(1), parse_qs(parts.query), parts.path)
        else:
            self._json(request, parts.path, 404, {"error": "not_found", "message": "no such endpoint"})

    def _download_api(self, request: BaseHTTPRequestHandler, build_id: str, path: str) -> None:
        with self._lock:
            limited = self.knobs.rate_limit_next > 0
            if limited:
                self.knobs.rate_limit_next -= 1
        if limited:
            headers = {"Retry-After": str(self.knobs.retry_after_seconds)}
            self._json(request, path, 429, _error("rate_limited", "Too many requests"), headers)
            return
        presented = request.headers.get("Authorization", "")
        if not hmac.compare_digest(presented.encode(), f"Bearer {self.api_token}".encode()):
            self._json(request, path, 401, _error("invalid_token", "Invalid or revoked API token"))
            return
        artifact = self._state.artifacts.get(build_id)
        if artifact is None:
            self._json(request, path, 404, _error("not_found", "This build has no artifact"))
            return
        expires = datetime.fromtimestamp(time.time() + self.knobs.url_ttl_seconds, UTC)
        document = {
            "url": self.signed_url(build_id),
            "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sizeBytes": len(artifact.data),
            "checksumMd5": "0" * 32 if self.knobs.wrong_md5 else artifact.md5,
        }
        self._json(request, path, 200, document)

    def _artifact(
        self, request: BaseHTTPRequestHandler, build_id: str, query: dict[str, list[str]], path: str
    ) -> None:
        artifact = self._state.artifacts.get(build_id)
        if artifact is None or not self._url_valid(build_id, query):
            self._json(request, path, 403, _error("expired", "Request has expired or is not signed"))
            return
        data = artifact.data
        start = self._range_start(request.headers.get("Range"))
        if start is not None and start >= len(data):
            self._json(request, path, 416, _error("range_not_satisfiable", "bad range"))
            return
        status = 200 if start is None or self.knobs.ignore_range else 206
        begin = 0 if status == 200 else int(start or 0)
        request.send_response(status)
        request.send_header("Content-Type", "application/gzip")
        request.send_header("Content-Length", str(len(data) - begin))
        request.send_header("Accept-Ranges", "bytes")
        if status == 206:
            request.send_header("Content-Range", f"bytes {begin}-{len(data) - 1}/{len(data)}")
        request.end_headers()
        sent = self._send_body(request, memoryview(data)[begin:])
        self._record(RecordedRequest("GET", path, status, request.headers.get("Range"), sent))

    def _send_body(self, request: BaseHTTPRequestHandler, body: memoryview) -> int:
        with self._lock:
            cut_at, self.knobs.fail_after_bytes = self.knobs.fail_after_bytes, None
        limit = len(body) if cut_at is None else min(cut_at, len(body))
        sent = 0
        try:
            while sent < limit:
                piece = body[sent : min(limit, sent + SEND_CHUNK)]
                request.wfile.write(piece)
                sent += len(piece)
                if self.knobs.bytes_per_second:
                    time.sleep(len(piece) / self.knobs.bytes_per_second)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. over its size limit)
        if sent < len(body):
            request.close_connection = True  # a truncated body: the client sees an incomplete read
        return sent

    def _url_valid(self, build_id: str, query: dict[str, list[str]]) -> bool:
        try:
            expires, serial, signature = int(query["expires"][0]), int(query["v"][0]), query["sig"][0]
        except (KeyError, IndexError, ValueError):
            return False
        expected = self._url_signature(build_id, expires, serial)
        fresh = expires > time.time() and serial > self._state.oldest_valid_serial
        return fresh and hmac.compare_digest(signature, expected)

    def _url_signature(self, build_id: str, expires: int, serial: int) -> str:
        message = f"{build_id}:{expires}:{serial}".encode()
        return hmac.new(self._url_key, message, hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _range_start(header: str | None) -> int | None:
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", (header or "").strip())
        return int(match.group(1)) if match else None

    def _json(
        self,
        request: BaseHTTPRequestHandler,
        path: str,
        status: int,
        document: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps(document).encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)
        self._record(RecordedRequest("GET", path, status, request.headers.get("Range")))

    def _record(self, recorded: RecordedRequest) -> None:
        with self._lock:
            self._state.requests.append(recorded)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message, "requestId": secrets.token_hex(8)}
