"""One logger and metrics pair for every function (service name etc. come from the template).

Tracing is Lambda's active tracing (``Tracing: Active`` in the template): X-Ray records every
invocation with its init, invocation and overhead segments, without code in the function. The X-Ray
SDK (Powertools' ``Tracer``) is not shipped: importing it cost 130-190 ms of every cold start on the
Lambda runtime (it builds botocore clients at import) and it pulled a second 30 MB botocore into the
package, shadowing the runtime's own (bench/cold_start.py measures both). What it added on top --
per-call subsegments for S3/DynamoDB and a ColdStart annotation -- is not worth that on every start.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from aws_lambda_powertools import Logger, Metrics

# With LogLevel=DEBUG Lambda puts the root logger at DEBUG, and these libraries then log response bodies
# (Secrets Manager values) and request URLs with their query strings (signed artifact URLs). Cap them.
# POWERTOOLS_DEBUG puts Powertools' own package logger at DEBUG: its event handler then logs route
# arguments, among them the Streampixel webhook path secret.
for _library in ("botocore", "boto3", "s3transfer", "urllib3", "aws_lambda_powertools"):
    logging.getLogger(_library).setLevel(logging.INFO)


def stack_log_level(env: Mapping[str, str] | None = None) -> str:
    """The stack's LogLevel (POWERTOOLS_LOG_LEVEL), INFO when unset."""
    return (os.environ if env is None else env).get("POWERTOOLS_LOG_LEVEL", "INFO").upper()


def make_logger(env: Mapping[str, str] | None = None) -> Logger:
    """A Powertools logger that filters at the stack's LogLevel.

    Powertools prefers Lambda's AWS_LAMBDA_LOG_LEVEL, which the template keeps at INFO or below so that
    Lambda never drops the EMF metric lines (they carry no level); the level is applied here instead.
    """
    made = Logger()
    # Logger.setLevel would again prefer AWS_LAMBDA_LOG_LEVEL: set the standard logger it wraps.
    logging.getLogger(made.name).setLevel(stack_log_level(env))
    return made


logger = make_logger()
metrics = Metrics()
