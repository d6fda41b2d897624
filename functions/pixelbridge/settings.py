"""One typed settings model, read from the environment that template.yaml sets.

Every function validates it at cold start, so a misconfigured stack fails loudly on its first
invocation instead of half-working.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_STREAMPIXEL_API_URL = "https://api.streampixel.io/pixelStripeApi"
# A Function URL invoke payload is capped at 6 MiB; binary bodies arrive base64-encoded (4/3 larger).
FUNCTION_URL_MAX_RAW_BODY = 6 * 1024 * 1024 * 3 // 4


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    builds_table: str = Field(alias="BUILDS_TABLE", min_length=1)
    slots_table: str = Field(default="", alias="SLOTS_TABLE")
    idempotency_table: str = Field(default="", alias="IDEMPOTENCY_TABLE")
    artifact_bucket: str = Field(alias="ARTIFACT_BUCKET", min_length=1)
    handoff_bucket: str = Field(default="", alias="HANDOFF_BUCKET")
    handoff_mode: Literal["cloudfront", "presigned", "public"] = Field(
        default="cloudfront", alias="HANDOFF_MODE"
    )
    handoff_base_url: str = Field(default="", alias="HANDOFF_BASE_URL")
    handoff_url_ttl_seconds: int = Field(default=43_200, alias="HANDOFF_URL_TTL_SECONDS", ge=60)

    buildpixel_secret_arn: str = Field(default="", alias="BUILDPIXEL_SECRET_ARN")
    streampixel_secret_arn: str = Field(default="", alias="STREAMPIXEL_SECRET_ARN")
    streampixel_webhook_secret_arn: str = Field(default="", alias="STREAMPIXEL_WEBHOOK_SECRET_ARN")
    operator_secret_arn: str = Field(default="", alias="OPERATOR_SECRET_ARN")
    streampixel_api_url: str = Field(default=DEFAULT_STREAMPIXEL_API_URL, alias="STREAMPIXEL_API_URL")
    streampixel_timeout_seconds: float = Field(default=30.0, alias="STREAMPIXEL_TIMEOUT_SECONDS", gt=0)

    routes_json: str = Field(default="", alias="ROUTES_JSON")
    default_streampixel_project_id: str = Field(default="", alias="DEFAULT_STREAMPIXEL_PROJECT_ID")
    default_release_policy: Literal["auto", "manual", "hold"] = Field(
        default="auto", alias="DEFAULT_RELEASE_POLICY"
    )

    fetch_function_name: str = Field(default="", alias="FETCH_FUNCTION_NAME")
    convert_function_name: str = Field(default="", alias="CONVERT_FUNCTION_NAME")
    buildpixel_api_url: str = Field(default="https://api.buildpixel.io", alias="BUILDPIXEL_API_URL")
    max_artifact_bytes: int = Field(default=24 * 1024**3, alias="MAX_ARTIFACT_BYTES", ge=1)

    state_machine_arn: str = Field(default="", alias="STATE_MACHINE_ARN")
    slot_seconds: int = Field(default=120, alias="SLOT_SECONDS", ge=0)
    approval_timeout_seconds: int = Field(default=21_600, alias="APPROVAL_TIMEOUT_SECONDS", ge=1)
    live_window_seconds: int = Field(default=600, alias="LIVE_WINDOW_SECONDS", ge=0)
    max_rate_limited_attempts: int = Field(default=200, alias="MAX_RATE_LIMITED_ATTEMPTS", ge=1)

    # Notifications (NotifierFunction) and reconciliation (ReconcilerFunction).
    notification_topic_arn: str = Field(default="", alias="NOTIFICATION_TOPIC_ARN")
    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME", min_length=1)
    stuck_ingest_seconds: int = Field(default=3600, alias="STUCK_INGEST_SECONDS", ge=1)
    stuck_convert_seconds: int = Field(default=1200, alias="STUCK_CONVERT_SECONDS", ge=1)
    stuck_queue_seconds: int = Field(default=3600, alias="STUCK_QUEUE_SECONDS", ge=1)
    # 0: the approval timeout plus a margin (the workflow's own timeout should fire first).
    stuck_release_seconds: int = Field(default=0, alias="STUCK_RELEASE_SECONDS", ge=0)

    max_push_bytes: int = Field(default=FUNCTION_URL_MAX_RAW_BODY, alias="MAX_PUSH_BYTES", ge=1)
    convert_max_total_bytes: int = Field(default=24 * 1024**3, alias="CONVERT_MAX_TOTAL_BYTES", ge=1)
    convert_max_entries: int = Field(default=200_000, alias="CONVERT_MAX_ENTRIES", ge=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return cls.model_validate(dict(os.environ if env is None else env))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: the environment of a Lambda sandbox never changes)."""
    return Settings.from_env()
