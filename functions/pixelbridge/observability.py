"""One logger, tracer and metrics trio for every function (service name etc. come from the template)."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer

# With LogLevel=DEBUG Lambda puts the root logger at DEBUG, and these libraries then log response bodies
# (Secrets Manager values) and request URLs with their query strings (signed artifact URLs). Cap them.
# POWERTOOLS_DEBUG puts Powertools' own package logger at DEBUG: its event handler then logs route
# arguments, among them the Streampixel webhook path secret.
for _library in ("botocore", "boto3", "s3transfer", "urllib3", "aws_lambda_powertools"):
    logging.getLogger(_library).setLevel(logging.INFO)

logger = Logger()
tracer = Tracer()
metrics = Metrics()
