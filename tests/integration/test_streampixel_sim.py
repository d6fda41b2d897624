"""Integration tests: the Streampixel simulator over real loopback HTTP, driven by the real client.

A tiny webhook receiver and a static file server (serving the build zips) run in threads next to it.
"""

from __future__ import annotations

import functools
import io
import json
import re
import socket
import threading
import zipfile
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from pixelbridge.adapters.streampixel import (
    DistributeResult,
    StreampixelClient,
    StreampixelCredentials,
    TestWebhookResult,
)
from pixelbridge.domain.errors import RateLimited, StreampixelError, Transient
from pixelbridge_local.streampixel_sim import (
    OBJECTION_CORRUPT_ZIP,
    OBJECTION_DOWNLOAD_FAILED,
    OBJECTION_MISSING_EXE,
    RATE_LIMIT_MESSAGE,
    StreampixelSimulator,
    has_top_level_executable,
)

USER_A, KEY_A = "663d1f2e3a4b5c6d7e8f9012", "key-a-0123456789abcdef"
USER_B, KEY_B = "663d1f2e3a4b5c6d7e8f9034", "key-b-fedcba9876543210"
PROJECT_A = "67944b8a3f323be4b89a2272"
PROJECT_A2 = "67944b8a3f323be4b89a2273"
PROJECT_B = "67944b8a3f323be4b89a2299"
CREDS_A = StreampixelCredentials(USER_A, KEY_A)
CREDS_B = StreampixelCredentials(USER_B, KEY_B)

AUTO_EVENTS = [
    "build.uploaded",
    "build.downloading",
    "build.extracting",
    "build.saving",
    "build.distributing",
    "build.approved",
]
MANUAL_EVENTS = ["build.uploaded", "build.downloading", "build.extracting", "build.saving", "build.approved"]
STAGE_DELAY = 0.01


# -- helper servers ----------------------------------------------------------------------------------


class WebhookReceiver:
    """Collects webhook POSTs; answers ``status`` (settable)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver.received.append(payload)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/streampixel"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self, upload_id: str | None) -> list[str]:
        with self._lock:
            return [p["event"] for p in self.received if p["uploadId"] == upload_id]

    def payloads(self, upload_id: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.received if p["uploadId"] == upload_id]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


GOOD_BUILD = {
    "Windows/MyGame.exe": b"MZ" + b"\0" * 64,
    "Windows/MyGame/Binaries/Win64/MyGame-Win64-Shipping.exe": b"MZ" + b"\1" * 64,
    "Windows/MyGame/Content/Paks/MyGame-Windows.pak": b"pak" * 1000,
}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver()
    yield hooks
    hooks.close()


@pytest.fixture
def file_host(tmp_path: Path) -> Iterator[str]:
    """Serves tmp_path/builds over HTTP; the zips every test may use are written there."""
    root = tmp_path / "builds"
    root.mkdir()
    (root / "Game.zip").write_bytes(zip_bytes(GOOD_BUILD))
    (root / "RootExe.zip").write_bytes(zip_bytes({"Game.exe": b"MZ", "Game/Content/a.pak": b"x"}))
    (root / "NoExe.zip").write_bytes(
        zip_bytes({"Windows/MyGame/Content/a.pak": b"x", "Windows/readme.txt": b"hi"})
    )
    (root / "DeepExe.zip").write_bytes(zip_bytes({"A/B/Game.exe": b"MZ"}))
    (root / "Corrupt.zip").write_bytes(b"this is not a zip file at all" * 10)
    good = zip_bytes(GOOD_BUILD)
    (root / "Truncated.zip").write_bytes(good[: len(good) // 2])
    crc_broken = bytearray(good)
    pak_offset = crc_broken.index(b"pak" * 10) if b"pak" * 10 in crc_broken else len(crc_broken) // 3
    crc_broken[pak_offset] ^= 0xFF
    (root / "BadCrc.zip").write_bytes(bytes(crc_broken))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(root)))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class ManualClock:
    """The simulator's rate-limit clock: tests move it instead of sleeping against a short window."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def window_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(receiver: WebhookReceiver, window_clock: ManualClock) -> Iterator[StreampixelSimulator]:
    simulator = StreampixelSimulator(
        accounts={USER_A: KEY_A, USER_B: KEY_B},
        projects={PROJECT_A: USER_A, PROJECT_A2: USER_A, PROJECT_B: USER_B},
        window_seconds=0.0,
        stage_delay=STAGE_DELAY,
        clock=window_clock,
    )
    simulator.start()
    simulator.set_webhook_url(PROJECT_A, receiver.url)
    simulator.set_webhook_url(PROJECT_B, receiver.url)
    yield simulator
    simulator.stop()


