"""In-process moto account built from template.yaml, with every function's environment applied."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pixelbridge import wiring
from pixelbridge_local.dynamodb_atomicity import atomic_dynamodb_writes
from pixelbridge_local.template import (
    create_buckets,
    create_secrets,
    create_tables,
    function_environment,
    resolve,
    resource_properties,
)

FUNCTIONS = ("IngestFunction", "ConvertFunction", "ReleaseFunction", "StreampixelWebhookFunction")
STREAMPIXEL_USER = "663d1f2e3a4b5c6d7e8f9a0b"
STREAMPIXEL_PROJECT = "67944b8a3f323be4b89a2272"


@dataclass
class MotoAccount:
    names: dict[str, str]
    environment: dict[str, str]
    secrets: dict[str, dict[str, Any]]

    def client(self, service: str) -> Any:
        make_client: Any = boto3.client  # any service by name: the typed overloads want literals
        return make_client(service, region_name="us-east-1")

    @property
    def upload_authorization(self) -> str:
        return f"Bearer {self.secrets['BuildPixelSecret']['uploadAuthToken']}"

    def s3_keys(self, bucket_logical_id: str, prefix: str = "") -> list[str]:
        response = self.client("s3").list_objects_v2(Bucket=self.names[bucket_logical_id], Prefix=prefix)
        return [item["Key"] for item in response.get("Contents", [])]


@contextmanager
def moto_account(
    monkeypatch: pytest.MonkeyPatch,
    parameters: dict[str, str] | None = None,
    extra_names: dict[str, str] | None = None,
) -> Iterator[MotoAccount]:
    with mock_aws(), atomic_dynamodb_writes():
        names: dict[str, str] = {}
        names.update(create_tables(boto3.client("dynamodb", region_name="us-east-1")))
        names.update(create_buckets(boto3.client("s3", region_name="us-east-1")))
        secret_values = {
            "StreampixelSecret": {"userId": STREAMPIXEL_USER, "apiKey": "sp-api-key-secret-value"}
        }
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        arns = create_secrets(sm, secret_values)
        names.update(arns)
        names.update(extra_names or {})
        # Functions the harness does not create still need names: settings no longer default them to "".
        for logical_id in ("FetchFunction", "ConvertFunction"):
            names.setdefault(logical_id, f"pixelbridge-test-{logical_id}")
        # A stub release state machine under the template's own name, so that every function's
        # STATE_MACHINE_ARN (a !Ref, or ReleaseFunction's ARN built from that name) points at it.
        if "ReleaseStateMachine" not in names:
            stub_name = resolve(resource_properties("ReleaseStateMachine")["Name"], names)
            names["ReleaseStateMachine"] = boto3.client(
                "stepfunctions", region_name="us-east-1"
            ).create_state_machine(
                name=stub_name,
                definition=json.dumps(RELEASE_STUB),
                roleArn="arn:aws:iam::123456789012:role/release",
            )["stateMachineArn"]
        secrets = {
            logical: json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
            for logical, arn in arns.items()
        }
        merged = {"StreampixelProjectId": STREAMPIXEL_PROJECT, **(parameters or {})}
        environment: dict[str, str] = {}
        for function in FUNCTIONS:
            environment.update(function_environment(function, names, parameters=merged, strict=False))
        environment.setdefault("HANDOFF_BASE_URL", "https://downloads.example.test")
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        wiring.reset()
        try:
            yield MotoAccount(names=names, environment=environment, secrets=secrets)
        finally:
            wiring.reset()


# A state machine that only succeeds: enough to see ConvertFunction start one release per build.
RELEASE_STUB = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}


def add_release_stub(account: MotoAccount, monkeypatch: pytest.MonkeyPatch) -> str:
    """Create a stub ReleaseStateMachine, point the functions at it, and return its ARN."""
    role = account.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = account.client("stepfunctions").create_state_machine(
        name="release", definition=json.dumps(RELEASE_STUB), roleArn=role
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    from pixelbridge.handlers import convert

    wiring.reset()
    convert.convert_once.cache_clear()
    account.names["ReleaseStateMachine"] = arn
    return str(arn)
