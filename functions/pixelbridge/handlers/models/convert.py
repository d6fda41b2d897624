"""ConvertFunction's events: an inbox object was created (EventBridge or S3 notification), or a retry."""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, RootModel


class ObjectRef(BaseModel):
    """One object to convert; the idempotency key is the whole ref (key + eTag, or ``retry-<n>``)."""

    bucket: str
    key: str
    etag: str


class _Named(BaseModel):
    name: str


class _CreatedObject(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    key: str
    etag: str | None = Field(default=None, alias="eTag")


class _EventBridgeDetail(BaseModel):
    bucket: _Named
    object: _CreatedObject


class ObjectCreated(BaseModel):
    """S3's EventBridge "Object Created" event. ``etag`` is spelled in lower case there."""

    model_config = ConfigDict(populate_by_name=True)

    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    detail: _EventBridgeDetail


class _S3Entity(BaseModel):
    bucket: _Named
    object: _CreatedObject


class _S3Record(BaseModel):
    s3: _S3Entity


class S3Notification(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    records: list[_S3Record] = Field(alias="Records")


class ConvertRetry(BaseModel):
    """An operator retry re-converts an inbox object (``adapters.convert_starter``)."""

    source: Literal["pixelbridge.operator-retry"]
    key: str
    retry: int


ConvertEvent = ConvertRetry | ObjectCreated | S3Notification


class ConvertEventModel(RootModel[ConvertEvent]):
    pass


def object_refs(event: ConvertEvent, artifact_bucket: str) -> list[ObjectRef]:
    """Every object the event names (notification keys are URL-encoded: "+" for space, moto even "/")."""
    match event:
        case ConvertRetry():  # "retry-<n>" in the idempotency key makes each operator retry run once
            return [ObjectRef(bucket=artifact_bucket, key=event.key, etag=f"retry-{event.retry}")]
        case ObjectCreated(detail=detail):
            created = [(detail.bucket.name, detail.object)]
        case S3Notification():
            created = [(record.s3.bucket.name, record.s3.object) for record in event.records]
    return [
        ObjectRef(bucket=bucket, key=unquote_plus(obj.key), etag=obj.etag or "") for bucket, obj in created
    ]
