"""One typed settings model, read from the environment that template.yaml sets.

Names, ARNs, tables and buckets have no defaults: absent is ``None``, never an empty string. Each
function declares the ones it needs (``FUNCTION_SETTINGS``, keyed by Lambda's ``_HANDLER``), and
``get_settings()`` refuses to start a function that lacks one, naming the variable, so a
misconfigured stack fails loudly on its first invocation instead of half-working.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_STREAMPIXEL_API_URL = "https://api.streampixel.io/pixelStripeApi"
# A Function URL invoke payload is capped at 6 MiB; binary bodies arrive base64-encoded (4/3 larger).
FUNCTION_URL_MAX_RAW_BODY = 6 * 1024 * 1024 * 3 // 4


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    builds_table_: str | None = Field(default=None, alias="BUILDS_TABLE", min_length=1)
    slots_table_: str | None = Field(default=None, alias="SLOTS_TABLE", min_length=1)
    idempotency_table_: str | None = Field(default=None, alias="IDEMPOTENCY_TABLE", min_length=1)
    artifact_bucket_: str | None = Field(default=None, alias="ARTIFACT_BUCKET", min_length=1)
    handoff_bucket_: str | None = Field(default=None, alias="HANDOFF_BUCKET", min_length=1)
    handoff_mode: Literal["cloudfront", "presigned", "public"] = Field(
        default="cloudfront", alias="HANDOFF_MODE"
    )
    handoff_base_url: str = Field(default="", alias="HANDOFF_BASE_URL")
    # Presigned mode: a URL is signed per upload-file call and must outlive Streampixel's queue (a build
    # queued over 2 h is "unusual" in its docs) plus the download (1-10 min): 3 h. A Lambda session can end
    # sooner; a re-upload signs anew. SigV4 allows at most 7 days.
    handoff_url_ttl_seconds: int = Field(default=10_800, alias="HANDOFF_URL_TTL_SECONDS", ge=60, le=604_800)

    buildpixel_secret_arn_: str | None = Field(default=None, alias="BUILDPIXEL_SECRET_ARN", min_length=1)
    streampixel_secret_arn_: str | None = Field(default=None, alias="STREAMPIXEL_SECRET_ARN", min_length=1)
    streampixel_webhook_secret_arn_: str | None = Field(
        default=None, alias="STREAMPIXEL_WEBHOOK_SECRET_ARN", min_length=1
    )
    operator_secret_arn_: str | None = Field(default=None, alias="OPERATOR_SECRET_ARN", min_length=1)
    streampixel_api_url: str = Field(default=DEFAULT_STREAMPIXEL_API_URL, alias="STREAMPIXEL_API_URL")
    streampixel_timeout_seconds: float = Field(default=30.0, alias="STREAMPIXEL_TIMEOUT_SECONDS", gt=0)

    # Relative to the function package root (functions/ in the repository); absent file = default route.
    routes_file: str = Field(default="routes.json", alias="ROUTES_FILE", min_length=1)
    default_streampixel_project_id_: str | None = Field(
        default=None, alias="DEFAULT_STREAMPIXEL_PROJECT_ID", min_length=1
    )
    default_release_policy: Literal["auto", "manual", "hold"] = Field(
        default="auto", alias="DEFAULT_RELEASE_POLICY"
    )

    fetch_function_name_: str | None = Field(default=None, alias="FETCH_FUNCTION_NAME", min_length=1)
    convert_function_name_: str | None = Field(default=None, alias="CONVERT_FUNCTION_NAME", min_length=1)
    buildpixel_api_url: str = Field(default="https://api.buildpixel.io", alias="BUILDPIXEL_API_URL")
    max_artifact_bytes: int = Field(default=24 * 1024**3, alias="MAX_ARTIFACT_BYTES", ge=1)
    # FetchFunction stops reading this long before its timeout to checkpoint (lowered only by local tests).
    fetch_reserve_seconds: float = Field(default=60.0, alias="FETCH_RESERVE_SECONDS", gt=0)
    fetch_range_bytes: int = Field(default=8 * 1024**2, alias="FETCH_RANGE_BYTES", ge=64 * 1024)
    artifact_allowed_hosts: str = Field(
        default="buildpixel.io,*.buildpixel.io", alias="ARTIFACT_ALLOWED_HOSTS"
    )
    # Local stack only (its BuildPixel simulator serves http on 127.0.0.1); never set in a deployed stack.
    artifact_allow_loopback_http: bool = Field(default=False, alias="ARTIFACT_ALLOW_LOOPBACK_HTTP")

    state_machine_arn_: str | None = Field(default=None, alias="STATE_MACHINE_ARN", min_length=1)
    slot_seconds: int = Field(default=120, alias="SLOT_SECONDS", ge=0)
    approval_timeout_seconds: int = Field(default=21_600, alias="APPROVAL_TIMEOUT_SECONDS", ge=1)
    live_window_seconds: int = Field(default=600, alias="LIVE_WINDOW_SECONDS", ge=0)
    max_rate_limited_attempts: int = Field(default=200, alias="MAX_RATE_LIMITED_ATTEMPTS", ge=1)
    # After a ReleaseFunction stopped during upload-file, how long to wait for Streampixel's own events
    # of that upload (build.uploaded comes in < 5 s; a lost one is followed by build.downloading).
    upload_event_window_seconds: int = Field(default=1800, alias="UPLOAD_EVENT_WINDOW_SECONDS", ge=1)

    # Notifications (NotifierFunction) and reconciliation (ReconcilerFunction).
    notification_topic_arn_: str | None = Field(default=None, alias="NOTIFICATION_TOPIC_ARN", min_length=1)
    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME", min_length=1)
    stuck_ingest_seconds: int = Field(default=3600, alias="STUCK_INGEST_SECONDS", ge=1)
    stuck_convert_seconds: int = Field(default=1200, alias="STUCK_CONVERT_SECONDS", ge=1)
    stuck_queue_seconds: int = Field(default=3600, alias="STUCK_QUEUE_SECONDS", ge=1)
    # 0: the approval timeout plus a margin (the workflow's own timeout should fire first).
    stuck_release_seconds: int = Field(default=0, alias="STUCK_RELEASE_SECONDS", ge=0)
    # A pull whose download shows no life this long ends failed (0: every fetch attempt at its longest).
    stuck_fetch_seconds: int = Field(default=0, alias="STUCK_FETCH_SECONDS", ge=0)
    # A held build (hold policy) nobody released within this window ends failed with the reason.
    hold_window_seconds: int = Field(default=7 * 24 * 3600, alias="HOLD_WINDOW_SECONDS", ge=60)

    max_push_bytes: int = Field(default=FUNCTION_URL_MAX_RAW_BODY, alias="MAX_PUSH_BYTES", ge=1)
    convert_max_total_bytes: int = Field(default=24 * 1024**3, alias="CONVERT_MAX_TOTAL_BYTES", ge=1)
    convert_max_entries: int = Field(default=200_000, alias="CONVERT_MAX_ENTRIES", ge=1)

    # Lambda sets _HANDLER in every execution environment: it says which function this is.
    handler: str | None = Field(default=None, alias="_HANDLER")

    @model_validator(mode="after")
    def _function_has_what_it_needs(self) -> Settings:
        if self.handler is None:  # not on Lambda (unit tests, tools): nothing function-specific
            return self
        if self.handler not in FUNCTION_SETTINGS:
            raise ValueError(f"no settings are declared for handler {self.handler}")
        missing = [
            ALIASES[f"{name}_"]
            for name in FUNCTION_SETTINGS[self.handler]
            if getattr(self, f"{name}_") is None
        ]
        if missing:
            raise ValueError(f"{self.handler} cannot start: {', '.join(missing)} not set")
        return self

    def require(self, name: str) -> str:
        """A name/ARN setting (field ``name``); a function's own were checked at cold start."""
        value = getattr(self, name)
        if not isinstance(value, str) or not value:
            raise MissingSetting(f"{ALIASES[name]} is not set")
        return value

    # Typed access to the names/ARNs above: raises MissingSetting when this function lacks one.
    @property
    def builds_table(self) -> str:
        return self.require("builds_table_")

    @property
    def slots_table(self) -> str:
        return self.require("slots_table_")

    @property
    def idempotency_table(self) -> str:
        return self.require("idempotency_table_")

    @property
    def artifact_bucket(self) -> str:
        return self.require("artifact_bucket_")

    @property
    def handoff_bucket(self) -> str:
        return self.require("handoff_bucket_")

    @property
    def buildpixel_secret_arn(self) -> str:
        return self.require("buildpixel_secret_arn_")

    @property
    def streampixel_secret_arn(self) -> str:
        return self.require("streampixel_secret_arn_")

    @property
    def streampixel_webhook_secret_arn(self) -> str:
        return self.require("streampixel_webhook_secret_arn_")

    @property
    def operator_secret_arn(self) -> str:
        return self.require("operator_secret_arn_")

    @property
    def default_streampixel_project_id(self) -> str:
        return self.require("default_streampixel_project_id_")

    @property
    def fetch_function_name(self) -> str:
        return self.require("fetch_function_name_")

    @property
    def convert_function_name(self) -> str:
        return self.require("convert_function_name_")

    @property
    def state_machine_arn(self) -> str:
        return self.require("state_machine_arn_")

    @property
    def notification_topic_arn(self) -> str:
        return self.require("notification_topic_arn_")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return cls.model_validate(dict(os.environ if env is None else env))


