"""The composition root: builds the real adapters from settings (once per sandbox) and every use case.

Handlers ask this module for their use case and never build adapters themselves. Tests swap adapters
for fakes with ``with override(Overrides(...)):`` and call ``reset()`` when they change the environment
(it forgets the cached adapters and the settings).

Adapters, use cases and the settings are imported inside their factories: a function imports only what it
runs, when it first runs it (cold start: tests/unit/test_import_weight.py); the clients are built then too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

import boto3

from pixelbridge.domain.timeline import utc_now

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

    from pixelbridge.adapters.builds import BuildRepository
    from pixelbridge.adapters.delivery_ledger import DynamoDeliveryLedger
    from pixelbridge.adapters.handoff import HandoffStore
    from pixelbridge.adapters.notifications import EventBus, OperatorTopic
    from pixelbridge.adapters.secrets import SecretReader
    from pixelbridge.adapters.slots import SlotBook
    from pixelbridge.adapters.store import InboxStore
    from pixelbridge.adapters.streampixel import StreampixelClient, StreampixelCredentials
    from pixelbridge.adapters.workflow import Workflow
    from pixelbridge.convert.pipeline import ConversionLimits
    from pixelbridge.domain.routes import Route
    from pixelbridge.ports import (
        BuildPixelPort,
        BuildsPort,
        ConvertStarter,
        FetchStarter,
        HandoffPort,
        InboxPort,
        MetricsPort,
        SlotsPort,
        StreampixelPort,
        WorkflowPort,
        ZipSinkFactory,
    )
    from pixelbridge.settings import Settings
    from pixelbridge.usecases.convert_build import ConvertBuild
    from pixelbridge.usecases.fetch_artifact import FetchArtifact
    from pixelbridge.usecases.ingest_push import IngestPush
    from pixelbridge.usecases.ingest_webhook import IngestWebhook
    from pixelbridge.usecases.notify import NotifyStatusChanges
    from pixelbridge.usecases.operator import OperatorApi
    from pixelbridge.usecases.reconcile import ReconcileBuilds
    from pixelbridge.usecases.release import ReleaseTasks
    from pixelbridge.usecases.streampixel_events import StreampixelEvents

T = TypeVar("T")


def get_settings() -> Settings:
    """``pixelbridge.settings.get_settings``, imported at first use: the settings model needs pydantic."""
    from pixelbridge.settings import get_settings as cached_settings

    return cached_settings()


@lru_cache(maxsize=1)
def builds() -> BuildRepository:
    from pixelbridge.adapters.builds import BuildRepository

    return BuildRepository(get_settings().builds_table, dynamodb=boto3.resource("dynamodb"), clock=now)


@lru_cache(maxsize=1)
def webhook_deliveries() -> DynamoDeliveryLedger:
    """The replay ledger of signed webhooks (items in the idempotency table, expired by TTL)."""
    from pixelbridge.adapters.delivery_ledger import DynamoDeliveryLedger

    return DynamoDeliveryLedger(get_settings().idempotency_table, dynamodb=boto3.resource("dynamodb"))


@lru_cache(maxsize=1)
def inbox() -> InboxStore:
    from pixelbridge.adapters.store import InboxStore

    return InboxStore(get_settings().artifact_bucket, s3=s3_client())


@lru_cache(maxsize=1)
def s3_client() -> S3Client:
    from botocore.config import Config

    # The converter has 8 range reads and 2 part uploads in flight; botocore's default pool is 10.
    # s3v4: presigned handoff URLs are SigV4 (botocore presigns SigV2 in us-east-1 otherwise, which
    # regions opened since 2014 refuse).
    return boto3.client("s3", config=Config(max_pool_connections=16, signature_version="s3v4"))


@lru_cache(maxsize=1)
def fetch_s3_client() -> S3Client:
    """Part uploads bounded in time: connect 5 s + read 15 s, 2 attempts (~40 s, under the fetch reserve)."""
    from botocore.config import Config

    config = Config(
        max_pool_connections=16,
        connect_timeout=5,
        read_timeout=15,
        retries={"max_attempts": 2, "mode": "standard"},
    )
    return boto3.client("s3", config=config)


@lru_cache(maxsize=1)
def sfn_client() -> SFNClient:
    return boto3.client("stepfunctions")


@lru_cache(maxsize=1)
def secrets() -> SecretReader:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from pixelbridge.adapters.secrets import SecretReader

    return SecretReader(SecretsProvider(boto3_client=boto3.client("secretsmanager")))


@lru_cache(maxsize=1)
def routes() -> list[Route]:
    from pixelbridge.domain.routes import load_routes_file, routes_path

    settings = get_settings()
    return load_routes_file(
        routes_path(settings.routes_file),
        default_project_id=settings.default_streampixel_project_id_,
        default_policy=settings.default_release_policy,
    )


@lru_cache(maxsize=1)
def workflow() -> Workflow:
    from pixelbridge.adapters.workflow import Workflow

    return Workflow(get_settings().state_machine_arn, sfn=sfn_client())


@lru_cache(maxsize=1)
def handoff() -> HandoffStore:
    from pixelbridge.adapters.handoff import HandoffStore

    settings = get_settings()
    return HandoffStore(
        settings.handoff_bucket,
        mode=settings.handoff_mode,
        base_url=settings.handoff_base_url,
        url_ttl_seconds=settings.handoff_url_ttl_seconds,
        s3=s3_client(),
    )


@lru_cache(maxsize=1)
def slots() -> SlotBook:
    from pixelbridge.adapters.slots import SlotBook

    return SlotBook(get_settings().slots_table, dynamodb=boto3.resource("dynamodb"))


@lru_cache(maxsize=1)
def streampixel() -> StreampixelClient:
    from pixelbridge.adapters.streampixel import StreampixelClient

    settings = get_settings()
    return StreampixelClient(
        settings.streampixel_api_url, timeout=(5.0, settings.streampixel_timeout_seconds)
    )


def streampixel_credentials(account: str) -> StreampixelCredentials:
    from pixelbridge.adapters.streampixel_accounts import credentials_for

    return credentials_for(secrets(), get_settings().streampixel_secret_arn, account)


def object_exists(bucket: str, key: str) -> bool:
    """HeadObject: is this S3 object still there (operator retry decides what to re-drive from)?"""
    from botocore.exceptions import ClientError

    try:
        s3_client().head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise
    return True


@lru_cache(maxsize=1)
def event_bus() -> EventBus:
    from pixelbridge.adapters.notifications import EventBus

    return EventBus(get_settings().event_bus_name, events=boto3.client("events"))


@lru_cache(maxsize=1)
def operator_topic() -> OperatorTopic:
    from pixelbridge.adapters.notifications import OperatorTopic

    return OperatorTopic(get_settings().notification_topic_arn, sns=boto3.client("sns"))


ALL_CACHED = (
    event_bus,
    operator_topic,
    builds,
    webhook_deliveries,
    inbox,
    s3_client,
    fetch_s3_client,
    sfn_client,
    secrets,
    routes,
    workflow,
    handoff,
    slots,
    streampixel,
)


def reset() -> None:
    """Forget every cached adapter and the settings (tests change the environment between cases)."""
    from pixelbridge.settings import get_settings as cached_settings

    for cached in (*ALL_CACHED, cached_settings):
        cached.cache_clear()


# -- test hook -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overrides:
    """Adapters a test replaces with fakes; ``None`` keeps the real one."""

    builds: BuildsPort | None = None
    inbox: InboxPort | None = None
    handoff: HandoffPort | None = None
    slots: SlotsPort | None = None
    workflow: WorkflowPort | None = None
    streampixel: StreampixelPort | None = None
    buildpixel: BuildPixelPort | None = None
    fetch_starter: FetchStarter | None = None
    convert_starter: ConvertStarter | None = None
    metrics: MetricsPort | None = None
    zip_sinks: ZipSinkFactory | None = None
    clock: Callable[[], float] | None = None  # seconds since the epoch, as time.time (see ``now``)


_overrides = Overrides()


@contextmanager
def override(replacements: Overrides) -> Iterator[None]:
    """Use these fakes instead of the real adapters inside the ``with`` block (``reset()`` keeps them)."""
    global _overrides
    previous, _overrides = _overrides, replacements
    try:
        yield
    finally:
        _overrides = previous


def _use(replacement: T | None, real: Callable[[], T]) -> T:
    return replacement if replacement is not None else real()


def now() -> datetime:
    """The clock every use case and the build repository get: the real one unless ``Overrides.clock``
    (read at each call, so an override also reaches adapters cached before it)."""
    if _overrides.clock is None:
        return utc_now()
    return datetime.fromtimestamp(_overrides.clock(), UTC)


# -- secrets the edges check -------------------------------------------------------------------------


def upload_authorization() -> str:
    """The exact Authorization header BuildPixel's push must carry."""
    from pixelbridge.adapters.secrets import buildpixel_upload_authorization

    return buildpixel_upload_authorization(secrets(), get_settings().buildpixel_secret_arn)


