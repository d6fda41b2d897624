"""StreampixelWebhookFunction: ``POST /webhooks/streampixel/{secret}`` (Streampixel signs nothing)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response

from pixelbridge import wiring
from pixelbridge.domain.errors import Invalid, NotFound, TooLarge
from pixelbridge.domain.secrets import secrets_equal
from pixelbridge.handlers.http_errors import register_error_map
from pixelbridge.handlers.responses import json_response
from pixelbridge.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from pixelbridge.domain.streampixel_webhook import StreampixelEvent

app = LambdaFunctionUrlResolver()
register_error_map(app)
# Streampixel's events are well under 1 KiB; a bigger body is not Streampixel (checked after the secret).
MAX_EVENT_BYTES = 64 * 1024


def read_event() -> StreampixelEvent:
    from aws_lambda_powertools.utilities.parser import ValidationError, parse  # pydantic: see __init__

    from pixelbridge.domain.streampixel_webhook import StreampixelEvent

    try:  # not UTF-8, not JSON, nested too deep, or not an object: all the same answer
        return parse(event=json.loads(app.current_event.decoded_body or ""), model=StreampixelEvent)
    except (ValueError, RecursionError, ValidationError) as exc:
        raise Invalid("invalid_json", "the body must be a JSON object") from exc


@app.post("/webhooks/streampixel/<secret>")
def streampixel_event(secret: str) -> Response[Any]:
    if not secrets_equal(secret, wiring.streampixel_path_secret()):
        raise NotFound("not_found", "no such endpoint")
    if len(app.current_event.body or "") > MAX_EVENT_BYTES:  # base64 or text: never shorter than the raw body
        raise TooLarge("payload_too_large", f"events are limited to {MAX_EVENT_BYTES} bytes")
    event = read_event()
    outcome = wiring.streampixel_events().handle(event)
    facts = {"event": str(event.event)[:64], "upload_id": str(event.upload_id)[:64]}
    logger.info(
        "streampixel event",
        extra={**facts, "build_id": outcome.build_id, "matched": outcome.matched, "note": outcome.note},
    )
    return json_response({"received": True, "matched": outcome.matched})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    wiring.get_settings()
    return app.resolve(event, context)
