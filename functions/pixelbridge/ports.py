"""The ports: what the use cases need from the outside world, as ``typing.Protocol``s and value types.

Use cases depend on this module and on ``domain`` only; ``adapters`` implement these protocols with
boto3 and requests, and ``wiring`` plugs the two together. Tests pass in-memory fakes that satisfy
the same protocols (structural typing: no inheritance, no ``type: ignore``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.uploads import UploadState

if TYPE_CHECKING:  # the converter's sink protocol; functions that never convert must not import it
    from pixelbridge.convert.sinks import ZipSink

# -- build records ---------------------------------------------------------------------------------


class InvalidCursor(ValueError):
    """A listing cursor that this repository did not hand out."""


@dataclass(frozen=True)
class BuildPage:
    records: list[BuildRecord]
    cursor: str | None


class BuildsPort(Protocol):
    """The build records: every status change is conditional and moves only forward."""

    def now_iso(self) -> str: ...
    def create(self, record: BuildRecord, *, event: str, detail: str = "") -> bool: ...
    def get(self, build_id: str) -> BuildRecord | None: ...
    def transition(
        self,
        build_id: str,
        to: BuildStatus,
        *,
        event: str,
        detail: str = "",
        fields: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        allow_same: bool = False,
    ) -> BuildRecord | None: ...
    def record_event(
        self,
        build_id: str,
        event: str,
        detail: str = "",
        *,
        fields: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> BuildRecord | None: ...
    def set_fields(
        self, build_id: str, fields: dict[str, Any], *, only_if_status_in: set[BuildStatus] | None = None
    ) -> BuildRecord | None: ...
    def remove_fields(self, build_id: str, names: list[str]) -> None: ...
    def hold_fetch_lease(
        self,
        build_id: str,
        holder: str,
        *,
        seconds: float,
        fields: dict[str, Any] | None = None,
        release: bool = False,
    ) -> BuildRecord | None:
        """Claim or renew ``fetchLease`` ({holder, expiresAt} ``seconds`` from now) and set ``fields``, in one
        conditional write: only while the build is ``received`` and no other holder's lease is unexpired.
        ``release`` removes the lease instead. None when the write was refused."""
        ...

    def clear_wait_token(self, build_id: str, token: str) -> bool: ...
    def mark_stuck(self, build_id: str, reason: str) -> BuildRecord | None: ...
    def open_builds(self, *, updated_before: str, limit: int = 200) -> list[BuildRecord]: ...
    def reopen(
        self,
        build_id: str,
        *,
        expected: BuildStatus,
        to: BuildStatus,
        reason: str,
        fields: dict[str, Any] | None = None,
        remove: Sequence[str] = (),
        event: str = "operator retry",
    ) -> BuildRecord | None: ...
    def begin_redistribution(
        self,
        build_id: str,
        redistribution: dict[str, Any],
        *,
        statuses: Collection[BuildStatus],
        stale_before: str,
        event: str,
        detail: str,
        remove: Sequence[str] = (),
    ) -> BuildRecord | None: ...
    def list_builds(
        self,
        *,
        route: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> BuildPage: ...
    def all_builds_for_route(self, route_id: str) -> list[BuildRecord]: ...
    def find_by_upload_id(self, upload_id: str) -> BuildRecord | None: ...
    def find_by_handoff_token(self, token: str) -> BuildRecord | None: ...
    def builds_for_route(
        self, route_id: str, *, newest_first: bool = True, limit: int = 25
    ) -> list[BuildRecord]: ...


# -- per-user call slots ---------------------------------------------------------------------------


class SlotsPort(Protocol):
    """One Streampixel call at a time per user, spaced; the book survives Lambda restarts."""

    def reserve(self, user_id: str, not_before: datetime, spacing_seconds: float) -> datetime: ...
    def claim_call(self, user_id: str, now: datetime, spacing_seconds: float) -> datetime | None: ...
    def call_ended(self, user_id: str, at: datetime) -> None: ...


# -- the release workflow --------------------------------------------------------------------------


class WorkflowPort(Protocol):
    """The release state machine: start named executions, resume or fail waiting task tokens."""

    @property
    def configured(self) -> bool: ...
    def start(self, execution_name: str, payload: dict[str, Any]) -> bool: ...
    def execution(self, execution_name: str) -> dict[str, str] | None: ...
    def resume(self, token: str, output: dict[str, Any]) -> bool: ...
    def fail(self, token: str, error: str, cause: str) -> bool: ...


# -- Streampixel -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreampixelCredentials:
    """A Streampixel account's ``userId`` and API key; the key is kept out of ``repr``."""

    user_id: str
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class UploadResult:
    """Accepted upload. ``upload_id`` is None when the server left it out of the answer."""

    upload_id: str | None
    message: str


