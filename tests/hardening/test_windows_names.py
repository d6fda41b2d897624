"""Names Windows cannot hold or mis-handles are refused with a reason (issue 13 item 5): pure rules."""

from __future__ import annotations

import pytest

from pixelbridge.domain.archive_rules import (
    MAX_COMPONENT_CHARS,
    MAX_DEPTH,
    MAX_PATH_CHARS,
    MemberKind,
    WindowsNamespace,
    normalize_member_name,
    windows_name_key,
    zip_mode,
)
from pixelbridge.domain.errors import ArchiveRejected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("W/" + "a" * (MAX_PATH_CHARS - 1), f"longer than {MAX_PATH_CHARS}"),
        ("a/" * 300_000 + "f", f"longer than {MAX_PATH_CHARS}"),  # 600 KB: refused before splitting it
        ("W/" + "b" * (MAX_COMPONENT_CHARS + 1), f"component longer than {MAX_COMPONENT_CHARS}"),
        ("a" * (MAX_COMPONENT_CHARS + 1), f"component longer than {MAX_COMPONENT_CHARS}"),
        ("a/" * MAX_DEPTH + "f", f"deeper than {MAX_DEPTH}"),
        ("W/COM0", "reserved Windows name"),
        ("W/LPT0.txt", "reserved Windows name"),
        ("W/COM\u00b9", "reserved Windows name"),
        ("W/lpt\u00b3.log", "reserved Windows name"),
        ("W/CONIN$", "reserved Windows name"),
        ("W/conout$.txt", "reserved Windows name"),
        ("W/\uff0e\uff0e\uff3cx", "separator"),  # fullwidth dot, dot, backslash
        ("W/a\uff0fb", "separator"),  # fullwidth solidus
        ("W/a\u2215b", "separator"),  # division slash
        ("W/a\u2044b", "separator"),  # fraction slash
        ("W/a\u00a5b", "separator"),  # yen sign: a backslash in Japanese code pages
        ("W/a\u20a9b", "separator"),  # won sign: a backslash in Korean code pages
        ("W/a\uff1ab", "separator"),  # fullwidth colon
        ("W/x\u2026", "separator"),  # ellipsis: best-fit "..."
        ("W/Ga\u200bme.exe", "invisible or control"),  # zero-width space
        ("W/a\u200db", "invisible or control"),  # zero-width joiner
        ("W/\ufeffa", "invisible or control"),  # byte order mark
        ("W/gnp.\u202eexe", "invisible or control"),  # right-to-left override
        ("W/a\u2066b", "invisible or control"),  # left-to-right isolate
        ("W/a\u0085b", "invisible or control"),  # next line (C1 control)
        ("W/a\u2028b", "invisible or control"),  # line separator
        ("W/a\uf022b", "invisible or control"),  # private use: how some tools encode ':'
        ("W/a\x7fb", "character Windows does not allow"),
    ],
)
def test_names_windows_cannot_hold_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(ArchiveRejected, match=reason.replace("$", r"\$")):
        normalize_member_name(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "W/" + "a" * MAX_COMPONENT_CHARS + "/b",  # 259 characters
        "a/" * (MAX_DEPTH - 1) + "f",
        "W/COM10.txt",
        "W/CONSOLE.txt",
        "W/Données/café ½ ñ 日本語.txt",
        "W/x\u00b9.txt",
    ],
)
def test_names_just_inside_the_rules_are_kept(raw: str) -> None:
    assert normalize_member_name(raw) == raw


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("W/f\u0131le.txt", "W/FILE.txt"),  # dotless i: casefold alone keeps them apart
        ("W/\u017fave.txt", "W/SAVE.txt"),  # long s
        ("W/\u212aey", "W/key"),  # Kelvin sign
        ("W/cafe\u0301", "W/CAF\u00c9"),  # decomposed vs composed accent
    ],
)
def test_names_windows_folds_together_collide(first: str, second: str) -> None:
    assert windows_name_key(first) == windows_name_key(second)
    names = WindowsNamespace()
    names.add(first, MemberKind.FILE)
    with pytest.raises(ArchiveRejected, match="duplicate"):
        names.add(second, MemberKind.FILE)


def test_a_case_collision_through_a_directory_prefix_is_found() -> None:
    names = WindowsNamespace()
    names.add("W/D\u0131r/a.txt", MemberKind.FILE)
    with pytest.raises(ArchiveRejected, match="collides"):
        names.add("W/DIR", MemberKind.FILE)


@pytest.mark.parametrize(
    ("kind", "tar_mode", "expected"),
    [
        (MemberKind.FILE, 0o4755, 0o755),
        (MemberKind.FILE, 0o6777, 0o755),
        (MemberKind.FILE, 0o2666, 0o644),
        (MemberKind.FILE, 0o1600, 0o644),
        (MemberKind.FILE, 0, 0o644),
        (MemberKind.DIRECTORY, 0o1777, 0o755),
        (MemberKind.DIRECTORY, 0o700, 0o755),
    ],
)
def test_modes_become_0644_or_0755(kind: MemberKind, tar_mode: int, expected: int) -> None:
    assert zip_mode(kind, tar_mode) == expected
