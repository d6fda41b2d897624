"""The authorizing proxy in front of moto: IAM's evaluation, action and resource, per role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from pixelbridge_local.iam import Authorizer, AuthorizingProxy, Principal, RequestClassifier, is_allowed

BUCKET = "iam-test"
TABLE = "iam-table"


def test_iam_evaluation_wildcards_and_explicit_deny() -> None:
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["s3:Get*"], "Resource": "arn:aws:s3:::b/inbox/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/inbox/secret"},
        {"Effect": "Allow", "Action": "states:*", "Resource": "*", "Condition": {"Bool": {"x": "true"}}},
    ]
    assert is_allowed(statements, "s3:GetObject", "arn:aws:s3:::b/inbox/a/b.zip")
    assert is_allowed(statements, "S3:GETOBJECT", "arn:aws:s3:::b/inbox/x")  # actions ignore case
    assert not is_allowed(statements, "s3:GetObject", "arn:aws:s3:::b/INBOX/x")  # resources do not
    assert not is_allowed(statements, "s3:PutObject", "arn:aws:s3:::b/inbox/x")
    assert not is_allowed(statements, "s3:GetObject", "arn:aws:s3:::b/inbox/secret")  # deny wins
    assert not is_allowed(statements, "states:StartExecution", "arn:x")  # conditions never grant here


def test_dynamodb_transactions_are_authorized_per_item_action_and_table() -> None:
    classifier = RequestClassifier({}, task_token_resource="arn:sm")
    body = {
        "TransactItems": [
            {"Put": {"TableName": "a"}},
            {"ConditionCheck": {"TableName": "b"}},
        ]
    }
    calls = classifier.classify(
        "dynamodb", "POST", "DynamoDB_20120810.TransactWriteItems", "/", {}, json.dumps(body).encode()
    )
    assert [(call.action, call.resources) for call in calls] == [
        ("dynamodb:PutItem", ["arn:aws:dynamodb:us-east-1:123456789012:table/a"]),
        ("dynamodb:ConditionCheckItem", ["arn:aws:dynamodb:us-east-1:123456789012:table/b"]),
    ]
    query = classifier.classify(
        "dynamodb", "POST", "DynamoDB_20120810.Query", "/", {}, b'{"TableName": "a", "IndexName": "i"}'
    )
    assert query[0].resources == ["arn:aws:dynamodb:us-east-1:123456789012:table/a/index/i"]


@pytest.fixture
def moto_behind_proxy() -> Iterator[tuple[AuthorizingProxy, str]]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    admin = _client("s3", endpoint, "admin")
    admin.create_bucket(Bucket=BUCKET)
    admin.put_object(Bucket=BUCKET, Key="inbox/present", Body=b"x")
    _client("dynamodb", endpoint, "admin").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    authorizer = Authorizer(RequestClassifier({}, "arn:sm"), admin_keys={"admin"})
    proxy = AuthorizingProxy(authorizer, host, int(port))
    proxy.start()
    try:
        yield proxy, endpoint
    finally:
        proxy.stop()
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)  # moto's backends live in this process
        server.stop()


def _client(service: str, endpoint: str, key: str) -> Any:
    factory: Any = boto3.client
    return factory(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key="secret",
    )


def _role(proxy: AuthorizingProxy, key: str, statements: list[dict[str, Any]]) -> None:
    proxy.authorizer.add_principal(key, Principal(f"role-{key}", statements))


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_the_proxy_enforces_action_and_resource(moto_behind_proxy: tuple[AuthorizingProxy, str]) -> None:
    proxy, _ = moto_behind_proxy
    inbox = f"arn:aws:s3:::{BUCKET}/inbox/*"
    _role(
        proxy, "INBOX", [{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": inbox}]
    )
    s3 = _client("s3", proxy.url, "INBOX")
    s3.put_object(Bucket=BUCKET, Key="inbox/new", Body=b"y" * 2048)
    assert s3.get_object(Bucket=BUCKET, Key="inbox/new")["Body"].read() == b"y" * 2048
    assert _code(lambda: s3.put_object(Bucket=BUCKET, Key="dl/new", Body=b"y")) == "AccessDenied"
    assert _code(lambda: s3.delete_object(Bucket=BUCKET, Key="inbox/new")) == "AccessDenied"
    table = _client("dynamodb", proxy.url, "INBOX")
    assert _code(lambda: table.get_item(TableName=TABLE, Key={"id": {"S": "1"}})) == "AccessDeniedException"
    assert _code(lambda: _client("s3", proxy.url, "UNKNOWN").list_buckets()) == "InvalidAccessKeyId"
    used = proxy.authorizer.usage["role-INBOX"]
    assert used[("s3:PutObject", f"arn:aws:s3:::{BUCKET}/inbox/new")] == 1
    assert ("role-INBOX", "s3:PutObject", f"arn:aws:s3:::{BUCKET}/dl/new") in proxy.authorizer.denied


def test_a_missing_key_is_403_without_list_bucket_and_404_with_it(
    moto_behind_proxy: tuple[AuthorizingProxy, str],
) -> None:
    proxy, _ = moto_behind_proxy
    read = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}
    _role(proxy, "READER", [read])
    _role(proxy, "LISTER", [read, listing])
    reader, lister = _client("s3", proxy.url, "READER"), _client("s3", proxy.url, "LISTER")
    assert reader.head_object(Bucket=BUCKET, Key="inbox/present")["ContentLength"] == 1
    assert _code(lambda: reader.head_object(Bucket=BUCKET, Key="inbox/gone")) == "403"
    assert _code(lambda: reader.get_object(Bucket=BUCKET, Key="inbox/gone")) == "AccessDenied"
    assert _code(lambda: lister.head_object(Bucket=BUCKET, Key="inbox/gone")) == "404"
    assert _code(lambda: lister.get_object(Bucket=BUCKET, Key="inbox/gone")) == "NoSuchKey"