@dataclass(frozen=True)
class DistributeResult:
    """Distribution was triggered (not finished); ``region`` only comes with the older answer shape."""

    message: str
    region: str | None


@dataclass(frozen=True)
class TestWebhookResult:
    """Outcome of a test-webhook call; ``status_code`` is the receiver's status, 0 if unreachable."""

    __test__ = False  # not a pytest test class despite the name

    success: bool
    status_code: int
    message: str


class StreampixelPort(Protocol):
    def upload_file(
        self, creds: StreampixelCredentials, project_id: str, file_url: str, *, auto_release: bool
    ) -> UploadResult: ...
    def distribute_file(
        self, creds: StreampixelCredentials, project_id: str, upload_id: str
    ) -> DistributeResult: ...
    def test_webhook(self, creds: StreampixelCredentials, project_id: str) -> TestWebhookResult: ...


CredentialsFor = Callable[[str], StreampixelCredentials]
"""A Streampixel account name (route ``account``) -> its credentials."""


# -- BuildPixel ------------------------------------------------------------------------------------


class BuildPixelError(Exception):
    """Base class; messages are safe to record on a build (no URL, no token)."""


class BuildPixelUnavailable(BuildPixelError):
    """Network error, timeout or 5xx: worth retrying."""


class BuildPixelRefused(BuildPixelError):
    """A definitive 4xx from the download API (bad token, no artifact, ...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"BuildPixel answered {status} {code}: {message}")
        self.status = status
        self.code = code


class BuildPixelRateLimited(BuildPixelError):
    """429 for longer than we are willing to wait."""


class ArtifactUrlRefused(BuildPixelError):
    """The artifact URL or one of its redirects leads outside what BuildPixel serves: never retried."""


class ArtifactUrlExpired(BuildPixelError):
    """The signed URL is missing, expired or refused (401/403/404/410): ask the download API again."""


@dataclass(frozen=True)
class DownloadInfo:
    url: str
    expires_at: str | None
    size_bytes: int | None
    checksum_md5: str | None

    def __repr__(self) -> str:  # the URL is a capability: keep it out of reprs and tracebacks
        return f"DownloadInfo(expires_at={self.expires_at!r}, size_bytes={self.size_bytes!r})"


@dataclass
class ArtifactResponse:
    """One streaming GET of the artifact. ``start`` is where its bytes begin in the artifact."""

    start: int
    total_size: int | None
    chunks: Iterator[bytes]
    close: Callable[[], None]


class BuildPixelPort(Protocol):
    """BuildPixel's download API and artifact host (the pull path)."""

    def download_info(self, build_id: str) -> DownloadInfo: ...
    def open_artifact(
        self, url: str, *, start: int = 0, stop: int | None = None, read_timeout: float | None = None
    ) -> ArtifactResponse: ...


class ArtifactSink(Protocol):
    """Where a downloaded artifact is written: completed once whole, aborted otherwise."""

    def write(self, data: bytes, /) -> int: ...
    def complete(self) -> None: ...
    def abort(self) -> None: ...


ArtifactSinkFactory = Callable[[str, "int | None"], ArtifactSink]
"""(inbox key, expected size or None) -> a sink that has started its multipart upload."""


