"""Output sinks for the zip writer.

``zipfile`` writes each local header with zero CRC/sizes, streams the member data, then seeks back to
the header and rewrites it with the real values (only when the output claims to be seekable; otherwise it
sets the data-descriptor flag, which Java's ``ZipInputStream`` rejects for STORED entries). A sink therefore
only has to keep the *current member's local header* patchable: the pipeline calls ``hold_from(offset)``
before opening a member and ``release_hold()`` once it is closed. Everything before the hold may already be
gone (uploaded), so the memory bound is a few parts whatever the archive size.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeAlias

from pixelbridge.domain.uploads import UploadState

if TYPE_CHECKING:
    from typing_extensions import Buffer
else:
    Buffer: TypeAlias = bytes | bytearray | memoryview
MiB = 1024 * 1024
S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PARTS = 10_000
# A local header is 30 fixed bytes + a name and an extra field of at most 64 KiB each; zipfile rewrites
# exactly that region, so holding this many bytes from the header offset is always enough.
MAX_LOCAL_HEADER_BYTES = 30 + 0xFFFF + 0xFFFF


class ZipSink(Protocol):
    """What the pipeline needs from an output: a seekable-looking binary writer with a patch window.

    ``write`` gets views of buffers the pipeline reuses (the gunzip blocks): like any ``io`` writer, it
    must copy or consume the bytes before returning, never keep the object itself.
    """

    def write(self, data: Buffer, /) -> int: ...
    def tell(self) -> int: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def seekable(self) -> bool: ...
    def flush(self) -> None: ...
    def hold_from(self, offset: int) -> None: ...
    def release_hold(self) -> None: ...


class LocalFileSink(io.RawIOBase):
    """A plain local file (tests and benchmark). Holds are no-ops: a file can always be patched."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - lifetime is the sink's

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Buffer, /) -> int:
        return self._file.write(data)

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._file.seek(offset, whence)

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def hold_from(self, offset: int) -> None:
        """Nothing to do: every byte of a local file stays patchable."""

    def release_hold(self) -> None:
        """Nothing to do."""

    def complete(self) -> None:
        self._file.close()
        self.close()

    def abort(self) -> None:
        """Drop the partial file so nobody mistakes it for a finished zip."""
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self.path):
            os.remove(self.path)
        self.close()


class CountingNullSink(io.RawIOBase):
    """Discards the bytes and only tracks the position and size (benchmark: measures the converter alone)."""

    def __init__(self) -> None:
        super().__init__()
        self._position = 0
        self.size = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Buffer, /) -> int:
        written = memoryview(data).nbytes
        self._position += written
        self.size = max(self.size, self._position)
        return written

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0, /) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.size}[whence]
        self._position = base + offset
        return self._position

    def hold_from(self, offset: int) -> None:
        """Nothing to keep."""

    def release_hold(self) -> None:
        """Nothing to keep."""

    def complete(self) -> None:
        self.close()

    def abort(self) -> None:
        self.close()


