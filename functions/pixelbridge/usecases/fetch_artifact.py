"""Pull a BuildPixel artifact (FetchFunction): in one pass to the published zip, and across invocations.

One pass (the first invocation, when the handoff is configured)::

    BuildPixel ─► N parallel ranges ─► tee ─┬─► raw artifact ─► s3://ArtifactBucket/inbox/pull/<id>.tar.gz
                                            └─► gunzip ─► tar ─► zip ─► s3://HandoffBucket/dl/… ─► release

The raw artifact is kept for retries and audit. It only completes once the build is recorded
``converted``, so its S3 event reaches ConvertFunction for a build it skips (no second conversion).
Size and BuildPixel's checksumMd5 are verified before anything is completed: a mismatch discards the
zip and the artifact and fails the build with the reason.

No size that fails: every wait for bytes and every part upload is bounded by the invocation's time
left minus ``reserve_seconds``. When the one pass cannot finish in time (projected from the rate so
far, or the deadline reached) the zip is abandoned (its upload aborted: inflate state cannot be
saved), the raw download goes on alone, and at the deadline a checkpoint is recorded on the build:
the multipart upload id, the ETags of the parts in S3, the byte offset after them and the MD5 state
there (``rehashes``: hashlib's state cannot be saved). The function then invokes itself again; the
next invocation continues from that offset (at most a part and the read-ahead are fetched twice).
When the artifact completes, its S3 event starts the ordinary conversion (ConvertFunction, reading it
with parallel ranges). ``fetchHeartbeatAt`` is written at the start of every invocation and with every
checkpoint: the reconciler tells a live chained fetch from a dead one by it.

One download at a time: Lambda may deliver an async invocation twice, and retries one it stopped. Each
invocation first claims ``fetchLease`` ({holder, expiresAt}: Lambda's deadline for it) with a
conditional write; every checkpoint is written only while it still holds the lease, and the last one
frees it for the next invocation. A copy that finds another live lease, or loses its own, answers
"skipped" and touches nothing (it never aborts the upload the holder writes). An expired lease (its
holder was stopped) is taken over.

The invoke payload is the build id only. Every invocation asks BuildPixel's download API for a URL
signed now (size and checksumMd5 with it), so no bearer URL waits in an async queue or the dead-letter
queue, and a chain longer than a URL's life goes on with fresh ones.

Every build that reaches this use case ends ``converted``, ``stored`` (converted next by
ConvertFunction), ``failed`` with a reason, or continues in a new invocation. Signed URLs and tokens
are never logged or recorded.
"""

from __future__ import annotations

import base64
import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import rehashes

from pixelbridge.convert.pipeline import ConversionLimits, ConversionManifest, convert_targz_to_zip
from pixelbridge.domain.errors import ArchiveRejected, MissingSecretValue
from pixelbridge.domain.fetch_attempts import FETCH_LEASE_FIELD, FETCH_TIMEOUT_SECONDS, next_fetch_attempt
from pixelbridge.domain.inbox import pull_key
from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.release_runs import release_execution_name
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.domain.uploads import UploadState
from pixelbridge.ports import (
    ArtifactReader,
    ArtifactReaderFactory,
    ArtifactUrlExpired,
    ArtifactUrlRefused,
    BuildPixelError,
    BuildPixelPort,
    BuildPixelUnavailable,
    BuildsPort,
    DeadlineReached,
    DownloadInfo,
    FetchStarter,
    HandoffLocation,
    ResumableArtifactSink,
    ResumableSinkFactory,
    ZipSinkFactory,
)
from pixelbridge.usecases.convert_build import Publication

if TYPE_CHECKING:
    from pixelbridge.ports import UploadingZipSink

