"""The embedded local stack: the whole pipeline on one machine, no AWS account, as strict as AWS.

See docs/ARCHITECTURE.md, Local stack.

moto server provides S3, DynamoDB, SQS, SNS, EventBridge, Secrets Manager and Step Functions executing
the real ``statemachine/release.asl.json``. Every function of the SAM-transformed template runs in its
own sandbox process (``pixelbridge_local.sandbox``) with exactly the environment the template gives
it, calling AWS with its own role's credentials through an authorizing proxy (``pixelbridge_local.iam``)
that enforces the role's policy, action and resource. Two local Function URLs serve IngestFunction and
StreampixelWebhookFunction; Step Functions' Lambda tasks, S3 "object created" events (via SQS), the
BuildsTable stream and the reconciler schedule invoke the sandboxes; async invocations are retried per
EventInvokeConfig and then sent to their OnFailure destination; the Streampixel simulator downloads the
zip and calls the webhook back. The parent process (tests, demo) uses its own admin client.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import boto3
import requests

from pixelbridge_local import iam_report
from pixelbridge_local.buildpixel_sim import BuildPixelSimulator
from pixelbridge_local.dynamodb_atomicity import atomic_dynamodb_writes
from pixelbridge_local.gateway import FunctionUrlGateway
from pixelbridge_local.iam import Authorizer, AuthorizingProxy, Call, Principal, RequestClassifier, is_allowed
from pixelbridge_local.lambda_service import ASYNC_PAYLOAD_LIMIT, route_lambda_invocations
from pixelbridge_local.notifications import LocalNotifications
from pixelbridge_local.sandbox import AsyncInvoker, Fault, FunctionPool, Outcome
from pixelbridge_local.streampixel_sim import StreampixelSimulator
from pixelbridge_local.template import (
    ROUTES_DEFAULT_VARIABLE,
    create_buckets,
    create_secrets,
    create_tables,
    local_routes_file,
    resolve,
    resource_properties,
    state_machine_definition,
)
from pixelbridge_local.transformed import STACK_NAME, FunctionSpec, ResolvedTemplate

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
ADMIN_ACCESS_KEY = "local"  # the parent's own credentials (tests, demo): not subject to any role


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
    # Local-only settings overrides for every sandbox (e.g. STREAMPIXEL_TIMEOUT_SECONDS), and per function.
    environment: dict[str, str] = field(default_factory=dict)
    function_environment: dict[str, dict[str, str]] = field(default_factory=dict)
    log_level: str | None = None  # the LogLevel parameter; None: $POWERTOOLS_LOG_LEVEL or WARNING
    timeouts: dict[str, float] = field(default_factory=dict)  # function -> Timeout override (seconds)
    # Policy statements to leave out of a role, by Sid or by action: {"ConvertFunction": ["StartRelease"]};
    # "ReleaseStateMachine" names the state machine's role.
    without_statements: dict[str, list[str]] = field(default_factory=dict)
    async_retry_delay_seconds: float = 0.2  # AWS waits ~1 min, then ~2 min, between async attempts
    # "public": moto serves the handoff bucket like an origin (no CloudFront locally). "presigned": the
    # template's own presigned mode, URLs signed with a function's session key and checked by the proxy.
    handoff_mode: str = "public"


class EmbeddedStack(AbstractContextManager["EmbeddedStack"]):
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
        self._saved_env = dict(os.environ)
        self.names: dict[str, str] = {}
        self.pools: dict[str, FunctionPool] = {}
        self.specs: dict[str, FunctionSpec] = {}
        self.role_names: dict[str, str] = {}  # function logical id (or ReleaseStateMachine) -> role name
        self._log_lines: list[tuple[str, str]] = []
        self._log_lock = threading.Lock()
        self.state_machine_usage: Counter[tuple[str, str]] = Counter()
        self.clock_offset_seconds = 0.0  # advance_clock: how far the functions' clock is ahead

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> EmbeddedStack:
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
                "AWS_ACCESS_KEY_ID": ADMIN_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": ADMIN_ACCESS_KEY,
            }
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        requests.post(
            f"{self.endpoint}/moto-api/config",
            timeout=10,
            json={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
        )
        self._start_simulator()
        self._start_buildpixel_simulator()
        self._create_resources()
        self._start_authorizer(host, int(port))
        self._create_roles_and_functions()
        self._create_state_machine()
        self._start_sandboxes()
        self._start_gateways()
        self._patches.append(_Exit(atomic_dynamodb_writes()))
        self._patches.append(_Exit(timestamp_waits_on_the_moved_clock(lambda: self.clock_offset_seconds)))
        threading.Thread(target=self._dispatch_s3_events, daemon=True, name="s3-events").start()
        self.notifier.start(self._invoke_notifier, self._stopping)  # BuildsTable stream -> NotifierFunction
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._record_iam_usage()
        for patch in self._patches:
            patch.stop()
        self.ingest.stop()
        self.webhooks.stop()
        for pool in self.pools.values():
            pool.stop()
        self.proxy.stop()
        self.simulator.stop()
        self.buildpixel.stop()
        # moto keeps its backends in this process: forget them so the next stack starts empty.
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10)
        self._moto.stop()
        os.environ.clear()
        os.environ.update(self._saved_env)

    def _record_iam_usage(self) -> None:
        principals = {principal.role_name: principal for principal in self.authorizer.principals.values()}
        principals[self.state_machine_principal.role_name] = self.state_machine_principal
        for owner, role in self.role_names.items():
            principal = principals[role]
            denied = [(action, resource) for name, action, resource in self.authorizer.denied if name == role]
            used = self.authorizer.usage.get(role, Counter())
            if owner == "ReleaseStateMachine":
                used = self.state_machine_usage
            iam_report.record(owner, principal.statements, used, denied)

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- AWS resources from template.yaml ------------------------------------------------------------
    def client(self, service: str) -> Any:
        """An admin client (the parent's own credentials, straight to moto: no role applies)."""
        factory: Any = boto3.client  # the service name is a plain str here, not one of the stub Literals
        return factory(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=ADMIN_ACCESS_KEY,
            aws_secret_access_key=ADMIN_ACCESS_KEY,
        )

    def _create_resources(self) -> None:
        prefix = STACK_NAME
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
        for queue in ("ConvertDeadLetterQueue", "NotifierDeadLetterQueue"):
            url, arn = self._queue(f"{prefix}-{queue}".lower())
            self.names.update({queue: url, f"{queue}.Arn": arn})
        self.notifier = LocalNotifications(self.client, self.names, prefix)
        self.names.update(self.notifier.create())
        # The topic's key: SNS (not the function) uses it, so no local KMS key is needed.
        self.names["NotificationKey.Arn"] = f"arn:aws:kms:{REGION}:123456789012:key/local-notification-key"
        # The template's own fixed name: ReleaseFunction's policy builds the ARN from it.
        self.names["ReleaseStateMachine.Name"] = str(
            resolve(resource_properties("ReleaseStateMachine")["Name"], {})
        )
        self.names["ReleaseStateMachine"] = (
            f"arn:aws:states:{REGION}:123456789012:stateMachine:{self.names['ReleaseStateMachine.Name']}"
        )
        for name in LOCAL_FUNCTIONS:
            self.names[name] = name
            self.names[f"{name}.Arn"] = f"arn:aws:lambda:{REGION}:123456789012:function:{name}"

    def _queue(self, name: str) -> tuple[str, str]:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return str(url), str(arn)

    def _secret_field(self, logical_id: str, key: str) -> str:
        value = self.client("secretsmanager").get_secret_value(SecretId=self.secret_arns[logical_id])
        return str(json.loads(value["SecretString"])[key])

    def _notify_conversions_through_sqs(self) -> None:
        # S3 -> Lambda notifications need Docker in moto; an SQS queue carries the same S3 event.
        self.queue_url, queue_arn = self._queue(f"{STACK_NAME}-artifact-events")
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

    # -- IAM: roles from the transformed template, credentials per role, the authorizing proxy ---------
    def _parameters(self) -> dict[str, str]:
        options = self.options
        return {
            "SlotSeconds": str(options.slot_seconds),
            "ReleasePolicy": options.release_policy,
            "StreampixelProjectId": STREAMPIXEL_PROJECT_ID,
            "LiveWindowSeconds": str(options.live_window_seconds),
            "ApprovalTimeoutSeconds": str(options.approval_timeout_seconds),
            "StreampixelApiUrl": self.simulator_url,
            "LogLevel": self._log_level(),
            "BuildPixelApiUrl": self.buildpixel.url,
            "HandoffMode": "presigned",  # no CloudFront locally; HANDOFF_MODE is overridden below
        }

    def _log_level(self) -> str:
        return self.options.log_level or os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING")

    def _start_authorizer(self, host: str, port: int) -> None:
        secret_names = {f"{STACK_NAME}/{logical}": arn for logical, arn in self.secret_arns.items()}
        classifier = RequestClassifier(secret_names, task_token_resource=self.names["ReleaseStateMachine"])
        self.authorizer = Authorizer(classifier, admin_keys={ADMIN_ACCESS_KEY})
        self.proxy = AuthorizingProxy(self.authorizer, host, port)
        self.proxy.start()

    def _statements(self, owner: str, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The role's statements, less those a test left out (by Sid or by action)."""
        left_out = set(self.options.without_statements.get(owner, []))

        def kept(statement: dict[str, Any]) -> bool:
            actions = statement.get("Action", [])
            actions = actions if isinstance(actions, list) else [actions]
            return statement.get("Sid") not in left_out and not left_out.intersection(actions)

        return [statement for statement in statements if kept(statement)]

    def _create_role(self, owner: str, role_logical_id: str) -> tuple[str, Principal]:
        spec = self.template.role(role_logical_id)
        statements = self._statements(owner, spec.statements)
        name = f"{STACK_NAME}-{role_logical_id}"[:64]
        iam = self.client("iam")
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(spec.trust_policy))["Role"][
            "Arn"
        ]
        iam.put_role_policy(
            RoleName=name,
            PolicyName="policy",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
        self.names[role_logical_id] = name
        self.names[f"{role_logical_id}.Arn"] = arn
        self.role_names[owner] = name
        return arn, Principal(name, statements, session=owner)

    def _create_roles_and_functions(self) -> None:
        self.template = ResolvedTemplate(self.names, self._parameters())
        code = BytesIO()
        with zipfile.ZipFile(code, "w") as archive:  # moto stores a function; its sandbox runs the code
            archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
        sts, lambda_client = self.client("sts"), self.client("lambda")
        self._credentials: dict[str, dict[str, str]] = {}
        self._role_arns: dict[str, str] = {}
        for name in LOCAL_FUNCTIONS:
            spec = self.template.function(name)
            self.specs[name] = spec
            role_arn, principal = self._create_role(name, spec.role_logical_id)
            self._role_arns[name] = role_arn
            credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
            self.authorizer.add_principal(credentials["AccessKeyId"], principal)
            self._credentials[name] = credentials
            lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.13",
                Role=role_arn,
                Handler=spec.handler,
                Code={"ZipFile": code.getvalue()},
                Timeout=spec.timeout_seconds,
                MemorySize=spec.memory_mb,
            )

    def _create_state_machine(self) -> None:
        role_id = self.template.state_machine_role_id()
        role_arn, self.state_machine_principal = self._create_role("ReleaseStateMachine", role_id)
        definition = state_machine_definition(self.names)
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=self.names["ReleaseStateMachine.Name"],
            definition=definition,
            roleArn=role_arn,
            type="STANDARD",
        )["stateMachineArn"]
        assert self.state_machine_arn == self.names["ReleaseStateMachine"]

    # -- the sandboxes -------------------------------------------------------------------------------
    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        """Exactly the template's environment for the function, Lambda's runtime variables, and the
        local-only overrides listed here."""
        credentials = self._credentials[spec.logical_id]
        environment = dict(spec.environment)
        environment.update(
            {  # what Lambda's runtime sets
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{STACK_NAME}/{spec.logical_id}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "local",
                "AWS_LAMBDA_LOG_FORMAT": "JSON",
                # Lambda's filter is INFO or below (LambdaLogLevel); Powertools applies LogLevel.
                "AWS_LAMBDA_LOG_LEVEL": "DEBUG" if self._log_level() == "DEBUG" else "INFO",
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
                "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"],
                "_HANDLER": spec.handler,
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            }
        )
        local_only = {
            # AWS APIs through the authorizing proxy in front of moto (the role's policy applies).
            "AWS_ENDPOINT_URL": self.proxy.url,
            # EMF metric lines on stdout would drown the demo; StackOptions.environment can enable them.
            "POWERTOOLS_METRICS_DISABLED": "true",
            # The sandbox runtime's clock knob (advance_clock): tests move time instead of sleeping.
            # Only the local runtime reads it; deployed, wiring hands the use cases the real clock.
            "LOCAL_STACK_CLOCK_HOOK": "true",
        }
        if self.options.handoff_mode == "public":
            # No CloudFront locally: moto serves the handoff bucket's objects like a public origin.
            # ("presigned" keeps the template's own HANDOFF_MODE: URLs to the proxy, signed per call.)
            local_only["HANDOFF_MODE"] = "public"
            local_only["HANDOFF_BASE_URL"] = f"{self.endpoint}/{self.names['HandoffBucket']}"
        if self.options.routes_json and ROUTES_DEFAULT_VARIABLE in spec.environment:
            # Deployed, routes ship in the function package (functions/routes.json): locally, a file.
            local_only["ROUTES_FILE"] = str(local_routes_file(self.options.routes_json))
        if spec.logical_id == "FetchFunction":
            # The BuildPixel simulator serves artifacts on http://127.0.0.1; never set in a deployed stack.
            local_only["ARTIFACT_ALLOW_LOOPBACK_HTTP"] = "true"
        environment.update(local_only)
        environment.update(self.options.environment)
        environment.update(self.options.function_environment.get(spec.logical_id, {}))
        return environment

    def _start_sandboxes(self) -> None:
        for name, spec in self.specs.items():
            self.pools[name] = FunctionPool(
                name=name,
                environment=self._environment(spec),
                timeout_seconds=float(self.options.timeouts.get(name, spec.timeout_seconds)),
                memory_mb=spec.memory_mb,
                log=self._logger(name),
            )
        self.async_invoker = AsyncInvoker(self._send_to_destination, self.options.async_retry_delay_seconds)
        self._destination_senders = {name: self._principal_of(name) for name in self.specs}
        self._patches += route_lambda_invocations(
            invoke_sync=lambda name, event: self.pools[name].invoke(event),
            invoke_async=self.invoke_async,
            state_machine_may_invoke=self._state_machine_may_invoke,
        )

    def _state_machine_may_invoke(self, function_arn: str) -> bool:
        allowed = is_allowed(self.state_machine_principal.statements, "lambda:InvokeFunction", function_arn)
        if allowed:
            self.state_machine_usage[("lambda:InvokeFunction", function_arn)] += 1
        else:
            self.authorizer.denied.append(
                (self.state_machine_principal.role_name, "lambda:InvokeFunction", function_arn)
            )
        return allowed

    def _logger(self, name: str) -> Any:
        def log(line: str) -> None:
            with self._log_lock:
                self._log_lines.append((name, line))
            print(f"[{name}] {line}", file=sys.stdout, flush=True)

        return log

    def function_logs(self, name: str | None = None) -> list[str]:
        """Every line the sandboxes wrote to stdout/stderr (their CloudWatch log streams)."""
        with self._log_lock:
            return [line for function, line in self._log_lines if name in (None, function)]

    def environments(self) -> dict[str, dict[str, str]]:
        """Each function's sandbox environment (exactly what its processes get)."""
        return {name: dict(pool.environment) for name, pool in self.pools.items()}

    def invoke(self, function: str, event: Any) -> Outcome:
        """A synchronous invocation of one function (Lambda's RequestResponse invoke)."""
        return self.pools[function].invoke(event)

    def inject_fault(self, function: str, fault: Fault) -> None:
        """A fault the function's sandbox applies to its next matching invocation (local stack only)."""
        self.pools[function].inject(fault)

    def advance_clock(self, seconds: float) -> None:
        """Move the clock every sandboxed function's use cases see ``seconds`` ahead (local stack only).

        Step Functions' timestamp Waits (the release's slot Waits: times ReleaseFunction computed on the
        moved clock) compare with the moved clock too. Not moved: the rest of moto (its timestamps,
        Seconds Waits, task timeouts), the simulators and Lambda timeouts keep real time."""
        self.clock_offset_seconds += seconds
        for pool in self.pools.values():
            pool.clock_offset_seconds = self.clock_offset_seconds

    def expire_session(self, function: str) -> None:
        """End the function's role session, as when Lambda's credentials expire or rotate: every call
        and presigned URL signed with its key is refused (``ExpiredToken``) from now on; its sandboxes
        are retired and the next invocation cold-starts with a new session's credentials."""
        old_key = self._credentials[function]["AccessKeyId"]
        principal = self.authorizer.principals[old_key]
        self.authorizer.expire(old_key)
        credentials = self.client("sts").assume_role(
            RoleArn=self._role_arns[function], RoleSessionName=function
        )["Credentials"]
        self.authorizer.add_principal(credentials["AccessKeyId"], principal)
        self._credentials[function] = credentials
        self.pools[function].renew_environment(self._environment(self.specs[function]))

    def invoke_async(self, name: str, event: Any) -> None:
        """Lambda's async invoke of a function: retries per EventInvokeConfig, then OnFailure."""
        if len(json.dumps(event).encode("utf-8")) > ASYNC_PAYLOAD_LIMIT:
            raise ValueError(f"async invoke payload over {ASYNC_PAYLOAD_LIMIT} bytes")
        spec = self.specs[name]
        self.async_invoker.invoke(self.pools[name], event, spec.maximum_retry_attempts, spec.on_failure_arn)

    def _principal_of(self, function: str) -> Principal:
        role = self.role_names[function]
        return next(p for p in self.authorizer.principals.values() if p.role_name == role)

    def _send_to_destination(self, arn: str, record: dict[str, Any]) -> None:
        # Lambda sends the record with the function's execution role: its policy must allow it.
        function = str(record["requestContext"]["functionArn"]).split(":function:")[1].split(":")[0]
        principal = self._destination_senders[function]
        if self.authorizer.check(principal, [Call("sqs", "sqs:SendMessage", [arn])]) is not None:
            return  # AWS drops the record (and logs a DestinationDeliveryFailures metric)
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record, default=str))

    @property
    def async_invocations(self) -> list[threading.Thread]:
        return self.async_invoker.threads

    def _invoke_notifier(self, event: dict[str, Any]) -> Any:
        return _answer(self.pools["NotifierFunction"].invoke(event))

    def _function_url(self, name: str) -> Any:
        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            outcome = self.pools[name].invoke(event)
            if outcome.failed or not isinstance(outcome.result, dict):
                # What a Function URL answers when the function fails (timeout included).
                return {
                    "statusCode": 502,
                    "headers": {"content-type": "application/json"},
                    "body": '{"message":"Internal Server Error"}',
                }
            return outcome.result

        return invoke

    def _start_buildpixel_simulator(self) -> None:
        self.buildpixel = BuildPixelSimulator(
            signing_secret=self.buildpixel_signing_secret, api_token=self.buildpixel_api_token
        )
        self.buildpixel.start()

    def _start_gateways(self) -> None:
        self.ingest = FunctionUrlGateway(self._function_url("IngestFunction"))
        self.webhooks = FunctionUrlGateway(self._function_url("StreampixelWebhookFunction"))
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
            # presigned URLs carry a query string, which Streampixel's newer docs accept
            allow_query_strings=self.options.handoff_mode == "presigned",
        )
        self.simulator_url = self.simulator.start()

    # -- S3 events -> ConvertFunction (an async invoke) ---------------------------------------------------
    def _dispatch_s3_events(self) -> None:
        sqs = self.client("sqs")
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
                    self.invoke_async("ConvertFunction", event)

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
        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        return dict(_answer(self.pools["ReconcilerFunction"].invoke(event)))

    def build(self, build_id: str) -> dict[str, Any] | None:
        from pixelbridge.adapters.builds import BuildRepository

        factory: Any = boto3.resource
        dynamodb = factory(
            "dynamodb",
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=ADMIN_ACCESS_KEY,
            aws_secret_access_key=ADMIN_ACCESS_KEY,
        )
        record = BuildRepository(self.names["BuildsTable"], dynamodb=dynamodb).get(build_id)
        return dict(record) if record is not None else None

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