class MissingSetting(RuntimeError):
    """A function asked for a name/ARN setting that its environment does not set."""


ALIASES: dict[str, str] = {
    name: str(field.alias) for name, field in Settings.model_fields.items() if field.alias
}

# The names/ARNs each function reads (template.yaml must set them: tests/unit/test_settings_per_function.py).
FUNCTION_SETTINGS: dict[str, frozenset[str]] = {
    "pixelbridge.handlers.ingest.handler": frozenset(
        {
            "builds_table",
            "artifact_bucket",
            "handoff_bucket",
            "buildpixel_secret_arn",
            "operator_secret_arn",
            "streampixel_secret_arn",
            "fetch_function_name",
            "convert_function_name",
            "state_machine_arn",
            "default_streampixel_project_id",
        }
    ),
    "pixelbridge.handlers.fetch.handler": frozenset(
        {"builds_table", "artifact_bucket", "handoff_bucket", "buildpixel_secret_arn", "state_machine_arn"}
    ),
    "pixelbridge.handlers.convert.handler": frozenset(
        {"builds_table", "artifact_bucket", "handoff_bucket", "idempotency_table", "state_machine_arn"}
    ),
    "pixelbridge.handlers.release.handler": frozenset(  # handoff_bucket: upload-file's URL is made per call
        {"builds_table", "slots_table", "handoff_bucket", "streampixel_secret_arn", "state_machine_arn"}
    ),
    "pixelbridge.handlers.streampixel_webhook.handler": frozenset(
        {"builds_table", "handoff_bucket", "streampixel_webhook_secret_arn", "state_machine_arn"}
    ),
    "pixelbridge.handlers.notifier.handler": frozenset({"notification_topic_arn"}),
    "pixelbridge.handlers.reconciler.handler": frozenset({"builds_table", "state_machine_arn"}),
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: the environment of a Lambda sandbox never changes)."""
    return Settings.from_env()
