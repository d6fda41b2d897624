"""A local Streampixel simulator: the write API plus the asynchronous build pipeline and its webhooks.

Implements ``/pixelStripeApi/projects/{upload-file,distribute-file,test-webhook}`` as described in
docs/ARCHITECTURE.md (Outside APIs), for the local demo and the end-to-end tests. Knobs inject the
failures the bridge must survive (429s, 5xx, slow answers, dropped connections, rejected builds,
lost, duplicated or late webhooks, build.uploaded before the upload-file answer, a held queue of
uploads processed in order) and every API call and webhook delivery is recorded with its time so
tests can assert spacing and ordering; ``live_upload`` says which upload a project serves. As strict
as the docs: direct downloads only (no redirect, no HTML page), 24-hex uploadIds.

Run standalone: ``python -m pixelbridge_local.streampixel_sim --account USER:KEY --project PROJECT:USER``.

Modules: ``contract`` (endpoints, messages, records), ``api_requests`` (reading a call), ``accounts``
(keys, projects, the write window), ``builds`` (the checks on a build, webhook envelopes), ``webhooks``
(deliveries), ``server`` (HTTP), ``simulator`` (state, knobs and the build pipeline).
"""

from __future__ import annotations

from pixelbridge_local.streampixel_sim.builds import has_top_level_executable
from pixelbridge_local.streampixel_sim.contract import (
    OBJECTION_CORRUPT_ZIP,
    OBJECTION_DOWNLOAD_FAILED,
    OBJECTION_MISSING_EXE,
    RATE_LIMIT_MESSAGE,
    RecordedCall,
    RecordedWebhook,
)
from pixelbridge_local.streampixel_sim.simulator import StreampixelSimulator

__all__ = [
    "OBJECTION_CORRUPT_ZIP",
    "OBJECTION_DOWNLOAD_FAILED",
    "OBJECTION_MISSING_EXE",
    "RATE_LIMIT_MESSAGE",
    "RecordedCall",
    "RecordedWebhook",
    "StreampixelSimulator",
    "has_top_level_executable",
]
