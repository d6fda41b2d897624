"""IngestFunction: BuildPixel's push upload (and later its webhook and the operator API) on a Function URL."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixelbridge import wiring
from pixelbridge.adapters.fetch_starter import LambdaFetchStarter
from pixelbridge.adapters.secrets import MissingSecretValue, buildpixel_upload_authorization
from pixelbridge.domain.signatures import SIGNATURE_HEADER
from pixelbridge.observability import logger, metrics, tracer
from pixelbridge.settings import get_settings
from pixelbridge.usecases.ingest_push import IngestPush, RequestRejected
from pixelbridge.usecases.ingest_webhook import IngestWebhook

app = LambdaFunctionUrlResolver()


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


@app.not_found
def handle_not_found(_: Exception) -> Response[Any]:
    return error_response(404, "not_found", "no such endpoint")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
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
    )
    outcome = use_case(body=raw_body(), signature=app.current_event.headers.get(SIGNATURE_HEADER.lower()))
    logger.info(
        "buildpixel webhook handled",
        extra={"build_id": outcome.body.get("buildId"), "http_status": outcome.status_code},
    )
    return Response(
        status_code=outcome.status_code, content_type=content_types.APPLICATION_JSON, body=outcome.body
    )
