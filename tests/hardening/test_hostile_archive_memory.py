"""Hostile archives end fast, with a reason, in bounded memory (issue 13 item 4).

Peak memory is the tracemalloc peak of the conversion (Python allocations of every thread, including
the gunzip thread's blocks): deterministic, unlike RSS or time. The corpus itself is built before
tracing starts.
"""

from __future__ import annotations

import stat
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from pixelbridge.domain.errors import ArchiveRejected
from tests.hardening.conftest import Figures
from tests.hardening.hostile_archives import HOSTILE_CORPUS, MiB, setuid_archive
from tests.support.archives import convert_to_zip_file

PEAK_MEMORY_LIMIT = 64 * MiB


def traced_conversion(archive: bytes, zip_path: Path) -> tuple[str | None, int]:
    """Convert under tracemalloc: (rejection reason or None, peak bytes allocated during the conversion)."""
    tracemalloc.start()
    try:
        try:
            convert_to_zip_file(archive, zip_path)
            reason = None
        except ArchiveRejected as rejected:
            reason = str(rejected)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return reason, peak


@pytest.mark.parametrize("case", sorted(HOSTILE_CORPUS))
def test_hostile_archive_is_refused_in_bounded_memory(tmp_path: Path, figures: Figures, case: str) -> None:
    spec = HOSTILE_CORPUS[case]
    archive = spec.build()
    reason, peak = traced_conversion(archive, tmp_path / "out.zip")
    figures.line(
        f"hostile archive {case!r}: {len(archive):,} bytes gzip, peak {peak / MiB:.1f} MiB, refused: {reason}"
    )
    assert reason is not None and spec.reason in reason, reason
    assert peak <= PEAK_MEMORY_LIMIT, f"{case}: peak {peak / MiB:.1f} MiB"
    assert not (tmp_path / "out.zip").exists()


def test_the_bound_is_not_vacuous_a_real_conversion_is_traced(tmp_path: Path) -> None:
    reason, peak = traced_conversion(setuid_archive(), tmp_path / "out.zip")
    assert reason is None
    assert 0 < peak <= PEAK_MEMORY_LIMIT


def test_setuid_setgid_and_sticky_bits_never_reach_the_zip(tmp_path: Path) -> None:
    convert_to_zip_file(setuid_archive(), tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        modes = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in archive.infolist()}
    assert modes == {"Windows/Game.exe": 0o755, "Windows/Bin/": 0o755, "Windows/Bin/data.txt": 0o644}
