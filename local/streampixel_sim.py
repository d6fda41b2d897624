"""A local Streampixel simulator: the write API plus the asynchronous build pipeline and its webhooks.

Implements ``/pixelStripeApi/projects/{upload-file,distribute-file,test-webhook}`` as described in
docs/ARCHITECTURE.md (Outside APIs), for the local demo and the end-to-end tests. Knobs inject the
failures the bridge must survive (429s, 5xx, slow answers, rejected builds, lost or duplicated
webhooks) and every API call and webhook delivery is recorded with its time so tests can assert
spacing and ordering.

Run standalone: ``python -m local.streampixel_sim --account USER:KEY --project PROJECT:USER``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import threading
import time
import zipfile
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, cast
from urllib.parse import urlsplit

import requests

API_PREFIX = "/pixelStripeApi"
UPLOAD_ENDPOINT = "upload-file"
DISTRIBUTE_ENDPOINT = "distribute-file"
TEST_WEBHOOK_ENDPOINT = "test-webhook"
WRITE_ENDPOINTS = frozenset({UPLOAD_ENDPOINT, DISTRIBUTE_ENDPOINT})  # share one rate-limit window

RATE_LIMIT_MESSAGE = "Rate limit exceeded. Try again in 2 minutes."
OBJECTION_CORRUPT_ZIP = "Invalid or corrupt zip file"
OBJECTION_MISSING_EXE = "Build is missing an executable"
OBJECTION_DOWNLOAD_FAILED = "Could not download build from fileUrl"

WEBHOOK_TIMEOUT_SECONDS = 10.0
DOWNLOAD_TIMEOUT = (5.0, 30.0)

# Webhook event → the raw pipeline status string it carries (docs/ARCHITECTURE.md, Outside APIs).
EVENT_STATUS: dict[str, str] = {
    "build.uploaded": "pending",
    "build.downloading": "Downloading Files",
    "build.extracting": "Extracting & Scanning",
    "build.saving": "Saving to Repository",
    "build.distributing": "Distribute",
    "build.approved": "Approved",
    "build.rejected": "Reject",
    "webhook.test": "test",
}
REJECTABLE_EVENTS = frozenset(EVENT_STATUS) - {"build.rejected", "webhook.test"}
DISTRIBUTABLE_STATES = frozenset({"approved", "live"})  # archived (manual) or live (rollback allowed)


@dataclass(frozen=True)
class RecordedCall:
    """One API call as the simulator answered it; ``monotonic`` is the arrival time."""

    monotonic: float
    wall_time: float
    endpoint: str
    user_id: str | None
    project_id: str | None
    http_status: int
    upload_id: str | None


@dataclass(frozen=True)
class RecordedWebhook:
    """One webhook delivery attempt: ``status_code`` if the receiver answered, else ``error``."""

    monotonic: float
    wall_time: float
    event: str
    upload_id: str | None
    url: str
    status_code: int | None
    error: str | None
    payload: dict[str, Any]
    dropped: bool = False  # swallowed by the drop_webhooks knob; never sent


@dataclass
class _Upload:
    upload_id: str
    project_id: str
    file_url: str
    auto_release: bool
    state: str
    reject_at: tuple[str, str] | None  # (event, objection) from the reject_next_upload knob


@dataclass(frozen=True)
class _CallFailure:
    status: int
    after_processing: bool


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Rejected(Exception):
    def __init__(self, objection: str) -> None:
        super().__init__(objection)
        self.objection = objection


class _Stopped(Exception):
    """The simulator is shutting down: abandon the pipeline."""


@dataclass
class _CallContext:
    """What the recorder learns about a call while it is processed."""

    user_id: str | None = None
    project_id: str | None = None
    upload_id: str | None = None


class StreampixelSimulator:
    """In-process Streampixel: HTTP API on loopback, background build pipelines, webhook deliveries.

    Rate limit: one write call (upload-file or distribute-file) per ``window_seconds`` per userId. The
    limiter runs after authentication and before payload checks, so any authenticated write call that
    gets past it consumes the window (even one later refused with 400/404); a 429 does not.
    """

    def __init__(
        self,
        *,
        accounts: dict[str, str],
        projects: dict[str, str],
        window_seconds: float = 120.0,
        stage_delay: float = 0.05,
        approve_after_distribute: bool = True,
        legacy_distribute_response: bool = False,
        allow_query_strings: bool = False,
        region: str = "asia-pacific",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._user_by_key = {api_key: user_id for user_id, api_key in accounts.items()}
        self._project_owner = dict(projects)
        self._window_seconds = window_seconds
        self.stage_delay = stage_delay
        self.approve_after_distribute = approve_after_distribute
        self.legacy_distribute_response = legacy_distribute_response  # older {"success","region",...} shape
        self.allow_query_strings = allow_query_strings  # newer docs accept presigned URLs
        self.region = region
        self._address = (host, port)

        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _SimulatorServer | None = None
        self._server_thread: threading.Thread | None = None
        self._active_pipelines = 0

        self._webhook_urls: dict[str, str] = {}
        self._uploads: dict[str, _Upload] = {}
        self._last_write: dict[str, float] = {}
        self._calls: list[RecordedCall] = []
        self._webhooks: list[RecordedWebhook] = []

        self._pending_rejections: deque[tuple[str, str]] = deque()
        self._pending_failures: deque[_CallFailure] = deque()
        self._pending_delays: deque[float] = deque()
        self._drops: Counter[str] = Counter()
        self._duplicates: Counter[str] = Counter()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> str:
        """Serve on a background thread; returns the base URL ending in ``/pixelStripeApi``."""
        self._stopping.clear()
        self._server = _SimulatorServer(self._address, self)
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._server_thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{API_PREFIX}"

    def stop(self) -> None:
        """Stop serving and abandon running pipelines at their next stage."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)
        self.wait_idle(timeout=2.0)
        self._server = self._server_thread = None

    def __enter__(self) -> StreampixelSimulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- configuration and knobs -------------------------------------------------------------------

    def set_webhook_url(self, project_id: str, url: str | None) -> None:
        """Like saving the project's Webhook URL in the dashboard (None clears it)."""
        with self._lock:
            if url is None:
                self._webhook_urls.pop(project_id, None)
            else:
                self._webhook_urls[project_id] = url

    @property
    def window_seconds(self) -> float:
        return self._window_seconds

    @window_seconds.setter
    def window_seconds(self, seconds: float) -> None:
        with self._lock:
            self._window_seconds = seconds

    def disable_rate_limit(self) -> None:
        self.window_seconds = 0.0

    def reject_next_upload(self, objection: str, *, at_event: str = "build.extracting") -> None:
        """The next accepted upload emits ``build.rejected`` (with ``objection``) instead of ``at_event``."""
        if at_event not in REJECTABLE_EVENTS:
            raise ValueError(f"cannot reject at {at_event!r}; choose one of {sorted(REJECTABLE_EVENTS)}")
        with self._lock:
            self._pending_rejections.append((at_event, objection))

    def fail_next_calls(self, count: int, status: int = 500, *, after_processing: bool = False) -> None:
        """Answer the next ``count`` API calls with ``status``.

        By default the call is refused before any processing. With ``after_processing`` the call is
        fully processed (upload queued, window consumed) and only the answer is lost: the ambiguous case.
        """
        with self._lock:
            self._pending_failures.extend([_CallFailure(status, after_processing)] * count)

    def slow_next_calls(self, count: int, seconds: float) -> None:
        """Delay the answer of the next ``count`` API calls; the call itself is processed on arrival."""
        with self._lock:
            self._pending_delays.extend([seconds] * count)

    def drop_webhooks(self, event: str, count: int = 1) -> None:
        """Never deliver the next ``count`` webhooks of ``event`` (recorded with ``dropped=True``)."""
        with self._lock:
            self._drops[event] += count

    def duplicate_webhooks(self, event: str, count: int = 1) -> None:
        """Deliver the next ``count`` webhooks of ``event`` twice."""
        with self._lock:
            self._duplicates[event] += count

    # -- observations ------------------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    @property
    def webhooks(self) -> list[RecordedWebhook]:
        with self._lock:
            return list(self._webhooks)

    def count_429(self) -> int:
        with self._lock:
            return sum(1 for call in self._calls if call.http_status == 429)

    def delivered_events(self, upload_id: str) -> list[str]:
        """Events actually sent for an upload, in delivery order (duplicates included, drops excluded)."""
        with self._lock:
            return [hook.event for hook in self._webhooks if hook.upload_id == upload_id and not hook.dropped]

    def upload_state(self, upload_id: str) -> str | None:
        """queued/downloading/extracting/saving/distributing/approved/live/rejected, or None if unknown."""
        with self._lock:
            upload = self._uploads.get(upload_id)
            return upload.state if upload else None

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no background pipeline runs; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active_pipelines == 0, timeout=timeout)

    # -- request handling (called from server threads) ---------------------------------------------

    def handle_post(self, path: str, content_type: str, raw_body: bytes) -> tuple[int, dict[str, Any]]:
        arrived_monotonic, arrived_wall = time.monotonic(), time.time()
        endpoint = _endpoint_of(path)
        failure, delay = self._take_call_knobs()
        context = _CallContext()
        if failure is not None and not failure.after_processing:
            status, body = failure.status, {"message": "Internal server error"}
        else:
            status, body = self._process(endpoint, content_type, raw_body, context, arrived_monotonic)
            if failure is not None:
                status, body = failure.status, {"message": "Internal server error"}
        self._record_call(
            RecordedCall(
                arrived_monotonic,
                arrived_wall,
                endpoint or path,
                context.user_id,
                context.project_id,
                status,
                context.upload_id,
            )
        )
        if delay:
            time.sleep(delay)
        return status, body

    def _take_call_knobs(self) -> tuple[_CallFailure | None, float]:
        with self._lock:
            failure = self._pending_failures.popleft() if self._pending_failures else None
            delay = self._pending_delays.popleft() if self._pending_delays else 0.0
            return failure, delay

    def _process(
        self, endpoint: str | None, content_type: str, raw_body: bytes, context: _CallContext, now: float
    ) -> tuple[int, dict[str, Any]]:
        handlers: dict[str, Callable[[dict[str, Any], _CallContext, float], dict[str, Any]]] = {
            UPLOAD_ENDPOINT: self._upload_file,
            DISTRIBUTE_ENDPOINT: self._distribute_file,
            TEST_WEBHOOK_ENDPOINT: self._test_webhook,
        }
        try:
            if endpoint not in handlers:
                raise _ApiError(404, "Not found")
            body = _parse_json_body(content_type, raw_body)
            context.user_id = _optional_str(body, "userId")
            context.project_id = _optional_str(body, "projectId")
            return 200, handlers[endpoint](body, context, now)
        except _ApiError as error:
            return error.status, {"message": error.message}

    def _record_call(self, call: RecordedCall) -> None:
        with self._lock:
            self._calls.append(call)

    # -- endpoints ---------------------------------------------------------------------------------

    def _upload_file(self, body: dict[str, Any], context: _CallContext, now: float) -> dict[str, Any]:
        with self._lock:
            user_id, project_id = self._check_access(body, extra_required=("fileUrl",))
            self._take_rate_slot(user_id, now)
            file_url = _validated_file_url(body["fileUrl"], allow_query=self.allow_query_strings)
            upload = _Upload(
                upload_id=secrets.token_hex(12),  # 24 hex, like a Mongo ObjectId
                project_id=project_id,
                file_url=file_url,
                auto_release=_auto_release_flag(body),
                state="queued",
                reject_at=self._pending_rejections.popleft() if self._pending_rejections else None,
            )
            self._uploads[upload.upload_id] = upload
            context.upload_id = upload.upload_id
            self._active_pipelines += 1
        self._spawn(self._run_upload_pipeline, upload)
        return {"message": "Build queued for processing", "uploadId": upload.upload_id}

    def _distribute_file(self, body: dict[str, Any], context: _CallContext, now: float) -> dict[str, Any]:
        with self._lock:
            user_id, project_id = self._check_access(body, extra_required=("uploadId",))
            context.upload_id = body["uploadId"]
            self._take_rate_slot(user_id, now)
            upload = self._uploads.get(body["uploadId"])
            if upload is None or upload.project_id != project_id:
                raise _ApiError(404, "File not found in project")
            if upload.state not in DISTRIBUTABLE_STATES:
                raise _ApiError(400, "File has no valid URL yet: the build is not processed")
            upload.state = "distributing"
            self._active_pipelines += 1
        self._spawn(self._run_distribution, upload)
        if self.legacy_distribute_response:
            return {
                "success": True,
                "uploadId": upload.upload_id,
                "region": self.region,
                "message": "File distribution triggered successfully",
            }
        return {"message": "Distribution triggered"}

    def _test_webhook(self, body: dict[str, Any], context: _CallContext, now: float) -> dict[str, Any]:
        with self._lock:
            _, project_id = self._check_access(body, extra_required=())
            if project_id not in self._webhook_urls:
                raise _ApiError(404, "No webhook URL configured")
        delivery = self._deliver(_envelope("webhook.test", project_id, None, None, None))
        status_code = delivery.status_code if delivery is not None and delivery.status_code else 0
        if 200 <= status_code < 300:
            return {"success": True, "message": "Test webhook delivered", "statusCode": status_code}
        if status_code == 0:
            return {"success": False, "message": "Could not connect to webhook endpoint", "statusCode": 0}
        return {
            "success": False,
            "message": "Webhook endpoint returned non-2xx status",
            "statusCode": status_code,
        }

    def _check_access(self, body: dict[str, Any], *, extra_required: Iterable[str]) -> tuple[str, str]:
        """Required fields (400), key (401), user (401), project (404) and ownership (403), in that order."""
        for name in ("apiKey", "userId", "projectId", *extra_required):
            if not _optional_str(body, name):
                raise _ApiError(400, f"Missing required field: {name}")
        key_owner = self._user_by_key.get(body["apiKey"])
        if key_owner is None:
            raise _ApiError(401, "Unauthorized: Invalid API Key")
        if key_owner != body["userId"]:
            raise _ApiError(401, "Invalid User")
        project_owner = self._project_owner.get(body["projectId"])
        if project_owner is None:
            raise _ApiError(404, "Project not found")
        if project_owner != key_owner:
            raise _ApiError(403, "Forbidden: project does not belong to this user")
        return key_owner, body["projectId"]

    def _take_rate_slot(self, user_id: str, now: float) -> None:
        last = self._last_write.get(user_id)
        if self._window_seconds > 0 and last is not None and now - last < self._window_seconds:
            raise _ApiError(429, RATE_LIMIT_MESSAGE)  # a refused call does not move the window
        self._last_write[user_id] = now

    # -- background pipelines ----------------------------------------------------------------------

    def _spawn(self, target: Callable[[_Upload], None], upload: _Upload) -> None:
        threading.Thread(target=target, args=(upload,), daemon=True, name=f"sp-{upload.upload_id}").start()

    def _run_upload_pipeline(self, upload: _Upload) -> None:
        try:
            self._enter_stage(upload, "build.uploaded", "queued")
            self._enter_stage(upload, "build.downloading", "downloading")
            with tempfile.TemporaryFile() as archive:
                _download(upload.file_url, into=archive)
                self._enter_stage(upload, "build.extracting", "extracting")
                _check_build_archive(archive)
            self._enter_stage(upload, "build.saving", "saving")
            if upload.auto_release:
                self._enter_stage(upload, "build.distributing", "distributing")
                self._enter_stage(upload, "build.approved", "live")
            else:
                self._enter_stage(upload, "build.approved", "approved")  # archived, waiting for distribute
        except _Rejected as rejected:
            self._reject(upload, rejected.objection)
        except _Stopped:
            pass
        finally:
            self._pipeline_finished()

    def _run_distribution(self, upload: _Upload) -> None:
        try:
            self._enter_stage(upload, "build.distributing", "distributing")
            if self.approve_after_distribute:
                self._enter_stage(upload, "build.approved", "live")
            else:
                self._set_state(upload, "live")
        except _Rejected as rejected:
            self._reject(upload, rejected.objection)
        except _Stopped:
            pass
        finally:
            self._pipeline_finished()

    def _enter_stage(self, upload: _Upload, event: str, state: str) -> None:
        """Wait a stage, then move the build into ``state`` and announce it (or reject per the knob)."""
        if self._stopping.wait(self.stage_delay):
            raise _Stopped
        if upload.reject_at is not None and upload.reject_at[0] == event:
            raise _Rejected(upload.reject_at[1])
        self._set_state(upload, state)
        self._deliver(_envelope(event, upload.project_id, upload.upload_id, upload.file_url, None))

    def _reject(self, upload: _Upload, objection: str) -> None:
        self._set_state(upload, "rejected")
        self._deliver(
            _envelope("build.rejected", upload.project_id, upload.upload_id, upload.file_url, objection)
        )

    def _set_state(self, upload: _Upload, state: str) -> None:
        with self._lock:
            upload.state = state

    def _pipeline_finished(self) -> None:
        with self._idle:
            self._active_pipelines -= 1
            self._idle.notify_all()

    # -- webhook delivery --------------------------------------------------------------------------

    def _deliver(self, payload: dict[str, Any]) -> RecordedWebhook | None:
        """POST the payload to the project's webhook URL once (no retries, 10 s timeout).

        Returns the last delivery record, or None when no URL is configured.
        """
        event = payload["event"]
        with self._lock:
            url = self._webhook_urls.get(payload["projectId"])
            if url is None:
                return None
            if self._drops[event] > 0:
                self._drops[event] -= 1
                dropped = self._new_webhook_record(payload, url, None, None, dropped=True)
                self._webhooks.append(dropped)
                return dropped
            copies = 1
            if self._duplicates[event] > 0:
                self._duplicates[event] -= 1
                copies = 2
        record: RecordedWebhook | None = None
        for _ in range(copies):
            record = self._post_webhook(url, payload)
            with self._lock:
                self._webhooks.append(record)
        return record

    def _post_webhook(self, url: str, payload: dict[str, Any]) -> RecordedWebhook:
        try:
            response = requests.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            return self._new_webhook_record(payload, url, None, f"{type(exc).__name__}: {exc}")
        response.close()
        return self._new_webhook_record(payload, url, response.status_code, None)

    @staticmethod
    def _new_webhook_record(
        payload: dict[str, Any],
        url: str,
        status_code: int | None,
        error: str | None,
        *,
        dropped: bool = False,
    ) -> RecordedWebhook:
        return RecordedWebhook(
            monotonic=time.monotonic(),
            wall_time=time.time(),
            event=payload["event"],
            upload_id=payload["uploadId"],
            url=url,
            status_code=status_code,
            error=error,
            payload=payload,
            dropped=dropped,
        )


