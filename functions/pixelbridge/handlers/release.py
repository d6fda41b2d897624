"""ReleaseFunction: the Lambda tasks of ``ReleaseStateMachine`` (one ``action`` per state)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixelbridge import wiring
from pixelbridge.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from pixelbridge.handlers.models.release import ReleaseTask
    from pixelbridge.usecases.release import ReleaseTasks


def run_task(tasks: ReleaseTasks, task: ReleaseTask) -> Any:
    from pixelbridge.handlers.models.release import (
        Await,
        Distribute,
        Finish,
        Interrupted,
        Prepare,
        ReserveSlot,
        Upload,
    )

    match task:
        case Prepare():
            return tasks.prepare(task.build_id)
        case ReserveSlot():
            return tasks.reserve_slot(task.build_id, task.purpose, task.last_error)
        case Upload():
            return tasks.upload(task.build_id, task.slot_at)
        case Distribute():
            return tasks.distribute(task.build_id, task.slot_at)
        case Interrupted():
            return tasks.interrupted(task.build_id, task.call)
        case Await():
            return tasks.await_event(task.build_id, task.waiting_for, task.token)
        case Finish():
            return tasks.finish(task.build_id, task.outcome, task.error, task.note)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    from aws_lambda_powertools.utilities.parser import parse  # pydantic: see __init__

    from pixelbridge.handlers.models.release import ReleaseTaskEvent

    logger.append_keys(build_id=event.get("buildId"), action=event.get("action"))
    return run_task(wiring.release_tasks(), parse(event=event, model=ReleaseTaskEvent).root)
