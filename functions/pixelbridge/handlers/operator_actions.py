"""Operator API, acting: release a held build, retry a failed one, roll a route back."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import LambdaFunctionUrlRouter

from pixelbridge import wiring
from pixelbridge.handlers.operator_auth import OPERATOR_SECURITY, require_operator
from pixelbridge.handlers.responses import json_response, raw_body
from pixelbridge.observability import logger
from pixelbridge.usecases.operator import rollback_target

router = LambdaFunctionUrlRouter()


@router.post("/builds/<build_id>/release", security=OPERATOR_SECURITY, summary="Release a held build")
def release_build(build_id: str) -> Response[Any]:
    require_operator(router.current_event)
    body = wiring.operator_api().release(build_id)
    logger.info("operator release", extra={"build_id": build_id})
    return json_response(body, 202)


@router.post("/builds/<build_id>/retry", security=OPERATOR_SECURITY, summary="Re-drive a failed build")
def retry_build(build_id: str) -> Response[Any]:
    require_operator(router.current_event)
    body = wiring.operator_api().retry(build_id)
    logger.info("operator retry", extra={"build_id": build_id, "action": body["action"]})
    return json_response(body, 202)


@router.post(
    "/routes/<route_id>/rollback", security=OPERATOR_SECURITY, summary="Re-distribute an earlier upload"
)
def rollback_route(route_id: str) -> Response[Any]:
    """Optional JSON body ``{"uploadId": "..."}``; default: the route's previous live upload."""
    require_operator(router.current_event)
    body = wiring.operator_api().rollback(route_id, rollback_target(raw_body(router.current_event)))
    logger.info("operator rollback", extra={"route": route_id, "build_id": body["buildId"]})
    return json_response(body, 202)
