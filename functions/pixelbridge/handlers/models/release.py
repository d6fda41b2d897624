"""ReleaseFunction's events: one model per ``action`` of ``statemachine/release.asl.json``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class _ReleaseTask(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    build_id: str = Field(alias="buildId", min_length=1)


class Prepare(_ReleaseTask):
    action: Literal["prepare"]


class ReserveSlot(_ReleaseTask):
    action: Literal["reserve_slot"]
    purpose: str
    last_error: dict[str, Any] | None = Field(default=None, alias="lastError")


class Upload(_ReleaseTask):
    action: Literal["upload"]
    slot_at: str | None = Field(default=None, alias="slotAt")


class Distribute(_ReleaseTask):
    action: Literal["distribute"]
    slot_at: str | None = Field(default=None, alias="slotAt")


class Interrupted(_ReleaseTask):
    """The Upload or Distribute task was stopped (Lambda.Unknown): decide what may happen next."""

    action: Literal["interrupted"]
    call: Literal["upload-file", "distribute-file"]


class Await(_ReleaseTask):
    action: Literal["await"]
    waiting_for: str = Field(alias="waitingFor")
    token: str = Field(repr=False)


class Finish(_ReleaseTask):
    action: Literal["finish"]
    outcome: str
    error: dict[str, Any] | None = None
    note: str = ""


ReleaseTask = Prepare | ReserveSlot | Upload | Distribute | Interrupted | Await | Finish


class ReleaseTaskEvent(RootModel[Annotated[ReleaseTask, Field(discriminator="action")]]):
    """The task event, told apart by ``action`` (an unknown action is a validation error)."""
