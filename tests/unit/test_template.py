"""template.yaml: the contracts in docs/ARCHITECTURE.md (Template) and the hardening the stack relies on.

Every assertion reads the template (no SAM translator needed); scripts/check_template.sh lints the
template and its transformed form (circular dependencies) on top of this.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pixelbridge.settings import FUNCTION_SETTINGS, Settings
from pixelbridge_local.template import (
    REPO_ROOT,
    create_buckets,
    create_secrets,
    create_tables,
    function_environment,
    function_properties,
    load_template,
    nested_template,
    parameter_defaults,
    resolve,
    resource_properties,
    resources,
    state_machine_definition,
)

T = load_template()
RES = T["Resources"]
FUNCTIONS = {
    "IngestFunction": "pixelbridge.handlers.ingest.handler",
    "FetchFunction": "pixelbridge.handlers.fetch.handler",
    "ConvertFunction": "pixelbridge.handlers.convert.handler",
    "ReleaseFunction": "pixelbridge.handlers.release.handler",
    "StreampixelWebhookFunction": "pixelbridge.handlers.streampixel_webhook.handler",
    "NotifierFunction": "pixelbridge.handlers.notifier.handler",
    "ReconcilerFunction": "pixelbridge.handlers.reconciler.handler",
}
URL_FUNCTIONS = {"IngestFunction", "StreampixelWebhookFunction"}
SECRETS = {"BuildPixelSecret", "StreampixelSecret", "StreampixelWebhookSecret", "OperatorSecret"}
OUTPUTS = {
    "UploadBuildUrl",
    "BuildPixelWebhookUrl",
    "OperatorApiUrl",
    "StreampixelWebhookUrlPrefix",
    "BuildPixelSecretArn",
    "StreampixelSecretArn",
    "StreampixelWebhookSecretArn",
    "OperatorSecretArn",
    "UploadAuthHeaderHowTo",
    "HandoffBaseUrl",
    "ReleaseStateMachineArn",
    "BuildsTableName",
    "ArtifactBucketName",
}
# Read by Powertools itself, not by Settings.
POWERTOOLS_VARS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
RUNTIME_VARS = {"MALLOC_MMAP_THRESHOLD_"}  # read by glibc, not by our code


def settings_aliases() -> set[str]:
    return {field.alias or name for name, field in Settings.model_fields.items()}


def refs(value: Any) -> set[str]:
    """Logical IDs / parameters referenced anywhere in `value` (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= refs(v)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref":
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                if not isinstance(arg, str):
                    found |= refs(arg[1])
            found |= refs(arg)
    return found


def policy_statements(logical_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in RES[logical_id]["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            statements.extend(policy["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


FAKE_NAMES = {
    "BuildsTable": "builds",
    "SlotsTable": "slots",
    "IdempotencyTable": "idem",
    "ArtifactBucket": "artifacts",
    "HandoffBucket": "handoff",
    "BuildPixelSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bp",
    "StreampixelSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:sp",
    "StreampixelWebhookSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:spw",
    "OperatorSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:op",
    "ReleaseStateMachine": "arn:aws:states:us-east-1:123456789012:stateMachine:pixelbridge-release",
    "FetchFunction": "pixelbridge-fetch",
    "NotificationTopic": "arn:aws:sns:us-east-1:123456789012:pixelbridge-notifications",
    "ConvertFunction": "pixelbridge-convert",
    "HandoffDistribution.DomainName": "d111111abcdef8.cloudfront.net",
    "StreampixelProjectId": "67944b8a3f323be4b89a2272",  # a parameter without a default
}


# ------------------------------------------------------------------------------------ contracts


def test_transform_and_contract_logical_ids() -> None:
    assert T["Transform"] == "AWS::Serverless-2016-10-31"
    expected = {
        **dict.fromkeys(FUNCTIONS, "AWS::Serverless::Function"),
        "ReleaseStateMachine": "AWS::Serverless::StateMachine",
        "ArtifactBucket": "AWS::S3::Bucket",
        "HandoffBucket": "AWS::S3::Bucket",
        "BuildsTable": "AWS::DynamoDB::Table",
        "SlotsTable": "AWS::DynamoDB::Table",
        "IdempotencyTable": "AWS::DynamoDB::Table",
        "ConvertDeadLetterQueue": "AWS::SQS::Queue",
        **dict.fromkeys(SECRETS, "AWS::SecretsManager::Secret"),
    }
    assert {k: RES[k]["Type"] for k in expected if k in RES} == expected


def test_outputs() -> None:
    outputs = T["Outputs"]
    assert set(outputs) >= OUTPUTS
    for name in OUTPUTS:
        assert outputs[name].get("Description"), name

    def sub(name: str) -> str:
        return str(outputs[name]["Value"]["Fn::Sub"])

    assert sub("UploadBuildUrl") == "${IngestFunctionUrl.FunctionUrl}builds/upload"
    assert sub("BuildPixelWebhookUrl") == "${IngestFunctionUrl.FunctionUrl}webhooks/buildpixel"
    assert outputs["OperatorApiUrl"]["Value"] == {"Fn::GetAtt": ["IngestFunctionUrl", "FunctionUrl"]}
    assert (
        sub("StreampixelWebhookUrlPrefix")
        == "${StreampixelWebhookFunctionUrl.FunctionUrl}webhooks/streampixel/"
    )
    for secret in SECRETS:
        assert outputs[f"{secret}Arn"]["Value"] == {"Ref": secret}
    # Never a secret value in an output (CloudFormation would show it in plain text anyway).
    assert "resolve:secretsmanager" not in json.dumps(outputs)


def test_function_urls_are_public_and_only_where_designed() -> None:
    for logical_id in FUNCTIONS:
        url = RES[logical_id]["Properties"].get("FunctionUrlConfig")
        if logical_id in URL_FUNCTIONS:
            assert url is not None and url["AuthType"] == "NONE", logical_id
            assert url.get("InvokeMode", "BUFFERED") == "BUFFERED"
        else:
            assert url is None, f"{logical_id} must not be reachable over HTTP"


def test_runtime_architecture_and_code() -> None:
    g = T["Globals"]["Function"]
    assert g["Runtime"] == "python3.13"
    assert g["Architectures"] == ["arm64"]
    assert g["Tracing"] == "Active"
    for logical_id, handler in FUNCTIONS.items():
        props = function_properties(logical_id)
        assert props["Runtime"] == "python3.13", logical_id
        assert props["CodeUri"] == "functions/", logical_id
        assert props["Handler"] == handler, logical_id


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_handler_module_exists_and_defines_handler(logical_id: str) -> None:
    module, _, attribute = function_properties(logical_id)["Handler"].rpartition(".")
    path = REPO_ROOT / "functions" / (module.replace(".", "/") + ".py")
    assert path.is_file(), f"{logical_id}: Handler {module}.{attribute} but {path} does not exist"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            defined |= {a.asname or a.name for a in node.names}
    assert attribute in defined, f"{path} defines no top-level `{attribute}`"


def test_function_sizing() -> None:
    assert function_properties("IngestFunction")["Timeout"] == 30
    assert function_properties("IngestFunction")["MemorySize"] == 1024
    assert function_properties("FetchFunction")["Timeout"] == 900
    convert = function_properties("ConvertFunction")
    assert convert["Timeout"] == 900
    assert convert["MemorySize"] == {"Ref": "ConvertMemorySize"}
    assert convert["EphemeralStorage"] == {"Size": 512}
    assert convert["EventInvokeConfig"]["MaximumRetryAttempts"] == 1
    assert function_properties("ReleaseFunction")["Timeout"] == 60
    assert function_properties("StreampixelWebhookFunction")["Timeout"] == 10


def test_every_function_logs_to_its_own_group_with_retention() -> None:
    for logical_id in FUNCTIONS:
        logging = function_properties(logical_id)["LoggingConfig"]
        group = logging["LogGroup"]["Ref"]
        assert RES[group]["Type"] == "AWS::Logs::LogGroup"
        assert RES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert logging["LogFormat"] == "JSON"


# ---------------------------------------------------------------------------- event wiring


def test_convert_is_triggered_through_eventbridge_not_s3_notifications() -> None:
    # A SAM S3 event on a bucket the function's role also references is a circular dependency.
    for logical_id in FUNCTIONS:
        for event in RES[logical_id]["Properties"].get("Events", {}).values():
            assert event["Type"] != "S3", logical_id
    events = RES["ConvertFunction"]["Properties"]["Events"]
    (event,) = events.values()
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "ArtifactBucket"}]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "inbox/"}]
    assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert event["Properties"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ConvertDeadLetterQueue", "Arn"]}
    bucket = RES["ArtifactBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    assert RES["ConvertDeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True


def test_state_machine() -> None:
    props = resource_properties("ReleaseStateMachine")
    assert props["Type"] == "STANDARD"
    assert props["DefinitionUri"] == "statemachine/release.asl.json"
    assert props["DefinitionSubstitutions"] == {
        "ReleaseFunctionArn": {"Fn::GetAtt": ["ReleaseFunction", "Arn"]},
        "Partition": {"Ref": "AWS::Partition"},
    }
    assert {"LambdaInvokePolicy": {"FunctionName": {"Ref": "ReleaseFunction"}}} in props["Policies"]
    assert props["Logging"]["Level"] == "ALL"
    assert props["Logging"]["IncludeExecutionData"] is False
    assert props["Tracing"] == {"Enabled": True}
    # The ASL only uses substitutions the template provides, and they all resolve.
    asl_path = REPO_ROOT / props["DefinitionUri"]
    assert asl_path.is_file()
    used = set(re.findall(r"\$\{(\w+)\}", asl_path.read_text(encoding="utf-8")))
    assert used <= set(props["DefinitionSubstitutions"]), used
    fn_arn = "arn:aws:lambda:us-east-1:123456789012:function:release"
    definition = json.loads(state_machine_definition({"ReleaseFunction": fn_arn}))
    assert fn_arn in json.dumps(definition)
    assert "${" not in json.dumps(definition)


def test_state_machine_arn_only_where_needed_and_built_by_name_on_release_function() -> None:
    for logical_id in ("IngestFunction", "ConvertFunction", "StreampixelWebhookFunction"):
        env = RES[logical_id]["Properties"]["Environment"]["Variables"]
        assert env["STATE_MACHINE_ARN"] == {"Ref": "ReleaseStateMachine"}, logical_id
    assert "STATE_MACHINE_ARN" not in T["Globals"]["Function"]["Environment"]["Variables"]
    # The state machine references ReleaseFunction; a reference back would be a cycle. Its ARN is
    # built from the state machine's fixed name, and must be the ARN that name gives.
    assert "ReleaseStateMachine" not in refs(RES["ReleaseFunction"])
    name = resolve(resource_properties("ReleaseStateMachine")["Name"], {})
    expected = f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
    assert function_environment("ReleaseFunction", FAKE_NAMES)["STATE_MACHINE_ARN"] == expected
    granted = {
        action: resolve(statement["Resource"], FAKE_NAMES)
        for statement in policy_statements("ReleaseFunction")
        for action in as_list(statement["Action"])
    }
    assert granted["states:StartExecution"] == expected  # never-dark redistribution
    assert granted["states:SendTaskSuccess"] == expected
    assert "FETCH_FUNCTION_NAME" in function_environment("IngestFunction", FAKE_NAMES)


# ------------------------------------------------------------------------------------- storage


@pytest.mark.parametrize("bucket", ["ArtifactBucket", "HandoffBucket"])
def test_bucket_hardening(bucket: str) -> None:
    props = RES[bucket]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (sse,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    # TLS-only bucket policy.
    (policy,) = [
        r["Properties"]
        for r in RES.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    statements = [s for s in policy["PolicyDocument"]["Statement"] if "Fn::If" not in s]
    assert any(
        s["Effect"] == "Deny"
        and s["Principal"] == "*"
        and s["Action"] in ("s3:*", ["s3:*"])
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and {"Fn::GetAtt": [bucket, "Arn"]} in s["Resource"]
        and {"Fn::Sub": f"${{{bucket}.Arn}}/*"} in s["Resource"]
        for s in statements
    )


def test_every_queue_is_tls_only() -> None:
    queues = sorted(name for name, r in RES.items() if r["Type"] == "AWS::SQS::Queue")
    assert "NotifierDeadLetterQueue" in queues
    denied = set()
    for policy in (r["Properties"] for r in RES.values() if r["Type"] == "AWS::SQS::QueuePolicy"):
        for statement in policy["PolicyDocument"]["Statement"]:
            if (statement["Effect"], statement["Principal"], statement["Action"]) == (
                "Deny",
                "*",
                "sqs:*",
            ) and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}:
                denied |= {
                    q["Ref"]
                    for q in policy["Queues"]
                    if statement["Resource"] == {"Fn::GetAtt": [q["Ref"], "Arn"]}
                }
    assert sorted(denied) == queues


@pytest.mark.parametrize(
    ("bucket", "prefix", "days"), [("ArtifactBucket", "inbox/", 14), ("HandoffBucket", "dl/", 2)]
)
def test_bucket_lifecycle(bucket: str, prefix: str, days: int) -> None:
    rules = RES[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert all(r["Status"] == "Enabled" for r in rules)
    assert any(r.get("Prefix") == prefix and r.get("ExpirationInDays") == days for r in rules)
    assert any(
        r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 and not r.get("Prefix")
        for r in rules
    )


def test_handoff_cloudfront_with_origin_access_control() -> None:
    assert T["Conditions"]["UseCloudFront"] == {"Fn::Equals": [{"Ref": "HandoffMode"}, "cloudfront"]}
    assert RES["HandoffOriginAccessControl"]["Condition"] == "UseCloudFront"
    oac = RES["HandoffOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningProtocol"], oac["SigningBehavior"]) == (
        "s3",
        "sigv4",
        "always",
    )
    dist = RES["HandoffDistribution"]
    assert dist["Condition"] == "UseCloudFront"
    cfg = dist["Properties"]["DistributionConfig"]
    (origin,) = cfg["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["HandoffBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["HandoffOriginAccessControl", "Id"]}
    behavior = cfg["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "https-only"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert "DefaultRootObject" not in cfg
    assert (cfg["PriceClass"], cfg["HttpVersion"]) == ("PriceClass_100", "http2and3")
    # CloudFront may read dl/* only, and only this distribution.
    statements = RES["HandoffBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (conditional,) = [s["Fn::If"] for s in statements if "Fn::If" in s]
    cond, allow, otherwise = conditional
    assert cond == "UseCloudFront" and otherwise == {"Ref": "AWS::NoValue"}
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == {"Fn::Sub": "${HandoffBucket.Arn}/dl/*"}
    assert "HandoffDistribution" in refs(allow["Condition"]["StringEquals"]["AWS:SourceArn"])
    # Base URL: CloudFront domain, or "" in presigned mode.
    names = dict(FAKE_NAMES)
    assert (
        function_environment("ReleaseFunction", names)["HANDOFF_BASE_URL"]
        == "https://d111111abcdef8.cloudfront.net"
    )
    presigned = function_environment("ReleaseFunction", names, parameters={"HandoffMode": "presigned"})
    assert presigned["HANDOFF_BASE_URL"] == ""
    assert presigned["HANDOFF_MODE"] == "presigned"


def test_tables() -> None:
    builds = RES["BuildsTable"]["Properties"]
    assert builds["BillingMode"] == "PAY_PER_REQUEST"
    assert builds["KeySchema"] == [{"AttributeName": "buildId", "KeyType": "HASH"}]
    assert builds["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert builds["SSESpecification"] == {"SSEEnabled": True}
    gsis = {g["IndexName"]: g for g in builds["GlobalSecondaryIndexes"]}
    assert gsis["uploadId-index"]["KeySchema"] == [{"AttributeName": "uploadId", "KeyType": "HASH"}]
    assert gsis["uploadId-index"]["Projection"] == {"ProjectionType": "ALL"}
    assert gsis["handoffToken-index"]["KeySchema"] == [{"AttributeName": "handoffToken", "KeyType": "HASH"}]
    assert gsis["route-index"]["KeySchema"] == [
        {"AttributeName": "route", "KeyType": "HASH"},
        {"AttributeName": "receivedAt", "KeyType": "RANGE"},
    ]
    assert gsis["recent-index"]["KeySchema"] == [  # operator listing: all builds, newest first
        {"AttributeName": "kind", "KeyType": "HASH"},
        {"AttributeName": "receivedAt", "KeyType": "RANGE"},
    ]
    attrs = {a["AttributeName"]: a["AttributeType"] for a in builds["AttributeDefinitions"]}
    assert attrs == {
        "buildId": "S",
        "uploadId": "S",
        "handoffToken": "S",
        "route": "S",
        "receivedAt": "S",
        "kind": "S",
        "openShard": "S",  # open-index (sparse: non-terminal builds; reconciler)
        "updatedAt": "S",
    }

    slots = RES["SlotsTable"]["Properties"]
    assert slots["BillingMode"] == "PAY_PER_REQUEST"
    assert slots["KeySchema"] == [{"AttributeName": "userId", "KeyType": "HASH"}]
    assert slots["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}

    idem = RES["IdempotencyTable"]["Properties"]
    assert idem["BillingMode"] == "PAY_PER_REQUEST"
    assert idem["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert idem["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


# ------------------------------------------------------------------------- settings contract


def test_env_var_names_are_settings_fields() -> None:
    aliases = settings_aliases()
    names: set[str] = set(T["Globals"]["Function"]["Environment"]["Variables"])
    for logical_id in FUNCTIONS:
        names |= set(RES[logical_id]["Properties"].get("Environment", {}).get("Variables", {}))
    unknown = names - aliases - POWERTOOLS_VARS - RUNTIME_VARS
    assert not unknown, f"template sets env vars that Settings does not read: {sorted(unknown)}"


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_template_environment_validates_as_that_functions_settings(logical_id: str) -> None:
    """Each function's template environment gives it every name/ARN it declares it needs."""
    handler = FUNCTIONS[logical_id]
    env = function_environment(logical_id, FAKE_NAMES)
    settings = Settings.from_env({**env, "_HANDLER": handler})
    assert FUNCTION_SETTINGS[handler]
    for name in FUNCTION_SETTINGS[handler]:
        assert getattr(settings, name), f"{logical_id}: {name}"
    assert settings.slot_seconds == 120
    assert settings.max_push_bytes == 4_718_592
    assert env["POWERTOOLS_SERVICE_NAME"] == "pixelbridge"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"


def test_routes_and_their_defaults_reach_only_the_function_that_routes() -> None:
    for logical_id in FUNCTIONS:
        env = function_environment(logical_id, FAKE_NAMES)
        assert "ROUTES_JSON" not in env, logical_id
        routes_here = "DEFAULT_STREAMPIXEL_PROJECT_ID" in env
        assert routes_here == (logical_id == "IngestFunction"), logical_id
    settings = Settings.from_env(function_environment("IngestFunction", FAKE_NAMES))
    assert settings.default_streampixel_project_id == FAKE_NAMES["StreampixelProjectId"]
    assert settings.default_release_policy == "auto"


def test_parameter_choices_are_accepted_by_settings() -> None:
    params = T["Parameters"]
    for parameter, env_name in (("ReleasePolicy", "DEFAULT_RELEASE_POLICY"), ("HandoffMode", "HANDOFF_MODE")):
        for choice in params[parameter]["AllowedValues"]:
            env = function_environment("IngestFunction", FAKE_NAMES, parameters={parameter: choice})
            assert env[env_name] == choice
            Settings.from_env(env)
    for name, spec in params.items():
        assert spec.get("Description"), f"parameter {name} has no Description"
    defaults = parameter_defaults()
    assert defaults["SlotSeconds"] == "120" and params["SlotSeconds"]["MinValue"] == 0
    assert defaults["ConvertMaxTotalBytes"] == "25769803776"
    assert "Routes" not in params  # routes ship in the package: a parameter value caps at 4,096 bytes
    assert "StreampixelProjectId" not in defaults  # no placeholder that deploys a stack that cannot upload


def test_secrets_are_passed_as_arns_only() -> None:
    secret_ids = set(resources("AWS::SecretsManager::Secret"))
    for logical_id in FUNCTIONS:
        spec = function_properties(logical_id)["Environment"]["Variables"]
        for key, value in spec.items():
            text = json.dumps(value)
            assert "resolve:secretsmanager" not in text and "resolve:ssm" not in text, key
            if refs(value) & secret_ids:
                assert key.endswith("_SECRET_ARN") and value == {"Ref": next(iter(refs(value)))}, key
            if re.search(r"SECRET|TOKEN|PASSWORD|API_KEY", key):
                assert key.endswith("_ARN"), f"{key} looks like a secret value in the environment"


def test_secret_shapes() -> None:
    bp = resource_properties("BuildPixelSecret")["GenerateSecretString"]
    assert json.loads(bp["SecretStringTemplate"]) == {
        "webhookSigningSecret": "REPLACE_ME",
        "apiToken": "REPLACE_ME",
    }
    assert (bp["GenerateStringKey"], bp["PasswordLength"], bp["ExcludePunctuation"]) == (
        "uploadAuthToken",
        48,
        True,
    )
    assert json.loads(resource_properties("StreampixelSecret")["SecretString"]) == {
        "userId": "REPLACE_ME",
        "apiKey": "REPLACE_ME",
    }
    hook = resource_properties("StreampixelWebhookSecret")["GenerateSecretString"]
    assert (hook["GenerateStringKey"], hook["PasswordLength"], hook["ExcludePunctuation"]) == (
        "pathSecret",
        40,
        True,
    )
    assert (
        resource_properties("OperatorSecret")["GenerateSecretString"]["GenerateStringKey"] == "operatorToken"
    )


# -------------------------------------------------------------------------------------------- IAM


def test_inline_policies_have_no_wildcard_actions_or_resources() -> None:
    for logical_id in FUNCTIONS:
        for statement in policy_statements(logical_id):
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{logical_id}: {action}"
            for resource in as_list(statement["Resource"]):
                assert resource != "*", f"{logical_id}: {statement.get('Sid')} has Resource *"


def test_s3_access_is_scoped_to_prefixes() -> None:
    def s3_grants(logical_id: str) -> dict[str, set[str]]:
        grants: dict[str, set[str]] = {}
        for s in policy_statements(logical_id):
            for r in as_list(s["Resource"]):
                if isinstance(r, dict) and "Fn::Sub" in r and ".Arn}/" in r["Fn::Sub"]:
                    grants.setdefault(r["Fn::Sub"], set()).update(as_list(s["Action"]))
        return grants

    assert s3_grants("IngestFunction") == {
        "${ArtifactBucket.Arn}/inbox/*": {"s3:PutObject", "s3:GetObject"},
        "${HandoffBucket.Arn}/dl/*": {"s3:GetObject"},  # operator retry: is the zip still there?
    }
    fetch = s3_grants("FetchFunction")  # the raw artifact, and the zip of its one pass
    assert fetch["${ArtifactBucket.Arn}/inbox/pull/*"] == {"s3:PutObject", "s3:AbortMultipartUpload"}
    assert set(fetch) == {"${ArtifactBucket.Arn}/inbox/pull/*", "${HandoffBucket.Arn}/dl/*"}
    convert = s3_grants("ConvertFunction")
    assert convert["${ArtifactBucket.Arn}/inbox/*"] == {"s3:GetObject"}
    # No s3:GetObject: the converter never signs a handoff URL (the upload task does, per call).
    assert convert["${HandoffBucket.Arn}/dl/*"] == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
    }
    assert s3_grants("ReleaseFunction") == {"${HandoffBucket.Arn}/dl/*": {"s3:GetObject", "s3:DeleteObject"}}
    assert s3_grants("StreampixelWebhookFunction") == {"${HandoffBucket.Arn}/dl/*": {"s3:DeleteObject"}}


def test_headobject_callers_may_list_the_bucket_so_a_missing_key_is_404_not_403() -> None:
    """Operator retry HeadObjects keys lifecycle may have deleted: S3 answers 403 without s3:ListBucket."""
    (statement,) = [s for s in policy_statements("IngestFunction") if "s3:ListBucket" in as_list(s["Action"])]
    assert as_list(statement["Action"]) == ["s3:ListBucket"]
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["ArtifactBucket", "Arn"]},
        {"Fn::GetAtt": ["HandoffBucket", "Arn"]},
    ]  # the buckets themselves: ListBucket is a bucket action, never granted on objects
    # object_exists (HeadObject) serves only the operator API, whose routers IngestFunction includes.
    wiring = (REPO_ROOT / "functions/pixelbridge/wiring.py").read_text(encoding="utf-8")
    assert wiring.count("object_exists=object_exists") == 1
    handlers = REPO_ROOT / "functions/pixelbridge/handlers"
    operator_routers = {p.stem for p in handlers.glob("*.py") if "wiring.operator_api()" in p.read_text()}
    # IngestFunction serves them through the operator API's resolver (handlers/operator_api.py).
    assert "operator_api.app().resolve(" in (handlers / "ingest.py").read_text(encoding="utf-8")
    operator_api = (handlers / "operator_api.py").read_text(encoding="utf-8")
    assert operator_routers
    assert all(f"validating.include_router({stem}.router)" in operator_api for stem in operator_routers)


def test_secret_read_grants() -> None:
    def secrets_read(logical_id: str) -> set[str]:
        return {
            p["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]["Ref"]
            for p in RES[logical_id]["Properties"]["Policies"]
            if isinstance(p, dict) and "AWSSecretsManagerGetSecretValuePolicy" in p
        }

    # Operator API: its own token, and Streampixel credentials for the doctor's test-webhook.
    assert secrets_read("IngestFunction") == {"BuildPixelSecret", "OperatorSecret", "StreampixelSecret"}
    assert secrets_read("FetchFunction") == {"BuildPixelSecret"}
    assert secrets_read("ConvertFunction") == set()
    assert secrets_read("ReleaseFunction") == {"StreampixelSecret"}
    assert secrets_read("StreampixelWebhookFunction") == {"StreampixelWebhookSecret"}


def test_task_token_callbacks_are_scoped_to_the_release_state_machine() -> None:
    # The operator API never answers a parked task (release starts an execution): Ingest holds none.
    assert not [
        s for s in policy_statements("IngestFunction") if "states:SendTaskSuccess" in as_list(s["Action"])
    ]
    name = resolve(resource_properties("ReleaseStateMachine")["Name"], {})
    assert name == "PixelBridgeRelease-6f1c9a40-3b9e-11ef-9f5e-0a1b2c3d4e5f"  # the stack id's UUID
    for logical_id in ("ReleaseFunction", "StreampixelWebhookFunction"):
        (stmt,) = [
            s for s in policy_statements(logical_id) if "states:SendTaskSuccess" in as_list(s["Action"])
        ]
        assert set(as_list(stmt["Action"])) == {"states:SendTaskSuccess", "states:SendTaskFailure"}
        resource = stmt["Resource"]
        assert resource == {"Ref": "ReleaseStateMachine"} or resolve(resource, {}) == (
            f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
        ), logical_id


# ------------------------------------------------------------------- moto fixtures from the template


# ------------------------------------------------------------------ operations (nested stack)

OPS = nested_template("Operations")


def test_operations_is_a_nested_stack_packaged_from_the_repository() -> None:
    stack = RES["Operations"]
    assert stack["Type"] == "AWS::CloudFormation::Stack"
    assert (REPO_ROOT / stack["Properties"]["TemplateURL"]).is_file()
    # Plain CloudFormation: no transform, so no CAPABILITY_AUTO_EXPAND on deploy.
    assert "Transform" not in OPS
    # It only watches: nothing in the main stack refers to its resources, only to its outputs.
    assert not refs([RES, T["Outputs"]]) & set(OPS["Resources"])
    dashboard_url = T["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert dashboard_url.endswith("#dashboards:name=${Operations.Outputs.DashboardName}")
    assert OPS["Outputs"]["DashboardName"]["Value"] == {"Ref": "OperationsDashboard"}


def test_operations_gets_the_main_stacks_resources_under_their_own_names() -> None:
    passed = RES["Operations"]["Properties"]["Parameters"]
    for logical_id in [*FUNCTIONS, "ReleaseStateMachine", "NotificationTopic"]:
        assert passed[logical_id] == {"Ref": logical_id}
    for queue in ("ConvertDeadLetterQueue", "NotifierDeadLetterQueue"):
        assert passed[f"{queue}Name"] == {"Fn::GetAtt": [queue, "QueueName"]}


def test_every_function_is_on_the_dashboard_and_in_the_throttles_alarm() -> None:
    body = OPS["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    throttled = {
        query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for query in OPS["Resources"]["LambdaThrottlesAlarm"]["Properties"]["Metrics"]
        if "MetricStat" in query
    }
    assert throttled == set(FUNCTIONS)
    for logical_id in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            assert f'["AWS/Lambda", "{metric}", "FunctionName", "${{{logical_id}}}"]' in body


def test_every_alarm_notifies_the_topic_and_ignores_missing_data() -> None:
    alarms = {k: r for k, r in OPS["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert len(alarms) == 6
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "NotificationTopic"}], logical_id
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", logical_id


@mock_aws
def test_support_helpers_create_the_template_resources() -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    tables = create_tables(ddb)
    buckets = create_buckets(s3)
    secret_arns = create_secrets(sm, {"StreampixelSecret": {"userId": "u-1", "apiKey": "k-1"}})
    assert set(tables) == {"BuildsTable", "SlotsTable", "IdempotencyTable"}
    assert set(buckets) == {"ArtifactBucket", "HandoffBucket"}
    assert set(secret_arns) == SECRETS

    described = ddb.describe_table(TableName=tables["BuildsTable"])["Table"]
    assert {g["IndexName"] for g in described["GlobalSecondaryIndexes"]} == {
        "uploadId-index",
        "handoffToken-index",
        "route-index",
        "recent-index",
        "open-index",
    }
    ttl = ddb.describe_time_to_live(TableName=tables["IdempotencyTable"])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expiration"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=buckets["HandoffBucket"])["Rules"]
    assert any(r.get("Expiration", {}).get("Days") == 2 for r in rules)

    sp = json.loads(sm.get_secret_value(SecretId=secret_arns["StreampixelSecret"])["SecretString"])
    assert sp == {"userId": "u-1", "apiKey": "k-1"}
    bp = json.loads(sm.get_secret_value(SecretId=secret_arns["BuildPixelSecret"])["SecretString"])
    assert len(bp["uploadAuthToken"]) == 48 and bp["uploadAuthToken"].isalnum()

    names = {
        **tables,
        **buckets,
        **secret_arns,
        "ReleaseStateMachine": FAKE_NAMES["ReleaseStateMachine"],
        "FetchFunction": "fetch",
        "HandoffDistribution.DomainName": "d.cloudfront.net",
    }
    settings = Settings.from_env(function_environment("ConvertFunction", names))
    assert settings.builds_table == tables["BuildsTable"]
    assert settings.handoff_bucket == buckets["HandoffBucket"]
    assert settings.streampixel_secret_arn == secret_arns["StreampixelSecret"]
    assert settings.state_machine_arn == FAKE_NAMES["ReleaseStateMachine"]
    # strict=False drops what the caller did not provide instead of failing.
    partial = function_environment(
        "ConvertFunction",
        {**tables, **buckets, **secret_arns},
        parameters={"HandoffMode": "presigned"},
        strict=False,
    )
    assert "STATE_MACHINE_ARN" not in partial
    Settings.from_env(partial)
