"""The unit tier: pure code and in-memory fakes only. A unit test that opens a socket fails at once.

Tests that need moto, a local server or the whole stack belong in tests/integration or tests/e2e.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


class NetworkInUnitTest(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(self: socket.socket, address: Any) -> None:
        raise NetworkInUnitTest(f"unit tests use fakes, not the network (tried {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield
