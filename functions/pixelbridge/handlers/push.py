"""BuildPixel's custom-deploy push: ``POST /`` or ``POST /builds/upload`` (multipart, bearer token)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import LambdaFunctionUrlRouter

from pixelbridge import wiring
from pixelbridge.handlers.responses import raw_body, receipt_response
from pixelbridge.observability import logger

router = LambdaFunctionUrlRouter()


@router.post("/")
@router.post("/builds/upload")
def push_upload() -> Response[Any]:
    event = router.current_event
    receipt = wiring.ingest_push()(
        body=raw_body(event),
        content_type=event.headers.get("content-type"),
        authorization=event.headers.get("authorization"),
    )
    build_id = receipt.body["buildId"]
    status_url = f"https://{event.request_context.domain_name}/builds/{build_id}"
    response = receipt_response(receipt, {**receipt.body, "statusUrl": status_url})
    logger.info("push handled", extra={"build_id": build_id, "http_status": response.status_code})
    return response
