"""The metadata BuildPixel sends with every build (the ``metadata`` part of a custom deploy)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Build ids become S3 keys and Step Functions execution names (≤ 80 chars of [A-Za-z0-9-_]).
BUILD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class BuildMetadata(BaseModel):
    """BuildPixel's metadata: the fields we rely on are typed, unknown fields are kept as sent."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    build_id: str = Field(alias="buildId", pattern=BUILD_ID_PATTERN)
    project_id: str = Field(alias="projectId", min_length=1, max_length=128)
    platform: str = Field(min_length=1, max_length=32)
    build_type: str | None = Field(default=None, alias="buildType", max_length=32)
    ue_version: str | None = Field(default=None, alias="ueVersion", max_length=32)
    branch: str | None = Field(default=None, max_length=256)
    commit: str | None = Field(default=None, max_length=128)

    def to_record(self) -> dict[str, object]:
        """The metadata as BuildPixel named it, unknown fields included (for the build record)."""
        return self.model_dump(by_alias=True, exclude_none=True)
