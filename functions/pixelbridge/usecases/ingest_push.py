"""Receive BuildPixel's custom-deploy push: authenticate, validate, store, record.

The raw body is stored before the sender is answered, so BuildPixel's ``autoDeployStatus`` only says
success once the build is durable; conversion and release happen later, off the request path.
"""

from __future__ import annotations

from collections.abc import Callable

from pixelbridge.domain.errors import Invalid, TooLarge, Unauthorized, Unavailable, UnsupportedFormat
from pixelbridge.domain.metadata import BuildMetadata
from pixelbridge.domain.routes import Route
from pixelbridge.domain.secrets import secrets_equal
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.ports import BuildsPort, InboxPort, MultipartError, NotMultipart, UploadParser
from pixelbridge.usecases.build_views import uploader_view
from pixelbridge.usecases.intake import Receipt, parse_metadata, register_build

__all__ = ["IngestPush", "Receipt", "register_build"]


class IngestPush:
    def __init__(
        self,
        *,
        builds: BuildsPort,
        inbox: InboxPort,
        routes: list[Route],
        expected_authorization: Callable[[], str],
        max_body_bytes: int,
        parse_upload: UploadParser,
    ) -> None:
        self._builds = builds
        self._inbox = inbox
        self._routes = routes
        self._expected_authorization = expected_authorization
        self._max_body_bytes = max_body_bytes
        self._parse_upload = parse_upload

    def __call__(self, *, body: bytes, content_type: str | None, authorization: str | None) -> Receipt:
        if not secrets_equal(authorization, self._expected_authorization()):
            raise Unauthorized("unauthorized", "missing or wrong Authorization header")
        if len(body) > self._max_body_bytes:
            raise TooLarge(
                "payload_too_large",
                f"the body is {len(body)} bytes; pushes are limited to {self._max_body_bytes} bytes "
                "(AWS Function URL limit). Use the BuildPixel webhook + pull path for real builds.",
            )
        try:
            upload = self._parse_upload(body, content_type)
        except NotMultipart as exc:
            raise UnsupportedFormat(exc.code, exc.message) from exc
        except MultipartError as exc:
            raise Invalid(exc.code, exc.message) from exc
        metadata = parse_metadata(upload.metadata_json)
        return self._register(metadata, body, content_type or "")

    def _register(self, metadata: BuildMetadata, body: bytes, content_type: str) -> Receipt:
        build_id = metadata.build_id
        registration = register_build(
            self._builds, metadata, self._routes, source="push", detail=f"push, {len(body)} bytes"
        )
        if not registration.created:
            # The pusher holds only the upload token: it learns status, times and reasons, never a key.
            return Receipt(uploader_view(registration.record), taken_in=False)
        if registration.skip_reason:
            return Receipt(
                {"buildId": build_id, "status": "skipped", "reason": registration.skip_reason}, taken_in=True
            )
        try:
            key = self._inbox.put_push_body(build_id, body, content_type)
        except Exception as exc:
            reason = f"could not store the artifact: {type(exc).__name__}"
            self._builds.transition(
                build_id, BuildStatus.FAILED, event="failed", detail=reason, fields={"error": reason}
            )
            raise Unavailable("storage_unavailable", "the build could not be stored; retry later") from exc
        stored = self._builds.transition(
            build_id, BuildStatus.STORED, event="stored", detail=key, fields={"artifactKey": key}
        )
        if stored is None:
            # The converter saw the S3 event first and already moved the build on: keep the fact.
            self._builds.record_event(build_id, "stored", key, fields={"artifactKey": key})
        return Receipt({"buildId": build_id, "status": "received"}, taken_in=True)
