"""Reading the decompressed tar safely: a forward-only reader with a byte budget, capped metadata headers,
and a clean end (the zero block, then only zero padding)."""

from __future__ import annotations

import io
import os
import tarfile
from typing import Any, BinaryIO, Self

from pixelbridge.convert.limits import CORRUPT, ConversionLimits, MiB
from pixelbridge.convert.streams import DECOMPRESSION_ERRORS, SourceFailure
from pixelbridge.convert.tar_guard import HardenedTarInfo
from pixelbridge.domain.errors import ArchiveRejected

MAX_METADATA_HEADER = 1 * MiB  # PAX / GNU long-name blocks are read whole by tarfile: keep them small
MAX_TRAILING_ZEROS = 4 * MiB  # tar pads its end with zero records (usually < 10 KiB)
_METADATA_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class ForwardReader(io.RawIOBase):
    """The decompressed tar as tarfile sees it: forward-only "seekable" (skips by reading), so tarfile can run
    in random-access mode and member data can be read straight into the converter's buffer (no extra copies).
    Also turns decompression errors into rejections and stops a gzip bomb early."""

    def __init__(self, stream: BinaryIO, limits: ConversionLimits) -> None:
        super().__init__()
        self._stream = stream
        self._limits = limits
        # Headers and padding come on top of the member bytes; this backstop never binds a real build.
        self._byte_budget = limits.max_total_bytes + limits.max_entries * 4096 + 64 * MiB
        # Zero-copy reads when the stream offers them (the gunzip thread); else read into our own buffer.
        self._stream_view = getattr(stream, "read_view", None)
        self._buffer = memoryview(bytearray(limits.chunk_size))
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int:
        target = offset + (self.position if whence == os.SEEK_CUR else 0)
        if whence == os.SEEK_END or target < self.position:
            raise io.UnsupportedOperation("the tar stream only moves forward")
        while self.position < target:
            if not self.read_view(target - self.position):
                break  # like a file: seeking past the end is allowed, the next read returns b""
        return self.position

    def read_view(self, size: int) -> memoryview:
        """Up to ``size`` (>0) bytes, empty at the end; valid only until the next read from this reader."""
        if self._stream_view is None:
            window = self._buffer[: min(size, len(self._buffer))]
            return window[: self.readinto(window)]
        view: memoryview = self._guarded(lambda: self._stream_view(size))
        self._advance(len(view))
        return view

    def read(self, size: int | None = -1, /) -> bytes:
        data: bytes = self._guarded(lambda: self._stream.read(-1 if size is None else size))
        self._advance(len(data))
        return data

    def readinto(self, buffer: Any, /) -> int:
        count = self._guarded(lambda: self._stream.readinto(buffer))  # type: ignore[attr-defined]
        self._advance(count)
        return int(count)

    def _guarded(self, read: Any) -> Any:
        try:
            return read()
        except SourceFailure as failure:
            raise failure.original from None
        except DECOMPRESSION_ERRORS as error:
            raise ArchiveRejected(CORRUPT) from error

    def _advance(self, count: int) -> None:
        self.position += count
        if self.position > self._byte_budget:
            raise ArchiveRejected(self._limits.total_limit_reason())


class GuardedTarInfo(HardenedTarInfo):
    """Records why tarfile stopped (a clean end-of-archive block or not) and caps metadata blocks."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        assert tarfile_.fileobj is not None
        buf = tarfile_.fileobj.read(tarfile.BLOCKSIZE)
        try:
            obj = cls.frombuf(buf, tarfile_.encoding or "utf-8", tarfile_.errors)
        except tarfile.HeaderError as error:
            tarfile_.end_reason = error  # type: ignore[attr-defined]
            raise
        if obj.type in _METADATA_TYPES and obj.size > MAX_METADATA_HEADER:
            raise ArchiveRejected("archive has an oversized tar metadata header")
        obj.offset = tarfile_.fileobj.tell() - tarfile.BLOCKSIZE
        return obj._proc_member(tarfile_)
