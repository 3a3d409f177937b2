"""AlertRedriveFunction: publish alerts left pending past their lease (a failed publish whose
sender gave up, a claimant that died). Found through the sparse `pending-alerts` index, never a scan."""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_webhooks import alerts, storage
from billing_webhooks.errors import ServiceUnavailable
from billing_webhooks.models.base import utc_timestamp
from billing_webhooks.observability import logger, metrics


def expired_pending_alerts(now: datetime):
    pages = storage.dynamodb().get_paginator("query").paginate(
        TableName=os.environ["TABLE_NAME"],
        IndexName=alerts.PENDING_INDEX,
        KeyConditionExpression="alert_pending = :pending AND alert_lease_until < :now",
        ExpressionAttributeValues={":pending": {"S": alerts.PENDING}, ":now": {"S": utc_timestamp(now)}},
    )
    for page in pages:
        for item in page["Items"]:
            yield storage.from_item(item)


def redrive(now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    published = failed = 0
    for record in expired_pending_alerts(now):
        claim = alerts.claim(record, now)
        if not claim:
            continue
        try:
            alerts.publish(record, claim)
            published += 1
        except ServiceUnavailable:
            failed += 1
    return {"published": published, "failed": failed}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    result = redrive()
    metrics.add_metric(name="AlertsRedriven", unit=MetricUnit.Count, value=result["published"])
    metrics.add_metric(name="AlertRedriveFailures", unit=MetricUnit.Count, value=result["failed"])
    logger.info("alert redrive", extra=result)
    return result
