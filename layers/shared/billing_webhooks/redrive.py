"""AlertRedriveFunction: publish alerts left pending past their lease (a failed publish whose
sender gave up, a claimant that died). Found through the sparse `pending-alerts` index, never a scan."""

from datetime import UTC, datetime
from typing import Any

from billing_webhooks import alerts, storage
from billing_webhooks.errors import ServiceUnavailable
from billing_webhooks.models.base import utc_timestamp
from billing_webhooks.settings import settings


def expired_pending_alerts(now: datetime):
    pages = storage.dynamodb().get_paginator("query").paginate(
        TableName=settings().table_name,
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
