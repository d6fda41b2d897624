"""The parallel ranged reader: order, per-range retry, bounded read-ahead, short last range, errors."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pixelbridge.adapters.ranged_reader import (
    MIN_RANGE_READ_TIMEOUT,
    ArtifactRangeSource,
    HttpRangeSource,
    ParallelRangedReader,
    RangedReadConfig,
    RangeRefused,
    RangeUnavailable,
)
from pixelbridge.ports import ArtifactResponse, DeadlineReached, DownloadInfo

RANGE = 1000
DATA = random.Random(7).randbytes(10 * RANGE + 337)  # ten full ranges and a short last one


@dataclass
class FakeSource:
    """Serves ``data`` by range, with fault knobs keyed by the range's start offset."""

    data: bytes
    transient_failures: dict[int, int] = field(default_factory=dict)  # start -> failures before success
    short_bodies: dict[int, int] = field(default_factory=dict)  # start -> truncated answers first
    refused: set[int] = field(default_factory=set)
    reader: ParallelRangedReader | None = None
    calls: list[tuple[int, int]] = field(default_factory=list)
    ahead_of_reader: list[int] = field(default_factory=list)  # ranges requested beyond the released ones
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return len(self.data)

    def fetch(self, start: int, stop: int) -> bytes:
        with self.lock:
            self.calls.append((start, stop))
            if self.reader is not None:
                self.ahead_of_reader.append(start // RANGE - self.reader.ranges_released)
            if start in self.refused:
                raise RangeRefused(f"refused at {start}")
            if self.transient_failures.get(start, 0):
                self.transient_failures[start] -= 1
                raise RangeUnavailable(f"dropped at {start}")
            if self.short_bodies.get(start, 0):
                self.short_bodies[start] -= 1
                return self.data[start : stop - 1]
        return self.data[start:stop]


def reader_for(
    source: FakeSource, connections: int = 3, max_attempts: int = 4
) -> tuple[ParallelRangedReader, list[float]]:
    sleeps: list[float] = []
    config = RangedReadConfig(range_size=RANGE, connections=connections, max_attempts=max_attempts)
    reader = ParallelRangedReader(source, config, sleep=sleeps.append)
    source.reader = reader
    return reader, sleeps


def read_in_odd_pieces(reader: ParallelRangedReader) -> bytes:
    received = bytearray()
    sizes = [1, 999, 1001, 4096, 7, 2500]
    index = 0
    while chunk := reader.read(sizes[index % len(sizes)]):
        received += chunk
        index += 1
    return bytes(received)


def test_bytes_come_out_in_order_whatever_the_read_sizes() -> None:
    source = FakeSource(DATA)
    reader, sleeps = reader_for(source)
    with reader:
        assert read_in_odd_pieces(reader) == DATA
        assert reader.read(10) == b"" and reader.tell() == len(DATA)
    assert sorted(source.calls) == [
        (start, min(start + RANGE, len(DATA))) for start in range(0, len(DATA), RANGE)
    ]
    assert sleeps == []


def test_the_short_last_range_and_an_object_smaller_than_one_range() -> None:
    source = FakeSource(DATA)
    reader, _ = reader_for(source)
    with reader:
        reader.readall()
    assert max(source.calls) == (10 * RANGE, 10 * RANGE + 337)
    tiny = FakeSource(b"abc")
    tiny_reader, _ = reader_for(tiny)
    with tiny_reader:
        assert tiny_reader.read(-1) == b"abc"
    assert tiny.calls == [(0, 3)]
    empty = FakeSource(b"")
    empty_reader, _ = reader_for(empty)
    with empty_reader:
        assert empty_reader.read(5) == b""
    assert empty.calls == []


def test_one_failing_range_is_retried_alone_with_backoff() -> None:
    source = FakeSource(DATA, transient_failures={3 * RANGE: 2}, short_bodies={7 * RANGE: 1})
    reader, sleeps = reader_for(source)
    with reader:
        assert read_in_odd_pieces(reader) == DATA
    starts = [start for start, _ in source.calls]
    assert starts.count(3 * RANGE) == 3 and starts.count(7 * RANGE) == 2
    assert all(starts.count(start) == 1 for start in range(0, len(DATA), RANGE) if start not in (3000, 7000))
    config = RangedReadConfig()
    assert sorted(sleeps) == sorted([config.backoff(1), config.backoff(2), config.backoff(1)])
    assert reader.retries == 3


def test_a_range_that_keeps_failing_surfaces_after_every_byte_before_it() -> None:
    source = FakeSource(DATA, transient_failures={4 * RANGE: 99})
    reader, sleeps = reader_for(source, max_attempts=3)
    received = bytearray()
    with pytest.raises(RangeUnavailable, match="dropped at 4000"):
        while chunk := reader.read(700):
            received += chunk
    assert bytes(received) == DATA[: 4 * RANGE]
    with pytest.raises(RangeUnavailable):  # the failure sticks: later reads never skip the lost range
        reader.read(700)
    reader.close()
    assert [start for start, _ in source.calls].count(4 * RANGE) == 3 and len(sleeps) == 2


def test_a_refused_range_is_not_retried() -> None:
    source = FakeSource(DATA, refused={2 * RANGE})
    reader, sleeps = reader_for(source)
    with reader, pytest.raises(RangeRefused):
        reader.readall()
    assert [start for start, _ in source.calls].count(2 * RANGE) == 1 and sleeps == []


@pytest.mark.parametrize("connections", [1, 2, 5])
def test_read_ahead_and_memory_are_bounded_by_the_connection_count(connections: int) -> None:
    source = FakeSource(DATA)
    reader, _ = reader_for(source, connections=connections)
    with reader:
        buffer = bytearray(333)
        received = bytearray()
        while count := reader.readinto(buffer):
            received += buffer[:count]
    assert bytes(received) == DATA
    # A range is requested only once the reader has released enough: never more than N held at once.
    assert max(source.ahead_of_reader) <= connections - 1
    assert reader.peak_buffers == connections


def test_closing_early_stops_requesting_and_reads_are_refused() -> None:
    source = FakeSource(DATA)
    reader, _ = reader_for(source, connections=2)
    assert reader.read(10) == DATA[:10]
    reader.close()
    assert len(source.calls) <= 2
    with pytest.raises(ValueError):
        reader.read(1)


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        ParallelRangedReader(FakeSource(DATA), RangedReadConfig(connections=0))


# -- HTTP source ---------------------------------------------------------------------------------------

SECRET_URL = "https://artifacts.example.test/build.tar.gz?X-Signature=secret-token"


@dataclass
class FakeResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes = b""
    closed: bool = False

    def close(self) -> None:
        self.closed = True

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        for at in range(0, len(self.content), 4096):  # small pieces: the range is assembled from many
            yield self.content[at : at + 4096]


@dataclass
class FakeSession:
    """Answers Range requests over ``data``; ``answers`` overrides the next answers in order."""

    data: bytes
    answers: list[FakeResponse | Exception] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)

    def get(self, url: str, *, headers: dict[str, str], timeout: Any, stream: bool = False) -> FakeResponse:
        self.requested.append(headers["Range"])
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        first, last = (int(part) for part in headers["Range"].removeprefix("bytes=").split("-"))
        body = self.data[first : last + 1]
        content_range = f"bytes {first}-{first + len(body) - 1}/{len(self.data)}"
        return FakeResponse(206, {"Content-Range": content_range}, body)


