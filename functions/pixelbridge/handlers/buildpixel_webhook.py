"""BuildPixel's signed webhook: ``POST /webhooks/buildpixel`` (``build.complete`` starts a pull)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import LambdaFunctionUrlRouter

from pixelbridge import wiring
from pixelbridge.domain.signatures import SIGNATURE_HEADER
from pixelbridge.handlers.responses import raw_body, receipt_response
from pixelbridge.observability import logger

router = LambdaFunctionUrlRouter()


@router.post("/webhooks/buildpixel")
def buildpixel_webhook() -> Response[Any]:
    event = router.current_event
    receipt = wiring.ingest_webhook()(
        body=raw_body(event), signature=event.headers.get(SIGNATURE_HEADER.lower())
    )
    response = receipt_response(receipt)
    logger.info(
        "buildpixel webhook handled",
        extra={"build_id": receipt.body.get("buildId"), "http_status": response.status_code},
    )
    return response
