"""Receive BuildPixel's signed webhook: ``build.complete`` starts a pull, other build events are recorded.

The webhook must be answered within seconds, so a completed build is only registered here (the same
``register_build`` as the push path: one build, one deploy) and the download is handed to
FetchFunction asynchronously, with the build id only: the signed ``artifactUrl`` is not passed on, stored
or logged (FetchFunction asks BuildPixel's download API for a fresh URL, so none waits in an async queue
or the dead-letter queue).

A delivery for a build already known starts the download again only when none runs: the earlier
invoke was refused, or the download fell silent past every attempt Lambda can still make (stopped by
its time limit or memory: ``fetch_attempts``). Otherwise it is answered with the build's status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixelbridge.domain.errors import Invalid, TooLarge, Unauthorized, Unavailable
from pixelbridge.domain.fetch_attempts import FETCH_STALL_SECONDS, fetch_silent_for
from pixelbridge.domain.metadata import BUILD_ID_PATTERN, BuildMetadata
from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.routes import Route
from pixelbridge.domain.signatures import SIGNATURE_HEADER, signature_valid
from pixelbridge.domain.statuses import BuildStatus, is_terminal
from pixelbridge.domain.timeline import parse_iso
from pixelbridge.ports import BuildsPort, FetchStarter
from pixelbridge.usecases.intake import Receipt, describe_validation_error, parse_json_object, register_build
from pixelbridge.usecases.pull_takeover import NOT_YET_UPLOADED, PullTakeover
from pixelbridge.usecases.webhook_replay import WebhookReplayGuard

# BuildPixel sends a few hundred bytes; anything this big is not BuildPixel (checked before the HMAC).
MAX_WEBHOOK_BYTES = 256 * 1024
BUILD_COMPLETE = "build.complete"
BUILD_FAILED = "build.failed"
BUILD_SUPERSEDED = "build.superseded"


class WebhookBuild(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(pattern=BUILD_ID_PATTERN)
    status: str | None = None
    platform: str | None = None
    build_type: str | None = Field(default=None, alias="buildType")
    branch: str | None = None
    commit: str | None = None
    duration_ms: int | None = Field(default=None, alias="durationMs")
    artifact_url: str | None = Field(default=None, alias="artifactUrl", repr=False)


class WebhookProject(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=128)
    name: str | None = None


class WebhookData(BaseModel):
    model_config = ConfigDict(extra="allow")

    build: WebhookBuild
    project: WebhookProject


class BuildEvent(BaseModel):
    """The envelope of a ``build.*`` event (unknown fields allowed: BuildPixel may add some)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: str
    created_at: str | None = Field(default=None, alias="createdAt")
    organization_id: str | None = Field(default=None, alias="organizationId")
    data: WebhookData


def metadata_from_event(event: BuildEvent) -> BuildMetadata:
    """The build metadata as the push path would have it, plus what only the webhook knows.

    ``artifactUrl`` is left out on purpose: it is a bearer capability for 24 h.
    """
    build = event.data.build
    extra = {key: value for key, value in (build.model_extra or {}).items() if key != "artifactUrl"}
    document: dict[str, Any] = {
        **extra,
        "buildId": build.id,
        "projectId": event.data.project.id,
        "platform": build.platform or "",
        "buildType": build.build_type,
        "branch": build.branch,
        "commit": build.commit,
        "durationMs": build.duration_ms,
        "projectName": event.data.project.name,
        "organizationId": event.organization_id,
        "buildPixelStatus": build.status,
    }
    try:
        return BuildMetadata.model_validate({k: v for k, v in document.items() if v is not None})
    except ValidationError as exc:
        raise Invalid("invalid_webhook", f"invalid build: {describe_validation_error(exc)}") from exc


def parse_envelope(body: bytes) -> dict[str, Any]:
    document = parse_json_object(body, error="invalid_webhook", what="the webhook body")
    if not isinstance(document.get("type"), str):
        raise Invalid("invalid_webhook", "the webhook body must be a JSON object with a 'type'")
    return document


def parse_build_event(document: dict[str, Any]) -> BuildEvent:
    try:
        return BuildEvent.model_validate(document)
    except ValidationError as exc:
        raise Invalid(
            "invalid_webhook", f"invalid {document['type']} event: {describe_validation_error(exc)}"
        ) from exc


