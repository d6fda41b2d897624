"""The simulator itself: accounts, rate limits, knobs, the asynchronous build pipeline and its webhooks."""

from __future__ import annotations

import re
import secrets
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from pixelbridge_local.streampixel_sim.accounts import Accounts, WriteWindow
from pixelbridge_local.streampixel_sim.api_requests import (
    auto_release_flag,
    endpoint_of,
    optional_str,
    parse_json_body,
    validated_file_url,
)
from pixelbridge_local.streampixel_sim.builds import check_build_archive, download, envelope
from pixelbridge_local.streampixel_sim.contract import (
    API_PREFIX,
    DISTRIBUTABLE_STATES,
    DISTRIBUTE_ENDPOINT,
    REJECTABLE_EVENTS,
    TEST_WEBHOOK_ENDPOINT,
    UPLOAD_ENDPOINT,
    ApiError,
    BuildRejected,
    CallContext,
    CallFailure,
    RecordedCall,
    RecordedWebhook,
    Stopped,
    Upload,
)
from pixelbridge_local.streampixel_sim.server import SimulatorServer
from pixelbridge_local.streampixel_sim.webhooks import post_webhook, webhook_record

UPLOAD_ID = re.compile(r"[0-9a-f]{24}")  # Streampixel ids are Mongo ObjectIds


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accounts = Accounts(accounts, projects)
        self._write_window = WriteWindow(window_seconds)
        self.stage_delay = stage_delay
        self.approve_after_distribute = approve_after_distribute
        self.legacy_distribute_response = legacy_distribute_response  # older {"success","region",...} shape
        self.allow_query_strings = allow_query_strings  # newer docs accept presigned URLs
        self.region = region
        self._address = (host, port)
        self._clock = clock  # the rate-limit window's time; tests advance a fake one instead of sleeping

        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: SimulatorServer | None = None
        self._server_thread: threading.Thread | None = None
        self._active_pipelines = 0

        self._webhook_urls: dict[str, str] = {}
        self._uploads: dict[str, Upload] = {}
        self._calls: list[RecordedCall] = []
        self._webhooks: list[RecordedWebhook] = []

        self._pending_rejections: deque[tuple[str, str]] = deque()
        self._pending_failures: deque[CallFailure] = deque()
        self._pending_delays: deque[float] = deque()
        self._unanswered: dict[str, deque[CallFailure]] = {}  # endpoint -> answer_after_the_caller_is_gone
        self._endpoint_failures: dict[str, deque[CallFailure]] = {}  # endpoint -> fail_next_calls(endpoint=)
        self._drops: Counter[str] = Counter()
        self._duplicates: Counter[str] = Counter()
        self._late: Counter[str] = Counter()
        self._held_back: dict[str, list[dict[str, Any]]] = {}  # uploadId -> webhooks sent after the next one
        self._announce_before_answer = 0
        self._queue_held = False
        self._tickets_issued = 0  # uploads queued while held get tickets and then run one at a time
        self._ticket_served = 0
        self._live: dict[str, str] = {}  # projectId -> the uploadId it serves

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> str:
        """Serve on a background thread; returns the base URL ending in ``/pixelStripeApi``."""
        self._stopping.clear()
        self._server = SimulatorServer(self._address, self)
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
        return self._write_window.seconds

    @window_seconds.setter
    def window_seconds(self, seconds: float) -> None:
        with self._lock:
            self._write_window.seconds = seconds

    def disable_rate_limit(self) -> None:
        self.window_seconds = 0.0

    def reject_next_upload(self, objection: str, *, at_event: str = "build.extracting") -> None:
        """The next accepted upload emits ``build.rejected`` (with ``objection``) instead of ``at_event``."""
        if at_event not in REJECTABLE_EVENTS:
            raise ValueError(f"cannot reject at {at_event!r}; choose one of {sorted(REJECTABLE_EVENTS)}")
        with self._lock:
            self._pending_rejections.append((at_event, objection))

    def fail_next_calls(
        self, count: int, status: int = 500, *, after_processing: bool = False, endpoint: str | None = None
    ) -> None:
        """Answer the next ``count`` API calls (of ``endpoint`` only, if given) with ``status``.

        By default the call is refused before any processing. With ``after_processing`` the call is
        fully processed (upload queued, window consumed) and only the answer is lost: the ambiguous case.
        """
        with self._lock:
            failures = [CallFailure(status, after_processing)] * count
            if endpoint is None:
                self._pending_failures.extend(failures)
            else:
                self._endpoint_failures.setdefault(endpoint, deque()).extend(failures)

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

    def deliver_late(self, event: str, count: int = 1) -> None:
        """Out of order ("roughly the order listed"): the next ``count`` webhooks of ``event`` are sent
        after the next webhook of the same upload (or when its pipeline ends)."""
        with self._lock:
            self._late[event] += count

    def announce_before_answer(self, count: int = 1) -> None:
        """The next ``count`` accepted uploads send ``build.uploaded`` before upload-file answers."""
        with self._lock:
            self._announce_before_answer += count

    def drop_next_connections(self, count: int = 1) -> None:
        """Process the next ``count`` calls fully, then close the connection without an answer."""
        with self._lock:
            self._pending_failures.extend([CallFailure(0, True)] * count)

    def answer_after_the_caller_is_gone(
        self, count: int = 1, *, processed: bool = True, endpoint: str = UPLOAD_ENDPOINT
    ) -> None:
        """The next ``count`` calls of ``endpoint`` get no answer while their caller waits: the connection
        stays open, unanswered, until the caller closes it (e.g. Lambda stopped the process at its Timeout).

        ``processed``: the call is fully processed on arrival (upload queued, window consumed), so the
        caller never learns its uploadId; otherwise it is counted but never processed (it was lost in
        front of the API, like a request stuck at the edge)."""
        with self._lock:
            gone = CallFailure(0, processed, until_caller_gone=True)
            self._unanswered.setdefault(endpoint, deque()).extend([gone] * count)

    def hold_queue(self) -> None:
        """Queued uploads stay queued (the shared build processor is busy) until ``release_queue``;
        then they are processed one at a time, in the order they were uploaded."""
        with self._idle:
            self._queue_held = True

    def release_queue(self) -> None:
        with self._idle:
            self._queue_held = False
            self._idle.notify_all()

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

    def live_upload(self, project_id: str) -> str | None:
        """The uploadId the project serves now (the last one that went live), or None."""
        with self._lock:
            return self._live.get(project_id)

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

    def handle_post(
        self,
        path: str,
        content_type: str,
        raw_body: bytes,
        wait_for_caller_gone: Callable[[threading.Event], None] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Status and body of the answer; status 0: close the connection without one."""
        arrived_monotonic, arrived_wall = self._clock(), time.time()
        endpoint = endpoint_of(path)
        failure, delay = self._take_call_knobs(endpoint)
        context = CallContext()
        if failure is not None and not failure.after_processing:
            status, body = failure.status, {"message": "Internal server error"}
        else:
            status, body = self._process(endpoint, content_type, raw_body, context, arrived_monotonic)
            if failure is not None:
                status, body = failure.status, {"message": "Internal server error"}
        if status == 0:
            body = {}  # the server closes the connection without an answer
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
        if failure is not None and failure.until_caller_gone and wait_for_caller_gone is not None:
            wait_for_caller_gone(self._stopping)
        return status, body

    def _take_call_knobs(self, endpoint: str | None) -> tuple[CallFailure | None, float]:
        with self._lock:
            unanswered = self._unanswered.get(endpoint or "")
            if unanswered:
                return unanswered.popleft(), 0.0
            for_endpoint = self._endpoint_failures.get(endpoint or "")
            if for_endpoint:
                return for_endpoint.popleft(), self._pending_delays.popleft() if self._pending_delays else 0.0
            failure = self._pending_failures.popleft() if self._pending_failures else None
            delay = self._pending_delays.popleft() if self._pending_delays else 0.0
            return failure, delay

    def _process(
        self, endpoint: str | None, content_type: str, raw_body: bytes, context: CallContext, now: float
    ) -> tuple[int, dict[str, Any]]:
        handlers: dict[str, Callable[[dict[str, Any], CallContext, float], dict[str, Any]]] = {
            UPLOAD_ENDPOINT: self._upload_file,
            DISTRIBUTE_ENDPOINT: self._distribute_file,
            TEST_WEBHOOK_ENDPOINT: self._test_webhook,
        }
        try:
            if endpoint not in handlers:
                raise ApiError(404, "Not found")
            body = parse_json_body(content_type, raw_body)
            context.user_id = optional_str(body, "userId")
            context.project_id = optional_str(body, "projectId")
            return 200, handlers[endpoint](body, context, now)
        except ApiError as error:
            return error.status, {"message": error.message}

    def _record_call(self, call: RecordedCall) -> None:
        with self._lock:
            self._calls.append(call)

    # -- endpoints ---------------------------------------------------------------------------------

    def _upload_file(self, body: dict[str, Any], context: CallContext, now: float) -> dict[str, Any]:
        with self._lock:
            user_id, project_id = self._accounts.check_access(body, extra_required=("fileUrl",))
            self._write_window.take(user_id, now)
            file_url = validated_file_url(body["fileUrl"], allow_query=self.allow_query_strings)
            upload = Upload(
                upload_id=secrets.token_hex(12),  # 24 hex, like a Mongo ObjectId
                project_id=project_id,
                file_url=file_url,
                auto_release=auto_release_flag(body),
                state="queued",
                reject_at=self._pending_rejections.popleft() if self._pending_rejections else None,
            )
            self._uploads[upload.upload_id] = upload
            context.upload_id = upload.upload_id
            self._active_pipelines += 1
            if self._queue_held:
                upload.ticket = self._tickets_issued
                self._tickets_issued += 1
            announce = self._announce_before_answer > 0
            self._announce_before_answer -= 1 if announce else 0
        if announce:
            upload.announced = True
            self._deliver(envelope("build.uploaded", project_id, upload.upload_id, file_url, None))
        self._spawn(self._run_upload_pipeline, upload)
        return {"message": "Build queued for processing", "uploadId": upload.upload_id}

    def _distribute_file(self, body: dict[str, Any], context: CallContext, now: float) -> dict[str, Any]:
        with self._lock:
            user_id, project_id = self._accounts.check_access(body, extra_required=("uploadId",))
            context.upload_id = body["uploadId"]
            self._write_window.take(user_id, now)
            if not UPLOAD_ID.fullmatch(str(body["uploadId"])):
                raise ApiError(400, "Invalid uploadId")
            upload = self._uploads.get(body["uploadId"])
            if upload is None or upload.project_id != project_id:
                raise ApiError(404, "File not found in project")
            if upload.state not in DISTRIBUTABLE_STATES:
                raise ApiError(400, "File has no valid URL yet: the build is not processed")
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

    def _test_webhook(self, body: dict[str, Any], context: CallContext, now: float) -> dict[str, Any]:
        with self._lock:
            _, project_id = self._accounts.check_access(body, extra_required=())
            if project_id not in self._webhook_urls:
                raise ApiError(404, "No webhook URL configured")
        delivery = self._deliver(envelope("webhook.test", project_id, None, None, None))
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

    # -- background pipelines ----------------------------------------------------------------------

    def _spawn(self, target: Callable[[Upload], None], upload: Upload) -> None:
        threading.Thread(target=target, args=(upload,), daemon=True, name=f"sp-{upload.upload_id}").start()

    def _run_upload_pipeline(self, upload: Upload) -> None:
        try:
            if not upload.announced:
                self._enter_stage(upload, "build.uploaded", "queued")
            self._wait_in_queue(upload)
            self._enter_stage(upload, "build.downloading", "downloading")
            with tempfile.TemporaryFile() as archive:
                download(upload.file_url, into=archive)
                self._enter_stage(upload, "build.extracting", "extracting")
                check_build_archive(archive)
            self._enter_stage(upload, "build.saving", "saving")
            if upload.auto_release:
                self._enter_stage(upload, "build.distributing", "distributing")
                self._enter_stage(upload, "build.approved", "live")
            else:
                self._enter_stage(upload, "build.approved", "approved")  # archived, waiting for distribute
        except BuildRejected as rejected:
            self._reject(upload, rejected.objection)
        except Stopped:
            pass
        finally:
            self._leave_queue(upload)
            self._send_held_back(upload.upload_id)
            self._pipeline_finished()

    def _wait_in_queue(self, upload: Upload) -> None:
        if upload.ticket is None:
            return
        with self._idle:
            while self._queue_held or self._ticket_served != upload.ticket:
                if self._stopping.is_set():
                    raise Stopped
                self._idle.wait(0.05)

    def _leave_queue(self, upload: Upload) -> None:
        with self._idle:
            if upload.ticket is not None and self._ticket_served == upload.ticket:
                self._ticket_served += 1
                upload.ticket = None
                self._idle.notify_all()

    def _run_distribution(self, upload: Upload) -> None:
        try:
            self._enter_stage(upload, "build.distributing", "distributing")
            if self.approve_after_distribute:
                self._enter_stage(upload, "build.approved", "live")
            else:
                self._set_state(upload, "live")
        except BuildRejected as rejected:
            self._reject(upload, rejected.objection)
        except Stopped:
            pass
        finally:
            self._send_held_back(upload.upload_id)
            self._pipeline_finished()

    def _enter_stage(self, upload: Upload, event: str, state: str) -> None:
        """Wait a stage, then move the build into ``state`` and announce it (or reject per the knob)."""
        if self._stopping.wait(self.stage_delay):
            raise Stopped
        if upload.reject_at is not None and upload.reject_at[0] == event:
            raise BuildRejected(upload.reject_at[1])
        self._set_state(upload, state)
        self._deliver(envelope(event, upload.project_id, upload.upload_id, upload.file_url, None))

    def _reject(self, upload: Upload, objection: str) -> None:
        self._set_state(upload, "rejected")
        self._deliver(
            envelope("build.rejected", upload.project_id, upload.upload_id, upload.file_url, objection)
        )

    def _set_state(self, upload: Upload, state: str) -> None:
        with self._lock:
            upload.state = state
            if state == "live":
                self._live[upload.project_id] = upload.upload_id

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
        upload_id = payload.get("uploadId")
        with self._lock:
            url = self._webhook_urls.get(payload["projectId"])
            if url is None:
                return None
            if upload_id and self._late[event] > 0:
                self._late[event] -= 1
                self._held_back.setdefault(upload_id, []).append(payload)
                return None
            late = self._held_back.pop(upload_id, []) if upload_id else []
            if self._drops[event] > 0:
                self._drops[event] -= 1
                dropped = webhook_record(payload, url, None, None, dropped=True)
                self._webhooks.append(dropped)
                return dropped
            copies = 1
            if self._duplicates[event] > 0:
                self._duplicates[event] -= 1
                copies = 2
        record: RecordedWebhook | None = None
        for _ in range(copies):
            record = post_webhook(url, payload)
            with self._lock:
                self._webhooks.append(record)
        for held in late:
            self._post(url, held)
        return record

    def _post(self, url: str, payload: dict[str, Any]) -> None:
        record = post_webhook(url, payload)
        with self._lock:
            self._webhooks.append(record)

    def _send_held_back(self, upload_id: str) -> None:
        with self._lock:
            late = self._held_back.pop(upload_id, [])
            url = self._webhook_urls.get(late[0]["projectId"]) if late else None
        for held in late:
            if url is not None:
                self._post(url, held)