# -- HTTP plumbing ---------------------------------------------------------------------------------


class _SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: StreampixelSimulator) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator


class _Handler(BaseHTTPRequestHandler):
    server_version = "StreampixelSim/1.0"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length > 0 else b""
        simulator = cast(_SimulatorServer, self.server).simulator
        status, body = simulator.handle_post(self.path, self.headers.get("Content-Type", ""), raw_body)
        self._send_json(status, body)

    def do_GET(self) -> None:
        self._send_json(404, {"message": "Not found"})

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        encoded = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its read timeout fired during slow_next_calls)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: request lines would include nothing secret, but tests stay readable


# -- pure helpers ------------------------------------------------------------------------------------


def _endpoint_of(path: str) -> str | None:
    prefix = f"{API_PREFIX}/projects/"
    route = path.split("?", 1)[0]
    return route[len(prefix) :] if route.startswith(prefix) else None


def _parse_json_body(content_type: str, raw_body: bytes) -> dict[str, Any]:
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise _ApiError(415, "Unsupported Media Type: send application/json")
    try:
        body = json.loads(raw_body or b"null")
    except ValueError:
        raise _ApiError(400, "Malformed JSON body") from None
    if not isinstance(body, dict):
        raise _ApiError(400, "Malformed JSON body: expected an object")
    return body


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value.strip() else None


