"""Streaming conversion of a build ``.tar.gz`` into the ``.zip`` Streampixel accepts.

    source ─► magic check ─► gunzip (isal, own thread) ─► tarfile "r|" ─► safety rules ─► zipfile ─► sink
              └──────────── streams.py ─────────────┘   └──── tar_reader.py ────┘   └ zip_writer.py ┘

Constant memory: nothing is staged on disk and only one chunk (plus the sink's few parts) is in memory.
The zip never uses data descriptors (flag bit 3): ``zipfile`` sees a seekable sink, so it rewrites each
local header with the real CRC and sizes once the member is written; the sink keeps that header
patchable between ``hold_from`` and ``release_hold`` (see ``sinks.py``).

Every rejection raises ``ArchiveRejected`` before the zip is finished; the caller aborts the sink.
What is rejected and why is documented in ``pixelbridge.domain.archive_rules``. Errors raised by the
*source* (network) or the *sink* (S3, disk) propagate unchanged: they are not the archive's fault.
"""

from __future__ import annotations

import tarfile
import time
from typing import Any

from pixelbridge.convert.limits import CORRUPT, ConversionLimits, ConversionManifest, GiB, MiB
from pixelbridge.convert.sinks import ZipSink
from pixelbridge.convert.streams import (
    ByteSource,
    CountingSource,
    SourceFailure,
    open_gunzip,
    require_gzip_magic,
)
from pixelbridge.convert.tar_reader import ForwardReader, GuardedTarInfo
from pixelbridge.convert.zip_writer import ZipBuilder
from pixelbridge.domain.errors import ArchiveRejected

__all__ = [
    "ByteSource",
    "ConversionLimits",
    "ConversionManifest",
    "GiB",
    "MiB",
    "convert_tar_to_zip",
    "convert_targz_to_zip",
    "open_gunzip",
]


def convert_targz_to_zip(
    source: ByteSource, sink: ZipSink, limits: ConversionLimits | None = None
) -> ConversionManifest:
    """Convert the gzip-compressed tar read from ``source`` into a zip written to ``sink``.

    Does not complete or abort the sink: the caller completes it on success and aborts it on any error.
    """
    limits = limits or ConversionLimits()
    started = time.perf_counter()
    counted = CountingSource(source)
    require_gzip_magic(counted)
    with open_gunzip(counted) as decompressed:
        manifest = _convert(decompressed, sink, limits)
    manifest.bytes_in = counted.count
    return _finish_manifest(manifest, started)


def convert_tar_to_zip(
    tar_stream: ByteSource, sink: ZipSink, limits: ConversionLimits | None = None
) -> ConversionManifest:
    """Same as ``convert_targz_to_zip`` for an already-decompressed tar stream (``bytes_in`` = tar bytes)."""
    limits = limits or ConversionLimits()
    started = time.perf_counter()
    counted = CountingSource(tar_stream)
    manifest = _convert(counted, sink, limits)
    manifest.bytes_in = counted.count
    return _finish_manifest(manifest, started)


def _finish_manifest(manifest: ConversionManifest, started: float) -> ConversionManifest:
    manifest.duration_s = time.perf_counter() - started
    manifest.ratio = manifest.bytes_out / manifest.bytes_in if manifest.bytes_in else 0.0
    manifest.mb_per_s = manifest.bytes_in / 1e6 / manifest.duration_s if manifest.duration_s else 0.0
    return manifest


def _convert(stream: Any, sink: ZipSink, limits: ConversionLimits) -> ConversionManifest:
    tar_input = ForwardReader(stream, limits)
    try:
        with tarfile.open(fileobj=tar_input, mode="r:", tarinfo=GuardedTarInfo) as archive:
            return ZipBuilder(archive, tar_input, sink, limits).build()
    except SourceFailure as failure:
        raise failure.original from None
    except tarfile.TarError as error:
        raise ArchiveRejected(CORRUPT) from error
