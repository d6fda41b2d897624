"""The byte streams in front of the tar reader: the counted source and the gunzip thread.

    source ─► CountingSource (counts, peeks the gzip magic) ─► GunzipThread (isal, own thread) ─► tar reader

Errors raised by the *source* travel wrapped in ``SourceFailure`` so gzip and tar code never mistakes a
network error for a corrupt archive; the tar reader unwraps them.
"""

from __future__ import annotations

import io
import queue
import threading
import zlib
from typing import Any, BinaryIO, Protocol

from pixelbridge.convert.limits import MiB
from pixelbridge.domain.errors import ArchiveRejected

try:  # isal: ~3x faster gunzip and deflate than zlib; the converter still works without it.
    from isal import isal_zlib as isal_zlib  # re-exported: the zip writer deflates with it too
except ImportError:  # pragma: no cover - exercised only where isal is not installed
    isal_zlib = None  # type: ignore[assignment]

_ISAL_ERRORS: tuple[type[BaseException], ...] = (
    (isal_zlib.error,) if isal_zlib is not None else ()  # type: ignore[assignment]  # stubs call it an instance
)
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    ValueError,
    zlib.error,
    *_ISAL_ERRORS,
)
GZIP_MAGIC = b"\x1f\x8b"


class ByteSource(Protocol):
    """All the converter needs from its input: ``read(size)`` returning up to ``size`` bytes, ``b""`` at
    the end (a file, a streaming HTTP/S3 body, the parallel ranged reader)."""

    def read(self, size: int = -1, /) -> bytes: ...


