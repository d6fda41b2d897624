"""ReconcilerFunction: every 15 minutes (EventBridge Scheduler via SAM ``Schedule``), reconcile builds."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pixelbridge import wiring
from pixelbridge.domain.reconciliation import StuckThresholds
from pixelbridge.observability import logger, metrics
from pixelbridge.settings import Settings, get_settings
from pixelbridge.usecases.reconcile import ReconcileBuilds


def thresholds(settings: Settings) -> StuckThresholds:
    return StuckThresholds.from_settings(
        ingest=settings.stuck_ingest_seconds,
        convert=settings.stuck_convert_seconds,
        queue=settings.stuck_queue_seconds,
        release=settings.stuck_release_seconds,
        approval_timeout=settings.approval_timeout_seconds,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    use_case = ReconcileBuilds(
        builds=wiring.builds(), workflow=wiring.workflow(), thresholds=thresholds(settings)
    )
    report = use_case()
    for action in report.actions:
        logger.warning("build reconciled", extra={"build_id": action["buildId"], "action": action["action"]})
    logger.info("reconciliation done", extra={"checked": report.checked, "acted": len(report.actions)})
    return report.to_dict()