def _validated_file_url(file_url: str, *, allow_query: bool) -> str:
    parts = urlsplit(file_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _ApiError(400, "Invalid fileUrl: must be an http(s) URL")
    if parts.query and not allow_query:
        raise _ApiError(400, "Invalid fileUrl: query strings are not allowed")
    if not parts.path.lower().endswith(".zip"):
        raise _ApiError(400, "Invalid fileUrl: must point to a .zip file")
    return file_url


def _auto_release_flag(body: dict[str, Any]) -> bool:
    value = body.get("autoRelease", True)  # documented default: true
    if not isinstance(value, bool):
        raise _ApiError(400, "Invalid field: autoRelease must be a boolean")
    return value


def _envelope(
    event: str, project_id: str, upload_id: str | None, file_url: str | None, objection: str | None
) -> dict[str, Any]:
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "event": event,
        "projectId": project_id,
        "uploadId": upload_id,
        "fileUrl": file_url,
        "status": EVENT_STATUS[event],
        "objection": objection,
        "timestamp": timestamp,
    }


def _download(file_url: str, into: IO[bytes]) -> None:
    """Stream the zip into ``into`` (GET, no auth); any failure rejects the build."""
    try:
        with requests.get(file_url, stream=True, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status_code != 200:
                raise _Rejected(OBJECTION_DOWNLOAD_FAILED)
            for chunk in response.iter_content(chunk_size=1 << 20):
                into.write(chunk)
    except requests.RequestException:
        raise _Rejected(OBJECTION_DOWNLOAD_FAILED) from None
    into.seek(0)


def _check_build_archive(archive: IO[bytes]) -> None:
    """Reject unless it is a readable zip (every entry CRC-checked) with a Windows executable on top."""
    try:
        with zipfile.ZipFile(archive) as zip_file:
            first_bad_entry = zip_file.testzip()
            names = zip_file.namelist()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError, ValueError):
        raise _Rejected(OBJECTION_CORRUPT_ZIP) from None
    if first_bad_entry is not None:
        raise _Rejected(OBJECTION_CORRUPT_ZIP)
    if not has_top_level_executable(names):
        raise _Rejected(OBJECTION_MISSING_EXE)


