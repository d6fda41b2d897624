"""The metrics port and its Powertools (CloudWatch EMF) adapter.

Use cases depend on ``MetricsPort`` only, so domain and use cases stay free of Powertools and
tests pass a recording fake. Metrics are flushed by ``@metrics.log_metrics`` on the handler.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from pixelbridge.ports import MetricsPort

__all__ = ["MetricsPort", "NullMetrics", "PowertoolsMetrics"]

UNITS = {"count": MetricUnit.Count, "seconds": MetricUnit.Seconds, "mbps": MetricUnit.MegabytesPerSecond}


class PowertoolsMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def record(self, name: str, value: float, unit: str = "count", **dimensions: str) -> None:
        metric_unit = UNITS[unit]
        if not dimensions:
            self._metrics.add_metric(name=name, unit=metric_unit, value=value)
            return
        if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
            return  # single_metric flushes on its own and does not honour the switch
        # A dimensioned point goes out on its own (the shared Metrics object has one dimension set).
        with single_metric(
            name=name,
            unit=metric_unit,
            value=value,
            namespace=self._metrics.namespace,
            default_dimensions={"service": str(self._metrics.service or "pixelbridge")},
        ) as metric:
            for key, dimension in dimensions.items():
                metric.add_dimension(name=key, value=dimension)


class NullMetrics:
    def record(self, name: str, value: float, unit: str = "count", **dimensions: str) -> None:
        return None
