"""Generators of build archives (.tar.gz) for tests, the demo and the benchmark.

* ``make_ue_like_targz``: a realistic Unreal Engine Windows package (big incompressible .pak files, many
  small compressible files, ``<top>/<Game>.exe``), streamed so multi-GB archives need no memory.
* ``build_targz`` / ``build_tar``: small hand-made archives, including hostile members (links, devices,
  escaping names), from a list of ``Member``.
"""

from __future__ import annotations

import io
import os
import random
import struct
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

try:
    from isal import igzip as _gzip_module
except ImportError:  # pragma: no cover
    import gzip as _gzip_module  # type: ignore[no-redef]

MiB = 1024 * 1024


@dataclass(frozen=True)
class Member:
    """One tar member for ``build_targz``. ``kind``: file, dir, symlink, hardlink, fifo, chardev, blockdev."""

    name: str
    data: bytes = b""
    kind: str = "file"
    mtime: int = 1_700_000_000
    mode: int = 0o644
    link_target: str = ""


_TAR_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chardev": tarfile.CHRTYPE,
    "blockdev": tarfile.BLKTYPE,
}


def file(name: str, data: bytes = b"", *, mtime: int = 1_700_000_000, mode: int = 0o644) -> Member:
    return Member(name, data, "file", mtime=mtime, mode=mode)


def directory(name: str, *, mtime: int = 1_700_000_000, mode: int = 0o755) -> Member:
    return Member(name, b"", "dir", mtime=mtime, mode=mode)


