"""The hostile archive corpus: small .tar.gz files that once exhausted the converter (issue 13 item 4).

Each builder returns the gzip bytes; ``HOSTILE_CORPUS`` names each case with the rejection reason the
converter must give. Sizes are chosen to reproduce the reported attacks: before the guards, the 64 KiB
deep name took ~1 GB, the 256 KiB name and the 40 M-entry sparse map ran out of memory.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

TarFormat = Literal[0, 1, 2]  # tarfile.USTAR_FORMAT, GNU_FORMAT, PAX_FORMAT

KiB = 1024
MiB = 1024 * KiB
SPARSE_MAP_ENTRIES = 40_000_000


def _gzip(chunks: Iterable[bytes]) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(chunk) for chunk in chunks]
    out.append(compressor.flush())
    return b"".join(out)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


def _member(
    name: str,
    data: bytes = b"",
    *,
    tar_format: TarFormat = tarfile.PAX_FORMAT,
    pax: dict[str, str] | None = None,
    mode: int = 0o644,
) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    if pax:
        info.pax_headers = pax
    return info.tobuf(tar_format, "utf-8", "surrogateescape") + _pad(data)


EXE = _member("Windows/Game.exe", b"MZ")
END = b"\0" * (2 * tarfile.BLOCKSIZE)


def deep_name_archive(name_bytes: int, tar_format: TarFormat = tarfile.PAX_FORMAT) -> bytes:
    """One member whose name is ``name_bytes`` long and one directory deep per two characters."""
    depth = (name_bytes - len("Windows/f.txt")) // 2
    return _gzip([EXE, _member("Windows/" + "a/" * depth + "f.txt", b"x", tar_format=tar_format), END])


def old_gnu_sparse_archive(entries: int) -> bytes:
    """An old-GNU sparse member ('S') whose map continues over ``entries / 21`` extension blocks."""
    header = bytearray(_member("Windows/sparse.bin", tar_format=tarfile.USTAR_FORMAT)[: tarfile.BLOCKSIZE])
    header[156:157] = b"S"
    header[257:265] = b"ustar  \x00"  # old GNU magic
    header[345:500] = b"\x00" * 155
    header[482] = 1  # isextended: the map continues in the next block
    header[483:495] = f"{MiB:011o}\x00".encode()  # realsize
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\x00 ".encode()
    entry = b"00000000001\x0000000000001\x00"  # offset 1, 1 byte: non-zero, so tarfile keeps it
    extension = entry * 21 + b"\x01" + b"\0" * 7  # byte 504: isextended
    blocks = entries // 21

    def chunks() -> Iterable[bytes]:
        yield EXE + bytes(header)
        batch = extension * 2048
        for _ in range(blocks // 2048):
            yield batch
        yield extension * (blocks % 2048)
        yield entry * 21 + b"\0" * 8 + END  # last extension block: isextended = 0

    return _gzip(chunks())


def pax_sparse_10_archive(entries: int) -> bytes:
    """GNU sparse 1.0: the map (2 numbers per entry) is stored in the member data and read by tarfile."""
    map_size = len(f"{entries}\n") + 4 * entries
    pax = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "Windows/sparse.bin",
        "GNU.sparse.realsize": str(MiB),
    }
    info = tarfile.TarInfo("Windows/GNUSparseFile.0/sparse.bin")
    info.size = map_size
    info.pax_headers = pax

    def chunks() -> Iterable[bytes]:
        yield EXE + info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        yield f"{entries}\n".encode()
        batch = b"1\n1\n" * (MiB // 4)
        for _ in range(entries // (MiB // 4)):
            yield batch
        yield b"1\n1\n" * (entries % (MiB // 4))
        yield b"\0" * (-map_size % tarfile.BLOCKSIZE) + END

    return _gzip(chunks())


def pax_sparse_01_archive(entries: int) -> bytes:
    """GNU sparse 0.1: the map is one PAX record, split by tarfile into a list of ints."""
    pax = {"GNU.sparse.map": ",".join(["1"] * (2 * entries)), "GNU.sparse.size": str(MiB)}
    return _gzip([EXE, _member("Windows/sparse.bin", b"x", pax=pax), END])


def global_headers_archive(count: int, header_bytes: int) -> bytes:
    """``count`` global PAX headers of distinct keys: tarfile copies all of them into every later member."""
    out = io.BytesIO()
    for index in range(count):
        records = {f"k{index}.{key}": "v" for key in range(header_bytes // 16)}
        out.write(tarfile.TarInfo.create_pax_global_header(records))
    return _gzip([EXE, out.getvalue(), _member("Windows/a.txt", b"a"), END])


def oversized_pax_record_archive(size: int) -> bytes:
    """A PAX header of ``size`` bytes that names nothing useful (tarfile reads it whole)."""
    return _gzip([EXE, _member("Windows/a.txt", b"a", pax={"comment": "c" * size}), END])


def setuid_archive() -> bytes:
    """A valid package whose files and directories carry setuid, setgid and sticky bits."""
    directory = tarfile.TarInfo("Windows/Bin")
    directory.type = tarfile.DIRTYPE
    directory.mode = 0o3777
    return _gzip(
        [
            _member("Windows/Game.exe", b"MZ", mode=0o6755),
            directory.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"),
            _member("Windows/Bin/data.txt", b"d", mode=0o4666),
            END,
        ]
    )


def implied_directories_archive(files: int, depth: int) -> bytes:
    """``files`` files, each ``depth`` levels deep in its own tree: every one implies ``depth`` new
    directories (ustar names, split into prefix + name, so no PAX header is needed)."""

    def chunks() -> Iterable[bytes]:
        yield EXE
        for index in range(files):
            yield _member(f"Windows/t{index}/" + "d/" * depth + "f", tar_format=tarfile.USTAR_FORMAT)
        yield END

    return _gzip(chunks())


def named_archive(name: str) -> bytes:
    return _gzip([EXE, _member(name, b"x"), END])


@dataclass(frozen=True)
class HostileArchive:
    build: Callable[[], bytes]
    reason: str  # the rejection reason must contain this text


HOSTILE_CORPUS: dict[str, HostileArchive] = {
    "PAX name 60 KiB, 30 Ki levels deep": HostileArchive(
        lambda: deep_name_archive(60 * KiB), "path longer than 260"
    ),
    "PAX name 256 KiB, 128 Ki levels deep": HostileArchive(
        lambda: deep_name_archive(256 * KiB), "tar metadata header"
    ),
    "GNU long name 60 KiB, 30 Ki levels deep": HostileArchive(
        lambda: deep_name_archive(60 * KiB, tarfile.GNU_FORMAT), "path longer than 260"
    ),
    "old GNU sparse map, 1 M entries": HostileArchive(lambda: old_gnu_sparse_archive(1_000_000), "sparse"),
    "GNU sparse 1.0 map, 40 M entries": HostileArchive(
        lambda: pax_sparse_10_archive(SPARSE_MAP_ENTRIES), "sparse"
    ),
    "GNU sparse 0.1 map in a PAX record, 10 k entries": HostileArchive(
        lambda: pax_sparse_01_archive(10_000), "sparse"
    ),
    "global PAX headers, 4 x 48 KiB": HostileArchive(
        lambda: global_headers_archive(4, 48 * KiB), "global tar headers"
    ),
    "5,000 files 48 levels deep in distinct trees": HostileArchive(
        lambda: implied_directories_archive(5_000, 48), "more than 100000 directories"
    ),
    "PAX record of 900 KiB": HostileArchive(
        lambda: oversized_pax_record_archive(900 * KiB), "metadata header"
    ),
}
