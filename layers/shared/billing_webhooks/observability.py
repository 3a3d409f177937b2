"""Powertools Logger and Metrics, one of each per container (service and namespace from env)."""

import logging

from aws_lambda_powertools import Logger, Metrics

logger = Logger(utc=True)
metrics = Metrics()

# botocore logs whole request and response bodies at DEBUG, secret values included. Lambda's log
# level control (or anyone) may lower the root logger; botocore never goes below INFO.
logging.getLogger("botocore").setLevel(logging.INFO)
