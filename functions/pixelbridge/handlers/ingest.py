"""IngestFunction: BuildPixel's push upload, its webhook, and the operator API on a Function URL.

Operator routes are thin: authenticate (``Authorization: Bearer <operatorToken>``, constant time),
read parameters, call ``usecases.operator.OperatorApi``. ``GET /openapi.json`` is generated from
these routes (Powertools validation parses and checks the query and path parameters).
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixelbridge import wiring
from pixelbridge.adapters.convert_starter import LambdaConvertStarter
from pixelbridge.adapters.fetch_starter import LambdaFetchStarter
from pixelbridge.adapters.secrets import MissingSecretValue, buildpixel_upload_authorization
from pixelbridge.adapters.workflow import ExecutionNameConflict
from pixelbridge.domain.routes import RoutesConfigError
from pixelbridge.domain.secrets import secrets_equal
from pixelbridge.domain.signatures import SIGNATURE_HEADER
from pixelbridge.handlers import status_page
from pixelbridge.observability import logger, metrics
from pixelbridge.settings import get_settings
from pixelbridge.usecases.ingest_push import IngestPush, RequestRejected
from pixelbridge.usecases.ingest_webhook import IngestWebhook
from pixelbridge.usecases.operator import MAX_PAGE, OperatorApi
from pixelbridge.usecases.webhook_replay import WebhookReplayGuard

app = LambdaFunctionUrlResolver(enable_validation=True)
app.include_router(status_page.router)  # GET /status: the operator status page
OPERATOR_SECURITY: list[dict[str, list[str]]] = [{"operatorToken": []}]


def error_response(status: int, error: str, message: str) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": error, "message": message},
    )


def raw_body() -> bytes:
    """The request body as bytes: Function URLs base64-encode binary bodies (multipart included)."""
    event = app.current_event
    if not event.body:
        return b""
    return base64.b64decode(event.body) if event.is_base64_encoded else event.body.encode("utf-8")


def status_url(build_id: str) -> str:
    return f"https://{app.current_event.request_context.domain_name}/builds/{build_id}"


def expected_upload_authorization() -> str:
    return buildpixel_upload_authorization(wiring.secrets(), get_settings().buildpixel_secret_arn)


@app.post("/")
@app.post("/builds/upload")
def push_upload() -> Response[Any]:
    settings = get_settings()
    use_case = IngestPush(
        builds=wiring.builds(),
        inbox=wiring.inbox(),
        routes=wiring.routes(),
        expected_authorization=expected_upload_authorization,
        max_body_bytes=settings.max_push_bytes,
    )
    outcome = use_case(
        body=raw_body(),
        content_type=app.current_event.headers.get("content-type"),
        authorization=app.current_event.headers.get("authorization"),
    )
    body = {**outcome.body, "statusUrl": status_url(outcome.body["buildId"])}
    logger.info("push handled", extra={"build_id": body["buildId"], "http_status": outcome.status_code})
    return Response(status_code=outcome.status_code, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(RequestRejected)
def handle_rejected(error: RequestRejected) -> Response[Any]:
    logger.info("request rejected", extra={"error": error.error, "http_status": error.status})
    return error_response(error.status, error.error, error.message)


@app.exception_handler(MissingSecretValue)
def handle_unconfigured(error: MissingSecretValue) -> Response[Any]:
    logger.error("PixelBridge is not configured", extra={"problem": str(error)})
    return error_response(503, "not_configured", "PixelBridge is not configured yet (a secret is not filled)")


@app.exception_handler(ExecutionNameConflict)
def handle_execution_conflict(error: ExecutionNameConflict) -> Response[Any]:
    logger.warning("release execution name conflict", extra={"problem": str(error)})
    return error_response(409, "conflict", "a different release of this build was already started")


@app.exception_handler(RoutesConfigError)
def handle_invalid_routes(error: RoutesConfigError) -> Response[Any]:
    logger.error("routes file is invalid", extra={"problem": str(error)})
    return error_response(503, "routes_invalid", f"the deployed routes file is invalid: {error}")


@app.not_found
def handle_not_found(_: Exception) -> Response[Any]:
    return error_response(404, "not_found", "no such endpoint")


@app.exception_handler(RequestValidationError)
def handle_invalid_request(error: RequestValidationError) -> Response[Any]:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', 'invalid')}"
        for item in error.errors()[:5]
    )
    return error_response(400, "invalid_request", problems or "invalid request")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    get_settings()  # validate configuration at cold start
    return app.resolve(event, context)


def webhook_signing_secret() -> str:
    return wiring.secrets().field(get_settings().buildpixel_secret_arn, "webhookSigningSecret")


@app.post("/webhooks/buildpixel")
def buildpixel_webhook() -> Response[Any]:
    use_case = IngestWebhook(
        builds=wiring.builds(),
        routes=wiring.routes(),
        fetch_starter=LambdaFetchStarter(get_settings().fetch_function_name),
        signing_secret=webhook_signing_secret,
        replay_guard=WebhookReplayGuard(wiring.webhook_deliveries()),
    )
    outcome = use_case(body=raw_body(), signature=app.current_event.headers.get(SIGNATURE_HEADER.lower()))
    logger.info(
        "buildpixel webhook handled",
        extra={"build_id": outcome.body.get("buildId"), "http_status": outcome.status_code},
    )
    return Response(
        status_code=outcome.status_code, content_type=content_types.APPLICATION_JSON, body=outcome.body
    )


# -- operator API --------------------------------------------------------------------------------


def expected_operator_authorization() -> str:
    return f"Bearer {wiring.secrets().field(get_settings().operator_secret_arn, 'operatorToken')}"


def require_operator(*, also_buildpixel: bool = False) -> None:
    """401 unless the request carries the operator token (or, for reads, BuildPixel's upload header)."""
    presented = app.current_event.headers.get("authorization")
    if secrets_equal(presented, expected_operator_authorization()):
        return
    if also_buildpixel and secrets_equal(presented, expected_upload_authorization()):
        return
    raise RequestRejected(401, "unauthorized", "missing or wrong Authorization header")


def operator_api() -> OperatorApi:
    settings = get_settings()
    return OperatorApi(
        builds=wiring.builds(),
        workflow=wiring.workflow(),
        routes=wiring.routes(),
        object_exists=wiring.object_exists,
        artifact_bucket=settings.artifact_bucket,
        handoff_bucket=settings.handoff_bucket,
        convert_starter=LambdaConvertStarter(settings.convert_function_name),
        streampixel=wiring.streampixel(),
        credentials=wiring.streampixel_credentials,
    )


def json_response(body: dict[str, Any], status: int = 200) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.get("/builds", security=OPERATOR_SECURITY, summary="List builds, newest first")
def list_builds(
    route: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[
        str | None, Query(max_length=64, description="ISO-8601 time (receivedAt >= since)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None, Query(alias="next", max_length=2048, description="cursor from the previous page")
    ] = None,
) -> Response[Any]:
    require_operator()
    return json_response(
        operator_api().list_builds(route=route, status=status, since=since, limit=limit, cursor=cursor)
    )


@app.get("/builds/<build_id>", security=OPERATOR_SECURITY, summary="A build: status, timeline, manifest")
def get_build(build_id: str) -> Response[Any]:
    require_operator(also_buildpixel=True)  # BuildPixel's statusUrl points here
    return json_response(operator_api().get_build(build_id))


@app.post("/builds/<build_id>/release", security=OPERATOR_SECURITY, summary="Release a held build")
def release_build(build_id: str) -> Response[Any]:
    require_operator()
    body = operator_api().release(build_id)
    logger.info("operator release", extra={"build_id": build_id})
    return json_response(body, 202)


@app.post("/builds/<build_id>/retry", security=OPERATOR_SECURITY, summary="Re-drive a failed build")
def retry_build(build_id: str) -> Response[Any]:
    require_operator()
    body = operator_api().retry(build_id)
    logger.info("operator retry", extra={"build_id": build_id, "action": body["action"]})
    return json_response(body, 202)


@app.post(
    "/routes/<route_id>/rollback", security=OPERATOR_SECURITY, summary="Re-distribute an earlier upload"
)
def rollback_route(route_id: str) -> Response[Any]:
    """Optional JSON body ``{"uploadId": "..."}``; default: the route's previous live upload."""
    require_operator()
    body = operator_api().rollback(route_id, requested_upload_id())
    logger.info("operator rollback", extra={"route": route_id, "build_id": body["buildId"]})
    return json_response(body, 202)


def requested_upload_id() -> str | None:
    raw = raw_body().strip()
    if not raw:
        return None
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestRejected(400, "invalid_request", 'the body must be JSON: {"uploadId": "..."}') from exc
    upload_id = document.get("uploadId") if isinstance(document, dict) else None
    if upload_id is not None and (not isinstance(upload_id, str) or not 0 < len(upload_id) <= 128):
        raise RequestRejected(400, "invalid_request", "uploadId must be a non-empty string")
    return upload_id


@app.post("/doctor/test-webhook", security=OPERATOR_SECURITY, summary="Streampixel test-webhook per route")
def doctor_test_webhook() -> Response[Any]:
    require_operator()
    return json_response(operator_api().test_webhooks())


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[Any]:
    document = app.get_openapi_json_schema(
        title="PixelBridge",
        version="1.0.0",
        description="BuildPixel push/webhook ingest and the operator API "
        "(Authorization: Bearer <operatorToken>).",
        security_schemes={"operatorToken": HTTPBearer()},
    )
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document)
