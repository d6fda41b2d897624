"""Operator API, reading: list builds, one build, and the Streampixel test-webhook check."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import LambdaFunctionUrlRouter

from pixelbridge import wiring
from pixelbridge.handlers.operator_auth import OPERATOR_SECURITY, operator_or_uploader, require_operator
from pixelbridge.handlers.responses import json_response
from pixelbridge.usecases.operator import MAX_PAGE

router = LambdaFunctionUrlRouter()


@router.get("/builds", security=OPERATOR_SECURITY, summary="List builds, newest first")
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
    require_operator(router.current_event)
    page = wiring.operator_api().list_builds(
        route=route, status=status, since=since, limit=limit, cursor=cursor
    )
    return json_response(page)


@router.get("/builds/<build_id>", security=OPERATOR_SECURITY, summary="A build: status, timeline, manifest")
def get_build(build_id: str) -> Response[Any]:
    api = wiring.operator_api()
    if operator_or_uploader(router.current_event):
        return json_response(api.get_build(build_id))
    return json_response(api.build_status(build_id))  # BuildPixel's statusUrl: status, times, reasons


@router.post("/doctor/test-webhook", security=OPERATOR_SECURITY, summary="Streampixel test-webhook per route")
def doctor_test_webhook() -> Response[Any]:
    require_operator(router.current_event)
    return json_response(wiring.operator_api().test_webhooks())