@pytest.fixture
def client(sim: StreampixelSimulator) -> StreampixelClient:
    return StreampixelClient(sim.base_url, timeout=(2.0, 5.0))


def finish(sim: StreampixelSimulator) -> None:
    assert sim.wait_idle(timeout=10), "simulator pipelines did not finish"


def raw_post(sim: StreampixelSimulator, endpoint: str, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(f"{sim.base_url}/projects/{endpoint}", json=body, timeout=5, **kwargs)


def upload_body(file_url: str, **overrides: Any) -> dict[str, Any]:
    return {"apiKey": KEY_A, "userId": USER_A, "projectId": PROJECT_A, "fileUrl": file_url} | overrides


# -- pipelines ---------------------------------------------------------------------------------------


def test_base_url_ends_with_api_prefix(sim: StreampixelSimulator) -> None:
    assert sim.base_url.startswith("http://127.0.0.1:") and sim.base_url.endswith("/pixelStripeApi")


def test_happy_auto_release_path_emits_every_stage_in_order(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    file_url = f"{file_host}/Game.zip"
    result = client.upload_file(CREDS_A, PROJECT_A, file_url, auto_release=True)
    assert result.message == "Build queued for processing"
    assert result.upload_id is not None and len(result.upload_id) == 24
    int(result.upload_id, 16)
    finish(sim)

    assert receiver.events(result.upload_id) == AUTO_EVENTS
    payloads = receiver.payloads(result.upload_id)
    assert [p["status"] for p in payloads] == [
        "pending",
        "Downloading Files",
        "Extracting & Scanning",
        "Saving to Repository",
        "Distribute",
        "Approved",
    ]
    for payload in payloads:
        assert set(payload) == {
            "event",
            "projectId",
            "uploadId",
            "fileUrl",
            "status",
            "objection",
            "timestamp",
        }
        assert (payload["projectId"], payload["fileUrl"], payload["objection"]) == (PROJECT_A, file_url, None)
        datetime.fromisoformat(payload["timestamp"])
    assert sim.upload_state(result.upload_id) == "live"
    assert sim.delivered_events(result.upload_id) == AUTO_EVENTS
    assert all(hook.status_code == 200 for hook in sim.webhooks)


def test_manual_path_waits_for_distribute(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=False).upload_id
    assert upload_id is not None
    finish(sim)
    assert receiver.events(upload_id) == MANUAL_EVENTS
    assert sim.upload_state(upload_id) == "approved"

    assert client.distribute_file(CREDS_A, PROJECT_A, upload_id) == DistributeResult(
        "Distribution triggered", None
    )
    finish(sim)
    assert receiver.events(upload_id) == [*MANUAL_EVENTS, "build.distributing", "build.approved"]
    assert sim.upload_state(upload_id) == "live"
    # A live build can be distributed again (rollback to it later).
    client.distribute_file(CREDS_A, PROJECT_A, upload_id)
    finish(sim)


def test_distribute_without_final_approved_and_legacy_shape(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.approve_after_distribute = False
    sim.legacy_distribute_response = True
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=False).upload_id
    assert upload_id is not None
    finish(sim)
    result = client.distribute_file(CREDS_A, PROJECT_A, upload_id)
    assert result == DistributeResult("File distribution triggered successfully", "asia-pacific")
    finish(sim)
    assert receiver.events(upload_id) == [*MANUAL_EVENTS, "build.distributing"]
    assert sim.upload_state(upload_id) == "live"


def test_distribute_refusals(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.stage_delay = 0.15  # keep the build in processing long enough to try distributing it
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=False).upload_id
    assert upload_id is not None
    with pytest.raises(StreampixelError) as not_ready:
        client.distribute_file(CREDS_A, PROJECT_A, upload_id)
    assert not_ready.value.status == 400
    with pytest.raises(StreampixelError) as unknown:
        client.distribute_file(CREDS_A, PROJECT_A, "0" * 24)
    assert (unknown.value.status, unknown.value.message) == (404, "File not found in project")
    with pytest.raises(StreampixelError) as other_project:
        client.distribute_file(CREDS_A, PROJECT_A2, upload_id)
    assert (other_project.value.status, other_project.value.message) == (404, "File not found in project")
    finish(sim)


# -- rate limit --------------------------------------------------------------------------------------


def test_429_within_window_then_success_after_it(
    sim: StreampixelSimulator, client: StreampixelClient, file_host: str, window_clock: ManualClock
) -> None:
    sim.window_seconds = 0.5
    client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)
    with pytest.raises(RateLimited, match="Rate limit exceeded"):
        client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)
    window_clock.advance(0.55)
    client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)
    finish(sim)

    assert sim.count_429() == 1
    accepted = [call for call in sim.calls if call.http_status == 200]
    assert len(accepted) == 2 and all(call.upload_id for call in accepted)
    assert accepted[1].monotonic - accepted[0].monotonic >= 0.5
    assert [c.endpoint for c in sim.calls] == ["upload-file"] * 3
    assert all((c.user_id, c.project_id) == (USER_A, PROJECT_A) for c in sim.calls)