class IngestWebhook:
    def __init__(
        self,
        *,
        builds: BuildsPort,
        routes: list[Route],
        fetch_starter: FetchStarter,
        signing_secret: Callable[[], str],
        replay_guard: WebhookReplayGuard | None = None,
        fetch_stall_seconds: int = FETCH_STALL_SECONDS,
    ) -> None:
        self._builds = builds
        self._fetch_stall_seconds = fetch_stall_seconds
        self._routes = routes
        self._fetch_starter = fetch_starter
        self._signing_secret = signing_secret
        self._replay_guard = replay_guard
        self._takeover = PullTakeover(builds=builds, routes=routes)

    def __call__(self, *, body: bytes, signature: str | None) -> Receipt:
        if len(body) > MAX_WEBHOOK_BYTES:
            raise TooLarge("payload_too_large", f"webhook bodies are limited to {MAX_WEBHOOK_BYTES} bytes")
        if not signature:
            raise Unauthorized("unauthorized", f"missing {SIGNATURE_HEADER} header")
        if not signature_valid(body, signature, self._signing_secret()):
            raise Unauthorized("unauthorized", f"{SIGNATURE_HEADER} does not match the body")
        document = parse_envelope(body)
        if self._replay_guard is None:
            return self._dispatch(document)
        with self._replay_guard.delivery(document, signature):
            return self._dispatch(document)

    def _dispatch(self, document: dict[str, Any]) -> Receipt:
        event_type = document["type"]
        if event_type == BUILD_COMPLETE:
            return self._build_complete(parse_build_event(document))
        if event_type in (BUILD_FAILED, BUILD_SUPERSEDED):
            return self._build_ended(parse_build_event(document))
        return Receipt({"ignored": True, "type": event_type[:64]}, taken_in=False)

    # -- build.complete ------------------------------------------------------------------------------
    def _build_complete(self, event: BuildEvent) -> Receipt:
        metadata = metadata_from_event(event)
        build_id = metadata.build_id
        registration = register_build(
            self._builds, metadata, self._routes, source="pull", detail="BuildPixel build.complete webhook"
        )
        if not registration.created:
            registration = self._takeover(registration.record, metadata) or registration
        if registration.skip_reason:
            return Receipt(
                {"buildId": build_id, "status": "skipped", "reason": registration.skip_reason}, taken_in=True
            )
        detail = "download started" if registration.created else self._fetch_restart(registration.record)
        if detail is None:
            return Receipt({"buildId": build_id, "status": registration.record.get("status")}, taken_in=False)
        self._start_fetch(build_id, detail)
        return Receipt({"buildId": build_id, "status": "received"}, taken_in=True)

    def _fetch_restart(self, record: BuildRecord) -> str | None:
        """Why this delivery starts the download of a pull registered earlier; None: one runs, or is over."""
        if record.get("source") != "pull" or record.get("status") != BuildStatus.RECEIVED:
            return None
        if not record.get("fetchRequestedAt"):
            return "download started"  # the earlier delivery's invoke was refused as Unavailable
        now = parse_iso(self._builds.now_iso())
        silent = fetch_silent_for(record, now, self._fetch_stall_seconds)
        if silent is None:
            return None  # still within its attempts: a second download would race the first
        minutes = int(silent.total_seconds() // 60)
        return f"download restarted: the previous one showed no sign of life for {minutes} min"

    def _start_fetch(self, build_id: str, detail: str) -> None:
        try:
            self._fetch_starter.start(build_id)
        except Exception as exc:
            # The record stays "received" without fetchRequestedAt: BuildPixel's retry starts it again.
            self._builds.record_event(
                build_id, "fetch not started", f"{type(exc).__name__}; waiting for BuildPixel's retry"
            )
            raise Unavailable("fetch_unavailable", "the download could not be started; retry later") from exc
        self._builds.record_event(
            build_id,
            "fetch requested",
            detail,
            fields={"fetchRequestedAt": self._builds.now_iso()},
        )

    # -- build.failed / build.superseded --------------------------------------------------------------
    def _build_ended(self, event: BuildEvent) -> Receipt:
        build_id = event.data.build.id
        record = self._builds.get(build_id)
        if record is None:
            return Receipt({"ignored": True, "reason": "unknown build"}, taken_in=False)
        if is_terminal(record["status"]):
            return Receipt({"buildId": build_id, "status": record["status"], "ignored": True}, taken_in=False)
        detail = f"BuildPixel says {event.type} at {event.created_at or 'an unknown time'}"
        if self._already_recorded(record, event.type, detail):
            return Receipt({"buildId": build_id, "status": record["status"]}, taken_in=False)
        if event.type == BUILD_SUPERSEDED:
            return self._supersede(build_id, detail)
        self._builds.record_event(build_id, event.type, detail)
        return Receipt({"buildId": build_id, "status": record["status"]}, taken_in=False)

    @staticmethod
    def _already_recorded(record: BuildRecord, event_type: str, detail: str) -> bool:
        """BuildPixel retries deliveries: the same event (type + time) is recorded once."""
        return any(
            entry.get("event") == event_type and entry.get("detail") == detail
            for entry in record.get("timeline", [])
        )

    def _supersede(self, build_id: str, detail: str) -> Receipt:
        reason = f"superseded in BuildPixel ({detail})"
        # Conditional on "not uploaded yet": a build Streampixel already has keeps its own course.
        moved = self._builds.set_fields(
            build_id,
            {"status": str(BuildStatus.SUPERSEDED), "error": reason},
            only_if_status_in=set(NOT_YET_UPLOADED),
        )
        if moved is None:
            self._builds.record_event(
                build_id, BUILD_SUPERSEDED, detail, data={"effect": "none: already sent to Streampixel"}
            )
            current = self._builds.get(build_id) or {}
            return Receipt({"buildId": build_id, "status": current.get("status")}, taken_in=False)
        self._builds.record_event(build_id, BUILD_SUPERSEDED, detail)
        return Receipt({"buildId": build_id, "status": str(BuildStatus.SUPERSEDED)}, taken_in=False)