class DeadlineReached(Exception):
    """The invocation's time budget ran out while waiting for bytes: stop and record a checkpoint."""


class ArtifactReader(Protocol):
    """The artifact's bytes from a start offset, in order (fetched ahead in parallel ranges).

    ``read`` raises ``BuildPixelUnavailable`` (retries exhausted), ``ArtifactUrlExpired``,
    ``ArtifactUrlRefused`` or ``DeadlineReached``; ``b""`` only at the end of the artifact."""

    size: int

    def read(self, size: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


class ArtifactReaderFactory(Protocol):
    """(url, announced size or None, first byte, seconds the reader may still wait) -> a reader."""

    def __call__(
        self, url: str, size: int | None, start: int, budget: Callable[[], float]
    ) -> ArtifactReader: ...


class ResumableArtifactSink(ArtifactSink, Protocol):
    """An ``ArtifactSink`` whose finished parts survive the invocation (see ``UploadState``)."""

    def part_end(self, offset: int) -> int: ...
    def durable(self, *, wait: bool) -> tuple[int, UploadState]: ...


ResumableSinkFactory = Callable[[str, "int | None", "UploadState | None", int], ResumableArtifactSink]
"""(inbox key, expected size, upload to continue or None, bytes already in it) -> a started sink."""


# -- storage: the inbox and the handoff bucket ------------------------------------------------------


class InboxPort(Protocol):
    """Where every build lands before conversion."""

    def put_push_body(self, build_id: str, body: bytes, content_type: str) -> str: ...
    def open(self, key: str) -> tuple[Any, int, str]: ...


@dataclass(frozen=True)
class HandoffLocation:
    token: str
    key: str


class HandoffPort(Protocol):
    """The converted zips Streampixel downloads, each under an unguessable token."""

    def new_location(self, build_id: str) -> HandoffLocation: ...
    def url_for(self, key: str) -> str: ...
    def delete(self, key: str) -> None: ...


if TYPE_CHECKING:

    class UploadingZipSink(ZipSink, Protocol):
        """Where the converter writes the zip: completed on success, aborted on any error."""

        def complete(self) -> None: ...
        def abort(self) -> None: ...


ZipSinkFactory = Callable[[str, "int | None"], "UploadingZipSink"]
"""(handoff key, expected size or None) -> a sink that has started its upload."""


# -- the push body ---------------------------------------------------------------------------------


class MultipartError(ValueError):
    """A malformed push body; ``code`` is the stable error code answered to BuildPixel."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotMultipart(MultipartError):
    """The body is not multipart/form-data with a boundary."""


@dataclass(frozen=True)
class BuildUpload:
    metadata_json: bytes
    artifact: bytes
    artifact_filename: str | None


UploadParser = Callable[[bytes, "str | None"], BuildUpload]
"""(body, content type) -> the push's two parts, or MultipartError."""


# -- starting other functions ------------------------------------------------------------------------


class FetchStarter(Protocol):
    """Starts the download of a build's artifact without waiting for it (FetchFunction, async)."""

    def start(self, build_id: str) -> None: ...


class ConvertStarter(Protocol):
    """Starts a re-conversion of an inbox object without waiting for it (ConvertFunction, async)."""

    def start(self, build_id: str, key: str, retry: int) -> None: ...


# -- notifications -----------------------------------------------------------------------------------


class EventSink(Protocol):
    def put(self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> None: ...


class MessageSink(Protocol):
    @property
    def configured(self) -> bool: ...

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> None: ...


class MetricsPort(Protocol):
    def record(self, name: str, value: float, unit: str = "count", **dimensions: str) -> None: ...


ObjectExists = Callable[[str, str], bool]
"""(bucket, key) -> is the object still there."""


class DeliveryLedger(Protocol):
    """Signed webhook deliveries already accepted (the replay guard's memory, expired by TTL)."""

    def first_seen(self, key: str, *, now: int, expires_at: int) -> bool: ...
    def forget(self, key: str) -> None: ...
