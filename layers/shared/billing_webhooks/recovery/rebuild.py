"""The account view's projection when something goes wrong: records it cannot take, and the rebuild.

A record the view cannot take (domain/accounts.Unprojectable: it would fail the same way on every
try) never stops a stream batch or a rebuild: it is counted, named (notification id and type,
never a token) and skipped. The live projector sends exactly that record's name to the failure
queue (AccountProjectorFailures), so the queue holds the records that failed, not the batch
around them; an outage is retried as before.

The rebuild projects every billing record of NotificationsTable again, from it alone. Idempotent
(a part only moves forward, and the same set of notifications gives the same view), so it may run
beside the live projector, be stopped, and be run again. For when the view's rules change, or
the view was lost. On AWS, invoke AccountProjectorFunction with

    {"rebuild": {}}                                      the whole table, one Scan page at a time
    {"rebuild": {"segment": 0, "total_segments": 4}}     one of 4 parallel invocations
    {"rebuild": {"start": <"resume" of the last run>}}   go on where a run stopped

A run stops a minute before its function's timeout, or at an outage, and answers where to resume
(docs/accounts.md); it always finishes or answers `resume`.
"""

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.data import aws, notifications
from billing_webhooks.domain import accounts, entitlement_updates
from billing_webhooks.errors import ServiceUnavailable
from billing_webhooks.observability import logger, metrics
from billing_webhooks.settings import settings

SPARE_MILLIS = 60_000
MAX_NAMED = 100  # skipped records a rebuild's answer names (all are counted)


def report_unprojectable(error: accounts.Unprojectable) -> None:
    """The live projector's skipped record, named on the failure queue (its alarm pages ops)."""
    metrics.add_metric(name="AccountRecordsUnprojectable", unit=MetricUnit.Count, value=1)
    logger.error("record skipped by the account view", extra={"record": str(error)})
    url = settings().projection_failures_queue_url
    if url:
        aws.client("sqs").send_message(
            QueueUrl=url,
            MessageBody=json.dumps(
                {"unprojectable": str(error), "remedy": "fix the rule, then rebuild (docs/accounts.md)"}
            ),
        )


def project_stream_record(record: dict[str, Any], touched: dict[Any, Any] | None = None) -> int:
    """One new record off the stream: projected, or skipped and reported; an outage is raised.
    Its account (id: account_code) goes into `touched`, for entitlements_of_accounts."""
    try:
        moved = accounts.project_or_skip(record)
    except accounts.Unprojectable as error:
        report_unprojectable(error)
        return 0
    payload = found if isinstance(found := record.get("payload"), dict) else {}
    if touched is not None and payload.get("account_id") is not None:
        touched[payload["account_id"]] = payload.get("account_code")
    return moved


def entitlements_of_accounts(touched: dict[Any, Any]) -> int:
    """The portals of each account a batch touched, decided again: once per account, not per
    record. Moved or not (a retried batch moves nothing the second time) they are decided, and an
    outage raises: the whole batch is retried, its projection a no-op."""
    return sum(entitlement_updates.account_moved(account_id, code) for account_id, code in touched.items())


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
