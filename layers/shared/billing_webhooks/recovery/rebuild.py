"""Rebuild the account view from NotificationsTable alone: every billing record projected again.

Idempotent (a part only moves forward, and the same set of notifications gives the same view),
so it may run beside the live projector, be stopped, and be run again. For when the view's rules
change, or the view was lost. On AWS, invoke AccountProjectorFunction with

    {"rebuild": {}}                                      the whole table, one Scan page at a time
    {"rebuild": {"segment": 0, "total_segments": 4}}     one of 4 parallel invocations
    {"rebuild": {"start": <"resume" of the last run>}}   go on where a run stopped

A run stops a minute before its function's timeout and answers where to resume (docs/accounts.md).
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.data import notifications
from billing_webhooks.domain import accounts
from billing_webhooks.observability import logger, metrics

SPARE_MILLIS = 60_000


def rebuild_accounts(options: dict[str, Any], context: Any = None) -> dict[str, Any]:
    counts: dict[str, Any] = {"records": 0, "moved": 0, "resume": None}
    pages = notifications.scan_billing_records(segment=int(options.get("segment", 0)),
                                               total_segments=int(options.get("total_segments", 1)),
                                               start_key=options.get("start"))
    for records, next_key in pages:
        counts["records"] += len(records)
        counts["moved"] += sum(accounts.project(record, rewrite=True) for record in records)
        if next_key is not None and context is not None and context.get_remaining_time_in_millis() < SPARE_MILLIS:
            counts["resume"] = next_key
            break
    metrics.add_metric(name="AccountRecordsRebuilt", unit=MetricUnit.Count, value=counts["records"])
    logger.info("account view rebuilt", extra=counts)
    return counts