def build_tar(members: Iterable[Member], *, tar_format: int = tarfile.PAX_FORMAT) -> bytes:
    """An uncompressed tar of ``members`` in the given order (duplicates and hostile names allowed)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tar_format) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = _TAR_TYPES[member.kind]
            info.mtime = member.mtime
            info.mode = member.mode
            info.linkname = member.link_target
            info.size = len(member.data) if member.kind == "file" else 0
            tar.addfile(info, io.BytesIO(member.data) if member.kind == "file" else None)
    return out.getvalue()


def build_targz(members: Iterable[Member], *, tar_format: int = tarfile.PAX_FORMAT) -> bytes:
    """``build_tar`` gzip-compressed: a complete .tar.gz in memory."""
    return gzip_bytes(build_tar(members, tar_format=tar_format))


def gzip_bytes(data: bytes, level: int = 1) -> bytes:
    return _gzip_module.compress(data, level)


def ue_like_members(
    *, pak_bytes: int, small_files: int, exe_name: str, top_folder: str
) -> list[tuple[str, int]]:
    """(name, size) of a UE-like package: size 0 names ending in '/' are directories."""
    game = Path(exe_name).stem
    top = f"{top_folder}/" if top_folder else ""
    layout: list[tuple[str, int]] = [(top, 0)] if top else []
    layout += [
        (f"{top}{exe_name}", 512 * 1024),
        (f"{top}{game}/", 0),
        (f"{top}{game}/Content/", 0),
        (f"{top}{game}/Content/Paks/", 0),
        (f"{top}Engine/", 0),
        (f"{top}Engine/Binaries/", 0),
    ]
    pak_count = max(1, min(8, pak_bytes // (256 * MiB)))
    for index in range(pak_count):
        size = pak_bytes // pak_count + (pak_bytes % pak_count if index == 0 else 0)
        layout.append(
            (f"{top}{game}/Content/Paks/{game}-Windows{'' if index == 0 else f'_{index}_P'}.pak", size)
        )
    for index in range(small_files):
        folder = f"{top}Engine/Binaries/ThirdParty/Lib{index // 100:03d}/"
        if index % 100 == 0:
            layout.append((folder, 0))
        layout.append(
            (
                f"{folder}file_{index:05d}.{('dll', 'ini', 'txt', 'json')[index % 4]}",
                1024 + (index * 37) % 6000,
            )
        )
    return layout


def make_ue_like_targz(
    path_or_fileobj: str | os.PathLike[str] | BinaryIO,
    *,
    pak_bytes: int,
    small_files: int = 2000,
    exe_name: str = "MyGame.exe",
    top_folder: str = "Windows",
    seed: int = 1,
) -> int:
    """Write a UE-like Windows package .tar.gz (streamed, constant memory). Returns the uncompressed total.

    .pak content is random (incompressible, like real pak files); small files are text-like (compressible).
    """
    rng = random.Random(seed)
    total = 0
    own_file = not hasattr(path_or_fileobj, "write")
    raw: Any = open(path_or_fileobj, "wb") if own_file else path_or_fileobj  # type: ignore[arg-type]  # noqa: SIM115
    try:
        # Big writes let the compressor see whole MiBs: random data then becomes stored deflate blocks,
        # as `tar czf` (zlib) produces for already-compressed .pak content.
        with (
            _gzip_module.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz,
            io.BufferedWriter(gz, buffer_size=4 * MiB) as buffered,
            tarfile.open(fileobj=buffered, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, size in ue_like_members(
                pak_bytes=pak_bytes, small_files=small_files, exe_name=exe_name, top_folder=top_folder
            ):
                total += size
                _add_generated(tar, name, size, rng)
    finally:
        if own_file:
            raw.close()
    return total


def _add_generated(tar: tarfile.TarFile, name: str, size: int, rng: random.Random) -> None:
    info = tarfile.TarInfo(name.rstrip("/"))
    info.mtime = 1_700_000_000
    if name.endswith("/"):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.size, info.mode = size, 0o644
    incompressible = name.endswith((".pak", ".exe"))
    tar.addfile(info, _GeneratedContent(size, rng, incompressible))


class _GeneratedContent(io.RawIOBase):
    """``size`` bytes produced on demand: random blocks (incompressible) or repeated text (compressible)."""

    def __init__(self, size: int, rng: random.Random, incompressible: bool) -> None:
        super().__init__()
        self._left = size
        if incompressible:
            self._block = rng.randbytes(4 * MiB)
        else:
            words = [
                rng.choice(("Engine", "Render", "Texture", "Mesh", "=", "1", "0.5", "\n")) for _ in range(512)
            ]
            self._block = " ".join(words).encode() * 16
        self._rng = rng
        self._incompressible = incompressible
        self._offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        out = bytearray()
        while len(out) < size:
            if self._offset >= len(self._block):
                self._offset = 0
                if self._incompressible:  # a fresh random block so the data never repeats within a window
                    self._block = self._rng.randbytes(len(self._block))
            take = min(size - len(out), len(self._block) - self._offset)
            out += self._block[self._offset : self._offset + take]
            self._offset += take
        self._left -= size
        return bytes(out)


# --- converting and inspecting zips in tests -------------------------------------------------------------

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_DATA_DESCRIPTOR_FLAG = 0x08


def convert_to_zip_file(
    targz: bytes | BinaryIO, zip_path: str | os.PathLike[str], limits: object = None
) -> object:
    """Run the converter into a local zip file; returns the ConversionManifest (no file on error)."""
    from pixelbridge.convert.pipeline import ConversionLimits, convert_targz_to_zip
    from pixelbridge.convert.sinks import LocalFileSink

    source = io.BytesIO(targz) if isinstance(targz, bytes) else targz
    sink = LocalFileSink(zip_path)
    try:
        manifest = convert_targz_to_zip(
            source, sink, limits if isinstance(limits, ConversionLimits) else None
        )
    except BaseException:
        sink.abort()
        raise
    sink.complete()
    return manifest


def zip_header_problems(zip_file: str | os.PathLike[str] | BinaryIO) -> list[str]:
    """Every violation of the "no data descriptor, real values in local headers" rule, as readable lines."""
    problems: list[str] = []
    with zipfile.ZipFile(zip_file) as archive:
        raw = archive.fp
        assert raw is not None
        for info in archive.infolist():
            if info.flag_bits & _DATA_DESCRIPTOR_FLAG:
                problems.append(f"{info.filename}: central entry has the data-descriptor flag")
            raw.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
            signature, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = fields
            name = raw.read(name_len)
            extra = raw.read(extra_len)
            if signature != b"PK\x03\x04":
                problems.append(f"{info.filename}: no local header at {info.header_offset}")
                continue
            if flags & _DATA_DESCRIPTOR_FLAG:
                problems.append(f"{info.filename}: local header has the data-descriptor flag")
            if flags != info.flag_bits or method != info.compress_type:
                problems.append(f"{info.filename}: local flags/method differ from the central directory")
            usize, csize = _local_sizes(usize, csize, extra)
            if (crc, csize, usize) != (info.CRC, info.compress_size, info.file_size):
                problems.append(
                    f"{info.filename}: local CRC/sizes {(crc, csize, usize)} != central "
                    f"{(info.CRC, info.compress_size, info.file_size)}"
                )
            if name.decode("utf-8" if flags & 0x800 else "cp437") != info.orig_filename:
                problems.append(f"{info.filename}: local name differs")
    return problems


def _local_sizes(usize: int, csize: int, extra: bytes) -> tuple[int, int]:
    """Apply a ZIP64 extra field (0x0001) of a local header: it holds both sizes when either is 0xFFFFFFFF."""
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        if tag == 0x0001 and (usize == 0xFFFFFFFF or csize == 0xFFFFFFFF):
            usize, csize = struct.unpack_from("<QQ", extra, position + 4)
        position += 4 + length
    return usize, csize


def local_header_has_zip64_extra(zip_file: str | os.PathLike[str] | BinaryIO, name: str) -> bool:
    with zipfile.ZipFile(zip_file) as archive:
        info = archive.getinfo(name)
        raw = archive.fp
        assert raw is not None
        raw.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
        raw.seek(fields[9], os.SEEK_CUR)
        extra = raw.read(fields[10])
    return fields[7] == fields[8] == 0xFFFFFFFF and b"\x01\x00" in extra[:2]


def has_zip64_end_record(zip_file: str | os.PathLike[str]) -> bool:
    with open(zip_file, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 128 * 1024))
        return b"PK\x06\x06" in handle.read()