def operator_authorization() -> str:
    return f"Bearer {secrets().field(get_settings().operator_secret_arn, 'operatorToken')}"


def webhook_signing_secret() -> str:
    return secrets().field(get_settings().buildpixel_secret_arn, "webhookSigningSecret")


def streampixel_path_secret() -> str:
    return secrets().field(get_settings().streampixel_webhook_secret_arn, "pathSecret")


# -- use cases ---------------------------------------------------------------------------------------


def fetch_starter() -> FetchStarter:
    from pixelbridge.adapters.fetch_starter import LambdaFetchStarter

    return _use(_overrides.fetch_starter, lambda: LambdaFetchStarter(get_settings().fetch_function_name))


def convert_starter() -> ConvertStarter:
    from pixelbridge.adapters.convert_starter import LambdaConvertStarter

    return _use(
        _overrides.convert_starter, lambda: LambdaConvertStarter(get_settings().convert_function_name)
    )


def ingest_push() -> IngestPush:
    from pixelbridge.adapters.multipart import parse_build_upload
    from pixelbridge.usecases.ingest_push import IngestPush

    return IngestPush(
        builds=_use(_overrides.builds, builds),
        inbox=_use(_overrides.inbox, inbox),
        routes=routes(),
        expected_authorization=upload_authorization,
        max_body_bytes=get_settings().max_push_bytes,
        parse_upload=parse_build_upload,
    )