def test_429_does_not_consume_the_window(
    sim: StreampixelSimulator, client: StreampixelClient, file_host: str, window_clock: ManualClock
) -> None:
    sim.window_seconds = 0.5
    client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)
    window_clock.advance(0.3)
    with pytest.raises(RateLimited):
        client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)
    window_clock.advance(0.25)  # 0.55 s after the accepted call, only 0.25 s after the 429
    client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)
    finish(sim)


def test_window_is_shared_by_upload_and_distribute_and_is_per_user(
    sim: StreampixelSimulator, client: StreampixelClient, file_host: str, window_clock: ManualClock
) -> None:
    sim.window_seconds = 0.8
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=False).upload_id
    assert upload_id is not None
    finish(sim)
    with pytest.raises(RateLimited):
        client.distribute_file(CREDS_A, PROJECT_A, upload_id)
    # Another user has a window of their own.
    client.upload_file(CREDS_B, PROJECT_B, f"{file_host}/Game.zip", auto_release=True)
    window_clock.advance(0.85)
    client.distribute_file(CREDS_A, PROJECT_A, upload_id)
    finish(sim)
    statuses = [(c.endpoint, c.user_id, c.http_status) for c in sim.calls]
    assert statuses == [
        ("upload-file", USER_A, 200),
        ("distribute-file", USER_A, 429),
        ("upload-file", USER_B, 200),
        ("distribute-file", USER_A, 200),
    ]


def test_concurrent_uploads_get_exactly_one_slot(sim: StreampixelSimulator, file_host: str) -> None:
    sim.window_seconds = 30.0
    statuses: list[int] = []
    lock = threading.Lock()

    def upload() -> None:
        response = raw_post(sim, "upload-file", upload_body(f"{file_host}/Game.zip"))
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finish(sim)
    assert sorted(statuses) == [200] + [429] * 7
    assert sim.count_429() == 7


def test_429_body_is_the_documented_message(sim: StreampixelSimulator, file_host: str) -> None:
    sim.window_seconds = 10.0
    assert raw_post(sim, "upload-file", upload_body(f"{file_host}/Game.zip")).status_code == 200
    response = raw_post(sim, "upload-file", upload_body(f"{file_host}/Game.zip"))
    assert (response.status_code, response.json()) == (429, {"message": RATE_LIMIT_MESSAGE})
    finish(sim)


