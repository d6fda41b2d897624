"""ReconcilerFunction's event: EventBridge's scheduled run (only its kind is checked; nothing is read)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ScheduledRun(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    source: Literal["aws.events"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
