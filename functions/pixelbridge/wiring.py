"""Builds the real adapters from settings, once per sandbox; tests call ``reset()`` between cases."""

from __future__ import annotations

from functools import lru_cache

import boto3

from pixelbridge.adapters.builds import BuildRepository
from pixelbridge.adapters.delivery_ledger import DynamoDeliveryLedger
from pixelbridge.adapters.handoff import HandoffStore
from pixelbridge.adapters.notifications import EventBus, OperatorTopic
from pixelbridge.adapters.secrets import SecretReader
from pixelbridge.adapters.slots import SlotBook
from pixelbridge.adapters.store import InboxStore
from pixelbridge.adapters.streampixel import StreampixelClient, StreampixelCredentials
from pixelbridge.adapters.streampixel_accounts import credentials_for
from pixelbridge.adapters.workflow import Workflow
from pixelbridge.domain.routes import Route, load_routes_file, routes_path
from pixelbridge.settings import get_settings


@lru_cache(maxsize=1)
def builds() -> BuildRepository:
    return BuildRepository(get_settings().builds_table, dynamodb=boto3.resource("dynamodb"))


@lru_cache(maxsize=1)
def webhook_deliveries() -> DynamoDeliveryLedger:
    """The replay ledger of signed webhooks (items in the idempotency table, expired by TTL)."""
    return DynamoDeliveryLedger(get_settings().idempotency_table, dynamodb=boto3.resource("dynamodb"))


@lru_cache(maxsize=1)
def inbox() -> InboxStore:
    return InboxStore(get_settings().artifact_bucket, s3=s3_client())


@lru_cache(maxsize=1)
def s3_client():  # type: ignore[no-untyped-def]
    return boto3.client("s3")


@lru_cache(maxsize=1)
def sfn_client():  # type: ignore[no-untyped-def]
    return boto3.client("stepfunctions")


@lru_cache(maxsize=1)
def secrets() -> SecretReader:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretReader(SecretsProvider(boto3_client=boto3.client("secretsmanager")))


@lru_cache(maxsize=1)
def routes() -> list[Route]:
    settings = get_settings()
    return load_routes_file(
        routes_path(settings.routes_file),
        default_project_id=settings.default_streampixel_project_id_,
        default_policy=settings.default_release_policy,
    )


@lru_cache(maxsize=1)
def workflow() -> Workflow:
    return Workflow(get_settings().state_machine_arn, sfn=sfn_client())


@lru_cache(maxsize=1)
def handoff() -> HandoffStore:
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
    return SlotBook(get_settings().slots_table, dynamodb=boto3.resource("dynamodb"))


@lru_cache(maxsize=1)
def streampixel() -> StreampixelClient:
    settings = get_settings()
    return StreampixelClient(
        settings.streampixel_api_url, timeout=(5.0, settings.streampixel_timeout_seconds)
    )


def streampixel_credentials(account: str) -> StreampixelCredentials:
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
    return EventBus(get_settings().event_bus_name, events=boto3.client("events"))


@lru_cache(maxsize=1)
def operator_topic() -> OperatorTopic:
    return OperatorTopic(get_settings().notification_topic_arn, sns=boto3.client("sns"))


ALL_CACHED = (
    event_bus,
    operator_topic,
    builds,
    webhook_deliveries,
    inbox,
    s3_client,
    sfn_client,
    secrets,
    routes,
    workflow,
    handoff,
    slots,
    streampixel,
    get_settings,
)


def reset() -> None:
    """Forget every cached adapter and the settings (tests change the environment between cases)."""
    for cached in ALL_CACHED:
        cached.cache_clear()
