"""What a conversion may do (``ConversionLimits``) and what it did (``ConversionManifest``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pixelbridge.domain.archive_rules import DEFAULT_STORED_SUFFIXES

GiB = 1024**3
MiB = 1024**2
CORRUPT = "archive is truncated or corrupt"


@dataclass(frozen=True)
class ConversionLimits:
    max_total_bytes: int = 24 * GiB  # sum of the uncompressed member sizes
    max_entries: int = 200_000
    stored_suffixes: frozenset[str] = DEFAULT_STORED_SUFFIXES
    deflate_level: int = 1
    chunk_size: int = 1 * MiB
    require_executable: bool = True

    def total_limit_reason(self) -> str:
        return f"archive expands beyond the {self.max_total_bytes / GiB:.1f} GiB limit"


@dataclass
class ConversionManifest:
    """What was converted. ``ratio``: zip size / tar.gz size; ``mb_per_s``: input MB (10^6 B) per second."""

    files: int = 0
    directories: int = 0
    bytes_in: int = 0
    bytes_uncompressed: int = 0
    bytes_out: int = 0
    ratio: float = 0.0
    duration_s: float = 0.0
    mb_per_s: float = 0.0
    executable: str | None = None
    notes: list[str] = field(default_factory=list)
    zip64: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