# -- request validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"fileUrl": None}, 400, "Missing required field: fileUrl"),
        ({"projectId": ""}, 400, "Missing required field: projectId"),
        ({"userId": None}, 400, "Missing required field: userId"),
        ({"apiKey": None}, 400, "Missing required field: apiKey"),
        ({"apiKey": "rotated-key"}, 401, "Unauthorized: Invalid API Key"),
        ({"userId": USER_B}, 401, "Invalid User"),
        ({"projectId": PROJECT_B}, 403, "Forbidden: project does not belong to this user"),
        ({"projectId": "f" * 24}, 404, "Project not found"),
        ({"fileUrl": "ftp://host/Game.zip"}, 400, "Invalid fileUrl: must be an http(s) URL"),
        ({"fileUrl": "https://host/Game.tar.gz"}, 400, "Invalid fileUrl: must point to a .zip file"),
        (
            {"fileUrl": "https://host/Game.zip?X-Amz-Signature=abc"},
            400,
            "Invalid fileUrl: query strings are not allowed",
        ),
        ({"autoRelease": "false"}, 400, "Invalid field: autoRelease must be a boolean"),
    ],
)
def test_upload_request_rules(
    sim: StreampixelSimulator, overrides: dict[str, Any], status: int, message: str
) -> None:
    body = {k: v for k, v in upload_body("https://host/Game.zip", **overrides).items() if v is not None}
    response = raw_post(sim, "upload-file", body)
    assert (response.status_code, response.json()) == (status, {"message": message})
    assert sim.calls[-1].http_status == status
    assert sim.wait_idle(0.1) and not sim.webhooks  # nothing was queued


def test_each_4xx_maps_to_streampixel_error_through_the_client(
    sim: StreampixelSimulator, client: StreampixelClient
) -> None:
    with pytest.raises(StreampixelError) as caught:
        client.upload_file(
            StreampixelCredentials(USER_A, "wrong"), PROJECT_A, "https://h/G.zip", auto_release=True
        )
    assert (caught.value.status, caught.value.message) == (401, "Unauthorized: Invalid API Key")
    assert "wrong" not in str(caught.value)


def test_non_json_body_is_415(sim: StreampixelSimulator) -> None:
    response = requests.post(
        f"{sim.base_url}/projects/upload-file",
        data="apiKey=x&userId=y",
        timeout=5,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    malformed = requests.post(
        f"{sim.base_url}/projects/upload-file",
        data="{not json",
        timeout=5,
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400


def test_query_strings_accepted_when_allowed(
    sim: StreampixelSimulator, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.allow_query_strings = True
    response = raw_post(sim, "upload-file", upload_body(f"{file_host}/Game.zip?X-Amz-Expires=3600"))
    assert response.status_code == 200
    finish(sim)
    assert receiver.events(response.json()["uploadId"]) == AUTO_EVENTS


def test_auto_release_defaults_to_true(
    sim: StreampixelSimulator, receiver: WebhookReceiver, file_host: str
) -> None:
    response = raw_post(sim, "upload-file", upload_body(f"{file_host}/Game.zip"))
    finish(sim)
    assert receiver.events(response.json()["uploadId"]) == AUTO_EVENTS


def test_unknown_route_is_404(sim: StreampixelSimulator) -> None:
    assert raw_post(sim, "delete-file", {"apiKey": KEY_A}).status_code == 404


# -- knobs ---------------------------------------------------------------------------------------


def test_reject_knob_at_a_stage_stops_the_pipeline(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.reject_next_upload("Build contains unsupported file formats.", at_event="build.saving")
    rejected = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=False).upload_id
    second = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True).upload_id
    finish(sim)
    assert rejected is not None and second is not None
    assert receiver.events(rejected) == [
        "build.uploaded",
        "build.downloading",
        "build.extracting",
        "build.rejected",
    ]
    last = receiver.payloads(rejected)[-1]
    assert (last["status"], last["objection"]) == ("Reject", "Build contains unsupported file formats.")
    assert sim.upload_state(rejected) == "rejected"
    assert receiver.events(second) == AUTO_EVENTS  # the knob is spent on one upload
    with pytest.raises(StreampixelError) as caught:
        client.distribute_file(CREDS_A, PROJECT_A, rejected)
    assert caught.value.status == 400


def test_reject_knob_during_manual_distribution(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.reject_next_upload("Worker sanity check failed", at_event="build.distributing")
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=False).upload_id
    assert upload_id is not None
    finish(sim)
    assert receiver.events(upload_id) == MANUAL_EVENTS
    client.distribute_file(CREDS_A, PROJECT_A, upload_id)
    finish(sim)
    assert receiver.events(upload_id) == [*MANUAL_EVENTS, "build.rejected"]


def test_reject_knob_refuses_unknown_event(sim: StreampixelSimulator) -> None:
    with pytest.raises(ValueError):
        sim.reject_next_upload("x", at_event="build.rejected")


def test_fail_next_calls_then_recover_without_consuming_window(
    sim: StreampixelSimulator, client: StreampixelClient, file_host: str
) -> None:
    sim.window_seconds = 5.0
    sim.fail_next_calls(2, status=503)
    for _ in range(2):
        with pytest.raises(Transient) as caught:
            client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)
        assert caught.value.ambiguous is True
    assert client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True).upload_id
    finish(sim)
    assert [c.http_status for c in sim.calls] == [503, 503, 200]
    assert len({hook.upload_id for hook in sim.webhooks}) == 1


