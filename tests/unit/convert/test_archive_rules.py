from __future__ import annotations

import pytest

from pixelbridge.domain.archive_rules import (
    MemberKind,
    PackageLayout,
    WindowsNamespace,
    describe,
    dos_date_time,
    is_already_compressed,
    normalize_member_name,
)
from pixelbridge.domain.errors import ArchiveRejected


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("./Windows/a.txt", "Windows/a.txt"),
        ("Windows//a/./b", "Windows/a/b"),
        (".", ""),
        ("./", ""),
        ("Windows/", "Windows"),
        ("Données/café.txt", "Données/café.txt"),
    ],
)
def test_names_are_normalised(raw: str, normalized: str) -> None:
    assert normalize_member_name(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "/abs",
        "\\abs",
        "c:x",
        "D:/x",
        "a/../b",
        "..",
        "a\\..\\b",
        "x/COM1.log",
        "aux",
        "a|b",
        "tab\there",
        "end.",
        "end /x",
    ],
)
def test_unsafe_names_are_rejected(raw: str) -> None:
    with pytest.raises(ArchiveRejected):
        normalize_member_name(raw)


def test_namespace_allows_same_directory_twice_but_not_case_duplicates() -> None:
    names = WindowsNamespace()
    names.add("A", MemberKind.DIRECTORY)
    names.add("a", MemberKind.DIRECTORY)
    names.add("a/x.txt", MemberKind.FILE)
    with pytest.raises(ArchiveRejected, match="duplicate"):
        names.add("A/X.TXT", MemberKind.FILE)


def test_package_layout_prefers_root_executables() -> None:
    layout = PackageLayout()
    for name, kind in [("Game.exe", MemberKind.FILE), ("Tools/x.exe", MemberKind.FILE)]:
        layout.add(name, kind)
    assert layout.executable() == "Game.exe"


def test_helpers() -> None:
    assert dos_date_time(-5) == (1980, 1, 1, 0, 0, 0)
    assert dos_date_time(1e20) == (2107, 12, 31, 23, 59, 58)
    assert is_already_compressed("a/B.UASSET.pak", {".pak"}) and not is_already_compressed("a.ini", {".pak"})
    assert describe("x" * 1000).count("x") < 130
