"""ReconcilerFunction: every 15 minutes (EventBridge Scheduler via SAM ``Schedule``), reconcile builds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixelbridge import wiring
from pixelbridge.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.parser import parse  # pydantic: see __init__

    from pixelbridge.handlers.models.schedule import ScheduledRun

    parse(event=event, model=ScheduledRun)
    report = wiring.reconcile_builds()()
    for action in report.actions:
        logger.warning("build reconciled", extra={"build_id": action["buildId"], "action": action["action"]})
    for failure in report.errors:  # counted, and the run went on with the other builds
        logger.error(
            "build not reconciled", extra={"build_id": failure["buildId"], "error": failure["error"]}
        )
    logger.info(
        "reconciliation done",
        extra={"checked": report.checked, "acted": len(report.actions), "errors": len(report.errors)},
    )
    return report.to_dict()
