"""IAM for the embedded stack: an authorizing front door to moto server.

moto can enforce IAM, but for most services it authorizes against resource ``*`` only, so a policy
scoped to the wrong table, key prefix or state machine would still pass. Every sandbox therefore talks
to this proxy (its ``AWS_ENDPOINT_URL``), which:

1. reads the SigV4 access key of the request (header or presigned query) and maps it to the role whose
   temporary credentials the stack issued with ``sts:AssumeRole``;
2. derives the IAM action and the resource ARN(s) from the request itself (S3 REST path and query,
   the ``X-Amz-Target`` of JSON services, the ``Action`` of query services, Lambda's REST path);
3. evaluates the role's policy statements like IAM does (wildcards in actions and resources; an explicit
   Deny wins; no Allow means denied) and answers ``AccessDenied`` in the service's own error format, or
   forwards the request to moto unchanged;
4. answers 403 instead of 404 for a missing S3 object when the role lacks ``s3:ListBucket`` on the
   bucket, as S3 does;
5. refuses a key whose session ended (``Authorizer.expire``: ``ExpiredToken``, as AWS answers a call
   or a presigned URL signed with credentials that expired) and a presigned URL past its
   ``X-Amz-Date`` + ``X-Amz-Expires``.

Every authorized call is recorded per role (``usage``) so the stack can report, for each function, the
actions its code used next to what its policy grants. Condition blocks are not evaluated: none of the
template's identity policies carries one (a statement with a Condition never grants here, so a future
one cannot silently widen access).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pixelbridge_local.http_reply import send_reply

REGION = "us-east-1"
ACCOUNT = "123456789012"
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")
_JSON_SERVICES = {
    "dynamodb": "dynamodb",
    "states": "states",
    "secretsmanager": "secretsmanager",
    "events": "events",
    "sqs": "sqs",
    "kms": "kms",
    "logs": "logs",
    "xray": "xray",
}


# ------------------------------------------------------------------------------------- policy evaluation


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    escaped = re.escape(text).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"^{escaped}$", re.IGNORECASE if ignore_case else 0)


def _as_list(value: Any) -> list[str]:
    return [str(item) for item in (value if isinstance(value, list) else [value])]


def _matches(statement: dict[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        action_ok = any(_pattern(a, True).match(action) for a in _as_list(statement["Action"]))
    else:
        action_ok = not any(_pattern(a, True).match(action) for a in _as_list(statement["NotAction"]))
    if "Resource" in statement:
        resource_ok = any(_pattern(r, False).match(resource) for r in _as_list(statement["Resource"]))
    else:
        resource_ok = not any(_pattern(r, False).match(resource) for r in _as_list(statement["NotResource"]))
    return action_ok and resource_ok


def is_allowed(statements: Iterable[dict[str, Any]], action: str, resource: str) -> bool:
    """IAM's identity-policy evaluation for one action on one resource: explicit Deny wins."""
    allowed = False
    for statement in statements:
        if not _matches(statement, action, resource):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = allowed or "Condition" not in statement
    return allowed


# ------------------------------------------------------------------------- requests -> action + resources


@dataclass
class Call:
    service: str
    action: str
    resources: list[str]
    s3_object: tuple[str, str] | None = None  # (bucket, key) of an object read, for the 404 -> 403 rule


@dataclass
class Principal:
    role_name: str
    statements: list[dict[str, Any]]
    session: str = "local"

    @property
    def arn(self) -> str:
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.role_name}/{self.session}"


def _s3_call(method: str, path: str, query: dict[str, list[str]], headers: Any) -> Call:
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if method in ("GET", "HEAD"):
            action = "s3:ListBucketMultipartUploads" if "uploads" in query else "s3:ListBucket"
            return Call("s3", action, [bucket_arn])
        if method == "POST" and "delete" in query:
            return Call("s3", "s3:DeleteObject", [f"{bucket_arn}/*"])
        return Call("s3", f"s3:{method.title()}Bucket", [bucket_arn])
    object_arn = f"{bucket_arn}/{key}"
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            return Call("s3", "s3:ListMultipartUploadParts", [object_arn])
        return Call("s3", "s3:GetObject", [object_arn], s3_object=(bucket, key))
    if method == "DELETE":
        action = "s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject"
        return Call("s3", action, [object_arn])
    resources = [object_arn]
    source = headers.get("x-amz-copy-source")
    call = Call("s3", "s3:PutObject", resources)
    if source:  # CopyObject / UploadPartCopy also read the source
        call.resources = [object_arn, f"arn:aws:s3:::{unquote(source).lstrip('/').split('?')[0]}"]
    return call


