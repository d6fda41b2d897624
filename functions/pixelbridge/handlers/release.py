"""ReleaseFunction: the Lambda tasks of ``ReleaseStateMachine`` (one ``action`` per state)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pixelbridge import wiring
from pixelbridge.observability import logger, metrics
from pixelbridge.settings import get_settings
from pixelbridge.usecases.release import ReleaseConfig, ReleaseTasks


def release_tasks() -> ReleaseTasks:
    settings = get_settings()
    return ReleaseTasks(
        builds=wiring.builds(),
        slots=wiring.slots(),
        streampixel=wiring.streampixel(),
        credentials=wiring.streampixel_credentials,
        workflow=wiring.workflow(),
        config=ReleaseConfig(
            slot_seconds=settings.slot_seconds,
            approval_timeout_seconds=settings.approval_timeout_seconds,
            live_window_seconds=settings.live_window_seconds,
            max_rate_limited_attempts=settings.max_rate_limited_attempts,
        ),
    )


def run_action(tasks: ReleaseTasks, event: dict[str, Any]) -> Any:
    build_id = str(event["buildId"])
    action = event["action"]
    if action == "prepare":
        return tasks.prepare(build_id)
    if action == "reserve_slot":
        return tasks.reserve_slot(build_id, str(event["purpose"]), event.get("lastError"))
    if action == "upload":
        return tasks.upload(build_id, event.get("slotAt"))
    if action == "distribute":
        return tasks.distribute(build_id, event.get("slotAt"))
    if action == "await":
        return tasks.await_event(build_id, str(event["waitingFor"]), str(event["token"]))
    if action == "finish":
        return tasks.finish(build_id, str(event["outcome"]), event.get("error"), str(event.get("note", "")))
    raise ValueError(f"unknown release action {action!r}")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    logger.append_keys(build_id=event.get("buildId"), action=event.get("action"))
    return run_action(release_tasks(), event)