def ingest_webhook() -> IngestWebhook:
    from pixelbridge.domain.fetch_attempts import stall_seconds
    from pixelbridge.usecases.ingest_webhook import IngestWebhook
    from pixelbridge.usecases.webhook_replay import WebhookReplayGuard

    return IngestWebhook(
        builds=_use(_overrides.builds, builds),
        routes=routes(),
        fetch_starter=fetch_starter(),
        signing_secret=webhook_signing_secret,
        replay_guard=WebhookReplayGuard(webhook_deliveries(), clock=_overrides.clock or time.time),
        fetch_stall_seconds=stall_seconds(get_settings().stuck_fetch_seconds),
    )


def operator_api() -> OperatorApi:
    from pixelbridge.usecases.operator import OperatorApi

    settings = get_settings()
    return OperatorApi(
        builds=_use(_overrides.builds, builds),
        workflow=_use(_overrides.workflow, workflow),
        routes=routes(),
        object_exists=object_exists,
        artifact_bucket=settings.artifact_bucket,
        handoff_bucket=settings.handoff_bucket,
        convert_starter=convert_starter(),
        fetch_starter=fetch_starter(),
        streampixel=_use(_overrides.streampixel, streampixel),
        credentials=streampixel_credentials,
        clock=now,
    )


def streampixel_events() -> StreampixelEvents:
    from pixelbridge.usecases.streampixel_events import StreampixelEvents

    return StreampixelEvents(
        builds=_use(_overrides.builds, builds),
        workflow=_use(_overrides.workflow, workflow),
        handoff=_use(_overrides.handoff, handoff),
    )


def convert_build() -> ConvertBuild:
    from pixelbridge.adapters.multipart import parse_build_upload
    from pixelbridge.usecases.convert_build import ConvertBuild

    return ConvertBuild(
        builds=_use(_overrides.builds, builds),
        inbox=_use(_overrides.inbox, inbox),
        handoff=_use(_overrides.handoff, handoff),
        workflow=_use(_overrides.workflow, workflow),
        open_zip_sink=_overrides.zip_sinks or _s3_zip_sinks(s3_client()),
        parse_upload=parse_build_upload,
        limits=_conversion_limits(),
    )


def _s3_zip_sinks(s3: S3Client) -> ZipSinkFactory:
    from pixelbridge.convert.sinks import S3MultipartSink

    bucket = get_settings().handoff_bucket

    def open_s3_zip_sink(key: str, expected_size: int | None) -> S3MultipartSink:
        return S3MultipartSink(s3, bucket, key, expected_size=expected_size)

    return open_s3_zip_sink


def _conversion_limits() -> ConversionLimits:
    from pixelbridge.convert.pipeline import ConversionLimits

    settings = get_settings()
    return ConversionLimits(
        max_total_bytes=settings.convert_max_total_bytes, max_entries=settings.convert_max_entries
    )


