"""FetchFunction: invoked asynchronously by the BuildPixel webhook with ``{"buildId", "artifactUrl"}``.

The event carries a signed URL: it is never logged (Powertools does not log the event unless asked).
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pixelbridge import wiring
from pixelbridge.adapters.buildpixel import BuildPixelClient, session_with_pool
from pixelbridge.convert.sinks import S3MultipartSink
from pixelbridge.domain.metadata import BUILD_ID_PATTERN
from pixelbridge.observability import logger, metrics
from pixelbridge.settings import get_settings
from pixelbridge.usecases.fetch_artifact import ArtifactSink, FetchArtifact, FetchLimits

MiB = 1024 * 1024
PART_SIZE = 16 * MiB


def fetch_use_case(context: LambdaContext | None) -> FetchArtifact:
    settings = get_settings()
    secret_arn = settings.buildpixel_secret_arn
    client = BuildPixelClient(
        settings.buildpixel_api_url,
        lambda: wiring.secrets().field(secret_arn, "apiToken"),
        session=session_with_pool(),
    )

    def open_sink(key: str, expected_size: int | None) -> ArtifactSink:
        return S3MultipartSink(
            wiring.s3_client(),
            settings.artifact_bucket,
            key,
            part_size=PART_SIZE,
            content_type="application/gzip",
            expected_size=expected_size,
        )

    def seconds_left() -> float:
        return context.get_remaining_time_in_millis() / 1000 if context else float("inf")

    return FetchArtifact(
        builds=wiring.builds(),
        source=client,
        open_sink=open_sink,
        limits=FetchLimits(max_bytes=settings.max_artifact_bytes),
        seconds_left=seconds_left,
    )


def valid_request(event: dict[str, Any]) -> tuple[str, str | None] | None:
    build_id = event.get("buildId")
    url = event.get("artifactUrl")
    if not isinstance(build_id, str) or not re.fullmatch(BUILD_ID_PATTERN, build_id):
        return None
    return build_id, url if isinstance(url, str) and url else None


@logger.inject_lambda_context(clear_state=True, log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = valid_request(event)
    if request is None:
        logger.warning("fetch request without a valid buildId ignored")
        return {"buildId": None, "result": "ignored: invalid request"}
    build_id, artifact_url = request
    outcome = fetch_use_case(context)(build_id, artifact_url)
    logger.info("fetch handled", extra={"build_id": build_id, "result": outcome.result})
    return outcome.to_dict()