MiB = 1024 * 1024
READ_SIZE = 1 * MiB
CHECKPOINT_FIELD = "fetchCheckpoint"
HEARTBEAT_FIELD = "fetchHeartbeatAt"
HELD_ELSEWHERE = "skipped: another invocation holds the download"


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    max_network_attempts: int = 6
    max_url_refreshes: int = 3
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 30.0
    # Reading stops this long before Lambda's limit: the part uploads in flight finish (the fetch S3 client's
    # timeouts bound each to ~40 s), then the checkpoint is written and the next invocation started.
    reserve_seconds: float = 60.0
    checkpoint_every_seconds: float = 60.0  # also mid-invocation: a killed invocation loses little
    max_invocations: int = 100  # 24 GiB at 1 MB/s needs ~30 invocations of 15 minutes
    # The one pass is abandoned when, after this much of the invocation, the rate says it cannot finish.
    projection_after_seconds: float = 10.0
    # A lease lasts until Lambda's hard deadline for the invocation (plus this): a live holder makes its
    # last write before it (``reserve_seconds``), and Lambda's retry of a stopped one comes after it.
    lease_grace_seconds: float = 0.0


@dataclass(frozen=True)
class OnePass:
    """What FetchFunction needs to convert while it downloads (the pieces ConvertFunction uses)."""

    publication: Publication
    open_zip_sink: ZipSinkFactory
    limits: ConversionLimits


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


class LeaseLost(Exception):
    """Another invocation took the download over (this one's lease expired): touch nothing more."""


class OutOfTime(Exception):
    """This invocation must stop downloading (``deadline``) or cannot finish the one pass (projection)."""

    def __init__(self, reason: str, *, deadline: bool) -> None:
        super().__init__(reason)
        self.deadline = deadline


@dataclass(frozen=True)
class FetchCheckpoint:
    """Where a continued download picks up: the upload so far, the offset after it, the MD5 there."""

    upload: UploadState
    offset: int
    md5_state: bytes
    invocations: int

    def to_record(self) -> dict[str, Any]:
        return {
            "key": self.upload.key,
            "uploadId": self.upload.upload_id,
            "partSize": self.upload.part_size,
            "etags": list(self.upload.etags),
            "offset": self.offset,
            "md5State": base64.b64encode(self.md5_state).decode("ascii"),
            "invocations": self.invocations,
        }

    @classmethod
    def from_record(cls, value: Any) -> FetchCheckpoint | None:
        if not isinstance(value, dict):
            return None
        upload = UploadState(
            str(value["key"]), str(value["uploadId"]), int(value["partSize"]), tuple(map(str, value["etags"]))
        )
        return cls(
            upload, int(value["offset"]), base64.b64decode(value["md5State"]), int(value["invocations"])
        )


class BackgroundMd5:
    """MD5 whose state can be saved (``rehashes``), computed on its own thread: it is ~2.5x slower than
    hashlib's and releases the GIL, so hashing overlaps the download and the converter. ``mark(offset)``
    keeps the state after the bytes given so far (a part boundary) for a checkpoint. At most
    ``QUEUED_CHUNKS`` chunks wait: memory stays bounded."""

    QUEUED_CHUNKS = 16

    def __init__(self, state: bytes | None) -> None:
        self._hasher = rehashes.PyMd5.deserialize(state) if state else rehashes.PyMd5()
        self._queue: queue.Queue[bytes | int | None] = queue.Queue(maxsize=self.QUEUED_CHUNKS)
        self._states: dict[int, bytes] = {}
        self._thread = threading.Thread(target=self._run, name="pixelbridge-md5", daemon=True)
        self._thread.start()

    def update(self, data: bytes) -> None:
        self._queue.put(data)

    def mark(self, offset: int) -> None:
        self._queue.put(offset)

    def state_at(self, offset: int) -> bytes:
        """The state marked at ``offset`` (earlier marks are dropped: a checkpoint never goes back)."""
        self._queue.join()
        for older in [marked for marked in self._states if marked < offset]:
            del self._states[older]
        return self._states[offset]

    def finalize(self) -> str:
        self.stop()
        return self._hasher.finalize()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if isinstance(item, int):
                    self._states[item] = self._hasher.serialize()
                else:
                    self._hasher.update(item)
            finally:
                self._queue.task_done()


