"""Powertools Logger and Metrics, one of each per container (service and namespace from env), and
the log of every request to Bitrix24 (`rest_log`)."""

import logging

from aws_lambda_powertools import Logger, Metrics

logger = Logger(utc=True)
metrics = Metrics()

# botocore logs whole request and response bodies at DEBUG, secret values included. Lambda's log
# level control (or anyone) may lower the root logger; botocore never goes below INFO.
logging.getLogger("botocore").setLevel(logging.INFO)


_rest_log: Logger | None = None


def rest_log() -> Logger:
    """Every request to Bitrix24, one line each: Bitrix24's Market asks server-side apps to keep
    their REST request and response logs (at least 3 days: LogRetentionDays' minimum). At INFO
    whatever LogLevel says, under a service of its own ("bitrix24-rest") to filter by."""
    global _rest_log
    if _rest_log is None:
        from billing_webhooks.settings import settings

        _rest_log = Logger(service="bitrix24-rest", level=settings().bitrix24_rest_log_level, utc=True)
    return _rest_log
