"""FetchFunction's event."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pixelbridge.domain.metadata import BUILD_ID_PATTERN


class FetchRequest(BaseModel):
    """The async invoke of FetchFunction: the build id only (an older payload's ``artifactUrl`` is ignored:
    FetchFunction always asks the download API for a fresh URL)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    build_id: str = Field(alias="buildId", pattern=BUILD_ID_PATTERN)
