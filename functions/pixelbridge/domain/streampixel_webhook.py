"""The event Streampixel posts to our webhook URL, as a parser model.

Streampixel signs nothing and may add fields, so the model is lenient on purpose: a field that is not
a non-empty string reads as absent (a forged or odd event then simply matches no build), and unknown
fields are ignored. Only a body that is not a JSON object is refused.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


Text = Annotated[str | None, BeforeValidator(text_or_none)]


class StreampixelEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    event: Text = None
    upload_id: Text = Field(default=None, alias="uploadId")
    file_url: Text = Field(default=None, alias="fileUrl", repr=False)  # carries the handoff token
    project_id: Text = Field(default=None, alias="projectId")
    status: Text = None
    objection: Text = None
    timestamp: Text = None
