"""Read a large remote object (S3, or an HTTP URL that serves ``Range``) with N parallel byte-range GETs.

One S3 GET connection delivers roughly 80-100 MB/s; AWS's guidance for more is concurrent byte-range
GETs of 8-16 MB. ``ParallelRangedReader`` is a forward-only file: it keeps at most ``connections`` ranges
fetched or being fetched ahead of the reader, hands their bytes over strictly in order, and retries each
range on its own (a dropped connection costs one range, not the whole object). Memory is bounded by
``connections * range_size``: a range is only requested once the reader has released one.

A range's definitive failure is raised by the read that reaches it, after every byte before it.
Messages never carry a URL (signed URLs are capabilities).
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as WaitTimedOut
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from pixelbridge.ports import (
    ArtifactReaderFactory,
    ArtifactUrlRefused,
    BuildPixelPort,
    BuildPixelUnavailable,
    DeadlineReached,
)

MiB = 1024 * 1024
MIN_RANGE_READ_TIMEOUT = 2.0  # seconds: below it a healthy but distant host could not answer a range
READ_CHUNK = 1 * MiB  # bodies are copied into one preallocated buffer per range: no joined copy at the end


class RangeUnavailable(Exception):
    """A transient failure of one range (network error, 5xx, short body): worth another attempt."""


class RangeRefused(Exception):
    """A definitive failure (the object changed, the URL was refused, Range not served): no retry."""


class RangeSource(Protocol):
    """Bytes ``[start, stop)`` of one object of known ``size``; raises ``RangeUnavailable`` to be retried."""

    @property
    def size(self) -> int: ...

    def fetch(self, start: int, stop: int) -> bytes | bytearray: ...


@dataclass(frozen=True)
class RangedReadConfig:
    range_size: int = 8 * MiB
    connections: int = 8  # ranges in flight (and in memory) at most
    max_attempts: int = 5  # per range
    backoff_base_seconds: float = 0.25
    backoff_cap_seconds: float = 8.0

    def backoff(self, failures: int) -> float:
        return float(min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** (failures - 1)))


class ParallelRangedReader(io.RawIOBase):
    """A forward-only readable file over a ``RangeSource``, fetched ``connections`` ranges ahead.

    Not thread-safe: one consumer. ``sleep`` is injectable so tests of the retry path never wait.
    ``start`` skips the first bytes (a continued download); ``retry_on`` names the source's transient
    errors; ``budget`` (seconds the consumer may still wait) bounds every wait for a range: when it runs
    out the read raises ``DeadlineReached`` instead of blocking (the GET itself ends on its own timeout).
    """

    def __init__(
        self,
        source: RangeSource,
        config: RangedReadConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        start: int = 0,
        retry_on: tuple[type[Exception], ...] = (RangeUnavailable,),
        budget: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self._source = source
        self._config = config or RangedReadConfig()
        if self._config.range_size < 1 or self._config.connections < 1 or self._config.max_attempts < 1:
            raise ValueError("range_size, connections and max_attempts must be positive")
        self._sleep = sleep
        self._retry_on = retry_on
        self._budget = budget
        self.size = source.size
        self._pool = ThreadPoolExecutor(max_workers=self._config.connections, thread_name_prefix="range-get")
        self._pending: deque[Future[bytes | bytearray]] = deque()  # requested ranges, in object order
        self._next_start = start  # first byte not yet requested
        self._view = memoryview(b"")  # the range being consumed
        self._offset = 0
        self.position = start
        self.ranges_released = 0  # ranges handed over in full (the reader moved past them)
        self.peak_buffers = 0  # most ranges held at once (requested + being consumed)
        self.retries = 0  # failed attempts that were retried, all ranges together
        self._retries_lock = threading.Lock()
        self._failure: BaseException | None = None  # once a range failed, every later read fails too

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def read(self, size: int | None = -1, /) -> bytes:
        """Up to ``size`` bytes (fewer at a range end); ``b""`` at the end of the object."""
        if size is None or size < 0:
            return self.readall()
        view = self._take(size)
        return bytes(view)

    def readinto(self, buffer: Any, /) -> int:
        view = self._take(len(buffer))
        buffer[: len(view)] = view
        return len(view)

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(self._config.range_size):
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if self.closed:
            return
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._view = memoryview(b"")
        self._pool.shutdown(wait=False, cancel_futures=True)  # a running GET ends on its own timeout
        super().close()

    def _take(self, size: int) -> memoryview:
        if self.closed:
            raise ValueError("read from a closed reader")
        if size == 0:
            return memoryview(b"")
        if self._failure is not None:
            raise self._failure
        if self._offset == len(self._view) and not self._next_range():
            return memoryview(b"")
        view = self._view[self._offset : self._offset + size]
        self._offset += len(view)
        self.position += len(view)
        return view

    def _next_range(self) -> bool:
        if len(self._view):
            self.ranges_released += 1
        self._view = memoryview(b"")  # released before the next range is requested: memory stays bounded
        self._offset = 0
        self._request_ahead()
        if not self._pending:
            return False
        if self._failure is not None:
            raise self._failure
        try:
            data = self._wait_for(self._pending[0])
            self._pending.popleft()
        except DeadlineReached:
            raise  # the range stays pending: a later read (none, in practice) could still take it
        except BaseException as failure:
            self._failure = failure  # never skip past a missing range
            raise
        self._view = memoryview(data)
        return bool(data)

    def _wait_for(self, future: Future[bytes | bytearray]) -> bytes | bytearray:
        """The range's bytes (or its definitive error), waiting no longer than the budget allows."""
        budget = math.inf if self._budget is None else self._budget()
        if budget == math.inf:
            return future.result()
        try:
            return future.result(timeout=max(0.0, budget))
        except WaitTimedOut:
            raise DeadlineReached(f"the range at byte {self.position} did not arrive in time") from None

    def _request_ahead(self) -> None:
        while len(self._pending) < self._config.connections and self._next_start < self.size:
            start = self._next_start
            stop = min(self.size, start + self._config.range_size)
            self._pending.append(self._pool.submit(self._fetch_with_retries, start, stop))
            self._next_start = stop
        self.peak_buffers = max(self.peak_buffers, len(self._pending) + (1 if len(self._view) else 0))

    def _fetch_with_retries(self, start: int, stop: int) -> bytes | bytearray:
        failures = 0
        while True:
            try:
                data = self._source.fetch(start, stop)
                if len(data) != stop - start:
                    raise RangeUnavailable(f"bytes {start}-{stop - 1}: got {len(data)} bytes")
                return data
            except self._retry_on:
                failures += 1
                if failures >= self._config.max_attempts:
                    raise
                with self._retries_lock:
                    self.retries += 1
                self._sleep(self._config.backoff(failures))


