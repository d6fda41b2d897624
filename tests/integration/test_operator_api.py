"""Operator API on IngestFunction: handler in, moto DynamoDB/S3/Step Functions out, for every endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import responses

from pixelbridge_local.gateway import FakeLambdaContext, function_url_event
from tests.support.aws import STREAMPIXEL_PROJECT, MotoAccount, moto_account

HOLD_ROUTES = json.dumps(
    [
        {"id": "main", "buildpixelProjectId": "bp-main", "streampixelProjectId": STREAMPIXEL_PROJECT},
        {"id": "held", "streampixelProjectId": STREAMPIXEL_PROJECT, "policy": "hold"},
    ]
)


class FakeConvertStarter:
    calls: ClassVar[list[tuple[str, str, int]]] = []

    def start(self, build_id: str, key: str, retry: int) -> None:
        FakeConvertStarter.calls.append((build_id, key, retry))


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoAccount]:
    with moto_account(monkeypatch, parameters={"Routes": HOLD_ROUTES}) as moto:
        sfn = moto.client("stepfunctions")
        role = "arn:aws:iam::123456789012:role/release"
        # A valid definition: after an e2e test moto may parse (and run) state machines.
        definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
        arn = sfn.create_state_machine(name="release", definition=definition, roleArn=role)["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", arn)
        moto.environment["STATE_MACHINE_ARN"] = arn
        from pixelbridge import wiring

        wiring.reset()
        FakeConvertStarter.calls = []
        with wiring.override(wiring.Overrides(convert_starter=FakeConvertStarter())):
            yield moto


def operator_auth(account: MotoAccount) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.secrets['OperatorSecret']['operatorToken']}"}


def call(
    method: str, path: str, *, headers: dict[str, str] | None = None, query: str = "", body: bytes = b""
) -> tuple[int, Any]:
    from pixelbridge.handlers import ingest

    event = function_url_event(method, path, headers=headers or {}, query=query, body=body)
    response = ingest.handler(event, FakeLambdaContext("IngestFunction"))
    return response["statusCode"], json.loads(response["body"])


def seed(account: MotoAccount, build_id: str, status: str, **fields: Any) -> None:
    item = {
        "buildId": build_id,
        "kind": "build",
        "status": status,
        "route": "main",
        "source": "push",
        "receivedAt": fields.pop("receivedAt", f"2026-01-01T00:00:{int(build_id[-1]):02d}.000Z"),
        "updatedAt": "2026-01-01T00:00:00.000Z",
        "metadata": {"projectId": "bp-main", "branch": "main"},
        "release": {"streampixelProjectId": STREAMPIXEL_PROJECT, "policy": "manual", "account": "default"},
        "timeline": [{"at": "2026-01-01T00:00:00.000Z", "event": "received", "status": "received"}],
        **fields,
    }
    account.client("dynamodb")  # the region is set; the resource below uses it
    import boto3

    boto3.resource("dynamodb", region_name="us-east-1").Table(account.names["BuildsTable"]).put_item(
        Item=item
    )


def executions(account: MotoAccount) -> dict[str, dict[str, Any]]:
    sfn = account.client("stepfunctions")
    arn = (
        account.environment.get("STATE_MACHINE_ARN")
        or sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    )
    found = {}
    for execution in sfn.list_executions(stateMachineArn=arn)["executions"]:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        found[execution["name"]] = json.loads(described["input"])
    return found


def record(build_id: str) -> dict[str, Any]:
    from pixelbridge import wiring

    found = wiring.builds().get(build_id)
    assert found is not None
    return found


# ------------------------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/builds"),
        ("GET", "/builds/b1"),
        ("POST", "/builds/b1/release"),
        ("POST", "/builds/b1/retry"),
        ("POST", "/routes/main/rollback"),
        ("POST", "/doctor/test-webhook"),
    ],
)
def test_every_operator_endpoint_needs_the_operator_token(
    account: MotoAccount, method: str, path: str
) -> None:
    token = account.secrets["OperatorSecret"]["operatorToken"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        status, body = call(method, path, headers=headers)
        assert status == 401
        assert body == {"error": "unauthorized", "message": "missing or wrong Authorization header"}
        assert token not in json.dumps(body)


def test_buildpixel_upload_header_reads_one_build_but_nothing_else(account: MotoAccount) -> None:
    seed(account, "b1", "live")
    upload = {"Authorization": account.upload_authorization}
    assert call("GET", "/builds/b1", headers=upload)[0] == 200
    assert call("GET", "/builds", headers=upload)[0] == 401
    assert call("POST", "/builds/b1/retry", headers=upload)[0] == 401


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=abc", "limit=1000", "route=" + "r" * 65, "next=" + "c" * 3000]
)
def test_operator_query_is_not_validated_before_the_token(account: MotoAccount, query: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": account.upload_authorization}):
        status, body = call("GET", "/builds", headers=headers, query=query)
        assert (status, body["error"]) == (401, "unauthorized")
    status, body = call("GET", "/builds", headers=operator_auth(account), query=query)
    assert (status, body["error"]) == (400, "invalid_request")


HANDOFF_FACTS = {
    "zipKey": "dl/tok3n/b1.zip",
    "zipUrl": "https://handoff.example/dl/tok3n/b1.zip",
    "handoffToken": "tok3n",
    "waitToken": "task-tok3n",
    "artifactKey": "inbox/push/b1.multipart",
    "manifest": {"files": 3},
    "uploadId": "u-b1",
    "error": "Streampixel said no",
    "uploadedAt": "2026-01-01T00:01:00.000Z",
}


def test_the_upload_token_view_is_status_times_and_reasons_only(account: MotoAccount) -> None:
    seed(account, "b1", "failed", **HANDOFF_FACTS)
    status, body = call("GET", "/builds/b1", headers={"Authorization": account.upload_authorization})
    assert status == 200
    assert set(body) == {
        "buildId", "status", "source", "error", "receivedAt", "updatedAt", "uploadedAt", "timeline"
    }  # fmt: skip
    assert body["error"] == "Streampixel said no" and body["status"] == "failed"
    assert body["timeline"] == [{"at": "2026-01-01T00:00:00.000Z", "event": "received", "status": "received"}]
    assert "tok3n" not in json.dumps(body)


def test_the_operator_view_keeps_facts_but_no_capability(account: MotoAccount) -> None:
    seed(account, "b1", "failed", **HANDOFF_FACTS)
    status, body = call("GET", "/builds/b1", headers=operator_auth(account))
    assert status == 200
    assert body["artifactKey"] == "inbox/push/b1.multipart" and body["manifest"] == {"files": 3}
    assert body["uploadId"] == "u-b1" and body["metadata"]["projectId"] == "bp-main"
    assert not {"zipKey", "zipUrl", "handoffToken", "waitToken"} & set(body)
    assert "tok3n" not in json.dumps(body)


# --------------------------------------------------------------------------------------- reading


def test_get_build_hides_capabilities_and_404s_unknown(account: MotoAccount) -> None:
    seed(account, "b1", "processing", zipUrl="https://x/dl/t/G.zip", handoffToken="t", waitToken="tok")
    status, body = call("GET", "/builds/b1", headers=operator_auth(account))
    assert status == 200
    assert body["buildId"] == "b1" and body["timeline"][0]["event"] == "received"
    assert not {"zipUrl", "handoffToken", "waitToken"} & set(body)
    status, body = call("GET", "/builds/nope", headers=operator_auth(account))
    assert (status, body["error"]) == (404, "not_found")


def test_list_pages_newest_first_with_an_opaque_cursor(account: MotoAccount) -> None:
    for index in range(1, 6):
        seed(account, f"b{index}", "live" if index % 2 else "failed")
    seen: list[str] = []
    query = "limit=2"
    while True:
        status, body = call("GET", "/builds", headers=operator_auth(account), query=query)
        assert status == 200
        assert len(body["builds"]) <= 2
        seen += [build["buildId"] for build in body["builds"]]
        if not body["next"]:
            break
        query = f"limit=2&next={body['next']}"
    assert seen == ["b5", "b4", "b3", "b2", "b1"]


def test_list_filters_by_route_status_and_since(account: MotoAccount) -> None:
    for index in range(1, 6):
        seed(account, f"b{index}", "live" if index % 2 else "failed", route="main" if index < 4 else "other")
    auth = operator_auth(account)
    _, by_route = call("GET", "/builds", headers=auth, query="route=other")
    assert [b["buildId"] for b in by_route["builds"]] == ["b5", "b4"]
    _, by_status = call("GET", "/builds", headers=auth, query="status=live&limit=1")
    assert [b["buildId"] for b in by_status["builds"]] == ["b5"]
    _, rest = call("GET", "/builds", headers=auth, query=f"status=live&limit=5&next={by_status['next']}")
    assert [b["buildId"] for b in rest["builds"]] == ["b3", "b1"]
    _, recent = call("GET", "/builds", headers=auth, query="since=2026-01-01T00:00:04Z")
    assert [b["buildId"] for b in recent["builds"]] == ["b5", "b4"]
    assert "timeline" not in recent["builds"][0]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=x", "since=yesterday", "status=bogus", "next=!!!", "next=e30"]
)
def test_list_rejects_bad_parameters_with_400(account: MotoAccount, query: str) -> None:
    status, body = call("GET", "/builds", headers=operator_auth(account), query=query)
    assert status == 400
    assert set(body) == {"error", "message"}


# ------------------------------------------------------------------------------------------ release


def test_release_starts_one_distribute_execution_for_a_held_build(account: MotoAccount) -> None:
    hold = {"streampixelProjectId": STREAMPIXEL_PROJECT, "policy": "hold", "account": "default"}
    seed(account, "h1", "approved", route="held", release=hold, uploadId="u-h1", approvedAt="t")
    status, body = call("POST", "/builds/h1/release", headers=operator_auth(account))
    assert status == 202
    assert body["execution"] == "h1-release-1"
    assert executions(account) == {
        "h1-release-1": {"buildId": "h1", "stage": "distribute", "lastError": None}
    }
    assert "release requested" in [entry["event"] for entry in record("h1")["timeline"]]
    again, body = call("POST", "/builds/h1/release", headers=operator_auth(account))
    assert (again, body["error"]) == (409, "conflict")


def test_release_of_a_held_build_overtaken_on_its_route_answers_409_with_why(account: MotoAccount) -> None:
    hold = {"streampixelProjectId": STREAMPIXEL_PROJECT, "policy": "hold", "account": "default"}
    seed(account, "h3", "approved", route="held", release=hold, uploadId="u-1", receivedAt="2026-01-01")
    seed(account, "h4", "queued", route="held", release=hold, receivedAt="2026-01-02")
    status, body = call("POST", "/builds/h3/release", headers=operator_auth(account))
    assert (status, body["error"]) == (409, "conflict") and "h4 is newer on route held" in body["message"]
    assert executions(account) == {}
    seed(account, "h5", "failed", route="held", release=hold, error="hold window expired", receivedAt="t")
    status, body = call("POST", "/builds/h5/release", headers=operator_auth(account))
    assert status == 409 and "hold window expired" in body["message"]


def test_a_retried_held_build_can_be_released_again(account: MotoAccount) -> None:
    hold = {"streampixelProjectId": STREAMPIXEL_PROJECT, "policy": "hold", "account": "default"}
    seed(account, "h2", "approved", route="held", release=hold, uploadId="u-h2", approvedAt="t")
    assert call("POST", "/builds/h2/release", headers=operator_auth(account))[0] == 202
    account.client("dynamodb").update_item(
        TableName=account.names["BuildsTable"],
        Key={"buildId": {"S": "h2"}},
        UpdateExpression="SET #s = :failed",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":failed": {"S": "failed"}},
    )
    status, body = call("POST", "/builds/h2/retry", headers=operator_auth(account))
    assert (status, body["action"]) == (202, "retry:distribute")
    assert "releaseRequestedAt" not in record("h2")
    account.client("dynamodb").update_item(
        TableName=account.names["BuildsTable"],
        Key={"buildId": {"S": "h2"}},
        UpdateExpression="SET #s = :approved",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":approved": {"S": "approved"}},
    )
    status, body = call("POST", "/builds/h2/release", headers=operator_auth(account))
    assert (status, body["execution"]) == (202, "h2-release-2")
    assert record("h2")["releaseExecution"] == "h2-release-2"


def test_release_refuses_builds_that_are_not_held(account: MotoAccount) -> None:
    seed(account, "m1", "approved", uploadId="u-m1")  # manual route: its workflow distributes it
    seed(account, "l1", "live", uploadId="u-l1")
    for build_id in ("m1", "l1"):
        status, body = call("POST", f"/builds/{build_id}/release", headers=operator_auth(account))
        assert (status, body["error"]) == (409, "conflict")
    assert executions(account) == {}


# -------------------------------------------------------------------------------------------- retry


def test_retry_after_a_failed_distribution_distributes_again(account: MotoAccount) -> None:
    seed(account, "f1", "failed", uploadId="u-f1", approvedAt="t", error="GaveUp: 429", zipKey="dl/t/G.zip")
    status, body = call("POST", "/builds/f1/retry", headers=operator_auth(account))
    assert status == 202
    assert body == {
        "buildId": "f1",
        "status": "approved",
        "action": "retry:distribute",
        "execution": "f1-retry-1",
    }
    assert executions(account)["f1-retry-1"] == {"buildId": "f1", "stage": "distribute", "lastError": None}
    after = record("f1")
    assert after["status"] == "approved" and "error" not in after and after["uploadId"] == "u-f1"
    entry = after["timeline"][-1]
    assert entry["event"] == "operator retry" and entry["detail"].startswith("failed -> approved")


def test_retry_of_a_rejected_build_uploads_the_zip_again(account: MotoAccount) -> None:
    bucket = account.names["HandoffBucket"]
    account.client("s3").put_object(Bucket=bucket, Key="dl/tok/G.zip", Body=b"zip")
    seed(account, "r1", "rejected", uploadId="u-r1", rejectedAt="t", objection="bad", zipKey="dl/tok/G.zip")
    status, body = call("POST", "/builds/r1/retry", headers=operator_auth(account))
    assert (status, body["action"], body["status"]) == (202, "retry:upload", "converted")
    assert executions(account)["r1-retry-1"]["stage"] == "upload"
    after = record("r1")
    assert "uploadId" not in after and after["previousUploadIds"] == ["u-r1"]
    assert "objection" not in after and "rejectedAt" not in after
    assert after["zipKey"] == "dl/tok/G.zip"


def test_retry_without_the_zip_converts_the_inbox_artifact_again(account: MotoAccount) -> None:
    account.client("s3").put_object(
        Bucket=account.names["ArtifactBucket"], Key="inbox/push/r2.multipart", Body=b"x"
    )
    seed(
        account,
        "r2",
        "rejected",
        uploadId="u-r2",
        zipKey="dl/gone/G.zip",
        zipDeletedAt="t",
        artifactKey="inbox/push/r2.multipart",
        convertAttempts=1,
    )
    status, body = call("POST", "/builds/r2/retry", headers=operator_auth(account))
    assert (status, body["action"], body["status"]) == (202, "retry:convert", "stored")
    assert FakeConvertStarter.calls == [("r2", "inbox/push/r2.multipart", 1)]
    after = record("r2")
    assert after["convertAttempts"] == 0 and after["retryCount"] == 1
    assert not {"zipKey", "zipDeletedAt", "uploadId"} & set(after)
    assert executions(account) == {}  # the converter starts r2-retry-1 once the new zip exists


@pytest.mark.parametrize("status", ["live", "uploading", "superseded", "skipped"])
def test_retry_conflicts_for_builds_that_are_fine_or_running(account: MotoAccount, status: str) -> None:
    seed(account, "x1", status)
    code, body = call("POST", "/builds/x1/retry", headers=operator_auth(account))
    assert (code, body["error"]) == (409, "conflict")
    assert record("x1")["status"] == status


def test_retry_conflicts_when_nothing_is_left_to_redrive(account: MotoAccount) -> None:
    seed(account, "g1", "failed", artifactKey="inbox/push/g1.multipart")  # expired from the inbox
    code, body = call("POST", "/builds/g1/retry", headers=operator_auth(account))
    assert (code, body["error"]) == (409, "conflict")
    assert "push the build again" in body["message"]


# ----------------------------------------------------------------------------------------- rollback


def two_live_builds(account: MotoAccount) -> None:
    seed(account, "b1", "live", uploadId="u-1", liveAt="2026-01-01T01:00:00.000Z")
    seed(account, "b2", "live", uploadId="u-2", liveAt="2026-01-01T02:00:00.000Z")
    seed(account, "b3", "rejected", uploadId="u-3")


def test_rollback_redistributes_the_previous_live_upload(account: MotoAccount) -> None:
    two_live_builds(account)
    status, body = call("POST", "/routes/main/rollback", headers=operator_auth(account))
    assert status == 202
    assert (body["buildId"], body["uploadId"], body["from"]) == ("b1", "u-1", "b2")
    assert body["execution"].startswith("b1-rollback-")
    assert executions(account) == {
        body["execution"]: {"buildId": "b1", "stage": "distribute", "lastError": None}
    }
    target = record("b1")
    assert target["status"] == "live"  # no status moves; the marker and the timeline say it
    assert target["redistribution"]["kind"] == "rollback"
    assert target["timeline"][-1]["event"] == "rollback requested"
    assert record("b2")["timeline"][-1]["event"] == "rollback requested"
    again, conflict = call(
        "POST", "/routes/main/rollback", headers=operator_auth(account), body=b'{"uploadId":"u-1"}'
    )
    assert (again, conflict["error"]) == (409, "conflict")


def test_rollback_to_a_chosen_upload(account: MotoAccount) -> None:
    two_live_builds(account)
    seed(account, "b0", "live", uploadId="u-0", liveAt="2026-01-01T00:30:00.000Z")
    status, body = call(
        "POST", "/routes/main/rollback", headers=operator_auth(account), body=b'{"uploadId": "u-0"}'
    )
    assert (status, body["buildId"]) == (202, "b0")


@pytest.mark.parametrize(
    ("path", "payload", "expected"),
    [
        ("/routes/nope/rollback", b"", 404),
        ("/routes/main/rollback", b'{"uploadId": "u-unknown"}', 404),
        ("/routes/main/rollback", b'{"uploadId": "u-3"}', 409),  # rejected: Streampixel cannot distribute it
        ("/routes/main/rollback", b'{"uploadId": "u-2"}', 409),  # already the live one
        ("/routes/main/rollback", b"not json", 400),
        ("/routes/main/rollback", b'{"uploadId": 5}', 400),
    ],
)
def test_rollback_refusals(account: MotoAccount, path: str, payload: bytes, expected: int) -> None:
    two_live_builds(account)
    status, body = call("POST", path, headers=operator_auth(account), body=payload)
    assert status == expected
    assert set(body) == {"error", "message"}
    assert executions(account) == {}


def test_rollback_needs_an_earlier_live_build(account: MotoAccount) -> None:
    seed(account, "b1", "live", uploadId="u-1", liveAt="2026-01-01T01:00:00.000Z")
    status, body = call("POST", "/routes/main/rollback", headers=operator_auth(account))
    assert (status, body["error"]) == (409, "conflict")


# ------------------------------------------------------------------------------------------- doctor


@responses.activate
def test_doctor_calls_test_webhook_per_project_and_never_echoes_the_api_key(account: MotoAccount) -> None:
    responses.add_passthru("http://")  # moto is in-process; only Streampixel is mocked
    responses.post(
        "https://api.streampixel.io/pixelStripeApi/projects/test-webhook",
        json={"success": True, "message": "Test webhook delivered", "statusCode": 200},
    )
    status, body = call("POST", "/doctor/test-webhook", headers=operator_auth(account))
    assert status == 200
    assert body["ok"] is True
    assert [result["route"] for result in body["results"]] == ["main"]  # both routes share one project
    assert json.loads(responses.calls[0].request.body or "")["projectId"] == STREAMPIXEL_PROJECT
    assert "sp-api-key-secret-value" not in json.dumps(body)


@responses.activate
def test_doctor_reports_a_refused_key_without_failing(account: MotoAccount) -> None:
    responses.post(
        "https://api.streampixel.io/pixelStripeApi/projects/test-webhook",
        status=401,
        json={"message": "Unauthorized: Invalid API Key sp-api-key-secret-value"},
    )
    status, body = call("POST", "/doctor/test-webhook", headers=operator_auth(account))
    assert status == 200
    assert body["ok"] is False
    assert body["results"][0]["statusCode"] == 0 and "401" in body["results"][0]["message"]
    assert "sp-api-key-secret-value" not in json.dumps(body)


# ------------------------------------------------------------------------------------------ openapi


def test_openapi_document_lists_the_operator_api(account: MotoAccount) -> None:
    status, document = call("GET", "/openapi.json")
    assert status == 200
    assert document["openapi"].startswith("3.")
    assert {
        "/builds",
        "/builds/{build_id}",
        "/builds/{build_id}/retry",
        "/routes/{route_id}/rollback",
    } <= set(document["paths"])
    assert document["components"]["securitySchemes"]["operatorToken"]["scheme"] == "bearer"
    parameters = {p["name"] for p in document["paths"]["/builds"]["get"]["parameters"]}
    assert parameters == {"route", "status", "since", "limit", "next"}
