"""The embedded local stack: the whole pipeline on one machine, no AWS account.

See docs/ARCHITECTURE.md, Local stack.

moto server provides S3, DynamoDB, SQS, Secrets Manager and Step Functions executing the real
``statemachine/release.asl.json``; Lambda tasks of the state machine are routed to the real
handlers in this process; two local Function URLs serve IngestFunction and
StreampixelWebhookFunction; S3 "object created" notifications (via SQS) reach ConvertFunction;
and the Streampixel simulator downloads the zip and calls the webhook back.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any
from unittest import mock

import boto3
import requests
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from local.buildpixel_sim import BuildPixelSimulator
from local.dynamodb_atomicity import atomic_dynamodb_writes
from local.gateway import FakeLambdaContext, FunctionUrlGateway
from local.notifications import LocalNotifications
from local.streampixel_sim import StreampixelSimulator
from local.template import (
    create_buckets,
    create_secrets,
    create_tables,
    function_environment,
    state_machine_definition,
)

LOCAL_FUNCTIONS = (
    "IngestFunction",
    "ConvertFunction",
    "ReleaseFunction",
    "StreampixelWebhookFunction",
    "FetchFunction",
    "NotifierFunction",
    "ReconcilerFunction",
)
STREAMPIXEL_USER_ID = "663d1f2e3a4b5c6d7e8f9a0b"
STREAMPIXEL_PROJECT_ID = "67944b8a3f323be4b89a2272"
REGION = "us-east-1"


@dataclass
class StackOptions:
    slot_seconds: int = 2
    release_policy: str = "auto"
    routes_json: str = ""
    live_window_seconds: int = 3
    approval_timeout_seconds: int = 300
    streampixel_window_seconds: float | None = None  # None: the same as slot_seconds
    extra_projects: dict[str, str] = field(default_factory=dict)  # more Streampixel projectId -> userId
    extra_accounts: dict[str, str] = field(default_factory=dict)  # more Streampixel userId -> apiKey
    environment: dict[str, str] = field(default_factory=dict)  # settings overrides, e.g. timeouts


class LocalStack(AbstractContextManager["LocalStack"]):
    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.api_key = secrets.token_hex(16)
        self.upload_token = ""
        self.webhook_path_secret = ""
        self.operator_token = ""
        # BuildPixel pull path: what the user would copy from BuildPixel's settings into the secret.
        self.buildpixel_signing_secret = secrets.token_hex(24)
        self.buildpixel_api_token = f"bp_{secrets.token_hex(20)}"
        self._patches: list[Any] = []
        self._stopping = threading.Event()
        self._converters = ThreadPoolExecutor(max_workers=2, thread_name_prefix="convert")
        self._saved_env = dict(os.environ)
        self.names: dict[str, str] = {}
        self.async_invocations: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's per-request lines
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "MOTO_PORT": str(port),
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
            }
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        requests.post(
            f"{self.endpoint}/moto-api/config",
            timeout=10,
            json={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
        )
        self._create_resources()
        self._start_simulator()
        self._start_buildpixel_simulator()
        self._configure_functions()
        self._start_gateways()
        self._route_state_machine_tasks()
        self._patches.append(_Exit(atomic_dynamodb_writes()))
        threading.Thread(target=self._dispatch_s3_events, daemon=True, name="s3-events").start()
        from pixelbridge.handlers import notifier

        self.notifier.start(notifier.handler, self._stopping)  # BuildsTable stream → NotifierFunction
        return self

    def stop(self) -> None:
        self._stopping.set()
        for patch in self._patches:
            patch.stop()
        self._converters.shutdown(wait=False, cancel_futures=True)
        self.ingest.stop()
        self.webhooks.stop()
        self.simulator.stop()
        self.buildpixel.stop()
        # moto keeps its backends in this process: forget them so the next stack starts empty.
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10)
        self._moto.stop()
        os.environ.clear()
        os.environ.update(self._saved_env)
        from pixelbridge import wiring

        wiring.reset()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- AWS resources from template.yaml ------------------------------------------------------------
    def client(self, service: str) -> Any:
        factory: Any = boto3.client  # the service name is a plain str here, not one of the stub Literals
        return factory(service, region_name=REGION, endpoint_url=self.endpoint)

    def _create_resources(self) -> None:
        prefix = "pixelbridge-local"
        self.names.update(create_tables(self.client("dynamodb"), prefix=prefix))
        self.names.update(create_buckets(self.client("s3"), prefix=prefix))
        secret_values: dict[str, dict[str, Any]] = {
            "StreampixelSecret": {
                "userId": STREAMPIXEL_USER_ID,
                "apiKey": self.api_key,
                "accounts": {
                    f"user-{user}": {"userId": user, "apiKey": key}
                    for user, key in self.options.extra_accounts.items()
                },
            },
            "BuildPixelSecret": {
                "webhookSigningSecret": self.buildpixel_signing_secret,
                "apiToken": self.buildpixel_api_token,
            },
        }
        self.secret_arns = create_secrets(self.client("secretsmanager"), secret_values, prefix=prefix)
        self.names.update(self.secret_arns)
        self.upload_token = self._secret_field("BuildPixelSecret", "uploadAuthToken")
        self.webhook_path_secret = self._secret_field("StreampixelWebhookSecret", "pathSecret")
        self.operator_token = self._secret_field("OperatorSecret", "operatorToken")
        self._notify_conversions_through_sqs()
        self._create_state_machine()
        self.notifier = LocalNotifications(self.client, self.names, prefix)
        self.names.update(self.notifier.create())

    def _secret_field(self, logical_id: str, key: str) -> str:
        value = self.client("secretsmanager").get_secret_value(SecretId=self.secret_arns[logical_id])
        return str(json.loads(value["SecretString"])[key])

    def _notify_conversions_through_sqs(self) -> None:
        # S3 → Lambda notifications need Docker in moto; an SQS queue carries the same S3 event.
        sqs = self.client("sqs")
        self.queue_url = sqs.create_queue(QueueName="pixelbridge-local-artifact-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.client("s3").put_bucket_notification_configuration(
            Bucket=self.names["ArtifactBucket"],
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": queue_arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "inbox/"}]}},
                    }
                ]
            },
        )

    def _create_state_machine(self) -> None:
        iam = self.client("iam")
        role_arn = iam.create_role(
            RoleName="pixelbridge-local",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        code = BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
        lambda_client = self.client("lambda")
        for name in LOCAL_FUNCTIONS:
            arn = lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.13",
                Role=role_arn,
                Handler="handler.handler",
                Code={"ZipFile": code.getvalue()},
            )["FunctionArn"]
            self.names[f"{name}.Arn"] = arn
            self.names[name] = name
        definition = state_machine_definition(self.names)
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name="pixelbridge-local-release",
            definition=definition,
            roleArn=role_arn,
            type="STANDARD",
        )["stateMachineArn"]
        self.names["ReleaseStateMachine"] = self.state_machine_arn

    # -- the functions -------------------------------------------------------------------------------
    def _parameters(self) -> dict[str, str]:
        options = self.options
        return {
            "SlotSeconds": str(options.slot_seconds),
            "ReleasePolicy": options.release_policy,
            "Routes": options.routes_json,
            "StreampixelProjectId": STREAMPIXEL_PROJECT_ID,
            "LiveWindowSeconds": str(options.live_window_seconds),
            "ApprovalTimeoutSeconds": str(options.approval_timeout_seconds),
            "StreampixelApiUrl": self.simulator_url,
            "LogLevel": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            "BuildPixelApiUrl": self.buildpixel.url,
        }

    def _configure_functions(self) -> None:
        environment: dict[str, str] = {}
        for function in LOCAL_FUNCTIONS:
            environment.update(
                function_environment(function, self.names, parameters=self._parameters(), strict=False)
            )
        environment.update(
            {
                "HANDOFF_MODE": "public",  # moto serves objects without signatures, like a public origin
                "HANDOFF_BASE_URL": f"{self.endpoint}/{self.names['HandoffBucket']}",
                "STATE_MACHINE_ARN": self.state_machine_arn,
                "POWERTOOLS_TRACE_DISABLED": "1",
                "POWERTOOLS_METRICS_NAMESPACE": "PixelBridge",
                # EMF metric lines on stdout would drown the demo; StackOptions.environment can enable them.
                "POWERTOOLS_METRICS_DISABLED": "true",
                # The BuildPixel simulator serves artifacts on http://127.0.0.1 (local-only setting).
                "ARTIFACT_ALLOW_LOOPBACK_HTTP": "true",
                **self.options.environment,
            }
        )
        os.environ.update(environment)
        self.environment = environment
        from pixelbridge import wiring

        wiring.reset()
        from pixelbridge.handlers import convert

        convert.convert_once.cache_clear()

    def _handlers(self) -> dict[str, Any]:
        from pixelbridge.handlers import convert, fetch, ingest, release, streampixel_webhook

        return {
            "FetchFunction": fetch.handler,
            "IngestFunction": ingest.handler,
            "ConvertFunction": convert.handler,
            "ReleaseFunction": release.handler,
            "StreampixelWebhookFunction": streampixel_webhook.handler,
        }

    def _route_state_machine_tasks(self) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        handlers = self._handlers()

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            name = function_name.split(":function:")[-1].split(":")[0]
            if headers.get("X-Amz-Invocation-Type") == "Event":
                # Lambda's async invoke: queue it and answer 202 at once (the caller never waits).
                self._invoke_async(handlers[name], name, json.loads(body or b"{}"))
                return b""
            try:
                result = handlers[name](json.loads(body or b"{}"), FakeLambdaContext(name))
                return json.dumps(result).encode()
            except Exception as exc:  # Lambda's unhandled-error contract: errorType drives Retry/Catch
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()

        patch = mock.patch.object(LambdaSimpleBackend, "invoke", invoke)
        patch.start()
        self._patches.append(patch)

    def _invoke_async(self, handler: Any, name: str, event: dict[str, Any]) -> None:
        def run() -> None:
            try:
                handler(event, FakeLambdaContext(name))
            except Exception as exc:  # Lambda would retry once; the build record says what happened
                print(f"{name} raised {type(exc).__name__}")

        thread = threading.Thread(target=run, daemon=True, name=f"async-{name}")
        self.async_invocations.append(thread)
        thread.start()

    def _start_buildpixel_simulator(self) -> None:
        self.buildpixel = BuildPixelSimulator(
            signing_secret=self.buildpixel_signing_secret, api_token=self.buildpixel_api_token
        )
        self.buildpixel.start()

    def _start_gateways(self) -> None:
        from pixelbridge.handlers import ingest, streampixel_webhook

        self.ingest = FunctionUrlGateway(ingest.handler, "IngestFunction")
        self.webhooks = FunctionUrlGateway(streampixel_webhook.handler, "StreampixelWebhookFunction")
        self.ingest.start()
        self.webhooks.start()
        self.simulator.set_webhook_url(STREAMPIXEL_PROJECT_ID, self.streampixel_webhook_url)
        for project in self.options.extra_projects:
            self.simulator.set_webhook_url(project, self.streampixel_webhook_url)
        self.buildpixel.set_webhook_url(self.buildpixel_webhook_url)

    def _start_simulator(self) -> None:
        window = self.options.streampixel_window_seconds
        accounts = {STREAMPIXEL_USER_ID: self.api_key, **self.options.extra_accounts}
        projects = {STREAMPIXEL_PROJECT_ID: STREAMPIXEL_USER_ID, **self.options.extra_projects}
        self.simulator = StreampixelSimulator(
            accounts=accounts,
            projects=projects,
            window_seconds=float(self.options.slot_seconds if window is None else window),
        )
        self.simulator_url = self.simulator.start()

    # -- S3 events → ConvertFunction -----------------------------------------------------------------
    def _dispatch_s3_events(self) -> None:
        sqs = self.client("sqs")
        from pixelbridge.handlers import convert

        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            except Exception:  # the server is stopping
                return
            for message in messages:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                event = json.loads(message["Body"])
                if "Records" in event:
                    self._converters.submit(self._convert, convert.handler, event)

    @staticmethod
    def _convert(handler: Any, event: dict[str, Any]) -> None:
        try:
            handler(event, FakeLambdaContext("ConvertFunction"))
        except IdempotencyAlreadyInProgressError:
            # moto sends two ObjectCreated events for one multipart upload; the first one converts.
            print("  (ConvertFunction: duplicate S3 event while the conversion runs; ignored as idempotent)")
        except Exception as exc:  # Lambda would retry; the build record says what happened
            print(f"ConvertFunction raised {type(exc).__name__}: {exc}")

    # -- what users and tests use --------------------------------------------------------------------
    @property
    def upload_url(self) -> str:
        return f"{self.ingest.url}/builds/upload"

    @property
    def upload_authorization(self) -> str:
        return f"Bearer {self.upload_token}"

    @property
    def operator_url(self) -> str:
        """The operator API base URL (stack output ``OperatorApiUrl``); see ``operator_authorization``."""
        return self.ingest.url

    @property
    def operator_authorization(self) -> str:
        return f"Bearer {self.operator_token}"

    @property
    def buildpixel_webhook_url(self) -> str:
        return f"{self.ingest.url}/webhooks/buildpixel"

    @property
    def streampixel_webhook_url(self) -> str:
        return f"{self.webhooks.url}/webhooks/streampixel/{self.webhook_path_secret}"

    @property
    def notifications(self) -> list[dict[str, Any]]:
        """What NotifierFunction published to NotificationTopic: ``{"subject", "message", "attributes"}``."""
        return self.notifier.operator_messages()

    @property
    def build_events(self) -> list[dict[str, Any]]:
        """The ``Build Status Changed`` events NotifierFunction put on the default bus."""
        return self.notifier.events()

    def reconcile(self) -> dict[str, Any]:
        """Run ReconcilerFunction once (deployed, EventBridge Scheduler runs it every 15 minutes)."""
        from pixelbridge.handlers import reconciler

        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        return dict(reconciler.handler(event, FakeLambdaContext("ReconcilerFunction")))

    def build(self, build_id: str) -> dict[str, Any] | None:
        from pixelbridge import wiring

        return wiring.builds().get(build_id)

    def wait_for_terminal(self, build_id: str, timeout: float = 120.0) -> dict[str, Any]:
        from pixelbridge.domain.statuses import is_terminal

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.build(build_id)
            if record and is_terminal(record["status"]) and self._execution_settled(build_id):
                return record
            time.sleep(0.2)
        raise TimeoutError(
            f"build {build_id} is not in a terminal state after {timeout} s: {self.build(build_id)}"
        )

    def _execution_settled(self, build_id: str) -> bool:
        sfn = self.client("stepfunctions")
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{build_id}"
        try:
            return sfn.describe_execution(executionArn=arn)["status"] != "RUNNING"
        except sfn.exceptions.ExecutionDoesNotExist:
            return True


class _Exit:
    """A context manager entered now and left by ``stop()``, like the other patches."""

    def __init__(self, context: AbstractContextManager[Any]) -> None:
        self._context = context
        context.__enter__()

    def stop(self) -> None:
        self._context.__exit__(None, None, None)
