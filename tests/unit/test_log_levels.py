"""LogLevel WARNING/ERROR filters application logs in Powertools, never the EMF metric lines in Lambda."""

from __future__ import annotations

import json
import logging

import pytest
from aws_lambda_powertools import Logger, Metrics

from pixelbridge.observability import make_logger
from pixelbridge_local.template import function_environment, load_template
from tests.unit.test_template import FAKE_NAMES

# Lambda's JSON log filter: a line without a "level" key is INFO, kept when the filter is INFO or lower.
LAMBDA_KEEPS_UNLEVELLED = {"TRACE", "DEBUG", "INFO"}


@pytest.mark.parametrize("log_level", ["DEBUG", "INFO", "WARNING", "ERROR"])
def test_lambda_never_filters_above_info(log_level: str) -> None:
    template = load_template()
    mapping = template["Mappings"]["LambdaLogLevel"]
    application = template["Globals"]["Function"]["LoggingConfig"]["ApplicationLogLevel"]
    assert application == {"Fn::FindInMap": ["LambdaLogLevel", {"Ref": "LogLevel"}, "Level"]}
    assert mapping[log_level]["Level"] in LAMBDA_KEEPS_UNLEVELLED
    env = function_environment("NotifierFunction", FAKE_NAMES, parameters={"LogLevel": log_level})
    assert env["POWERTOOLS_LOG_LEVEL"] == log_level  # Powertools applies the stack's level itself


def test_powertools_filters_at_the_stack_level_although_lambda_says_info(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "INFO")  # what Lambda sets for LogLevel WARNING
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "log-level-test")  # not the shared "pixelbridge" logger
    assert Logger(service="plain").log_level == logging.INFO  # Powertools alone prefers Lambda's level
    logger = make_logger({"POWERTOOLS_LOG_LEVEL": "WARNING"})
    assert logger.log_level == logging.WARNING
    assert not logging.getLogger(logger.name).isEnabledFor(logging.INFO)


def test_emf_metric_lines_carry_no_level_so_lambda_calls_them_info(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = Metrics(namespace="PixelBridge", service="pixelbridge")
    metrics.add_metric(name="BuildsFailed", unit="Count", value=1)
    metrics.flush_metrics()
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert "_aws" in line and "level" not in line