def test_fail_next_calls_of_one_endpoint_leave_the_other_answered(
    sim: StreampixelSimulator, client: StreampixelClient, file_host: str
) -> None:
    sim.disable_rate_limit()
    sim.fail_next_calls(1, status=500, endpoint="distribute-file")
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=False).upload_id
    assert upload_id
    finish(sim)
    with pytest.raises(Transient):
        client.distribute_file(CREDS_A, PROJECT_A, upload_id)
    client.distribute_file(CREDS_A, PROJECT_A, upload_id)
    assert [(c.endpoint, c.http_status) for c in sim.calls] == [
        ("upload-file", 200),
        ("distribute-file", 500),
        ("distribute-file", 200),
    ]


def test_fail_after_processing_is_the_ambiguous_case(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.window_seconds = 5.0
    sim.fail_next_calls(1, status=500, after_processing=True)
    with pytest.raises(Transient):
        client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)
    finish(sim)
    hidden_upload = sim.calls[0].upload_id
    assert sim.calls[0].http_status == 500 and hidden_upload is not None
    assert receiver.events(hidden_upload) == AUTO_EVENTS  # it did happen
    with pytest.raises(RateLimited):  # and it took the window
        client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)


def test_slow_answer_times_out_the_client_but_the_upload_happened(
    sim: StreampixelSimulator, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.slow_next_calls(1, seconds=1.0)
    impatient = StreampixelClient(sim.base_url, timeout=(2.0, 0.3))
    with pytest.raises(Transient) as caught:
        impatient.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)
    assert caught.value.ambiguous is True
    finish(sim)
    assert sim.calls[0].http_status == 200
    assert receiver.events(sim.calls[0].upload_id) == AUTO_EVENTS


def test_drop_and_duplicate_webhooks(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.drop_webhooks("build.downloading")
    sim.duplicate_webhooks("build.saving")
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True).upload_id
    finish(sim)
    assert receiver.events(upload_id) == [
        "build.uploaded",
        "build.extracting",
        "build.saving",
        "build.saving",
        "build.distributing",
        "build.approved",
    ]
    dropped = [hook for hook in sim.webhooks if hook.dropped]
    assert [(hook.event, hook.status_code) for hook in dropped] == [("build.downloading", None)]
    second = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True).upload_id
    finish(sim)
    assert receiver.events(second) == AUTO_EVENTS  # knobs are spent


