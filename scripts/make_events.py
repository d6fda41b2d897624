"""Writes events/*.json: sample events for every function (``sam local invoke -e``) and for the tests.

Run ``make events`` after changing an event's shape; the tests load these same files. Events whose
shape is AWS's own and needs no generated body (the DynamoDB stream record of NotifierFunction, the
schedule of ReconcilerFunction) are kept as hand-written files beside these and are left untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pixelbridge_local.buildpixel import encode_custom_deploy, sample_metadata
from pixelbridge_local.gateway import function_url_event
from pixelbridge_local.sample_build import ue_like_targz

EVENTS = Path(__file__).resolve().parents[1] / "events"
# What users replace before invoking (the real values live in Secrets Manager, never in files).
UPLOAD_AUTHORIZATION = "Bearer REPLACE_WITH_uploadAuthToken"
WEBHOOK_PATH_SECRET = "REPLACE_WITH_pathSecret"  # noqa: S105 - a placeholder, not a secret
BOUNDARY = "pixelbridge-sample-boundary"
DOMAIN = "abcdefghij.lambda-url.us-east-1.on.aws"


def push_event(
    build_id: str,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
    authorization: str | None = UPLOAD_AUTHORIZATION,
    **metadata: Any,
) -> dict[str, Any]:
    if body is None:
        body, content_type = encode_custom_deploy(
            sample_metadata(build_id, **metadata), ue_like_targz(pak_bytes=1024, seed=1), boundary=BOUNDARY
        )
    headers = {"Content-Type": content_type or "application/octet-stream"}
    if authorization is not None:
        headers["Authorization"] = authorization
    event = function_url_event("POST", "/builds/upload", body=body, headers=headers, domain=DOMAIN)
    event["requestContext"]["requestId"] = f"sample-{build_id}"
    return event


def raw_multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    body = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + content + b"\r\n"
        for name, content in parts
    )
    return body + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


def streampixel_event(event: str, **fields: Any) -> dict[str, Any]:
    payload = {
        "event": event,
        "projectId": "67944b8a3f323be4b89a2272",
        "uploadId": "665a2b3c4d5e6f7a8b9c0e1f",
        "fileUrl": "https://d111111abcdef8.cloudfront.net/dl/REPLACE_WITH_handoffToken/sample-build.zip",
        "status": "Approved",
        "objection": None,
        "timestamp": "2026-11-22T12:00:00.000Z",
        **fields,
    }
    return function_url_event(
        "POST",
        f"/webhooks/streampixel/{WEBHOOK_PATH_SECRET}",
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        domain=DOMAIN,
    )


def s3_notification(key: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-22T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "inbox",
                    "bucket": {
                        "name": "REPLACE_WITH_ArtifactBucketName",
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": "arn:aws:s3:::REPLACE_WITH_ArtifactBucketName",
                    },
                    "object": {
                        "key": key,
                        "size": 1024,
                        "eTag": "0123456789abcdef0123456789abcdef",
                        "sequencer": "0A1B2C3D4E5F678901",
                    },
                },
            }
        ]
    }


def eventbridge_object_created(key: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-22T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::REPLACE_WITH_ArtifactBucketName"],
        "detail": {
            "version": "0",
            "bucket": {"name": "REPLACE_WITH_ArtifactBucketName"},
            "object": {
                "key": key,
                "size": 1024,
                "etag": "0123456789abcdef0123456789abcdef",
                "sequencer": "0A1B2C3D4E5F678901",
            },
            "request-id": "EXAMPLE",
            "requester": "123456789012",
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def release_task(action: str, **fields: Any) -> dict[str, Any]:
    return {"action": action, "buildId": "sample-build", **fields}


def all_events() -> dict[str, dict[str, Any]]:
    metadata = json.dumps(sample_metadata("sample-bad")).encode()
    return {
        "ingest-push.json": push_event("sample-build"),
        "ingest-push-linux-skipped.json": push_event("sample-linux", platform="Linux"),
        "ingest-push-no-authorization.json": push_event("sample-noauth", authorization=None),
        "ingest-push-not-multipart.json": push_event(
            "sample-json", body=b'{"buildId": "sample-json"}', content_type="application/json"
        ),
        "ingest-push-metadata-not-json.json": push_event("sample-bad")
        | _with_body(raw_multipart([("metadata", b"{oops"), ("artifact", b"\x1f\x8b")])),
        "ingest-push-missing-artifact.json": push_event("sample-bad")
        | _with_body(raw_multipart([("metadata", metadata)])),
        "ingest-push-artifact-not-gzip.json": push_event("sample-bad")
        | _with_body(
            raw_multipart([("metadata", metadata), ("artifact", b"PK\x03\x04 a zip, not a tar.gz")])
        ),
        "convert-eventbridge-object-created.json": eventbridge_object_created(
            "inbox/pull/sample-build.tar.gz"
        ),
        "convert-s3-notification.json": s3_notification("inbox/push/sample-build.multipart"),
        "release-prepare.json": release_task("prepare"),
        "release-reserve-slot.json": release_task("reserve_slot", purpose="upload", lastError=None),
        "release-upload.json": release_task("upload", slotAt="2026-11-22T12:00:00.000Z"),
        "release-finish-failed.json": release_task(
            "finish", outcome="failed", error={"Error": "StreampixelError", "Cause": "Project not found"}
        ),
        "streampixel-build-approved.json": streampixel_event("build.approved"),
        "streampixel-build-rejected.json": streampixel_event(
            "build.rejected", status="Reject", objection="Build contains unsupported file formats."
        ),
        "streampixel-webhook-test.json": streampixel_event(
            "webhook.test", uploadId=None, fileUrl=None, status=""
        ),
    }


def _with_body(body_and_type: tuple[bytes, str]) -> dict[str, Any]:
    body, content_type = body_and_type
    event = push_event("sample-bad", body=body, content_type=content_type)
    return {"body": event["body"], "headers": event["headers"]}


def main() -> None:
    EVENTS.mkdir(exist_ok=True)
    for name, event in all_events().items():
        (EVENTS / name).write_text(json.dumps(event, indent=2) + "\n")
    print(f"wrote {len(all_events())} events to {EVENTS}")


if __name__ == "__main__":
    main()
