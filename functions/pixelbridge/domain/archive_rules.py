"""Pure safety rules for the members of a build archive (no I/O).

The converter turns a BuildPixel ``.tar.gz`` into the ``.zip`` Streampixel extracts on Windows, so every
member name must be safe *and* extractable on Windows. Policy (one decision per member kind):

* **Rejected** (the whole build fails with a reason naming the member): absolute paths, drive letters,
  ``..`` components and backslash paths that would escape the package; symbolic links and hard links;
  character/block devices, FIFOs and GNU sparse members; unknown member types; names longer than
  ``MAX_PATH_CHARS`` (260, Windows' ``MAX_PATH``), with a component over ``MAX_COMPONENT_CHARS`` (255) or
  deeper than ``MAX_DEPTH`` (all three checked before any per-component work, so a hostile 64 KiB name
  costs nothing); names Windows cannot create or mis-handles (reserved device names such as ``CON``,
  ``nul.txt``, ``COM0``, ``LPT¹``, ``CONIN$``; the characters ``<>:"|?*``; control, zero-width, bidi and
  private-use characters; look-alikes that Windows' best-fit code page conversion turns into a separator,
  a dot or a forbidden character, such as fullwidth dots and backslash (U+FF0E, U+FF3C),
  the division slash U+2215 or the yen sign U+00A5; a trailing dot or space in any
  component); case-insensitive duplicates (two files, or a file and a directory prefix), judged with
  Unicode case folding *and* the one-to-one upper-casing Windows uses (dotless i U+0131 / ``I``).
  A Windows Unreal package never needs any of these, so a build that contains one is broken or hostile;
  silently dropping it would ship a different game than the one that was built.
* **Dropped silently**: the archive root entry (``.`` / ``./``), which names no file.
* **Normalised**: a leading ``./``, repeated slashes and ``.`` components are removed
  (``tar -C dir .`` produces ``./Windows/...``); permissions become 0755 (directories, executables) or
  0644: setuid, setgid and sticky bits never reach the zip.
"""

from __future__ import annotations

import re
import tarfile
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from pixelbridge.domain.errors import ArchiveRejected

MAX_NAME_IN_REASON = 120
MAX_PATH_CHARS = 260  # Windows MAX_PATH: longer names fail to extract with most Windows tools
MAX_COMPONENT_CHARS = 255  # NTFS limit for one file or directory name
MAX_DEPTH = 64
MAX_DIRECTORIES = 100_000  # distinct directories, listed or implied (an Unreal package has a few thousand)
# Checked on the raw tar name before anything else: room for "./" and doubled slashes around a valid name.
MAX_RAW_NAME_CHARS = 2 * MAX_PATH_CHARS
DOS_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest instant a zip header can hold
DOS_MAX = (2107, 12, 31, 23, 59, 58)

# Windows also reserves COM0/LPT0 and the superscript digits ¹²³ (they upper-case and best-fit to 1, 2, 3).
_DEVICE_SUFFIXES = [str(i) for i in range(10)] + ["\u00b9", "\u00b2", "\u00b3"]
_RESERVED_STEMS = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"]
    + [f"{device}{suffix}" for device in ("COM", "LPT") for suffix in _DEVICE_SUFFIXES]
)
_FORBIDDEN_CHARS = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')
# Characters Windows' best-fit conversion (and some Asian code pages) read as a separator: NFKC does
# not map these, so they are listed. Fullwidth forms (U+FF0E, U+FF3C, ...) are caught through NFKC.
_SEPARATOR_LOOKALIKES = frozenset("\u00a5\u20a9\u2044\u2215\u2216\u2571\u2572\u29f8\u29f9\u3001\u3002")
_MEANINGFUL_ASCII = frozenset('/\\.<>:"|?*')
# Control, format (zero-width, bidi), private-use, surrogate and line/paragraph separator characters.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")

# Already-compressed formats: deflating them costs CPU and gains nothing.
DEFAULT_STORED_SUFFIXES = frozenset(
    {
        ".pak",
        ".ucas",
        ".utoc",
        ".zip",
        ".png",
        ".jpg",
        ".jpeg",
        ".bk2",
        ".mp4",
        ".webm",
        ".wav",
        ".ogg",
        ".mp3",
        ".gz",
        ".7z",
        ".xz",
        ".bz2",
        ".zst",
        ".rar",
        ".webp",
        ".avif",
        ".m4a",
        ".opus",
        ".flac",
        ".mkv",
        ".mov",
        ".ktx2",
        ".dds",
    }
)