class _Transfer:
    """The bytes received so far: count, running MD5 (saved at every part boundary), the raw upload."""

    def __init__(
        self, key: str, max_bytes: int, open_sink: ResumableSinkFactory, resume: FetchCheckpoint | None
    ) -> None:
        self.key = key
        self.max_bytes = max_bytes
        self._open_sink = open_sink
        self._resume = resume
        self.sink: ResumableArtifactSink | None = None
        self.offset = resume.offset if resume else 0
        self.md5 = BackgroundMd5(resume.md5_state if resume else None)
        self.md5.mark(self.offset)
        self._boundary = 0
        self.expected_size: int | None = None
        self.expected_md5: str | None = None
        self.started_at = self.offset

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
            resume = self._resume.upload if self._resume else None
            self.sink = self._open_sink(self.key, self.expected_size, resume, self.offset)
            self._boundary = self.sink.part_end(self.offset)
        while chunk:
            piece, chunk = chunk[: self._boundary - self.offset], chunk[self._boundary - self.offset :]
            self.sink.write(piece)
            self.md5.update(piece)
            self.offset += len(piece)
            if self.offset == self._boundary:
                self.md5.mark(self.offset)
                self._boundary = self.sink.part_end(self.offset)

    def checkpoint(self, invocations: int, *, wait: bool) -> FetchCheckpoint | None:
        """The durable prefix (parts 1..n in S3) with the MD5 state at its end; None before any part."""
        if self.sink is None:
            return None
        durable, upload = self.sink.durable(wait=wait)
        return FetchCheckpoint(upload, durable, self.md5.state_at(durable), invocations)

    def verify(self) -> str:
        """Size and MD5 against what BuildPixel announced; returns a human summary."""
        if self.offset == 0:
            raise FetchFailed("the artifact is empty")
        if self.expected_size is not None and self.offset != self.expected_size:
            raise FetchFailed(f"the download stopped at {self.offset} of {self.expected_size} bytes")
        if self.expected_md5 is None:
            return "MD5 not announced"
        if self.md5.finalize() != self.expected_md5:
            raise FetchFailed("the artifact's MD5 does not match BuildPixel's checksumMd5")
        return "MD5 verified"

    def complete(self) -> None:
        assert self.sink is not None  # verify() refused an empty artifact
        self.sink.complete()

    def close(self) -> None:
        self.md5.stop()

    def abort(self) -> None:
        if self.sink is None and self._resume is not None:  # the upload of an earlier invocation
            self.sink = self._open_sink(self.key, self.expected_size, self._resume.upload, self.offset)
        if self.sink is not None:
            self.sink.abort()


class _Download:
    """The artifact as one forward stream from ``transfer.offset``: every byte read is teed into the
    transfer; dropped ranges, expired URLs and the deadline are handled here, under the reader."""

    def __init__(self, fetch: FetchArtifact, build_id: str, url: str, transfer: _Transfer) -> None:
        self._fetch = fetch
        self._build_id = build_id
        self._url = url
        self._transfer = transfer
        self._reader: ArtifactReader | None = None
        self._refreshes = self._failures = 0
        self.projecting = False  # the one pass is on: give up early if it cannot finish in time

    def read(self, size: int | None = -1, /) -> bytes:
        transfer = self._transfer
        while True:
            self._fetch.tick(self._build_id, transfer, projecting=self.projecting)
            if transfer.expected_size is not None and transfer.offset >= transfer.expected_size:
                return b""
            try:
                reader = self._open()
                data = reader.read(READ_SIZE if size is None or size < 0 else min(size, READ_SIZE))
                if not data:
                    raise BuildPixelUnavailable(f"the download ended at byte {transfer.offset}")
            except ArtifactUrlRefused as refused:
                raise FetchFailed(str(refused)) from None
            except ArtifactUrlExpired:
                self.close()
                self._refreshes += 1
                if self._refreshes > self._fetch.limits.max_url_refreshes:
                    raise FetchFailed(f"the artifact URL was refused {self._refreshes} times") from None
                self._url = self._fetch.refreshed_url(self._build_id, transfer)
                continue
            except BuildPixelUnavailable as error:
                self.close()
                self._failures = self._fetch.after_network_failure(
                    self._build_id, self._failures, error, transfer
                )
                continue
            except DeadlineReached as late:
                raise OutOfTime(str(late), deadline=True) from None
            transfer.write(data)
            return data

    def drain(self) -> None:
        while self.read(READ_SIZE):
            pass

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _open(self) -> ArtifactReader:
        if self._reader is None:
            transfer = self._transfer
            self._reader = self._fetch.open_reader(
                self._url, transfer.expected_size, transfer.offset, self._fetch.budget
            )
            transfer.expect(self._reader.size)
        return self._reader


