"""StreampixelWebhookFunction: ``POST /webhooks/streampixel/{secret}`` (Streampixel signs nothing)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixelbridge import wiring
from pixelbridge.domain.secrets import secrets_equal
from pixelbridge.observability import logger, metrics
from pixelbridge.settings import get_settings
from pixelbridge.usecases.streampixel_events import StreampixelEvents

app = LambdaFunctionUrlResolver()
# Streampixel's events are well under 1 KiB; a bigger body is not Streampixel (checked after the secret).
MAX_EVENT_BYTES = 64 * 1024


def _json(status: int, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _not_found() -> Response[Any]:
    return _json(404, {"error": "not_found", "message": "no such endpoint"})


def expected_path_secret() -> str:
    return wiring.secrets().field(get_settings().streampixel_webhook_secret_arn, "pathSecret")


@app.post("/webhooks/streampixel/<secret>")
def streampixel_event(secret: str) -> Response[Any]:
    if not secrets_equal(secret, expected_path_secret()):
        return _not_found()
    if len(app.current_event.body or "") > MAX_EVENT_BYTES:  # base64 or text: never shorter than the raw body
        return _json(
            413, {"error": "payload_too_large", "message": f"events are limited to {MAX_EVENT_BYTES} bytes"}
        )
    try:
        payload = json.loads(app.current_event.decoded_body or "")
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        return _json(400, {"error": "invalid_json", "message": "the body must be a JSON object"})
    if not isinstance(payload, dict):
        return _json(400, {"error": "invalid_json", "message": "the body must be a JSON object"})
    use_case = StreampixelEvents(builds=wiring.builds(), workflow=wiring.workflow(), handoff=wiring.handoff())
    outcome = use_case.handle(payload)
    logger.info(
        "streampixel event",
        extra={
            "event": str(payload.get("event"))[:64],
            "upload_id": str(payload.get("uploadId"))[:64],
            "build_id": outcome.build_id,
            "matched": outcome.matched,
            "note": outcome.note,
        },
    )
    return _json(200, {"received": True, "matched": outcome.matched})


@app.not_found
def handle_not_found(_: Exception) -> Response[Any]:
    return _not_found()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    get_settings()
    return app.resolve(event, context)