class MemberKind(Enum):
    FILE = "file"
    DIRECTORY = "directory"


def describe(name: str) -> str:
    """Quote a member name for a rejection reason, shortened so reasons stay readable."""
    if len(name) > MAX_NAME_IN_REASON:
        keep = MAX_NAME_IN_REASON // 2
        name = name[:keep] + "…" + name[-(keep - 1) :]
    return repr(name)


def member_kind(tar_type: bytes, name: str) -> MemberKind:
    """Classify a tar member type; links, devices and unknown types are rejected."""
    if tar_type in tarfile.REGULAR_TYPES:
        return MemberKind.FILE
    if tar_type == tarfile.DIRTYPE:
        return MemberKind.DIRECTORY
    if tar_type == tarfile.SYMTYPE:
        raise ArchiveRejected(f"member {describe(name)} is a symbolic link")
    if tar_type == tarfile.LNKTYPE:
        raise ArchiveRejected(f"member {describe(name)} is a hard link")
    if tar_type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
        raise ArchiveRejected(f"member {describe(name)} is a device or FIFO")
    raise ArchiveRejected(f"member {describe(name)} has an unsupported tar type {tar_type!r}")


def normalize_member_name(raw_name: str) -> str:
    """Return the package-relative path of a tar member ('' for the archive root), or reject it."""
    if len(raw_name) > MAX_RAW_NAME_CHARS:  # before any per-component work: a hostile name may be huge
        raise ArchiveRejected(
            f"member {describe(raw_name)} has a path longer than {MAX_PATH_CHARS} characters"
        )
    if not raw_name.isascii():
        try:  # tarfile decodes names with surrogateescape: undecodable bytes would crash the zip writer
            raw_name.encode("utf-8")
        except UnicodeEncodeError:
            raise ArchiveRejected(f"member {describe(raw_name)} has a name that is not valid UTF-8") from None
    if raw_name.startswith("/") or raw_name.startswith("\\") or _DRIVE_LETTER.match(raw_name):
        raise ArchiveRejected(f"member {describe(raw_name)} has an absolute path")
    # Windows treats a backslash as a separator, so judge escapes on the Windows reading of the name.
    windows_parts = raw_name.replace("\\", "/").split("/")
    if ".." in windows_parts:
        raise ArchiveRejected(f"member {describe(raw_name)} escapes the package")
    if "\\" in raw_name:
        raise ArchiveRejected(f"member {describe(raw_name)} contains a backslash")
    parts = [part for part in raw_name.split("/") if part not in ("", ".")]
    name = "/".join(parts)
    _check_windows_lengths(name, parts, raw_name)
    for part in parts:
        _check_windows_component(part, raw_name)
    return name


def _check_windows_lengths(name: str, parts: list[str], raw_name: str) -> None:
    if len(name) > MAX_PATH_CHARS:
        raise ArchiveRejected(
            f"member {describe(raw_name)} has a path longer than {MAX_PATH_CHARS} characters"
        )
    if len(parts) > MAX_DEPTH:
        raise ArchiveRejected(f"member {describe(raw_name)} is nested deeper than {MAX_DEPTH} levels")
    if any(len(part) > MAX_COMPONENT_CHARS for part in parts):
        raise ArchiveRejected(
            f"member {describe(raw_name)} has a name component longer than {MAX_COMPONENT_CHARS} characters"
        )


def _check_windows_component(part: str, raw_name: str) -> None:
    if _FORBIDDEN_CHARS.search(part):
        raise ArchiveRejected(f"member {describe(raw_name)} has a character Windows does not allow")
    if not part.isascii():
        _check_unicode_component(part, raw_name)
    if part.endswith((".", " ")):
        raise ArchiveRejected(f"member {describe(raw_name)} has a name ending in a dot or space")
    stem = part.split(".", 1)[0].rstrip(" ").upper()
    if stem in _RESERVED_STEMS:
        raise ArchiveRejected(f"member {describe(raw_name)} uses the reserved Windows name {part!r}")


def _check_unicode_component(part: str, raw_name: str) -> None:
    for char in part:
        if char.isascii():
            continue
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            raise ArchiveRejected(
                f"member {describe(raw_name)} has an invisible or control character U+{ord(char):04X}"
            )
        if char in _SEPARATOR_LOOKALIKES or _MEANINGFUL_ASCII.intersection(
            unicodedata.normalize("NFKC", char)
        ):
            raise ArchiveRejected(
                f"member {describe(raw_name)} has U+{ord(char):04X}, which Windows may read as "
                "a separator, a dot or a forbidden character"
            )