class FetchArtifact:
    def __init__(
        self,
        *,
        builds: BuildsPort,
        source: BuildPixelPort,
        open_reader: ArtifactReaderFactory,
        open_sink: ResumableSinkFactory,
        limits: FetchLimits,
        one_pass: OnePass | None = None,
        continue_fetch: FetchStarter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seconds_left: Callable[[], float] = lambda: float("inf"),
    ) -> None:
        self._builds = builds
        self._source = source
        self.open_reader = open_reader
        self._open_sink = open_sink
        self.limits = limits
        self._one_pass = one_pass
        self._continue_fetch = continue_fetch
        self._sleep = sleep
        self._seconds_left = seconds_left
        self._started_left = 0.0
        self._checkpointed_left = 0.0
        self._invocations = 1
        self._holder = ""

    def __call__(self, build_id: str, invocation_id: str | None = None) -> FetchOutcome:
        """``invocation_id``: Lambda's request id, named in the lease (a random suffix tells apart two
        deliveries of one event, which share it)."""
        self._holder = f"{invocation_id or 'invocation'}/{uuid.uuid4().hex[:12]}"
        self._started_left = self._checkpointed_left = self._seconds_left()
        record = self._builds.get(build_id)
        if record is None:
            return FetchOutcome(build_id, "ignored: no build record")
        if record["status"] != BuildStatus.RECEIVED:
            # A repeated invocation (Lambda async retry) after the artifact is already stored.
            return FetchOutcome(build_id, f"skipped: build is already {record['status']}")
        # One download at a time: a duplicate delivery, or a retry while the holder still runs, stops here.
        claimed = self._hold(build_id, {HEARTBEAT_FIELD: self._builds.now_iso()})
        if claimed is None:
            return self._not_held(build_id)
        record = claimed
        try:
            resume = FetchCheckpoint.from_record(record.get(CHECKPOINT_FIELD))
        except (KeyError, TypeError, ValueError):
            self._builds.remove_fields(build_id, [CHECKPOINT_FIELD])
            unreadable = _Transfer(pull_key(build_id), self.limits.max_bytes, self._open_sink, None)
            unreadable.close()
            return self._fail(build_id, unreadable, "the fetch checkpoint is unreadable")
        self._invocations = (resume.invocations if resume else 0) + 1
        # Counted like conversion attempts: a stopped invocation records nothing else (``fetch_attempts``).
        attempt = next_fetch_attempt(record)
        if resume is None:
            detail = f"attempt {attempt}, pull through the BuildPixel download API"
            self._builds.record_event(build_id, "fetching", detail, fields={"fetchAttempts": attempt})
        else:
            detail = f"attempt {attempt}, invocation {self._invocations}, from byte {resume.offset}"
            self._builds.record_event(build_id, "fetch continued", detail, fields={"fetchAttempts": attempt})
        transfer = _Transfer(pull_key(build_id), self.limits.max_bytes, self._open_sink, resume)
        try:
            return self._fetch(build_id, transfer, resume)
        finally:
            transfer.close()  # the MD5 thread

    def _fetch(self, build_id: str, transfer: _Transfer, resume: FetchCheckpoint | None) -> FetchOutcome:
        started = time.monotonic()
        try:
            if self._invocations > self.limits.max_invocations:
                raise FetchFailed(f"the download did not finish in {self.limits.max_invocations} invocations")
            info = self._announced(build_id)
            transfer.expect(info.size_bytes, info.checksum_md5)
            # Always the URL signed now: async payloads (and the dead-letter queue) never carry one.
            download = _Download(self, build_id, info.url, transfer)
            try:
                if self._one_pass is not None and resume is None:
                    published = self._in_one_pass(build_id, download, transfer, self._one_pass)
                    if published is not None:
                        return published
                download.drain()
            finally:
                download.close()
            summary = transfer.verify()
            if not self._still_wanted(build_id):
                transfer.abort()
                return FetchOutcome(build_id, "abandoned: the build moved on while downloading")
            transfer.complete()
        except OutOfTime as stop:
            return self._continue_later(build_id, transfer, resume, str(stop))
        except LeaseLost:
            return FetchOutcome(build_id, HELD_ELSEWHERE)
        except FetchFailed as failure:
            return self._fail(build_id, transfer, failure.reason)
        except Exception as error:  # never leave a build silently stuck in "received"
            return self._fail(build_id, transfer, f"fetch error ({type(error).__name__})")
        return self._stored(build_id, transfer, summary, time.monotonic() - started)

    # -- one pass ------------------------------------------------------------------------------------
    def _in_one_pass(
        self, build_id: str, download: _Download, transfer: _Transfer, one_pass: OnePass
    ) -> FetchOutcome | None:
        """The converted outcome, or None when the zip was given up and the download goes on alone."""
        location = one_pass.publication.new_location(build_id)
        sink = one_pass.open_zip_sink(location.key, transfer.expected_size)
        download.projecting = True
        try:
            manifest = convert_targz_to_zip(download, sink, one_pass.limits)
            download.drain()  # nothing follows the gzip data (the converter refuses trailing bytes)
            summary = transfer.verify()
        except OutOfTime as stop:
            _abort(sink)
            download.projecting = False
            self._builds.record_event(
                build_id, "one pass given up", f"{stop}; the download goes on alone, then ConvertFunction"
            )
            if stop.deadline:
                raise
            return None
        except ArchiveRejected as rejected:
            _abort(sink)
            raise FetchFailed(str(rejected)) from None
        except LeaseLost:
            _abort(sink)  # this invocation's own zip; the raw upload belongs to the new holder
            raise
        except FetchFailed:
            _abort(sink)  # an MD5 mismatch discards the zip before anyone can download it
            raise
        except Exception as error:  # the zip upload failed: the two-pass way still converts the build
            _abort(sink)
            download.projecting = False
            self._builds.record_event(
                build_id, "one pass failed", f"{type(error).__name__}; downloading alone"
            )
            return None
        sink.complete()
        return self._publish(build_id, location, manifest, transfer, summary, one_pass)

    def _publish(
        self,
        build_id: str,
        location: HandoffLocation,
        manifest: ConversionManifest,
        transfer: _Transfer,
        summary: str,
        one_pass: OnePass,
    ) -> FetchOutcome:
        fields = {"artifactKey": transfer.key, "artifactBytes": transfer.offset, "convertedBy": "fetch"}
        try:
            wanted = self._still_wanted(build_id)
        except LeaseLost:
            one_pass.publication.discard(location)
            raise
        moved = one_pass.publication.converted(build_id, location, manifest, fields) if wanted else None
        if moved is None:
            one_pass.publication.discard(location)
            transfer.abort()
            return FetchOutcome(build_id, "abandoned: the build moved on while downloading")
        # Completed only now: its S3 event finds the build converted, and ConvertFunction skips it.
        try:
            transfer.complete()
            self._builds.record_event(
                build_id, "stored", f"{transfer.key}, {transfer.offset} bytes, {summary}"
            )
        except Exception as error:  # the zip is published; only the copy kept for retries is missing
            self._builds.record_event(build_id, "artifact not kept", f"{type(error).__name__}")
        self._forget_checkpoint(build_id)
        try:
            one_pass.publication.start_release(build_id, release_execution_name(moved))
        except Exception as error:  # the zip is published: the reconciler looks into a converted build
            self._builds.record_event(build_id, "release not started", type(error).__name__)
        return FetchOutcome(build_id, "converted")

    # -- time and checkpoints --------------------------------------------------------------------------
    def budget(self) -> float:
        """Seconds this invocation may still wait for bytes."""
        return self._seconds_left() - self.limits.reserve_seconds

    def tick(self, build_id: str, transfer: _Transfer, *, projecting: bool) -> None:
        """Before every read: stop at the deadline, give up a one pass that cannot finish, and write a
        checkpoint now and then (a killed invocation's retry then loses little)."""
        left = self._seconds_left()
        if left - self.limits.reserve_seconds <= 0:
            raise OutOfTime(f"the invocation's time is up at byte {transfer.offset}", deadline=True)
        elapsed = self._started_left - left
        if projecting and transfer.expected_size and elapsed >= self.limits.projection_after_seconds:
            rate = (transfer.offset - transfer.started_at) / elapsed
            needed = (transfer.expected_size - transfer.offset) / rate if rate > 0 else float("inf")
            if needed > left - self.limits.reserve_seconds:
                raise OutOfTime(
                    f"at {rate / MiB:.1f} MB/s it cannot finish in this invocation", deadline=False
                )
        if self._checkpointed_left - left >= self.limits.checkpoint_every_seconds:
            self._checkpointed_left = left
            self._save(build_id, transfer, wait=False)

    def _hold(self, build_id: str, fields: dict[str, Any], *, release: bool = False) -> BuildRecord | None:
        """Claim or renew this invocation's lease with ``fields`` (one conditional write); None: refused."""
        seconds = min(self._seconds_left(), FETCH_TIMEOUT_SECONDS) + self.limits.lease_grace_seconds
        return self._builds.hold_fetch_lease(
            build_id, self._holder, seconds=seconds, fields=fields, release=release
        )

    def _not_held(self, build_id: str) -> FetchOutcome:
        record = self._builds.get(build_id)
        if record is not None and record["status"] != BuildStatus.RECEIVED:
            return FetchOutcome(build_id, f"skipped: build is already {record['status']}")
        return FetchOutcome(build_id, HELD_ELSEWHERE)

    def _save(
        self, build_id: str, transfer: _Transfer, *, wait: bool, release: bool = False
    ) -> FetchCheckpoint | None:
        """Write the checkpoint, only while this invocation holds the lease (``release``: and free it for
        the next invocation); None when the build moved on, ``LeaseLost`` when another took over."""
        checkpoint = transfer.checkpoint(self._invocations, wait=wait)
        fields: dict[str, Any] = {HEARTBEAT_FIELD: self._builds.now_iso()}
        if checkpoint is not None:
            fields[CHECKPOINT_FIELD] = checkpoint.to_record()
        if self._hold(build_id, fields, release=release) is None:
            self._still_wanted(build_id)  # raises LeaseLost when another invocation holds it
            return None
        return checkpoint

    def _continue_later(
        self, build_id: str, transfer: _Transfer, resume: FetchCheckpoint | None, reason: str
    ) -> FetchOutcome:
        try:
            checkpoint = self._save(build_id, transfer, wait=True, release=True)
            if checkpoint is None:
                raise FetchFailed(f"{reason}: nothing could be kept for the next invocation")
            if resume is not None and checkpoint.offset <= resume.offset:
                raise FetchFailed(f"{reason}: no progress in a whole invocation (byte {checkpoint.offset})")
            if self._continue_fetch is None:
                raise FetchFailed(f"{reason}: no next invocation can be started")
            self._builds.record_event(
                build_id,
                "fetch checkpoint",
                f"{checkpoint.offset} of {transfer.expected_size} bytes in S3 after invocation "
                f"{self._invocations}; the next one continues from there",
            )
            self._continue_fetch.start(build_id)  # the build id only: the next one asks for a fresh URL
        except LeaseLost:
            return FetchOutcome(build_id, HELD_ELSEWHERE)
        except FetchFailed as failure:
            return self._fail(build_id, transfer, failure.reason)
        except Exception as error:
            return self._fail(
                build_id, transfer, f"{reason}; the next invocation failed ({type(error).__name__})"
            )
        return FetchOutcome(build_id, "continuing")

    # -- BuildPixel ------------------------------------------------------------------------------------
    def _announced(self, build_id: str) -> DownloadInfo:
        """Size and MD5 (and a URL) from the download API: a build it does not confirm is not fetched."""
        try:
            return self._source.download_info(build_id)
        except (BuildPixelError, MissingSecretValue) as error:
            raise FetchFailed(f"BuildPixel's download API did not confirm the build: {error}") from None

    def refreshed_url(self, build_id: str, transfer: _Transfer) -> str:
        try:
            info = self._source.download_info(build_id)
        except (BuildPixelError, MissingSecretValue) as error:
            raise FetchFailed(f"the artifact URL expired and could not be renewed: {error}") from None
        transfer.expect(info.size_bytes, info.checksum_md5)
        self._builds.record_event(
            build_id, "artifact URL renewed", f"through the download API, at byte {transfer.offset}"
        )
        return info.url

    def after_network_failure(
        self, build_id: str, failures: int, error: BuildPixelUnavailable, transfer: _Transfer
    ) -> int:
        failures += 1
        if failures >= self.limits.max_network_attempts:
            raise FetchFailed(f"download failed {failures} times; last: {error}") from None
        delay = min(self.limits.backoff_cap_seconds, self.limits.backoff_base_seconds * 2 ** (failures - 1))
        self._builds.record_event(
            build_id, "download interrupted", f"{error}; resuming at byte {transfer.offset} in {delay:.0f} s"
        )
        self._sleep(min(delay, max(0.0, self.budget())))  # never past the deadline
        return failures

    # -- endings -------------------------------------------------------------------------------------
    def _still_wanted(self, build_id: str) -> bool:
        """True while the build waits for this download; ``LeaseLost`` when another invocation holds it."""
        record = self._builds.get(build_id)
        if record is None or record["status"] != BuildStatus.RECEIVED:
            return False
        lease = record.get(FETCH_LEASE_FIELD)
        if isinstance(lease, dict) and lease.get("holder") != self._holder:
            raise LeaseLost()
        return True

    def _stored(self, build_id: str, transfer: _Transfer, summary: str, seconds: float) -> FetchOutcome:
        rate = (transfer.offset - transfer.started_at) / MiB / max(seconds, 1e-6)
        detail = f"{transfer.key}, {transfer.offset} bytes, {rate:.1f} MB/s, {summary}"
        if self._invocations > 1:
            detail += f", in {self._invocations} invocations"
        fields = {"artifactKey": transfer.key, "artifactBytes": transfer.offset}
        moved = self._builds.transition(
            build_id, BuildStatus.STORED, event="stored", detail=detail, fields=fields
        )
        if moved is None:
            # The converter saw the S3 event first and already moved the build on: keep the fact.
            self._builds.record_event(build_id, "stored", detail, fields=fields)
        self._forget_checkpoint(build_id)
        return FetchOutcome(build_id, "stored")

    def _fail(self, build_id: str, transfer: _Transfer, reason: str) -> FetchOutcome:
        try:
            wanted = self._still_wanted(build_id)
        except LeaseLost:  # never abort the upload the holder is writing
            return FetchOutcome(build_id, HELD_ELSEWHERE)
        if not wanted:  # e.g. a duplicate invocation already stored or converted it
            return FetchOutcome(build_id, f"abandoned: {reason}; the build moved on")
        try:
            transfer.abort()
        except Exception as error:  # the bucket's lifecycle rule aborts stale uploads after a day
            reason = f"{reason} (multipart abort failed: {type(error).__name__})"
        self._builds.transition(
            build_id, BuildStatus.FAILED, event="failed", detail=reason, fields={"error": reason}
        )
        self._forget_checkpoint(build_id)
        return FetchOutcome(build_id, "failed")

    def _forget_checkpoint(self, build_id: str) -> None:
        record = self._builds.get(build_id) or {}
        names = [name for name in (CHECKPOINT_FIELD, FETCH_LEASE_FIELD) if name in record]
        if names:
            self._builds.remove_fields(build_id, names)


def _abort(sink: UploadingZipSink) -> None:
    """Abort the zip's upload. If even that fails nothing was published (an incomplete upload is no
    object), and the bucket's lifecycle rule removes it."""
    with contextlib.suppress(Exception):
        sink.abort()