def test_announce_before_answer_and_late_webhooks(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.announce_before_answer()
    sim.deliver_late("build.extracting")
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True).upload_id
    assert receiver.events(upload_id)[:1] == ["build.uploaded"]  # before the answer reached us
    finish(sim)
    assert receiver.events(upload_id) == [
        "build.uploaded",
        "build.downloading",
        "build.saving",
        "build.extracting",  # roughly in order: one stage late
        "build.distributing",
        "build.approved",
    ]
    assert sim.live_upload(PROJECT_A) == upload_id


def test_queued_uploads_wait_until_the_queue_is_released(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.hold_queue()
    first = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True).upload_id
    second = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True).upload_id
    assert first and second
    assert not sim.wait_idle(timeout=0.3)  # held indefinitely: this can only time out
    assert (sim.upload_state(first), sim.upload_state(second)) == ("queued", "queued")
    assert sim.live_upload(PROJECT_A) is None
    sim.release_queue()
    finish(sim)
    assert sim.upload_state(first) == sim.upload_state(second) == "live"
    assert sim.live_upload(PROJECT_A) == second  # one at a time, in upload order: the last one serves
    order = [(hook.upload_id, hook.event) for hook in sim.webhooks]
    assert order.index((first, "build.approved")) < order.index((second, "build.downloading"))


def test_a_dropped_connection_is_ambiguous_but_the_upload_happened(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    sim.drop_next_connections(1)
    with pytest.raises(Transient) as caught:
        client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True)
    assert caught.value.ambiguous is True
    finish(sim)
    hidden_upload = sim.calls[0].upload_id
    assert hidden_upload is not None and receiver.events(hidden_upload) == AUTO_EVENTS


def test_only_direct_downloads_and_24_hex_upload_ids(
    sim: StreampixelSimulator,
    client: StreampixelClient,
    receiver: WebhookReceiver,
    file_host: str,
    tmp_path: Path,
) -> None:
    (tmp_path / "builds" / "Folder.zip").mkdir()  # the file server answers 301 to "Folder.zip/"
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Folder.zip", auto_release=True).upload_id
    finish(sim)
    assert receiver.events(upload_id)[-1] == "build.rejected"
    assert receiver.payloads(upload_id)[-1]["objection"] == OBJECTION_DOWNLOAD_FAILED
    assert upload_id is not None and re.fullmatch(r"[0-9a-f]{24}", upload_id)
    with pytest.raises(StreampixelError) as not_hex:
        client.distribute_file(CREDS_A, PROJECT_A, "u1")
    assert (not_hex.value.status, not_hex.value.message) == (400, "Invalid uploadId")


def test_webhooks_are_not_retried(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    receiver.status = 500
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/Game.zip", auto_release=True).upload_id
    finish(sim)
    assert receiver.events(upload_id) == AUTO_EVENTS  # one attempt per event
    assert [hook.status_code for hook in sim.webhooks] == [500] * len(AUTO_EVENTS)


def test_no_webhook_url_means_no_delivery(
    sim: StreampixelSimulator, client: StreampixelClient, file_host: str
) -> None:
    upload_id = client.upload_file(CREDS_A, PROJECT_A2, f"{file_host}/Game.zip", auto_release=True).upload_id
    finish(sim)
    assert sim.webhooks == [] and sim.upload_state(upload_id or "") == "live"


# -- build archive checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "objection", "events_before"),
    [
        ("Corrupt.zip", OBJECTION_CORRUPT_ZIP, ["build.uploaded", "build.downloading", "build.extracting"]),
        ("Truncated.zip", OBJECTION_CORRUPT_ZIP, ["build.uploaded", "build.downloading", "build.extracting"]),
        ("BadCrc.zip", OBJECTION_CORRUPT_ZIP, ["build.uploaded", "build.downloading", "build.extracting"]),
        ("NoExe.zip", OBJECTION_MISSING_EXE, ["build.uploaded", "build.downloading", "build.extracting"]),
        ("DeepExe.zip", OBJECTION_MISSING_EXE, ["build.uploaded", "build.downloading", "build.extracting"]),
        ("Missing.zip", OBJECTION_DOWNLOAD_FAILED, ["build.uploaded", "build.downloading"]),
    ],
)
def test_bad_builds_are_rejected(
    sim: StreampixelSimulator,
    client: StreampixelClient,
    receiver: WebhookReceiver,
    file_host: str,
    name: str,
    objection: str,
    events_before: list[str],
) -> None:
    upload_id = client.upload_file(CREDS_A, PROJECT_A, f"{file_host}/{name}", auto_release=True).upload_id
    finish(sim)
    assert receiver.events(upload_id) == [*events_before, "build.rejected"]
    assert receiver.payloads(upload_id)[-1]["objection"] == objection


