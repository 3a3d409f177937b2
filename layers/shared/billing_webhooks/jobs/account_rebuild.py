"""AccountRebuildFunction, invoked by hand: the account view rebuilt from NotificationsTable alone.

Idempotent (a part only moves forward, and the same set of notifications gives the same view), so
it may run beside the live projector, be stopped, and be run again. For when the view's rules
change, or the view was lost. On AWS, invoke AccountRebuildFunction with

    {}                                       the whole table, one Scan page at a time
    {"segment": 0, "total_segments": 4}      one of 4 parallel invocations
    {"start": <"resume" of the last run>}    go on where a run stopped

A run stops a minute before its function's timeout, or at an outage, and answers where to resume
(docs/accounts.md); it always finishes or answers `resume`.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.data import notifications
from billing_webhooks.domain import accounts
from billing_webhooks.errors import ServiceUnavailable
from billing_webhooks.observability import logger, metrics

SPARE_MILLIS = 60_000
MAX_NAMED = 100  # skipped records a rebuild's answer names (all are counted)


def rebuild_accounts(options: dict[str, Any], context: Any = None) -> dict[str, Any]:
    counts: dict[str, Any] = {"records": 0, "moved": 0, "skipped": 0, "unprojectable": [], "resume": None}
    start = options.get("start")
    pages = notifications.scan_billing_records(
        segment=int(options.get("segment", 0)),
        total_segments=int(options.get("total_segments", 1)),
        start_key=start,
        page_size=options.get("page_size"),
    )
    try:
        for records, next_key in pages:
            for record in records:
                try:
                    counts["moved"] += accounts.project_or_skip(record, rewrite=True)
                except accounts.Unprojectable as error:
                    counts["skipped"] += 1
                    if len(counts["unprojectable"]) < MAX_NAMED:
                        counts["unprojectable"].append(str(error))
            counts["records"] += len(records)
            start = next_key
            if next_key is not None and context is not None and context.get_remaining_time_in_millis() < SPARE_MILLIS:
                counts["resume"] = next_key
                break
    except ServiceUnavailable:  # an outage: this page again, next run (a page's records re-project harmlessly)
        counts["resume"] = start if start is not None else {}
        logger.warning("account view rebuild stopped by an outage", extra={"resume": counts["resume"]})
    metrics.add_metric(name="AccountRecordsRebuilt", unit=MetricUnit.Count, value=counts["records"])
    if counts["skipped"]:
        metrics.add_metric(name="AccountRecordsUnprojectable", unit=MetricUnit.Count, value=counts["skipped"])
    logger.info("account view rebuilt", extra=counts)
    return counts
