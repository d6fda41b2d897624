"""A loopback S3 + HTTP server whose every connection is shaped like Lambda <-> S3 (benchmarks only).

Each request waits ``first_byte_s`` (default 20 ms) before it answers, then moves its body at most
``rate`` bytes per second (default 90 MB/s) in either direction; many connections get many times the
rate, as S3 does. It speaks just enough of S3 for boto3 (path-style): HEAD / GET with ``Range`` and
``If-Match``, multipart upload (create, upload part, complete, abort). Objects live in a directory;
uploaded parts are only counted (their bytes go nowhere), so the server stays small whatever the size.
Plain ``GET /<bucket>/<key>`` with ``Range`` is also what an artifact URL looks like to the fetcher.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

BLOCK = 256 * 1024


class Shaping:
    def __init__(self, rate_bytes_per_s: float, first_byte_s: float) -> None:
        self.rate = rate_bytes_per_s
        self.first_byte_s = first_byte_s

    def pace(self, started: float, moved: int) -> None:
        """Sleep until ``moved`` bytes are due at this connection's rate."""
        due = started + moved / self.rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


class ShapedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, root: Path, shaping: Shaping) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.shaping = shaping
        self.uploads: dict[str, dict[int, int]] = {}  # upload id -> part number -> size
        self.bytes_uploaded = 0
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> ShapedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def path_of(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key


def etag_of(path: Path) -> str:
    stat = path.stat()
    return (
        '"'
        + hashlib.md5(f"{stat.st_size}-{stat.st_mtime_ns}".encode(), usedforsecurity=False).hexdigest()
        + '"'
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ShapedServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a benchmark prints its own table."""

    # -- routing -----------------------------------------------------------------------------------------
    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        return bucket, key, parse_qs(parts.query, keep_blank_values=True)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_GET(self) -> None:
        self._get(head=False)

    def do_PUT(self) -> None:
        _, _, query = self._target()
        started = self._first_byte()
        size = self._drain_body(started)
        if "uploadId" in query:
            with self.server.lock:
                self.server.uploads[query["uploadId"][0]][int(query["partNumber"][0])] = size
                self.server.bytes_uploaded += size
            self._reply(200, b"", {"ETag": f'"{uuid.uuid4().hex}"'})
            return
        self._reply(200, b"", {"ETag": f'"{uuid.uuid4().hex}"'})

    def do_POST(self) -> None:
        bucket, key, query = self._target()
        self._first_byte()
        self._drain_body(time.perf_counter())
        if "uploads" in query:
            upload_id = uuid.uuid4().hex
            with self.server.lock:
                self.server.uploads[upload_id] = {}
            body = (
                f"<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                f"<UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
            )
            self._reply(200, body.encode(), {"Content-Type": "application/xml"})
            return
        upload_id = query["uploadId"][0]
        with self.server.lock:
            self.server.uploads.pop(upload_id, None)
        body = (
            f"<CompleteMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
            '<ETag>"done"</ETag></CompleteMultipartUploadResult>'
        )
        self._reply(200, body.encode(), {"Content-Type": "application/xml"})

    def do_DELETE(self) -> None:
        _, _, query = self._target()
        if "uploadId" in query:
            with self.server.lock:
                self.server.uploads.pop(query["uploadId"][0], None)
        self._reply(204, b"", {})

    # -- bodies ------------------------------------------------------------------------------------------
    def _get(self, *, head: bool) -> None:
        bucket, key, _ = self._target()
        path = self.server.path_of(bucket, key)
        started = self._first_byte()
        if not path.is_file():
            self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>", {"Content-Type": "application/xml"})
            return
        etag = etag_of(path)
        if self.headers.get("If-Match") not in (None, etag):
            self._reply(412, b"<Error><Code>PreconditionFailed</Code></Error>", {})
            return
        size = path.stat().st_size
        first, last, status = 0, size - 1, 200
        requested = self.headers.get("Range", "")
        if requested.startswith("bytes="):
            low, _, high = requested[len("bytes=") :].partition("-")
            first = int(low)
            last = min(size - 1, int(high)) if high else size - 1
            status = 206
        headers = {"ETag": etag, "Content-Length": str(last - first + 1), "Accept-Ranges": "bytes"}
        if status == 206:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            return
        with open(path, "rb") as handle:
            handle.seek(first)
            moved, left = 0, last - first + 1
            while left > 0:
                chunk = handle.read(min(BLOCK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                moved += len(chunk)
                left -= len(chunk)
                self.server.shaping.pace(started, moved)

    def _first_byte(self) -> float:
        time.sleep(self.server.shaping.first_byte_s)
        return time.perf_counter()

    def _drain_body(self, started: float) -> int:
        left = int(self.headers.get("Content-Length") or 0)
        moved = 0
        while left > 0:
            chunk = self.rfile.read(min(BLOCK, left))
            if not chunk:
                break
            moved += len(chunk)
            left -= len(chunk)
            self.server.shaping.pace(started, moved)
        return moved

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)


def s3_client(endpoint: str, *, connections: int = 16) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="bench",  # dummies: the loopback server ignores signatures
        aws_secret_access_key="bench",  # noqa: S106
        config=Config(
            s3={"addressing_style": "path"},
            max_pool_connections=connections,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 1},
        ),
    )


def serve(root: Path, rate_mb_s: float = 90.0, first_byte_ms: float = 20.0) -> ShapedServer:
    os.makedirs(root, exist_ok=True)
    return ShapedServer(root, Shaping(rate_mb_s * 1e6, first_byte_ms / 1000)).start()
