"""The private gunzip thread: exact bytes across blocks and members, gzip checks, errors, early close."""

from __future__ import annotations

import io
import itertools
import random
import struct

import pytest
from isal import isal_zlib

from pixelbridge.convert.pipeline import convert_targz_to_zip
from pixelbridge.convert.sinks import CountingNullSink
from pixelbridge.convert.streams import CountingSource, GunzipThread
from pixelbridge.domain.errors import ArchiveRejected
from tests.support.archives import build_targz, file, gzip_bytes

DATA = random.Random(5).randbytes(50_000) + b"text " * 20_000  # incompressible, then compressible


def tiny_thread(data: bytes) -> GunzipThread:
    """Blocks and reads far smaller than the data, so every boundary case is crossed many times."""
    return GunzipThread(CountingSource(io.BytesIO(data)), block_size=4096, blocks=2, input_buffer=777)


def test_concatenated_members_come_out_whole_and_in_order() -> None:
    cuts = [0, 1, 30_000, 30_001, 99_999, len(DATA)]
    stream = b"".join(gzip_bytes(DATA[a:b]) for a, b in itertools.pairwise(cuts))
    with tiny_thread(stream) as reader:
        assert reader.read(5000) == DATA[:5000]  # read(n) is exact across block ends
        rest = bytearray()
        while view := reader.read_view(3000):
            rest += view
    assert bytes(rest) == DATA[5000:]


def test_readinto_and_readall_see_the_same_bytes() -> None:
    with tiny_thread(gzip_bytes(DATA)) as reader:
        buffer = bytearray(10_000)
        count = reader.readinto(buffer)
        assert 0 < count <= 4096 and buffer[:count] == DATA[:count]
        assert reader.readall() == DATA[count:]
        assert reader.read(10) == b"" and reader.read_view(10).nbytes == 0


@pytest.mark.parametrize("field", ["crc", "length"])
def test_a_wrong_gzip_trailer_is_an_error_after_the_good_data(field: str) -> None:
    stream = bytearray(gzip_bytes(DATA))
    crc, length = struct.unpack("<II", stream[-8:])
    stream[-8:] = (
        struct.pack("<II", crc ^ 1, length) if field == "crc" else struct.pack("<II", crc, length + 1)
    )
    with tiny_thread(bytes(stream)) as reader:
        received = bytearray()
        with pytest.raises((OSError, isal_zlib.error)):  # type: ignore[arg-type]  # stubs: error is a class
            while view := reader.read_view(4096):
                received += view
    assert bytes(received) == DATA[: len(received)] and len(received) >= len(DATA) - 4096


def test_the_converter_rejects_a_bad_crc_in_the_trailer() -> None:
    targz = bytearray(build_targz([file("Windows/Game.exe", b"MZ" * 5000)]))
    targz[-8] ^= 0xFF
    with pytest.raises(ArchiveRejected, match=r"^archive is truncated or corrupt$"):
        convert_targz_to_zip(io.BytesIO(bytes(targz)), CountingNullSink())


def test_a_source_error_reaches_the_consumer() -> None:
    payload = gzip_bytes(DATA)

    class Failing(io.RawIOBase):
        sent = False

        def read(self, size: int | None = -1, /) -> bytes:
            if self.sent:
                raise ConnectionResetError("gone")
            self.sent = True
            return payload[: len(payload) // 2]

    with GunzipThread(CountingSource(Failing()), block_size=1 << 20, blocks=2) as reader:
        received = bytearray()
        with pytest.raises(Exception) as caught:
            while view := reader.read_view(1 << 20):
                received += view
    assert "gone" in str(caught.value)  # wrapped by CountingSource; the converter unwraps it
    assert bytes(received) == DATA[: len(received)]  # whatever isal returned before the failure is kept


def test_closing_before_the_end_stops_the_worker() -> None:
    big = gzip_bytes(bytes(20_000_000))
    reader = GunzipThread(CountingSource(io.BytesIO(big)), block_size=65536, blocks=2)
    assert reader.read(10) == bytes(10)
    reader.close()  # the worker is blocked waiting for a free block: close must wake and join it
    assert reader.closed and not reader._worker.is_alive()
