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

from aws_lambda_powertools import Logger, Metrics

# With LogLevel=DEBUG Lambda puts the root logger at DEBUG, and these libraries then log response bodies
# (Secrets Manager values) and request URLs with their query strings (signed artifact URLs). Cap them.
for _library in ("botocore", "boto3", "s3transfer", "urllib3"):
    logging.getLogger(_library).setLevel(logging.INFO)

logger = Logger()
metrics = Metrics()