def _dynamodb_resources(operation: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(action, table ARN) pairs: transactions and batches are authorized per item, like DynamoDB."""

    def table(name: str, index: str | None = None) -> str:
        arn = name if name.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        return f"{arn}/index/{index}" if index else arn

    if operation in ("TransactWriteItems", "TransactGetItems"):
        pairs: list[tuple[str, str]] = []
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
        kinds |= {"ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
        for item in body.get("TransactItems", []):
            for kind, request in item.items():
                pairs.append((f"dynamodb:{kinds[kind]}", table(request["TableName"])))
        return pairs
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [(f"dynamodb:{operation}", table(name)) for name in body.get("RequestItems", {})]
    if "TableName" in body:
        return [(f"dynamodb:{operation}", table(body["TableName"], body.get("IndexName")))]
    return [(f"dynamodb:{operation}", "*")]


class RequestClassifier:
    """What IAM action and resources a request to an AWS API asks for."""

    def __init__(self, secret_arns: dict[str, str], task_token_resource: str) -> None:
        self._secret_arns = secret_arns  # secret name -> ARN (a name is what some callers pass)
        self._task_token_resource = task_token_resource

    def classify(
        self, service: str, method: str, target: str, raw_path: str, headers: Any, body: bytes
    ) -> list[Call]:
        split = urlsplit(raw_path)
        query = parse_qs(split.query, keep_blank_values=True)
        if service == "s3":
            return [_s3_call(method, split.path, query, headers)]
        if service == "lambda":
            match = re.match(r"^/20\d\d-\d\d-\d\d/functions/([^/]+)/invoc", unquote(split.path))
            if match:
                name = match.group(1)
                arn = (
                    name if name.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
                )
                return [Call("lambda", "lambda:InvokeFunction", [arn])]
            return [Call("lambda", f"lambda:{method}", ["*"])]
        if target:
            operation = target.rsplit(".", 1)[-1]
            prefix = _JSON_SERVICES.get(service, service)
            document = json.loads(body or b"{}")
            return self._json_calls(prefix, operation, document)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()} if body else {}
        form |= {k: v[0] for k, v in query.items()}
        operation = form.get("Action", method)
        if service == "sns":
            arn = form.get("TopicArn") or form.get("TargetArn") or "*"
            return [Call("sns", f"sns:{operation}", [arn])]
        if service == "sqs":
            return [Call("sqs", f"sqs:{operation}", [_queue_arn(form.get("QueueUrl", ""))])]
        return [Call(service, f"{service}:{operation}", ["*"])]

    def _json_calls(self, prefix: str, operation: str, body: dict[str, Any]) -> list[Call]:
        if prefix == "dynamodb":
            return [Call("dynamodb", a, [r]) for a, r in _dynamodb_resources(operation, body)]
        action = f"{prefix}:{operation}"
        if prefix == "states":
            if operation.startswith("SendTask"):
                # The token names no ARN; Step Functions authorizes it against the state machine.
                return [Call("states", action, [self._task_token_resource])]
            arn = body.get("executionArn") or body.get("stateMachineArn") or "*"
            return [Call("states", action, [arn])]
        if prefix == "secretsmanager":
            secret = str(body.get("SecretId", "*"))
            return [Call(prefix, action, [self._secret_arns.get(secret, secret)])]
        if prefix == "events":
            buses = {str(entry.get("EventBusName") or "default") for entry in body.get("Entries", [])}
            arns = [
                bus if bus.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}"
                for bus in sorted(buses or {"default"})
            ]
            return [Call(prefix, action, arns)]
        if prefix == "sqs":
            return [Call(prefix, action, [_queue_arn(str(body.get("QueueUrl", "")))])]
        if prefix == "kms":
            return [Call(prefix, action, [str(body.get("KeyId", "*"))])]
        return [Call(prefix, action, ["*"])]


def _queue_arn(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1] or "*"
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


# --------------------------------------------------------------------------------------------- the proxy


@dataclass
class Authorizer:
    """Access keys -> roles, the policy check, and what each role actually used."""

    classifier: RequestClassifier
    admin_keys: set[str]
    principals: dict[str, Principal] = field(default_factory=dict)
    expired_keys: set[str] = field(default_factory=set)
    usage: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)
    denied: list[tuple[str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_principal(self, access_key: str, principal: Principal) -> None:
        self.principals[access_key] = principal

    def expire(self, access_key: str) -> None:
        """The session behind this key ended: every call and presigned URL signed with it is refused."""
        with self._lock:
            self.expired_keys.add(access_key)

    def session_refusal(self, access_key: str, raw_path: str) -> str:
        """Why AWS refuses this signature before looking at any policy ("" = it does not)."""
        if access_key in self.expired_keys:
            return "The provided token has expired."
        if presigned_url_expired(raw_path):
            return "Request has expired"
        return ""

    def check(self, principal: Principal, calls: list[Call]) -> tuple[str, str] | None:
        """The first (action, resource) the principal may not use, or None; records use."""
        for call in calls:
            for resource in call.resources:
                if not is_allowed(principal.statements, call.action, resource):
                    with self._lock:
                        self.denied.append((principal.role_name, call.action, resource))
                    print(f"[iam] AccessDenied: {principal.role_name} {call.action} {resource}", flush=True)
                    return call.action, resource
        with self._lock:
            counter = self.usage.setdefault(principal.role_name, Counter())
            for call in calls:
                for resource in call.resources:
                    counter[(call.action, resource)] += 1
        return None


def _access_key(headers: Any, raw_path: str) -> tuple[str, str]:
    """(access key id, signing service) from the Authorization header or a presigned query."""
    authorization = headers.get("Authorization", "")
    match = _CREDENTIAL.search(authorization)
    if match:
        return match.group(1), match.group(2)
    query = parse_qs(urlsplit(raw_path).query)
    credential = query.get("X-Amz-Credential", [""])[0]
    parts = credential.split("/")
    return (parts[0], parts[3]) if len(parts) >= 5 else ("", "")


def presigned_url_expired(raw_path: str, now: float | None = None) -> bool:
    """A SigV4 presigned URL past ``X-Amz-Date`` + ``X-Amz-Expires`` (S3: 403 "Request has expired")."""
    query = parse_qs(urlsplit(raw_path).query)
    signed_at, expires = query.get("X-Amz-Date", [""])[0], query.get("X-Amz-Expires", [""])[0]
    if not signed_at or not expires.isdigit():
        return False
    start = datetime.strptime(signed_at, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    return (time.time() if now is None else now) > start + int(expires)


def _expired_response(service: str, message: str) -> tuple[int, dict[str, str], bytes]:
    if service == "s3":
        code = "AccessDenied" if message == "Request has expired" else "ExpiredToken"
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        return (403 if code == "AccessDenied" else 400), {"Content-Type": "application/xml"}, body
    document = {"__type": "ExpiredTokenException", "message": message}
    return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(document).encode()


def _denied_response(
    service: str, principal: Principal, action: str, resource: str
) -> tuple[int, dict[str, str], bytes]:
    message = (
        f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )
    if service == "s3":
        body = f"<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>".encode()
        return 403, {"Content-Type": "application/xml"}, body
    if service in ("sns", "iam", "sts"):
        code = "AuthorizationError" if service == "sns" else "AccessDenied"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
            "</Error><RequestId>local</RequestId></ErrorResponse>"
        ).encode()
        return 403, {"Content-Type": "text/xml"}, body
    document = {"__type": "AccessDeniedException", "message": message, "Message": message}
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": "AccessDeniedException"}
    return (403 if service == "lambda" else 400), headers, json.dumps(document).encode()


class AuthorizingProxy:
    """Serves the AWS APIs on 127.0.0.1 in front of moto server, checking each call's IAM policy."""

    CHUNK = 1024 * 1024

    def __init__(self, authorizer: Authorizer, upstream_host: str, upstream_port: int) -> None:
        self.authorizer = authorizer
        self._upstream = (upstream_host, upstream_port)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._serve(self)

            do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="iam-proxy").start()
        return self.url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        method = request.command
        length = int(request.headers.get("Content-Length") or 0)
        access_key, service = _access_key(request.headers, request.path)
        authorizer = self.authorizer
        principal = authorizer.principals.get(access_key)
        streamed = service == "s3" and method in ("PUT", "POST") and "?delete" not in request.path
        body = b"" if streamed else (request.rfile.read(length) if length else b"")
        call: Call | None = None
        if access_key not in authorizer.admin_keys:
            expiry = authorizer.session_refusal(access_key, request.path)
            if expiry:
                self._drain(request, length if streamed else 0)
                self._reply(request, *_expired_response(service, expiry))
                return
            if principal is None:
                self._reply(request, *_unknown_key(service))
                self._drain(request, length if streamed else 0)
                return
            target = request.headers.get("X-Amz-Target", "")
            calls = authorizer.classifier.classify(
                service, method, target, request.path, request.headers, body
            )
            refused = authorizer.check(principal, calls)
            if refused:
                self._drain(request, length if streamed else 0)
                self._reply(request, *_denied_response(service, principal, *refused))
                return
            call = calls[0]
        self._forward(request, method, body, length if streamed else None, principal, call)

    def _forward(
        self,
        request: BaseHTTPRequestHandler,
        method: str,
        body: bytes,
        stream_length: int | None,
        principal: Principal | None,
        call: Call | None,
    ) -> None:
        connection = http.client.HTTPConnection(*self._upstream, timeout=900)
        try:
            connection.putrequest(method, request.path, skip_host=True, skip_accept_encoding=True)
            for key, value in request.headers.items():
                if key.lower() not in ("connection", "keep-alive", "expect"):
                    connection.putheader(key, value)
            connection.endheaders()
            if stream_length is not None:
                remaining = stream_length
                while remaining > 0:
                    chunk = request.rfile.read(min(self.CHUNK, remaining))
                    if not chunk:
                        break
                    connection.send(chunk)
                    remaining -= len(chunk)
            elif body:
                connection.send(body)
            response = connection.getresponse()
            if (
                response.status == 404
                and principal is not None
                and call is not None
                and call.s3_object is not None
                and not is_allowed(principal.statements, "s3:ListBucket", f"arn:aws:s3:::{call.s3_object[0]}")
            ):
                # S3 hides whether a key exists from callers that may not list the bucket.
                response.read()
                status, headers, payload = _denied_response(
                    "s3", principal, "s3:ListBucket", f"arn:aws:s3:::{call.s3_object[0]}"
                )
                self._reply(request, status, headers, b"" if method == "HEAD" else payload)
                return
            self._relay(request, method, response)
        finally:
            connection.close()

    def _relay(
        self, request: BaseHTTPRequestHandler, method: str, response: http.client.HTTPResponse
    ) -> None:
        headers = [
            (k, v) for k, v in response.getheaders() if k.lower() not in ("transfer-encoding", "connection")
        ]
        declared = response.getheader("Content-Length")
        request.send_response(response.status)
        if declared is None or method == "HEAD":
            payload = response.read()
            for key, value in headers:
                if key.lower() != "content-length" or method == "HEAD":
                    request.send_header(key, value)
            if method != "HEAD":
                request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            if method != "HEAD":
                request.wfile.write(payload)
            return
        for key, value in headers:
            request.send_header(key, value)
        request.end_headers()
        while chunk := response.read(self.CHUNK):
            request.wfile.write(chunk)

    @staticmethod
    def _drain(request: BaseHTTPRequestHandler, length: int) -> None:
        while length > 0:
            chunk = request.rfile.read(min(AuthorizingProxy.CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)

    _reply = staticmethod(send_reply)


def _unknown_key(service: str) -> tuple[int, dict[str, str], bytes]:
    message = "The security token included in the request is invalid."
    if service == "s3":
        return (
            403,
            {"Content-Type": "application/xml"},
            (f"<Error><Code>InvalidAccessKeyId</Code><Message>{message}</Message></Error>".encode()),
        )
    document = {"__type": "UnrecognizedClientException", "message": message}
    return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(document).encode()
