"""Hardening suite (issue 7): hostile inputs, fuzzing, faults, load, secrets in logs.

Hypothesis profiles: ``ci`` (default, bounded for the 3-minute CI budget) and ``long`` for local soak
runs: ``HYPOTHESIS_PROFILE=long make unit PYTEST_ARGS=tests/hardening``.
Figures (inputs tried, faults injected, builds lost, 429s, load wall time, peak memory) are collected
in ``FIGURES`` and printed in the terminal summary (``-rA`` not needed).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


class Figures:
    """Counters and free-form lines shared by the hardening tests, printed once at the end."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lines: list[str] = []

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount

    def line(self, text: str) -> None:
        self.lines.append(text)
        print(text)


FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    yield FIGURES


def pytest_configure(config: pytest.Config) -> None:
    settings.load_profile(PROFILE)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES.counts and not FIGURES.lines:
        return
    terminalreporter.section("PixelBridge hardening figures")
    for name, value in sorted(FIGURES.counts.items()):
        terminalreporter.write_line(f"{name}: {value}")
    for text in FIGURES.lines:
        terminalreporter.write_line(text)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The IAM usage table of every stack this run started (bench/out/iam-usage.md)."""
    from pixelbridge_local import iam_report

    iam_report.write()
