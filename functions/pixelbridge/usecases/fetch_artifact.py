"""Pull a BuildPixel artifact into ``s3://ArtifactBucket/inbox/pull/<buildId>.tar.gz`` (FetchFunction).

Streaming, constant memory, no /tmp copy: the HTTP body goes chunk by chunk into an S3 multipart
upload (``S3MultipartSink``: 16 MiB parts, at most two parts in flight, so memory stays ~50 MiB
whatever the size of the build).

Why the low-level multipart upload and not ``upload_fileobj`` on a streaming reader:
* the object must only appear once the bytes are verified. ``CompleteMultipartUpload`` is the moment
  the object (and its S3 ObjectCreated event, which starts the conversion) comes into existence, so
  size and MD5 are checked *before* completing; a bad artifact is aborted and never converted.
  ``upload_fileobj`` completes on its own, so a mismatch would be found after the converter started;
* a network failure must not restart a multi-GB download: the bytes already received stay in the
  sink (uploaded parts and the part being filled), so the download resumes at the exact byte offset
  with an HTTP ``Range`` request (206). A server that ignores Range (200) is read again and the
  bytes we already have are skipped, so the upload and the running MD5 are never restarted either.

Every build that reaches this use case ends ``stored`` or ``failed`` with a reason (or is left
alone when someone else already moved it on). Signed URLs and tokens are never logged or recorded.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pixelbridge.domain.errors import MissingSecretValue
from pixelbridge.domain.fetch_attempts import next_fetch_attempt
from pixelbridge.domain.inbox import pull_key
from pixelbridge.domain.secrets import host_of
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.ports import (
    ArtifactResponse,
    ArtifactSink,
    ArtifactSinkFactory,
    ArtifactUrlExpired,
    ArtifactUrlRefused,
    BuildPixelError,
    BuildPixelPort,
    BuildPixelUnavailable,
    BuildsPort,
    DownloadInfo,
)

MiB = 1024 * 1024


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    max_network_attempts: int = 6
    max_url_refreshes: int = 3
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 30.0
    # Stop with a recorded failure while the Lambda still has time to write it.
    reserve_seconds: float = 20.0


@dataclass(frozen=True)
class FetchOutcome:
    build_id: str
    result: str

    def to_dict(self) -> dict[str, Any]:
        return {"buildId": self.build_id, "result": self.result}


class FetchFailed(Exception):
    """A definitive failure; ``reason`` is recorded on the build (never a URL or a token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Transfer:
    """The bytes received so far: count, running MD5, the sink, what BuildPixel announced."""

    def __init__(self, key: str, max_bytes: int, open_sink: ArtifactSinkFactory) -> None:
        self.key = key
        self.max_bytes = max_bytes
        self._open_sink = open_sink
        self.sink: ArtifactSink | None = None
        self.offset = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.expected_size: int | None = None
        self.expected_md5: str | None = None

    def expect(self, size: int | None, md5: str | None = None) -> None:
        if md5:
            self.expected_md5 = md5.lower()
        if size is None:
            return
        if size > self.max_bytes:
            raise FetchFailed(f"the artifact is {size} bytes; the limit is {self.max_bytes} bytes")
        if self.expected_size is not None and size != self.expected_size:
            raise FetchFailed(f"BuildPixel announced {self.expected_size} bytes, the download {size} bytes")
        self.expected_size = size

    def write(self, chunk: bytes) -> None:
        received = self.offset + len(chunk)
        if received > self.max_bytes:
            raise FetchFailed(f"the artifact exceeds the limit of {self.max_bytes} bytes")
        if self.expected_size is not None and received > self.expected_size:
            raise FetchFailed(f"the download is longer than the announced {self.expected_size} bytes")
        if self.sink is None:
            self.sink = self._open_sink(self.key, self.expected_size)
        self.sink.write(chunk)
        self.md5.update(chunk)
        self.offset = received

    def verify(self) -> str:
        """Size and MD5 against what BuildPixel announced; returns a human summary."""
        if self.offset == 0:
            raise FetchFailed("the artifact is empty")
        if self.expected_size is not None and self.offset != self.expected_size:
            raise FetchFailed(f"the download stopped at {self.offset} of {self.expected_size} bytes")
        if self.expected_md5 is None:
            return "MD5 not announced"
        if self.md5.hexdigest() != self.expected_md5:
            raise FetchFailed("the artifact's MD5 does not match BuildPixel's checksumMd5")
        return "MD5 verified"

    def complete(self) -> None:
        assert self.sink is not None  # verify() refused an empty artifact
        self.sink.complete()

    def abort(self) -> None:
        if self.sink is not None:
            self.sink.abort()


class FetchArtifact:
    def __init__(
        self,
        *,
        builds: BuildsPort,
        source: BuildPixelPort,
        open_sink: ArtifactSinkFactory,
        limits: FetchLimits,
        sleep: Callable[[float], None] = time.sleep,
        seconds_left: Callable[[], float] = lambda: float("inf"),
    ) -> None:
        self._builds = builds
        self._source = source
        self._open_sink = open_sink
        self._limits = limits
        self._sleep = sleep
        self._seconds_left = seconds_left

    def __call__(self, build_id: str, artifact_url: str | None) -> FetchOutcome:
        record = self._builds.get(build_id)
        if record is None:
            return FetchOutcome(build_id, "ignored: no build record")
        if record["status"] != BuildStatus.RECEIVED:
            # A repeated invocation (Lambda async retry) after the artifact is already stored.
            return FetchOutcome(build_id, f"skipped: build is already {record['status']}")
        origin = host_of(artifact_url) if artifact_url else "the BuildPixel download API"
        # Counted like conversion attempts: a stopped invocation records nothing else (``fetch_attempts``).
        attempt = next_fetch_attempt(record)
        self._builds.record_event(
            build_id, "fetching", f"attempt {attempt}, pull from {origin}", fields={"fetchAttempts": attempt}
        )
        transfer = _Transfer(pull_key(build_id), self._limits.max_bytes, self._open_sink)
        started = time.monotonic()
        try:
            summary = self._download(build_id, artifact_url, transfer)
            if not self._still_wanted(build_id):
                transfer.abort()
                return FetchOutcome(build_id, "abandoned: the build moved on while downloading")
            transfer.complete()
        except FetchFailed as failure:
            return self._fail(build_id, transfer, failure.reason)
        except Exception as error:  # never leave a build silently stuck in "received"
            return self._fail(build_id, transfer, f"fetch error ({type(error).__name__})")
        return self._stored(build_id, transfer, summary, time.monotonic() - started)

    # -- the download loop ---------------------------------------------------------------------------
    def _download(self, build_id: str, artifact_url: str | None, transfer: _Transfer) -> str:
        # BuildPixel's download API confirms the build before a webhook's artifactUrl is fetched.
        info = self._announced(build_id)
        url = artifact_url or info.url
        transfer.expect(info.size_bytes, info.checksum_md5)
        refreshes = failures = resumes = 0
        while True:
            self._ensure_time_left(transfer)
            try:
                response = self._source.open_artifact(url, start=transfer.offset)
            except ArtifactUrlRefused as refused:
                raise FetchFailed(str(refused)) from None
            except ArtifactUrlExpired:
                refreshes += 1
                if refreshes > self._limits.max_url_refreshes:
                    raise FetchFailed(f"the artifact URL was refused {refreshes} times") from None
                url = self._refreshed_url(build_id, transfer)
                continue
            except BuildPixelUnavailable as error:
                failures = self._after_network_failure(build_id, failures, error, transfer)
                continue
            try:
                resumes += int(transfer.offset > 0)
                self._receive(response, transfer)
                break
            except BuildPixelUnavailable as error:
                failures = self._after_network_failure(build_id, failures, error, transfer)
            finally:
                response.close()
        check = transfer.verify()
        return f"{check}" + (f", resumed {resumes}x" if resumes else "")

    def _receive(self, response: ArtifactResponse, transfer: _Transfer) -> None:
        if response.start > transfer.offset:
            raise BuildPixelUnavailable(f"the server resumed at {response.start}, not {transfer.offset}")
        transfer.expect(response.total_size)
        skip = transfer.offset - response.start  # a 200 to a Range request: drop what we already have
        for chunk in response.chunks:
            if skip:
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
            if chunk:
                transfer.write(chunk)
                self._ensure_time_left(transfer)
        if skip:
            raise BuildPixelUnavailable("the server sent fewer bytes than we already had")

    def _announced(self, build_id: str) -> DownloadInfo:
        """Size and MD5 (and a URL) from the download API: a build it does not confirm is not fetched."""
        try:
            return self._source.download_info(build_id)
        except (BuildPixelError, MissingSecretValue) as error:
            raise FetchFailed(f"BuildPixel's download API did not confirm the build: {error}") from None

    def _refreshed_url(self, build_id: str, transfer: _Transfer) -> str:
        try:
            info = self._source.download_info(build_id)
        except (BuildPixelError, MissingSecretValue) as error:
            raise FetchFailed(f"the artifact URL expired and could not be renewed: {error}") from None
        transfer.expect(info.size_bytes, info.checksum_md5)
        self._builds.record_event(
            build_id, "artifact URL renewed", f"through the download API, at byte {transfer.offset}"
        )
        return info.url

    def _after_network_failure(
        self, build_id: str, failures: int, error: BuildPixelUnavailable, transfer: _Transfer
    ) -> int:
        failures += 1
        if failures >= self._limits.max_network_attempts:
            raise FetchFailed(f"download failed {failures} times; last: {error}") from None
        delay = min(self._limits.backoff_cap_seconds, self._limits.backoff_base_seconds * 2 ** (failures - 1))
        self._builds.record_event(
            build_id, "download interrupted", f"{error}; resuming at byte {transfer.offset} in {delay:.0f} s"
        )
        self._sleep(delay)
        return failures

    def _ensure_time_left(self, transfer: _Transfer) -> None:
        if self._seconds_left() < self._limits.reserve_seconds:
            raise FetchFailed(
                f"the download did not finish in the function's time limit ({transfer.offset} bytes received)"
            )

    # -- endings -------------------------------------------------------------------------------------
    def _still_wanted(self, build_id: str) -> bool:
        record = self._builds.get(build_id)
        return record is not None and record["status"] == BuildStatus.RECEIVED

    def _stored(self, build_id: str, transfer: _Transfer, summary: str, seconds: float) -> FetchOutcome:
        rate = transfer.offset / MiB / max(seconds, 1e-6)
        detail = f"{transfer.key}, {transfer.offset} bytes, {rate:.1f} MB/s, {summary}"
        fields = {"artifactKey": transfer.key, "artifactBytes": transfer.offset}
        moved = self._builds.transition(
            build_id, BuildStatus.STORED, event="stored", detail=detail, fields=fields
        )
        if moved is None:
            # The converter saw the S3 event first and already moved the build on: keep the fact.
            self._builds.record_event(build_id, "stored", detail, fields=fields)
        return FetchOutcome(build_id, "stored")

    def _fail(self, build_id: str, transfer: _Transfer, reason: str) -> FetchOutcome:
        try:
            transfer.abort()
        except Exception as error:  # the bucket's lifecycle rule aborts stale uploads after a day
            reason = f"{reason} (multipart abort failed: {type(error).__name__})"
        self._builds.transition(
            build_id, BuildStatus.FAILED, event="failed", detail=reason, fields={"error": reason}
        )
        return FetchOutcome(build_id, "failed")