class _PartLayout:
    """Offsets of the multipart parts. Parts may differ in size (S3 only needs >= 5 MiB but the last),
    so the size doubles every 2,500 parts: an archive bigger than expected still fits 10,000 parts."""

    def __init__(self, base_size: int) -> None:
        self.base_size = base_size
        self._starts = [0]

    def size_of(self, index: int) -> int:
        return self.base_size << (index // 2500)

    def start_of(self, index: int) -> int:
        while len(self._starts) <= index:
            last = len(self._starts) - 1
            self._starts.append(self._starts[last] + self.size_of(last))
        return self._starts[index]

    def index_of(self, offset: int) -> int:
        index = max(0, min(offset // self.base_size, len(self._starts) - 1))
        while self.start_of(index + 1) <= offset:
            index += 1
        while self.start_of(index) > offset:
            index -= 1
        return index


def choose_part_size(part_size: int, expected_size: int | None) -> int:
    """The requested part size, grown (MiB steps) so an archive of ``expected_size`` needs <= 8,000 parts."""
    size = max(part_size, S3_MIN_PART_SIZE)
    if expected_size:
        needed = -(-expected_size // 8000)
        size = max(size, -(-needed // MiB) * MiB)
    return size


class S3MultipartSink(io.RawIOBase):
    """Streams the zip to S3 with a multipart upload, keeping only a few parts in memory.

    * Writes fill the buffer of the part they fall in. A part that is complete and holds no held byte is
      uploaded (by a small thread pool, so the network overlaps the CPU); parts may finish out of order.
    * ``seek`` + ``write`` inside a part still in memory patches it; patching an uploaded part raises.
    * ``complete()`` uploads the rest and completes the upload; ``abort()`` aborts it (call it on failure).
    """

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        key: str,
        *,
        part_size: int = 16 * MiB,
        content_type: str = "application/zip",
        max_in_flight: int = 2,
        expected_size: int | None = None,
        resume: UploadState | None = None,
    ) -> None:
        """``resume`` continues that upload after its parts (an append-only stream: no patching back)."""
        super().__init__()
        self._s3 = s3_client
        self.bucket = bucket
        self.key = key
        base = resume.part_size if resume else choose_part_size(part_size, expected_size)
        self._layout = _PartLayout(base)
        self._max_in_flight = max(1, max_in_flight)
        self._buffers: dict[int, bytearray] = {}
        self._etags: dict[int, str] = dict(enumerate(resume.etags)) if resume else {}
        self._in_flight: dict[Future[str], int] = {}
        self._pool = ThreadPoolExecutor(max_workers=self._max_in_flight, thread_name_prefix="s3-part")
        self._sent: set[int] = set(self._etags)  # indexes of parts uploaded or uploading: not patchable
        self._position = self._size = self._layout.start_of(len(self._etags))
        self._hold: tuple[int, int] | None = None
        self._finished = False
        if resume:
            self.upload_id = resume.upload_id
        else:
            created = s3_client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
            self.upload_id = str(created["UploadId"])

    @property
    def part_size(self) -> int:
        return self._layout.base_size

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0, /) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        target = base + offset
        if not 0 <= target <= self._size:
            raise ValueError(f"cannot seek to {target}: outside the written range 0..{self._size}")
        self._position = target
        return target

    def write(self, data: Buffer, /) -> int:
        view = memoryview(data).cast("B")
        total = view.nbytes
        while view.nbytes:
            index = self._layout.index_of(self._position)
            if index in self._sent:
                raise OSError(f"offset {self._position} is in a part already uploaded; it cannot be patched")
            start = self._layout.start_of(index)
            room = start + self._layout.size_of(index) - self._position
            piece, view = view[:room], view[room:]
            buffer = self._buffers.setdefault(index, bytearray())
            at = self._position - start
            buffer[at : at + piece.nbytes] = piece  # patches in place, or appends at the part's end
            self._position += piece.nbytes
        if self._position > self._size:
            self._size = self._position
            self._upload_complete_parts()
        return total

    def flush(self) -> None:
        """Nothing to flush: parts are uploaded when complete and at ``complete()``."""

    def part_end(self, offset: int) -> int:
        """Where the part holding ``offset`` ends (the next offset a checkpoint can be taken at)."""
        index = self._layout.index_of(offset)
        return self._layout.start_of(index) + self._layout.size_of(index)

    def durable(self, *, wait: bool) -> tuple[int, UploadState]:
        """(bytes safely in S3, the upload to continue from there): parts 1..n uploaded, in order.

        ``wait`` lets the part uploads in flight finish first (a final checkpoint); otherwise only those
        already done count. Bytes after that prefix (the part being filled) are not kept."""
        self._collect_uploads(until_at_most=0 if wait else None)
        count = 0
        while count in self._etags:
            count += 1
        etags = tuple(self._etags[index] for index in range(count))
        state = UploadState(self.key, self.upload_id, self._layout.base_size, etags)
        return self._layout.start_of(count), state

    def hold_from(self, offset: int) -> None:
        """Keep the local header that starts at ``offset`` patchable until ``release_hold()``."""
        if self._layout.index_of(offset) in self._sent:
            raise OSError(f"offset {offset} is in a part already uploaded; it cannot be held")
        self._hold = (offset, offset + MAX_LOCAL_HEADER_BYTES)

    def release_hold(self) -> None:
        self._hold = None
        self._upload_complete_parts()

    def complete(self) -> None:
        """Upload the remaining parts and complete the multipart upload."""
        self._hold = None
        for index in sorted(self._buffers):
            self._submit(index)
        self._wait_for_uploads(until_at_most=0)
        parts = [{"PartNumber": index + 1, "ETag": etag} for index, etag in sorted(self._etags.items())]
        self._s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
        )
        self._finish()

    def abort(self) -> None:
        """Abort the multipart upload (idempotent), discarding every part."""
        if self._finished:
            return
        for future in self._in_flight:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._buffers.clear()
        self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        self._finish()

    def _finish(self) -> None:
        self._finished = True
        self._pool.shutdown(wait=True)
        self.close()

    def _upload_complete_parts(self) -> None:
        for index in sorted(self._buffers):
            start = self._layout.start_of(index)
            end = start + self._layout.size_of(index)
            if end > self._size:
                continue  # still filling
            if self._hold is not None and start < self._hold[1] and self._hold[0] < end:
                continue  # contains a header zipfile will rewrite
            self._submit(index)

    def _submit(self, index: int) -> None:
        self._wait_for_uploads(until_at_most=self._max_in_flight - 1)
        body = self._buffers.pop(index)
        self._sent.add(index)
        future = self._pool.submit(self._upload_part, index + 1, body)
        self._in_flight[future] = index

    def _upload_part(self, part_number: int, body: bytearray) -> str:
        answer = self._s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=part_number, Body=body
        )
        return str(answer["ETag"])

    def _wait_for_uploads(self, *, until_at_most: int) -> None:
        self._collect_uploads(until_at_most=until_at_most)

    def _collect_uploads(self, *, until_at_most: int | None) -> None:
        """Record finished uploads; wait while more than ``until_at_most`` are in flight (None: never)."""
        while self._in_flight:
            must_wait = until_at_most is not None and len(self._in_flight) > until_at_most
            done, _ = wait(self._in_flight, timeout=None if must_wait else 0, return_when=FIRST_COMPLETED)
            if not done:
                return
            for future in done:
                index = self._in_flight.pop(future)
                self._etags[index] = future.result()  # re-raises an upload error here, in the caller


def resumable_s3_sinks(
    s3_client: Any, bucket: str, *, part_size: int, content_type: str = "application/gzip"
) -> Callable[[str, int | None, UploadState | None, int], S3MultipartSink]:
    """(key, expected size, upload to continue, its byte count) -> a sink: FetchFunction's raw artifact."""

    def open_sink(
        key: str, expected_size: int | None, resume: UploadState | None, offset: int
    ) -> S3MultipartSink:
        sink = S3MultipartSink(
            s3_client,
            bucket,
            key,
            part_size=part_size,
            content_type=content_type,
            expected_size=expected_size,
            resume=resume,
        )
        if sink.tell() != offset:
            raise ValueError(f"the upload holds {sink.tell()} bytes, not the {offset} the checkpoint says")
        return sink

    return open_sink
