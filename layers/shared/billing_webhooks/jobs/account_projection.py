"""AccountProjectorFunction, on NotificationsTable's stream (new billing records): each record
projected into the account view, then the entitlements of the portals linked to the accounts
the batch moved (domain/links.py).

A record the view cannot take (domain/accounts.Unprojectable: it would fail the same way on every
try) never stops a stream batch or a rebuild: it is counted, named (notification id and type,
never a token) and skipped, and exactly that record's name goes to the failure queue
(AccountProjectorFailures), so the queue holds the records that failed, not the batch around
them; an outage is retried as Lambda retries a stream batch.
"""

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks.data import aws
from billing_webhooks.domain import accounts, links
from billing_webhooks.observability import logger, metrics
from billing_webhooks.settings import settings


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
    return sum(links.account_moved(account_id, code) for account_id, code in touched.items())
