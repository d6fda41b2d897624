"""Pure safety rules for the members of a build archive (no I/O).

The converter turns a BuildPixel ``.tar.gz`` into the ``.zip`` Streampixel extracts on Windows, so every
member name must be safe *and* extractable on Windows. Policy (one decision per member kind):

* **Rejected** (the whole build fails with a reason naming the member): absolute paths, drive letters,
  ``..`` components and backslash paths that would escape the package; symbolic links and hard links;
  character/block devices and FIFOs; unknown member types; names Windows cannot create (reserved device
  names such as ``CON`` or ``nul.txt``, the characters ``<>:"|?*``, control characters, a trailing dot or
  space in any component); case-insensitive duplicates (two files, or a file and a directory prefix).
  A Windows Unreal package never needs any of these, so a build that contains one is broken or hostile;
  silently dropping it would ship a different game than the one that was built.
* **Dropped silently**: the archive root entry (``.`` / ``./``), which names no file.
* **Normalised**: a leading ``./``, repeated slashes and ``.`` components are removed
  (``tar -C dir .`` produces ``./Windows/...``).
"""

from __future__ import annotations

import re
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from pixelbridge.domain.errors import ArchiveRejected

MAX_NAME_IN_REASON = 120
DOS_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest instant a zip header can hold
DOS_MAX = (2107, 12, 31, 23, 59, 58)

_RESERVED_STEMS = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)
_FORBIDDEN_CHARS = re.compile(r'[<>:"|?*\x00-\x1f]')
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
    for part in parts:
        _check_windows_component(part, raw_name)
    return name


def _check_windows_component(part: str, raw_name: str) -> None:
    if _FORBIDDEN_CHARS.search(part):
        raise ArchiveRejected(f"member {describe(raw_name)} has a character Windows does not allow")
    if part.endswith((".", " ")):
        raise ArchiveRejected(f"member {describe(raw_name)} has a name ending in a dot or space")
    stem = part.split(".", 1)[0].rstrip(" ").upper()
    if stem in _RESERVED_STEMS:
        raise ArchiveRejected(f"member {describe(raw_name)} uses the reserved Windows name {part!r}")


@dataclass
class WindowsNamespace:
    """Detects names that collide on a case-insensitive file system (Windows)."""

    _files: set[str] = field(default_factory=set)
    _directories: set[str] = field(default_factory=set)

    def add(self, name: str, kind: MemberKind) -> None:
        key = name.casefold()
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