# -- sources -------------------------------------------------------------------------------------------


def fill_buffer(chunks: Iterable[bytes], size: int) -> bytearray:
    """The chunks of one range body in a buffer allocated once (reading a body whole joins its chunks
    into a second copy: twice the memory per range in flight). A short body comes back short."""
    buffer = bytearray(size)
    filled = 0
    for chunk in chunks:
        end = min(size, filled + len(chunk))
        buffer[filled:end] = chunk[: end - filled]
        filled = end
        if filled == size:
            break
    if filled < size:
        del buffer[filled:]
    return buffer


class S3RangeSource:
    """Byte ranges of one S3 object version: every GET is pinned to the ETag seen first (``IfMatch``),
    so a replaced object fails loudly instead of mixing two versions."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.key = key
        head = s3.head_object(Bucket=bucket, Key=key)
        self.size = int(head["ContentLength"])
        self.etag = str(head.get("ETag", ""))
        self.metadata: dict[str, str] = dict(head.get("Metadata") or {})

    def fetch(self, start: int, stop: int) -> bytes | bytearray:
        from botocore.exceptions import BotoCoreError, ClientError

        extra = {"IfMatch": self.etag} if self.etag else {}
        try:
            response = self._s3.get_object(
                Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{stop - 1}", **extra
            )
            return fill_buffer(response["Body"].iter_chunks(READ_CHUNK), stop - start)
        except ClientError as error:
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            code = str(error.response.get("Error", {}).get("Code", ""))
            if status >= 500 or code in {"SlowDown", "RequestTimeout", "InternalError"}:
                raise RangeUnavailable(f"S3 answered {status} {code} for bytes {start}-{stop - 1}") from None
            raise RangeRefused(
                f"S3 refused bytes {start}-{stop - 1} of {self.key}: {status} {code}"
            ) from None
        except (BotoCoreError, OSError) as error:
            raise RangeUnavailable(f"{type(error).__name__} reading bytes {start}-{stop - 1}") from None


class HttpRangeSource:
    """Byte ranges of a URL (BuildPixel's signed artifact URLs serve ``Range``) through a ``requests``
    session. The size comes from the caller (the download API announces it) or a 1-byte probe."""

    def __init__(
        self, session: Any, url: str, *, size: int | None = None, timeout: tuple[float, float] = (10.0, 60.0)
    ) -> None:
        self._session = session
        self._url = url
        self._timeout = timeout
        self.host = urlsplit(url).hostname or "?"
        self.size = size if size is not None else self._probe_size()

    def __repr__(self) -> str:  # the URL is a capability: keep it out of reprs and tracebacks
        return f"HttpRangeSource(host={self.host!r}, size={self.size})"

    def fetch(self, start: int, stop: int) -> bytes | bytearray:
        response = self._get(start, stop)
        try:
            if response.status_code != 206:
                raise RangeRefused(f"{self.host} answered {response.status_code} to a Range request")
            expected = f"bytes {start}-{stop - 1}/"
            if not response.headers.get("Content-Range", "").startswith(expected):
                raise RangeRefused(f"{self.host} answered another range than bytes {start}-{stop - 1}")
            return fill_buffer(response.iter_content(READ_CHUNK), stop - start)
        except (OSError, ValueError) as error:  # requests' body errors derive from these
            raise RangeUnavailable(f"{type(error).__name__} reading from {self.host}") from None
        finally:
            response.close()

    def _probe_size(self) -> int:
        response = self._get(0, 1)
        try:
            total = response.headers.get("Content-Range", "").rsplit("/", 1)[-1].strip()
            if response.status_code != 206 or not total.isdigit():
                raise RangeRefused(f"{self.host} does not serve byte ranges ({response.status_code})")
            return int(total)
        finally:
            response.close()

    def _get(self, start: int, stop: int) -> Any:
        import requests

        try:
            response = self._session.get(
                self._url, headers={"Range": f"bytes={start}-{stop - 1}"}, timeout=self._timeout, stream=True
            )
        except (requests.RequestException, OSError) as error:
            raise RangeUnavailable(f"{type(error).__name__} connecting to {self.host}") from None
        if response.status_code >= 500 or response.status_code == 429:
            response.close()
            raise RangeUnavailable(f"{self.host} answered {response.status_code}")
        return response


class ArtifactRangeSource:
    """Byte ranges of BuildPixel's artifact through the ``BuildPixelPort`` (its URL guard included).

    A host that answers ``Range`` with the whole body (200) is still read right, by skipping to the range:
    correct but slow (BuildPixel's signed URLs serve ranges). A 401/403 ends every range with the port's
    ``ArtifactUrlExpired`` (the caller renews the URL); network errors are ``BuildPixelUnavailable``.
    """

    def __init__(
        self, client: BuildPixelPort, url: str, size: int | None, *, budget: Callable[[], float] | None = None
    ) -> None:
        self._client = client
        self._url = url
        self._budget = budget
        self.size = size if size is not None else self._probe_size()

    def __repr__(self) -> str:  # the URL is a capability
        return f"ArtifactRangeSource(size={self.size})"

    def fetch(self, start: int, stop: int) -> bytes | bytearray:
        response = self._client.open_artifact(
            self._url, start=start, stop=stop, read_timeout=self._read_timeout()
        )
        try:
            if response.start > start:
                raise BuildPixelUnavailable(f"the host answered from byte {response.start}, not {start}")
            chunks = _skip(response.chunks, start - response.start)
            if self._budget is not None:
                chunks = _until(chunks, self._budget)
            return fill_buffer(chunks, stop - start)
        finally:
            response.close()

    def _read_timeout(self) -> float | None:
        """The socket timeout for one range: the budget left (never below a floor a healthy host meets),
        so a worker thread abandoned at the deadline ends soon after it instead of on the 60 s default."""
        if self._budget is None:
            return None
        return max(MIN_RANGE_READ_TIMEOUT, self._budget())

    def _probe_size(self) -> int:
        response = self._client.open_artifact(self._url, start=0, stop=1, read_timeout=self._read_timeout())
        response.close()
        if response.total_size is None:
            raise ArtifactUrlRefused("the artifact host announced no size")
        return response.total_size


def _skip(chunks: Iterable[bytes], count: int) -> Iterable[bytes]:
    for chunk in chunks:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:] if count else chunk
        count = 0


def _until(chunks: Iterable[bytes], budget: Callable[[], float]) -> Iterable[bytes]:
    """The chunks while the budget lasts: a trickling body cannot hold a range past the deadline."""
    for chunk in chunks:
        if budget() <= 0:
            raise DeadlineReached("the range did not arrive in time")
        yield chunk


def artifact_readers(
    client: BuildPixelPort,
    config: RangedReadConfig | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> ArtifactReaderFactory:
    """FetchFunction's reader: parallel ranges of the artifact through ``client``, bounded by a budget."""

    def open_reader(
        url: str, size: int | None, start: int, budget: Callable[[], float]
    ) -> ParallelRangedReader:
        source = ArtifactRangeSource(client, url, size, budget=budget)
        retry_on = (BuildPixelUnavailable,)
        return ParallelRangedReader(
            source, config, sleep=sleep, start=start, retry_on=retry_on, budget=budget
        )

    return open_reader