def has_top_level_executable(names: Iterable[str]) -> bool:
    """An ``.exe`` at the root, or directly inside the single top-level folder (``Windows/Game.exe``)."""
    paths = [name.replace("\\", "/").lstrip("/") for name in names]
    files = [path for path in paths if path and not path.endswith("/")]
    if any("/" not in path and path.lower().endswith(".exe") for path in files):
        return True
    top_levels = {path.split("/", 1)[0] for path in paths if path}
    return len(top_levels) == 1 and any(
        path.count("/") == 1 and path.lower().endswith(".exe") for path in files
    )


# -- command line ------------------------------------------------------------------------------------


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        left, sep, right = value.partition(":")
        if not sep or not left or not right:
            raise SystemExit(f"--{what} expects A:B, got {value!r}")
        pairs[left] = right
    return pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a local Streampixel simulator.")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--account", action="append", default=[], help="USER_ID:API_KEY (repeatable)")
    parser.add_argument("--project", action="append", default=[], help="PROJECT_ID:USER_ID (repeatable)")
    parser.add_argument("--webhook", action="append", default=[], help="PROJECT_ID=URL (repeatable)")
    parser.add_argument("--window", type=float, default=120.0, help="rate-limit window in seconds")
    parser.add_argument("--stage-delay", type=float, default=1.0)
    args = parser.parse_args(argv)
    simulator = StreampixelSimulator(
        accounts=_pairs(args.account, "account"),
        projects=_pairs(args.project, "project"),
        window_seconds=args.window,
        stage_delay=args.stage_delay,
        port=args.port,
    )
    for item in args.webhook:
        project_id, _, url = item.partition("=")
        simulator.set_webhook_url(project_id, url)
    print(f"Streampixel simulator on {simulator.start()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        simulator.stop()


if __name__ == "__main__":
    main()