@contextmanager
def timestamp_waits_on_the_moved_clock(offset: Callable[[], float]) -> Iterator[None]:
    """moto's TimestampPath Wait measures from the real clock; the slot times it waits for come from
    ReleaseFunction's clock, which ``advance_clock`` moved: take the move off so a Wait lasts what it
    would have (without this, a slot reserved an hour "later" holds the build for an hour)."""
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp

    original = Timestamp._get_wait_seconds

    def on_the_moved_clock(self: Any, env: Any) -> int:
        return int(original(self, env) - offset())

    Timestamp._get_wait_seconds = on_the_moved_clock  # type: ignore[method-assign]
    try:
        yield
    finally:
        Timestamp._get_wait_seconds = original  # type: ignore[method-assign]


class FunctionFailed(RuntimeError):
    """A synchronous invocation the function did not answer (its error, or a stopped sandbox)."""


def _answer(outcome: Outcome) -> Any:
    if outcome.failed:
        error = outcome.error or {}
        raise FunctionFailed(f"{error.get('errorType', 'Unhandled')}: {error.get('errorMessage', '')}")
    return outcome.result


class _Exit:
    """A context manager entered now and left by ``stop()``, like the other patches."""

    def __init__(self, context: AbstractContextManager[Any]) -> None:
        self._context = context
        context.__enter__()

    def stop(self) -> None:
        self._context.__exit__(None, None, None)