def test_http_source_probes_the_size_and_reads_ranges_through_the_reader() -> None:
    session = FakeSession(DATA)
    source = HttpRangeSource(session, SECRET_URL)
    assert source.size == len(DATA) and session.requested == ["bytes=0-0"]
    with ParallelRangedReader(source, RangedReadConfig(range_size=4096, connections=2)) as reader:
        assert reader.readall() == DATA
    assert "secret" not in repr(source)


def test_http_source_classifies_failures_without_naming_the_url() -> None:
    import requests

    session = FakeSession(
        DATA,
        answers=[
            FakeResponse(503, {}),
            requests.ConnectionError(f"connection reset for {SECRET_URL}"),
            FakeResponse(200, {}, DATA),
            FakeResponse(206, {"Content-Range": "bytes 5-14/99"}, DATA[5:15]),
        ],
    )
    source = HttpRangeSource(session, SECRET_URL, size=len(DATA))
    errors: list[Exception] = []
    for expected in (RangeUnavailable, RangeUnavailable, RangeRefused, RangeRefused):
        with pytest.raises(expected) as caught:
            source.fetch(0, 10)
        errors.append(caught.value)
    assert all("secret" not in str(error) and "X-Signature" not in str(error) for error in errors)
    assert source.fetch(10, 20) == DATA[10:20]


def test_http_source_refuses_a_server_without_range_support() -> None:
    session = FakeSession(DATA, answers=[FakeResponse(200, {"Content-Length": str(len(DATA))}, DATA)])
    with pytest.raises(RangeRefused, match="does not serve byte ranges"):
        HttpRangeSource(session, SECRET_URL)


