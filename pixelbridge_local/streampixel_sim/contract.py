"""What the simulator promises: endpoints, messages, webhook statuses, and the records tests read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
class Upload:
    upload_id: str
    project_id: str
    file_url: str
    auto_release: bool
    state: str
    reject_at: tuple[str, str] | None  # (event, objection) from the reject_next_upload knob
    announced: bool = False  # build.uploaded already sent before the upload-file answer
    ticket: int | None = None  # its place in a held queue (hold_queue)


@dataclass(frozen=True)
class CallFailure:
    status: int
    after_processing: bool
    until_caller_gone: bool = False  # no answer until the caller has closed the connection


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BuildRejected(Exception):
    def __init__(self, objection: str) -> None:
        super().__init__(objection)
        self.objection = objection


class Stopped(Exception):
    """The simulator is shutting down: abandon the pipeline."""


@dataclass
class CallContext:
    """What the recorder learns about a call while it is processed."""

    user_id: str | None = None
    project_id: str | None = None
    upload_id: str | None = None
