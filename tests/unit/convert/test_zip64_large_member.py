"""A member over 4 GiB, exercised without gzip: a synthetic tar stream feeds ``convert_tar_to_zip``."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from pixelbridge.convert.pipeline import convert_tar_to_zip
from pixelbridge.convert.sinks import LocalFileSink
from tests.support.archives import local_header_has_zip64_extra, zip_header_problems

BIG = 4 * 1024**3 + 300 * 1024 * 1024  # 4.3 GiB: over the 32-bit size fields


class SyntheticTar(io.RawIOBase):
    """``header + size zero bytes + padding + end blocks`` for each (name, size), produced on demand."""

    def __init__(self, members: list[tuple[str, int]]) -> None:
        super().__init__()
        self._pieces: list[tuple[bytes | None, int]] = []  # (literal bytes, or None for zeros; length)
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = size, 1_700_000_000
            header = info.tobuf(format=tarfile.PAX_FORMAT)
            self._pieces += [(header, len(header)), (None, size), (None, -size % 512)]
        self._pieces.append((None, 1024))
        self._index, self._offset = 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self._index < len(self._pieces):
            literal, length = self._pieces[self._index]
            if self._offset < length:
                count = min(len(buffer), length - self._offset)
                if literal is None:
                    buffer[:count] = bytes(count) if count < 65536 else _zeros(count)
                else:
                    buffer[:count] = literal[self._offset : self._offset + count]
                self._offset += count
                return count
            self._index, self._offset = self._index + 1, 0
        return 0

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray(size if size >= 0 else 1 << 20)
        count = self.readinto(memoryview(buffer))
        return bytes(buffer[:count])


_ZERO_CACHE: dict[int, bytes] = {}


def _zeros(count: int) -> bytes:
    if count not in _ZERO_CACHE:
        _ZERO_CACHE[count] = bytes(count)
    return _ZERO_CACHE[count]


@pytest.mark.slow
def test_member_over_4_gib_gets_zip64_headers_and_reads_back(tmp_path: Path) -> None:
    zip_path = tmp_path / "big.zip"
    sink = LocalFileSink(zip_path)
    members = [
        ("Windows/Game.exe", 1000),
        ("Windows/Game/Content/Paks/Game.pak", BIG),
        ("Windows/after.txt", 5),
    ]
    manifest = convert_tar_to_zip(SyntheticTar(members), sink)
    sink.complete()

    assert manifest.zip64 and manifest.bytes_uncompressed == 1005 + BIG
    assert manifest.bytes_out == zip_path.stat().st_size > BIG
    assert local_header_has_zip64_extra(zip_path, "Windows/Game/Content/Paks/Game.pak")
    assert zip_header_problems(zip_path) == []  # real CRC and sizes in the zip64 local extra too
    with zipfile.ZipFile(zip_path) as archive:
        big = archive.getinfo("Windows/Game/Content/Paks/Game.pak")
        assert (big.file_size, big.compress_type) == (BIG, zipfile.ZIP_STORED)
        after = archive.getinfo("Windows/after.txt")
        assert after.header_offset > 0xFFFFFFFF  # its central entry needs the zip64 offset
        assert archive.read(after) == bytes(5)
        assert archive.testzip() is None  # reads all 4.3 GiB and checks every CRC
