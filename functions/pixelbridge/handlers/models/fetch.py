"""FetchFunction's event."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from pixelbridge.domain.metadata import BUILD_ID_PATTERN
from pixelbridge.domain.streampixel_webhook import text_or_none


class FetchRequest(BaseModel):
    """IngestFunction's async invoke of FetchFunction. The URL is a capability: never in reprs."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    build_id: str = Field(alias="buildId", pattern=BUILD_ID_PATTERN)
    # Absent, empty or not a string: FetchFunction asks BuildPixel's download API for a fresh URL.
    artifact_url: Annotated[
        str | None, BeforeValidator(text_or_none), Field(alias="artifactUrl", repr=False)
    ] = None
