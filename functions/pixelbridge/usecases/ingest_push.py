"""Receive BuildPixel's custom-deploy push: authenticate, validate, store, record.

The raw body is stored before we answer 202, so BuildPixel's ``autoDeployStatus`` only says
success once the build is durable; conversion and release happen later, off the request path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pixelbridge.adapters.builds import BuildRecord, BuildRepository
from pixelbridge.adapters.multipart import MultipartError, NotMultipart, parse_build_upload
from pixelbridge.adapters.store import InboxStore
from pixelbridge.domain.metadata import BuildMetadata
from pixelbridge.domain.routes import Route, decide_route
from pixelbridge.domain.secrets import secrets_equal
from pixelbridge.domain.statuses import BuildStatus


class RequestRejected(Exception):
    """A request we answer with an error: HTTP status + stable code + human message."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


@dataclass(frozen=True)
class Accepted:
    status_code: int
    body: dict[str, Any]


def describe_validation_error(error: ValidationError) -> str:
    """A short human sentence naming the bad fields (never the values: they may be huge or hostile)."""
    problems = []
    for item in error.errors()[:5]:
        location = ".".join(str(part) for part in item["loc"]) or "metadata"
        problems.append(f"{location}: {item['msg']}")
    return "; ".join(problems)


def parse_json_object(raw: bytes, *, error: str, what: str) -> dict[str, Any]:
    """A JSON object from request bytes, or a 400 with ``error`` naming ``what`` was wrong."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, > 4300-digit integers; deep nesting
        raise RequestRejected(400, error, f"{what} is not valid JSON") from exc
    if not isinstance(document, dict):
        raise RequestRejected(400, error, f"{what} must be a JSON object")
    return document


def parse_metadata(raw: bytes) -> BuildMetadata:
    document = parse_json_object(raw, error="invalid_metadata", what="the 'metadata' part")
    try:
        return BuildMetadata.model_validate(document)
    except ValidationError as exc:
        raise RequestRejected(
            400, "invalid_metadata", f"invalid metadata: {describe_validation_error(exc)}"
        ) from exc


def route_fields(route: Route) -> dict[str, Any]:
    return {
        "route": route.id,
        "release": {
            "streampixelProjectId": route.streampixel_project_id,
            "policy": route.policy,
            "account": route.account,
            "neverDark": route.keeps_live,
        },
    }


def public_view(record: BuildRecord) -> dict[str, Any]:
    """The record as operators and BuildPixel may see it: no capability URLs, no task tokens."""
    hidden = {"zipUrl", "handoffToken", "waitToken"}
    return {key: value for key, value in record.items() if key not in hidden}


@dataclass(frozen=True)
class Registration:
    record: BuildRecord
    created: bool
    skip_reason: str | None = None


def register_build(
    builds: BuildRepository, metadata: BuildMetadata, routes: list[Route], *, source: str, detail: str
) -> Registration:
    """Create the build record once, whichever way (push or pull) the build arrives first.

    A build that already exists is not registered again (one build, one deploy); the repeat
    arrival is recorded on its timeline instead. Unrouted and non-Windows builds end ``skipped``.
    """
    build_id = metadata.build_id
    decision = decide_route(metadata, routes)
    record: BuildRecord = {
        "buildId": build_id,
        "status": str(BuildStatus.RECEIVED),
        "source": source,
        "sources": [source],
        "metadata": metadata.to_record(),
        "route": decision.route.id if decision.route else "-",
    }
    if decision.route:
        record.update(route_fields(decision.route))
    if not builds.create(record, event="received", detail=detail):
        existing = builds.record_event(
            build_id, f"{source} arrival", f"already known; not deployed again ({detail})"
        )
        return Registration(existing or builds.get(build_id) or record, created=False)
    if decision.skip_reason:
        skipped = builds.transition(
            build_id,
            BuildStatus.SKIPPED,
            event="skipped",
            detail=decision.skip_reason,
            fields={"error": decision.skip_reason},
        )
        return Registration(skipped or record, created=True, skip_reason=decision.skip_reason)
    return Registration(record, created=True)


class IngestPush:
    def __init__(
        self,
        *,
        builds: BuildRepository,
        inbox: InboxStore,
        routes: list[Route],
        expected_authorization: Callable[[], str],
        max_body_bytes: int,
    ) -> None:
        self._builds = builds
        self._inbox = inbox
        self._routes = routes
        self._expected_authorization = expected_authorization
        self._max_body_bytes = max_body_bytes

    def __call__(self, *, body: bytes, content_type: str | None, authorization: str | None) -> Accepted:
        if not secrets_equal(authorization, self._expected_authorization()):
            raise RequestRejected(401, "unauthorized", "missing or wrong Authorization header")
        if len(body) > self._max_body_bytes:
            raise RequestRejected(
                413,
                "payload_too_large",
                f"the body is {len(body)} bytes; pushes are limited to {self._max_body_bytes} bytes "
                "(AWS Function URL limit). Use the BuildPixel webhook + pull path for real builds.",
            )
        try:
            upload = parse_build_upload(body, content_type)
        except NotMultipart as exc:
            raise RequestRejected(415, exc.code, exc.message) from exc
        except MultipartError as exc:
            raise RequestRejected(400, exc.code, exc.message) from exc
        metadata = parse_metadata(upload.metadata_json)
        return self._register(metadata, body, content_type or "")

    def _register(self, metadata: BuildMetadata, body: bytes, content_type: str) -> Accepted:
        build_id = metadata.build_id
        registration = register_build(
            self._builds, metadata, self._routes, source="push", detail=f"push, {len(body)} bytes"
        )
        if not registration.created:
            return Accepted(200, public_view(registration.record))
        if registration.skip_reason:
            return Accepted(
                202, {"buildId": build_id, "status": "skipped", "reason": registration.skip_reason}
            )
        try:
            key = self._inbox.put_push_body(build_id, body, content_type)
        except Exception as exc:
            reason = f"could not store the artifact: {type(exc).__name__}"
            self._builds.transition(
                build_id, BuildStatus.FAILED, event="failed", detail=reason, fields={"error": reason}
            )
            raise RequestRejected(
                503, "storage_unavailable", "the build could not be stored; retry later"
            ) from exc
        stored = self._builds.transition(
            build_id, BuildStatus.STORED, event="stored", detail=key, fields={"artifactKey": key}
        )
        if stored is None:
            # The converter saw the S3 event first and already moved the build on: keep the fact.
            self._builds.record_event(build_id, "stored", key, fields={"artifactKey": key})
        return Accepted(202, {"buildId": build_id, "status": "received"})