FETCH_PART_SIZE = 16 * 1024 * 1024


def fetch_artifact(seconds_left: Callable[[], float], own_function: str | None = None) -> FetchArtifact:
    """``own_function``: this FetchFunction's ARN, invoked again to continue a download."""
    from pixelbridge.adapters.buildpixel import BuildPixelClient, session_with_pool
    from pixelbridge.adapters.fetch_starter import LambdaFetchStarter
    from pixelbridge.adapters.ranged_reader import RangedReadConfig, artifact_readers
    from pixelbridge.adapters.url_guard import UrlPolicy
    from pixelbridge.convert.sinks import resumable_s3_sinks
    from pixelbridge.usecases.convert_build import Publication
    from pixelbridge.usecases.fetch_artifact import FetchArtifact, FetchLimits, OnePass

    settings = get_settings()
    s3 = fetch_s3_client()

    def buildpixel() -> BuildPixelClient:
        secret_arn = settings.buildpixel_secret_arn
        return BuildPixelClient(
            settings.buildpixel_api_url,
            lambda: secrets().field(secret_arn, "apiToken"),
            session=session_with_pool(),
            artifact_urls=UrlPolicy.of(
                settings.artifact_allowed_hosts, allow_loopback_http=settings.artifact_allow_loopback_http
            ),
        )

    source = _use(_overrides.buildpixel, buildpixel)

    publication = Publication(
        builds=_use(_overrides.builds, builds),
        handoff=_use(_overrides.handoff, handoff),
        workflow=_use(_overrides.workflow, workflow),
    )
    one_pass = OnePass(publication, _overrides.zip_sinks or _s3_zip_sinks(s3), _conversion_limits())
    return FetchArtifact(
        builds=_use(_overrides.builds, builds),
        source=source,
        open_reader=artifact_readers(source, RangedReadConfig(range_size=settings.fetch_range_bytes)),
        open_sink=resumable_s3_sinks(s3, settings.artifact_bucket, part_size=FETCH_PART_SIZE),
        limits=FetchLimits(
            max_bytes=settings.max_artifact_bytes, reserve_seconds=settings.fetch_reserve_seconds
        ),
        one_pass=one_pass,
        continue_fetch=_use(_overrides.fetch_starter, lambda: LambdaFetchStarter(own_function or "")),
        seconds_left=seconds_left,
    )


def release_tasks() -> ReleaseTasks:
    from pixelbridge.usecases.release import ReleaseConfig, ReleaseTasks

    settings = get_settings()
    return ReleaseTasks(
        builds=_use(_overrides.builds, builds),
        slots=_use(_overrides.slots, slots),
        streampixel=_use(_overrides.streampixel, streampixel),
        credentials=streampixel_credentials,
        handoff_url=lambda key: _use(_overrides.handoff, handoff).url_for(key),  # built at the first upload
        workflow=_use(_overrides.workflow, workflow),
        config=ReleaseConfig(
            slot_seconds=settings.slot_seconds,
            approval_timeout_seconds=settings.approval_timeout_seconds,
            live_window_seconds=settings.live_window_seconds,
            max_rate_limited_attempts=settings.max_rate_limited_attempts,
            upload_event_window_seconds=settings.upload_event_window_seconds,
        ),
        clock=now,
    )


def reconcile_builds() -> ReconcileBuilds:
    from pixelbridge.domain.reconciliation import StuckThresholds
    from pixelbridge.usecases.reconcile import ReconcileBuilds

    settings = get_settings()
    thresholds = StuckThresholds.from_settings(
        ingest=settings.stuck_ingest_seconds,
        convert=settings.stuck_convert_seconds,
        queue=settings.stuck_queue_seconds,
        release=settings.stuck_release_seconds,
        approval_timeout=settings.approval_timeout_seconds,
        hold=settings.hold_window_seconds,
        fetch=settings.stuck_fetch_seconds,
    )
    return ReconcileBuilds(
        builds=_use(_overrides.builds, builds),
        workflow=_use(_overrides.workflow, workflow),
        thresholds=thresholds,
        clock=now,
    )


def notify_status_changes() -> NotifyStatusChanges:
    from pixelbridge.adapters.metrics import PowertoolsMetrics
    from pixelbridge.observability import metrics
    from pixelbridge.usecases.notify import NotifyStatusChanges

    return NotifyStatusChanges(
        events=event_bus(),
        operators=operator_topic(),
        metrics=_use(_overrides.metrics, lambda: PowertoolsMetrics(metrics)),
    )