def test_fill_buffer_assembles_chunks_once_and_returns_a_short_body_short() -> None:
    from pixelbridge.adapters.ranged_reader import fill_buffer

    assert fill_buffer(iter([b"abc", b"de", b"f"]), 6) == b"abcdef"
    assert fill_buffer(iter([b"abc", b"de"]), 6) == b"abcde"  # the reader then retries the range
    assert fill_buffer(iter([b"abcdefgh"]), 6) == b"abcdef"


class HangingSource(FakeSource):
    """Never answers the ranges at or after ``hang_from`` until released (a host that stops sending)."""

    def __init__(self, data: bytes, hang_from: int) -> None:
        super().__init__(data)
        self.hang_from = hang_from
        self.release = threading.Event()

    def fetch(self, start: int, stop: int) -> bytes:
        if start >= self.hang_from:
            self.release.wait()
        return super().fetch(start, stop)


def test_a_read_never_waits_past_the_budget_for_a_range_that_does_not_come() -> None:
    source = HangingSource(DATA, hang_from=2 * RANGE)
    budget = [30.0]  # seconds this invocation may still wait (an injected clock: nothing sleeps 30 s)
    config = RangedReadConfig(range_size=RANGE, connections=2)
    reader = ParallelRangedReader(source, config, budget=lambda: budget[0])
    try:
        assert reader.read(2 * RANGE) == DATA[:RANGE]
        assert reader.read(2 * RANGE) == DATA[RANGE : 2 * RANGE]
        budget[0] = 0.0  # the deadline: the hanging range must not block the reader
        with pytest.raises(DeadlineReached):
            reader.read(RANGE)
    finally:
        source.release.set()
        reader.close()


def test_a_continued_read_starts_at_its_offset_and_requests_nothing_before() -> None:
    source = FakeSource(DATA)
    reader = ParallelRangedReader(
        source, RangedReadConfig(range_size=RANGE, connections=2), start=3 * RANGE + 5
    )
    assert read_in_odd_pieces(reader) == DATA[3 * RANGE + 5 :]
    assert min(start for start, _ in source.calls) == 3 * RANGE + 5


def test_artifact_ranges_read_through_the_port_skip_what_a_whole_body_answer_repeats() -> None:
    served: list[tuple[int, int | None]] = []

    class IgnoresRange:
        def download_info(self, build_id: str) -> DownloadInfo:
            raise AssertionError("not asked")

        def open_artifact(
            self, url: str, *, start: int = 0, stop: int | None = None, read_timeout: float | None = None
        ) -> ArtifactResponse:
            served.append((start, stop))
            chunks = iter([DATA[i : i + 300] for i in range(0, len(DATA), 300)])
            return ArtifactResponse(0, len(DATA), chunks, close=lambda: None)  # 200: from byte 0

    source = ArtifactRangeSource(IgnoresRange(), "https://artifacts.example.test/x?sig=1", None)
    assert source.size == len(DATA) and served == [(0, 1)]  # the size came from a 1-byte probe
    assert source.fetch(2 * RANGE + 10, 3 * RANGE) == DATA[2 * RANGE + 10 : 3 * RANGE]
    assert "sig" not in repr(source)


def test_each_range_request_waits_on_its_socket_no_longer_than_the_budget_left() -> None:
    timeouts: list[float | None] = []

    class Recording:
        def download_info(self, build_id: str) -> DownloadInfo:
            raise AssertionError("not asked")

        def open_artifact(
            self, url: str, *, start: int = 0, stop: int | None = None, read_timeout: float | None = None
        ) -> ArtifactResponse:
            timeouts.append(read_timeout)
            return ArtifactResponse(start, len(DATA), iter([DATA[start:stop]]), close=lambda: None)

    budget = [300.0]
    source = ArtifactRangeSource(
        Recording(), "https://artifacts.example.test/x?sig=1", len(DATA), budget=lambda: budget[0]
    )
    for left in (300.0, 45.0, 7.5, 0.2):
        budget[0] = left
        source.fetch(0, RANGE)
    # The budget left, down to a floor: an abandoned worker thread ends soon after the deadline.
    assert timeouts == [300.0, 45.0, 7.5, MIN_RANGE_READ_TIMEOUT]
    unbounded = ArtifactRangeSource(Recording(), "https://artifacts.example.test/x?sig=1", len(DATA))
    unbounded.fetch(0, RANGE)
    assert timeouts[-1] is None  # no budget: the client's own timeouts
