"""Root test configuration: a fake AWS account and quiet Powertools, before any handler is imported."""

from __future__ import annotations

import os

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_SESSION_TOKEN"] = "testing"
os.environ.pop("AWS_PROFILE", None)
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "pixelbridge")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "PixelBridge")
os.environ["POWERTOOLS_TRACE_DISABLED"] = "1"
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