def windows_name_key(name: str) -> str:
    """The key two names share when Windows would see them as the same file.

    NTFS compares names after a one-to-one upper-casing (dotless U+0131 and ``i`` both become ``I``),
    which plain ``casefold`` misses; case folding afterwards also catches long s U+017F / ``s``,
    Kelvin sign / ``k`` and friends.
    NFC first, so composed and decomposed accents count as one name (stricter than NTFS, on purpose).
    """
    composed = unicodedata.normalize("NFC", name)
    if composed.isascii():
        return composed.casefold()
    upper = "".join(upper if len(upper := char.upper()) == 1 else char for char in composed)
    return upper.casefold()


def zip_mode(kind: MemberKind, tar_mode: int) -> int:
    """Unix permissions stored in the zip: 0755 for directories and executables, else 0644.

    setuid, setgid, sticky and odd write bits of the archive are never copied.
    """
    if kind is MemberKind.DIRECTORY or tar_mode & 0o111:
        return 0o755
    return 0o644


@dataclass
class WindowsNamespace:
    """Detects names that collide on a case-insensitive file system (Windows)."""

    _files: set[str] = field(default_factory=set)
    _directories: set[str] = field(default_factory=set)
    # Every file implies its parent directories: without a cap, deep paths in many distinct trees would
    # keep up to MAX_DEPTH directory keys per entry (gigabytes for a few MB of tar headers).
    max_directories: int = MAX_DIRECTORIES

    def add(self, name: str, kind: MemberKind) -> None:
        key = windows_name_key(name)
        if kind is MemberKind.DIRECTORY:
            if key in self._files:
                raise ArchiveRejected(f"directory {describe(name)} collides with a file of the same name")
            self._add_directory_with_parents(key, name)
            return
        if key in self._files:
            raise ArchiveRejected(f"member {describe(name)} is a duplicate (names are case-insensitive)")
        if key in self._directories:
            raise ArchiveRejected(f"file {describe(name)} collides with a directory of the same name")
        self._add_directory_with_parents(key.rpartition("/")[0], name)
        self._files.add(key)

    def _add_directory_with_parents(self, key: str, name: str) -> None:
        while key and key not in self._directories:
            if key in self._files:
                raise ArchiveRejected(f"member {describe(name)} uses a file as a directory")
            if len(self._directories) >= self.max_directories:
                raise ArchiveRejected(f"archive has more than {self.max_directories} directories")
            self._directories.add(key)
            key = key.rpartition("/")[0]


@dataclass
class PackageLayout:
    """Remembers what is needed to find the game executable once the whole archive was seen."""

    top_level: set[str] = field(default_factory=set)
    root_executables: list[str] = field(default_factory=list)
    nested_executables: list[str] = field(default_factory=list)

    def add(self, name: str, kind: MemberKind) -> None:
        parts = name.split("/")
        self.top_level.add(parts[0].casefold())
        if kind is MemberKind.FILE and name.lower().endswith(".exe"):
            if len(parts) == 1:
                self.root_executables.append(name)
            elif len(parts) == 2:
                self.nested_executables.append(name)

    def executable(self) -> str:
        """The package's game executable: at the root, or directly under the single top-level folder."""
        if self.root_executables:
            return sorted(self.root_executables)[0]
        if len(self.top_level) == 1 and self.nested_executables:
            return sorted(self.nested_executables)[0]
        raise ArchiveRejected("no Windows executable at package root")


def is_already_compressed(name: str, stored_suffixes: Iterable[str]) -> bool:
    lowered = name.lower()
    return any(lowered.endswith(suffix) for suffix in stored_suffixes)


def dos_date_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    """A zip timestamp for a tar mtime, clamped to what the DOS fields can hold (1980..2107), in UTC."""
    if mtime < DOS_EPOCH:
        return (1980, 1, 1, 0, 0, 0)
    try:
        moment = time.gmtime(mtime)
    except (OverflowError, OSError, ValueError):
        return DOS_MAX
    stamp = (moment.tm_year, moment.tm_mon, moment.tm_mday, moment.tm_hour, moment.tm_min, moment.tm_sec)
    return min(stamp, DOS_MAX)
