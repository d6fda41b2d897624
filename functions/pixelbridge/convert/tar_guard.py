"""Bounds on what stdlib ``tarfile`` builds while it parses a header, before the converter sees a member.

``tarfile`` reads a whole PAX / GNU long-name block into memory, merges global PAX headers into every
later member, and expands GNU sparse maps (old ``S`` extension blocks, PAX 0.0 / 0.1 maps, and the 1.0
map stored in the member data) into Python lists of unbounded length: a 156 KB gzip holding a 40 M-entry
map exhausts a Lambda before the first member is returned. ``HardenedTarInfo`` refuses these shapes at
the header, while only one 512-byte block has been read:

* GNU sparse members of every format are refused: a Windows Unreal package never contains one.
* A PAX extended header or GNU long name / long link block is at most ``MAX_MEMBER_HEADER_BYTES``
  (names are at most 260 characters; 64 KiB leaves room for any real PAX record set).
* Global PAX headers, which ``tarfile`` copies into every following member, total at most
  ``MAX_GLOBAL_HEADER_BYTES`` per archive.
"""

from __future__ import annotations

import tarfile
from typing import Self

from pixelbridge.domain.errors import ArchiveRejected

KiB = 1024
MAX_MEMBER_HEADER_BYTES = 64 * KiB
MAX_GLOBAL_HEADER_BYTES = 64 * KiB
SPARSE_REASON = "archive has a GNU sparse member (not supported in a Windows package)"

_MEMBER_HEADER_TYPES = (
    tarfile.XHDTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
_GLOBAL_BYTES_SEEN = "_pixelbridge_global_header_bytes"


def check_header(member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
    """Refuse a header block whose processing by ``tarfile`` could use unbounded memory or time."""
    if member.type == tarfile.GNUTYPE_SPARSE:
        raise ArchiveRejected(SPARSE_REASON)
    if member.type in _MEMBER_HEADER_TYPES and member.size > MAX_MEMBER_HEADER_BYTES:
        raise ArchiveRejected(
            f"archive has a tar metadata header of {member.size} bytes (limit {MAX_MEMBER_HEADER_BYTES})"
        )
    if member.type == tarfile.XGLTYPE:
        seen = int(getattr(archive, _GLOBAL_BYTES_SEEN, 0)) + member.size
        if seen > MAX_GLOBAL_HEADER_BYTES:
            raise ArchiveRejected(
                f"archive has more than {MAX_GLOBAL_HEADER_BYTES} bytes of global tar headers"
            )
        setattr(archive, _GLOBAL_BYTES_SEEN, seen)


class HardenedTarInfo(tarfile.TarInfo):
    """A ``TarInfo`` whose header processing is bounded (see the module docstring).

    ``tarfile`` calls ``_proc_member`` on every header it reads, and ``_proc_gnusparse_*`` (from
    ``_proc_pax``) on the member a PAX header describes, both on instances of the ``tarinfo`` class given
    to ``tarfile.open``: overriding them stops the work before it starts. The names are private but
    unchanged from CPython 3.8 to 3.13.
    """

    def _proc_member(self, tarfile_: tarfile.TarFile) -> Self:
        check_header(self, tarfile_)
        member: Self = super()._proc_member(tarfile_)  # type: ignore[misc]
        return member

    def _proc_gnusparse_00(self, *_: object) -> None:
        raise ArchiveRejected(SPARSE_REASON)

    def _proc_gnusparse_01(self, *_: object) -> None:
        raise ArchiveRejected(SPARSE_REASON)

    def _proc_gnusparse_10(self, *_: object) -> None:
        raise ArchiveRejected(SPARSE_REASON)