class SourceFailure(Exception):
    """Carries an error raised by the source through gzip/tar, so it is not taken for corruption."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class CountingSource(io.RawIOBase):
    """Counts the bytes read from the source and lets the first bytes be peeked (the gzip magic)."""

    def __init__(self, source: ByteSource) -> None:
        super().__init__()
        self._source = source
        self._peeked = b""
        self.count = 0

    def readable(self) -> bool:
        return True

    def peek_exact(self, size: int) -> bytes:
        while len(self._peeked) < size:
            more = self._read_source(size - len(self._peeked))
            if not more:
                break
            self._peeked += more
        return self._peeked[:size]

    def read(self, size: int | None = -1, /) -> bytes:
        if self._peeked:
            data, self._peeked = self._peeked, b""
            return data
        return self._read_source(-1 if size is None else size)

    def readinto(self, buffer: Any, /) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _read_source(self, size: int) -> bytes:
        try:
            data = self._source.read(size)
        except Exception as error:
            raise SourceFailure(error) from error
        self.count += len(data)
        return data


def require_gzip_magic(source: CountingSource) -> None:
    if source.peek_exact(2) != GZIP_MAGIC:
        raise ArchiveRejected("not a gzip file")


def open_gunzip(source: CountingSource) -> BinaryIO:
    if isal_zlib is not None:
        return GunzipThread(source)  # type: ignore[return-value]  # a RawIOBase, plus read_view
    import gzip

    return gzip.GzipFile(fileobj=source, mode="rb")


GUNZIP_BLOCK = 4 * MiB  # big blocks: few hand-offs, and isal fills one per call (measured best at 4 MiB)
GUNZIP_BLOCKS = 3  # one being read, one ready, one being filled: enough to keep both threads busy
GUNZIP_INPUT_BUFFER = 4 * MiB  # compressed bytes per source read (512 KiB reads were ~10-20 % slower)


class GunzipThread(io.RawIOBase):
    """Gunzip on a private thread, into a fixed pool of reusable blocks handed over without copying.

    isal's ``_GzipReader`` (the C reader behind ``igzip``) does the work: gzip header parsing, CRC-32 and
    length checks of every member, concatenated members, zero padding after the last one. It releases the
    GIL while inflating, so inflating overlaps tar parsing, CRC and zip writing on the calling thread.
    Compared with ``igzip_threaded`` (1 MiB ``bytes`` per block, copied again by a ``BufferedReader``) the
    blocks here are allocated once, filled in place and read through ``read_view`` without a copy.

    Errors raised on the thread (corrupt data, the source failing) are re-raised by the read that reaches
    them, after all the good data before them. Not thread-safe: one consumer.
    """

    def __init__(
        self,
        source: CountingSource,
        *,
        block_size: int = GUNZIP_BLOCK,
        blocks: int = GUNZIP_BLOCKS,
        input_buffer: int = GUNZIP_INPUT_BUFFER,
    ) -> None:
        super().__init__()
        self._reader = isal_zlib._GzipReader(source, input_buffer)  # type: ignore[arg-type]  # reads like a file
        # Blocks cycle free -> worker -> ready -> consumer -> free; SimpleQueue is the cheapest hand-off and
        # the pool bounds memory (the queues themselves never hold more than the pool).
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        self._ready: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None] = queue.SimpleQueue()
        for _ in range(blocks):
            self._free.put(bytearray(block_size))
        self._block: bytearray | None = None  # the block being consumed (owned by this thread)
        self._view = memoryview(b"")
        self._offset = 0
        self._finished = False  # end of data reached, or an error already raised
        self._stopping = False
        self._worker = threading.Thread(target=self._inflate, name="pixelbridge-gunzip", daemon=True)
        self._worker.start()

    def readable(self) -> bool:
        return True

    def read_view(self, size: int) -> memoryview:
        """Up to ``size`` bytes (fewer at a block end, empty at the end of the data), without copying.

        The view is only valid until the next call on this reader: its block is then reused."""
        if self._offset == len(self._view) and not self._next_block():
            return memoryview(b"")
        view = self._view[self._offset : self._offset + size]
        self._offset += len(view)
        return view

    def readinto(self, buffer: Any, /) -> int:
        view = self.read_view(len(buffer))
        buffer[: len(view)] = view
        return len(view)

    def read(self, size: int | None = -1, /) -> bytes:
        """Exactly ``size`` bytes unless the data ends first (tarfile relies on this for 512-byte headers)."""
        if size is None or size < 0:
            return self.readall()
        parts = []
        while size > 0 and (view := self.read_view(size)):
            parts.append(bytes(view))
            size -= len(view)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readall(self) -> bytes:
        parts = []
        while view := self.read_view(GUNZIP_BLOCK):
            parts.append(bytes(view))
        return b"".join(parts)

    def close(self) -> None:
        if self.closed:
            return
        self._stopping = True
        self._free.put(None)  # wakes a worker waiting for a free block
        self._release_block()
        self._worker.join()  # at most one source read + one block of inflating away
        self._reader.close()
        super().close()

    def _next_block(self) -> bool:
        self._release_block()
        if self._finished:
            return False
        item = self._ready.get()
        if item is None:
            self._finished = True
            return False
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        self._block, length = item
        self._view = memoryview(self._block)[:length]
        self._offset = 0
        return True

    def _release_block(self) -> None:
        # Views handed out earlier now see the block being refilled: per the io contract a sink's write()
        # does not keep the buffer it was given, and nothing else holds one across reads.
        if self._block is not None:
            self._free.put(self._block)
            self._block = None
            self._view = memoryview(b"")
            self._offset = 0

    def _inflate(self) -> None:
        """Worker: fill free blocks until the data ends (then queue ``None``) or fails (then the error,
        after the good bytes decompressed before it)."""
        error: Exception | None = None
        while (block := self._free.get()) is not None and not self._stopping:
            filled = 0
            try:
                while filled < len(block) and (count := self._reader.readinto(memoryview(block)[filled:])):
                    filled += count
            except Exception as caught:  # the consumer decides what it means (corrupt, or a source error)
                error = caught
            if filled:
                self._ready.put((block, filled))
            if error is not None or filled < len(block):
                self._ready.put(error)
                return