def test_unreachable_file_host_rejects(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver
) -> None:
    upload_id = client.upload_file(
        CREDS_A, PROJECT_A, f"http://127.0.0.1:{_closed_port()}/G.zip", auto_release=True
    ).upload_id
    finish(sim)
    assert receiver.payloads(upload_id)[-1]["objection"] == OBJECTION_DOWNLOAD_FAILED


def test_root_exe_is_accepted(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver, file_host: str
) -> None:
    upload_id = client.upload_file(
        CREDS_A, PROJECT_A, f"{file_host}/RootExe.zip", auto_release=True
    ).upload_id
    finish(sim)
    assert receiver.events(upload_id) == AUTO_EVENTS


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Game.exe"], True),
        (["Windows/", "Windows/Game.exe", "Windows/Game/x.pak"], True),
        (["Windows\\Game.EXE"], True),
        (["Windows/Game.exe", "Other/x"], False),
        (["A/B/Game.exe"], False),
        (["Game.exe/"], False),
        ([], False),
    ],
)
def test_top_level_executable_rule(names: list[str], expected: bool) -> None:
    assert has_top_level_executable(names) is expected


# -- test-webhook ---------------------------------------------------------------------------------


def test_test_webhook_delivers_and_reports(
    sim: StreampixelSimulator, client: StreampixelClient, receiver: WebhookReceiver
) -> None:
    assert client.test_webhook(CREDS_A, PROJECT_A) == TestWebhookResult(True, 200, "Test webhook delivered")
    test_payloads = receiver.payloads(None)
    assert [p["event"] for p in test_payloads] == ["webhook.test"]
    assert test_payloads[0]["projectId"] == PROJECT_A and test_payloads[0]["fileUrl"] is None

    receiver.status = 502
    assert client.test_webhook(CREDS_A, PROJECT_A) == TestWebhookResult(
        False, 502, "Webhook endpoint returned non-2xx status"
    )


def test_test_webhook_unreachable_and_unconfigured(
    sim: StreampixelSimulator, client: StreampixelClient
) -> None:
    sim.set_webhook_url(PROJECT_A, f"http://127.0.0.1:{_closed_port()}/hook")
    result = client.test_webhook(CREDS_A, PROJECT_A)
    assert (result.success, result.status_code) == (False, 0)
    sim.set_webhook_url(PROJECT_A, None)
    with pytest.raises(StreampixelError) as caught:
        client.test_webhook(CREDS_A, PROJECT_A)
    assert (caught.value.status, caught.value.message) == (404, "No webhook URL configured")


def test_test_webhook_is_not_rate_limited(sim: StreampixelSimulator, client: StreampixelClient) -> None:
    sim.window_seconds = 60.0
    for _ in range(3):
        assert client.test_webhook(CREDS_A, PROJECT_A).success
    assert sim.count_429() == 0


# -- lifecycle ----------------------------------------------------------------------------------------


def test_stop_closes_the_port(receiver: WebhookReceiver) -> None:
    simulator = StreampixelSimulator(accounts={USER_A: KEY_A}, projects={PROJECT_A: USER_A})
    with simulator:
        base_url = simulator.base_url
        assert raw_post(simulator, "test-webhook", {}).status_code == 400
    with pytest.raises(Transient) as caught:
        StreampixelClient(base_url, timeout=(1.0, 1.0)).test_webhook(CREDS_A, PROJECT_A)
    assert caught.value.ambiguous is False


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
