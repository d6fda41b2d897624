"""Convert a stored build into the Streampixel-ready zip, publish it, and start its release."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from pixelbridge.adapters.builds import BuildRepository
from pixelbridge.adapters.handoff import HandoffStore
from pixelbridge.adapters.multipart import MultipartError, parse_build_upload
from pixelbridge.adapters.ranged_reader import ParallelRangedReader, RangedReadConfig, S3RangeSource
from pixelbridge.adapters.store import MULTIPART_TYPE_METADATA, InboxStore, build_id_from_key
from pixelbridge.adapters.workflow import Workflow
from pixelbridge.convert.pipeline import ByteSource, ConversionLimits, convert_targz_to_zip
from pixelbridge.convert.sinks import S3MultipartSink
from pixelbridge.domain.errors import ArchiveRejected
from pixelbridge.domain.statuses import BuildStatus

CONVERTIBLE = {BuildStatus.RECEIVED, BuildStatus.STORED, BuildStatus.CONVERTING}
# A conversion that never finished (Lambda killed at its time limit) is tried again this many times in all.
MAX_CONVERT_ATTEMPTS = 3


@dataclass(frozen=True)
class ConvertOutcome:
    build_id: str | None
    result: str

    def to_dict(self) -> dict[str, Any]:
        return {"buildId": self.build_id, "result": self.result}


def release_input(build_id: str, stage: str = "upload") -> dict[str, Any]:
    """The state machine's input: every path the ASL reads exists from the start."""
    return {"buildId": build_id, "stage": stage, "lastError": None}


def release_execution_name(record: dict[str, Any]) -> str:
    """The build id, or ``<buildId>-retry-<n>`` once an operator re-drove it (names are unique forever)."""
    retries = int(record.get("retryCount", 0))
    return f"{record['buildId']}-retry-{retries}" if retries else str(record["buildId"])


class ConvertBuild:
    def __init__(
        self,
        *,
        builds: BuildRepository,
        inbox: InboxStore,
        handoff: HandoffStore,
        workflow: Workflow,
        s3: Any,
        limits: ConversionLimits,
        reads: RangedReadConfig | None = None,
    ) -> None:
        self._builds = builds
        self._inbox = inbox
        self._handoff = handoff
        self._workflow = workflow
        self._s3 = s3
        self._limits = limits
        self._reads = reads or RangedReadConfig()

    def __call__(self, key: str) -> ConvertOutcome:
        parsed = build_id_from_key(key)
        if parsed is None:
            return ConvertOutcome(None, f"ignored: {key[:200]} is not an inbox build")
        build_id, source = parsed
        record = self._builds.get(build_id)
        if record is None:
            return ConvertOutcome(build_id, "ignored: no build record")
        if BuildStatus(record["status"]) not in CONVERTIBLE:
            return ConvertOutcome(build_id, f"skipped: build is already {record['status']}")
        attempt = int(record.get("convertAttempts", 0)) + 1
        if attempt > MAX_CONVERT_ATTEMPTS:
            self._fail(build_id, f"conversion did not finish in {MAX_CONVERT_ATTEMPTS} attempts")
            return ConvertOutcome(build_id, "failed")
        moved = self._builds.transition(
            build_id,
            BuildStatus.CONVERTING,
            event="converting",
            detail=f"attempt {attempt}, {source} artifact",
            fields={"convertAttempts": attempt, "artifactKey": key},
            allow_same=True,
        )
        if moved is None:
            return ConvertOutcome(build_id, "skipped: build moved on")
        return self._convert(build_id, key, attempt, release_execution_name(moved))

    def _convert(self, build_id: str, key: str, attempt: int, execution: str) -> ConvertOutcome:
        location = self._handoff.new_location(build_id)
        # The stored artifact is read with parallel byte-range GETs: one S3 connection gives ~90 MB/s.
        source = S3RangeSource(self._s3, self._inbox.bucket, key)
        reader = ParallelRangedReader(source, self._reads)
        sink = S3MultipartSink(self._s3, self._handoff.bucket, location.key, expected_size=source.size)
        try:
            content_type = source.metadata.get(MULTIPART_TYPE_METADATA, "")
            manifest = convert_targz_to_zip(
                self._artifact_stream(key, reader, content_type), sink, self._limits
            )
            sink.complete()
        except (ArchiveRejected, MultipartError) as rejected:
            sink.abort()
            self._fail(build_id, str(rejected))  # both carry their human reason as the message
            return ConvertOutcome(build_id, "failed")
        except Exception as error:
            sink.abort()
            reason = f"conversion error ({type(error).__name__})"
            if attempt >= MAX_CONVERT_ATTEMPTS:
                self._fail(build_id, f"{reason} in attempt {attempt}; giving up")
                return ConvertOutcome(build_id, "failed")
            self._builds.record_event(build_id, "conversion error", f"{reason}; will be retried")
            raise
        finally:
            reader.close()
        summary = manifest.to_dict()
        self._builds.transition(
            build_id,
            BuildStatus.CONVERTED,
            event="converted",
            detail=f"{summary['files']} files, {summary['bytes_out']} bytes zip, "
            f"{summary['mb_per_s']:.1f} MB/s",
            fields={
                "zipKey": location.key,
                "zipUrl": self._handoff.url_for(location.key),
                "handoffToken": location.token,
                "manifest": summary,
            },
        )
        self._start_release(build_id, execution)
        return ConvertOutcome(build_id, "converted")

    def _artifact_stream(self, key: str, body: ByteSource, content_type: str) -> ByteSource:
        if not key.endswith(".multipart"):
            return body
        # Push bodies are ≤ 4.5 MiB (the Function URL limit), so reading one whole is cheap.
        return io.BytesIO(parse_build_upload(body.read(), content_type).artifact)

    def _start_release(self, build_id: str, execution: str) -> None:
        if not self._workflow.configured:
            return
        started = self._workflow.start(execution, release_input(build_id))
        self._builds.record_event(build_id, "release started" if started else "release already started")

    def _fail(self, build_id: str, reason: str) -> None:
        self._builds.transition(
            build_id, BuildStatus.FAILED, event="failed", detail=reason, fields={"error": reason}
        )
