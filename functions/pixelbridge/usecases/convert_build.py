"""Convert a stored build into the Streampixel-ready zip, publish it, and start its release."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, BinaryIO

from pixelbridge.convert.pipeline import ConversionLimits, ConversionManifest, convert_targz_to_zip
from pixelbridge.domain.errors import ArchiveRejected
from pixelbridge.domain.inbox import build_id_from_key
from pixelbridge.domain.records import BuildRecord
from pixelbridge.domain.release_runs import release_execution_name, release_input
from pixelbridge.domain.statuses import BuildStatus
from pixelbridge.ports import (
    BuildsPort,
    HandoffLocation,
    HandoffPort,
    InboxPort,
    MultipartError,
    UploadParser,
    WorkflowPort,
    ZipSinkFactory,
)

TAKEN_OVER = "abandoned: the build was taken over while converting"
CONVERTIBLE = {BuildStatus.RECEIVED, BuildStatus.STORED, BuildStatus.CONVERTING}
# Lambda invokes ConvertFunction at most this often per event (EventInvokeConfig MaximumRetryAttempts 1:
# the first invocation and one retry). The second failure ends the build; a second kill (15-minute
# limit, out of memory) runs no code at all, so the reconciler ends that build (see ``reconcile``).
MAX_CONVERT_ATTEMPTS = 2


MAX_MANIFEST_NOTES = 20


def bounded_notes(notes: list[str]) -> list[str]:
    """The first notes and how many more: an archive may repeat one oddity thousands of times."""
    if len(notes) <= MAX_MANIFEST_NOTES:
        return notes
    return [*notes[:MAX_MANIFEST_NOTES], f"... and {len(notes) - MAX_MANIFEST_NOTES} more notes like these"]


class Publication:
    """The end every conversion shares (ConvertFunction, and FetchFunction's one pass): the build is
    recorded converted with its zip's location, then its release starts."""

    def __init__(self, *, builds: BuildsPort, handoff: HandoffPort, workflow: WorkflowPort) -> None:
        self._builds = builds
        self._handoff = handoff
        self._workflow = workflow

    def new_location(self, build_id: str) -> HandoffLocation:
        return self._handoff.new_location(build_id)

    def discard(self, location: HandoffLocation) -> None:
        self._handoff.delete(location.key)

    def converted(
        self,
        build_id: str,
        location: HandoffLocation,
        manifest: ConversionManifest,
        fields: dict[str, Any] | None = None,
    ) -> BuildRecord | None:
        summary = manifest.to_dict()
        summary["notes"] = bounded_notes(summary["notes"])
        return self._builds.transition(
            build_id,
            BuildStatus.CONVERTED,
            event="converted",
            detail=f"{summary['files']} files, {summary['bytes_out']} bytes zip, "
            f"{summary['mb_per_s']:.1f} MB/s",
            fields={
                **(fields or {}),
                "zipKey": location.key,  # the URL is made per upload-file call (a presigned one expires)
                "handoffToken": location.token,
                "manifest": summary,
            },
        )

    def start_release(self, build_id: str, execution: str) -> None:
        if not self._workflow.configured:
            return
        started = self._workflow.start(execution, release_input(build_id))
        self._builds.record_event(build_id, "release started" if started else "release already started")


@dataclass(frozen=True)
class ConvertOutcome:
    build_id: str | None
    result: str

    def to_dict(self) -> dict[str, Any]:
        return {"buildId": self.build_id, "result": self.result}


class ConvertBuild:
    def __init__(
        self,
        *,
        builds: BuildsPort,
        inbox: InboxPort,
        handoff: HandoffPort,
        workflow: WorkflowPort,
        open_zip_sink: ZipSinkFactory,
        parse_upload: UploadParser,
        limits: ConversionLimits,
    ) -> None:
        self._builds = builds
        self._inbox = inbox
        self._publication = Publication(builds=builds, handoff=handoff, workflow=workflow)
        self._open_zip_sink = open_zip_sink
        self._parse_upload = parse_upload
        self._limits = limits

    def __call__(self, key: str) -> ConvertOutcome:
        parsed = build_id_from_key(key)
        if parsed is None:
            return ConvertOutcome(None, f"ignored: {key[:200]} is not an inbox build")
        build_id, source = parsed
        record = self._builds.get(build_id)
        if record is None:
            return ConvertOutcome(build_id, "ignored: no build record")
        if record.get("source", source) != source:  # e.g. a push taken over by a signed pull
            return ConvertOutcome(build_id, f"ignored: the build is registered from {record['source']}")
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
        location = self._publication.new_location(build_id)
        body, size, content_type = self._inbox.open(key)
        sink = self._open_zip_sink(location.key, size)
        try:
            manifest = convert_targz_to_zip(
                self._artifact_stream(key, body, content_type), sink, self._limits
            )
            sink.complete()
        except (ArchiveRejected, MultipartError) as rejected:
            sink.abort()
            if self._taken_over(build_id, key):
                return ConvertOutcome(build_id, TAKEN_OVER)
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
            body.close()
        if self._taken_over(build_id, key):
            self._publication.discard(location)
            return ConvertOutcome(build_id, TAKEN_OVER)
        self._publication.converted(build_id, location, manifest)
        self._publication.start_release(build_id, execution)
        return ConvertOutcome(build_id, "converted")

    def _taken_over(self, build_id: str, key: str) -> bool:
        """A signed pull took the build over from the push while this artifact converted."""
        return (self._builds.get(build_id) or {}).get("artifactKey") != key

    def _artifact_stream(self, key: str, body: BinaryIO, content_type: str) -> BinaryIO:
        if not key.endswith(".multipart"):
            return body
        # Push bodies are ≤ 4.5 MiB (the Function URL limit), so reading one whole is cheap.
        return io.BytesIO(self._parse_upload(body.read(), content_type).artifact)

    def _fail(self, build_id: str, reason: str) -> None:
        self._builds.transition(
            build_id, BuildStatus.FAILED, event="failed", detail=reason, fields={"error": reason}
        )
