"""NotificationsTable: every DynamoDB call on it, and the helpers the other tables' modules share.

Step 4 of the pipeline is one conditional PutItem. If the key exists, DynamoDB hands back the
stored item (ReturnValuesOnConditionCheckFailure), so a redelivery costs one call and never
overwrites. The alert state of UnPaidInvoice and TrialReminder records (domain/alerts.py) lives
on the record too: claimed, released, marked published, and found through the sparse
`pending-alerts` index.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_webhooks import clock
from billing_webhooks.data import toolkit
from billing_webhooks.errors import PayloadConflict
from billing_webhooks.models.base import Notification, utc_timestamp
from billing_webhooks.settings import settings

ALERT_PENDING = "pending"
ALERT_PUBLISHED = "published"
PENDING_ALERTS_INDEX = "pending-alerts"


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


def build_record(notification: Notification, received_at: datetime | None = None) -> dict[str, Any]:
    payload = notification.stored_payload()
    return {
        "notification_id": notification.notification_id,
        "notification_type": notification.notification_type,
        "source": notification.source,
        "account_key": notification.account_key,
        "event_time": utc_timestamp(notification.event_time),
        "received_at": utc_timestamp(received_at or clock.now()),
        "code": notification.rule_code,
        "payload": payload,
        "payload_sha256": notification.payload_sha256(payload),
    }


def put_record(record: dict[str, Any]) -> tuple[Outcome, dict[str, Any]]:
    """Store the record unless its key exists; return the outcome and the record as stored."""
    written, stored = toolkit.conditional_write(
        "put_item",
        "The notification could not be stored; retry later.",
        TableName=settings().table_name,
        Item=toolkit.to_item(record),
        ConditionExpression="attribute_not_exists(notification_id)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    if written:
        return Outcome.STORED, record
    if stored.get("payload_sha256") != record["payload_sha256"]:
        raise PayloadConflict(
            f"Notification {record['notification_id']!r} of type {record['notification_type']!r} "
            "was already received with a different payload; the stored record is unchanged."
        )
    return Outcome.DUPLICATE, stored


# --- the alert state on a record ---


def _key(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "notification_id": {"S": record["notification_id"]},
        "notification_type": {"S": record["notification_type"]},
    }


def claim_alert(record: dict[str, Any], token: str, now: datetime, lease_until: datetime) -> bool:
    """Hold the record's pending alert under `token` until `lease_until`, if its lease expired."""
    return toolkit.claim(
        settings().table_name,
        {"notification_id": record["notification_id"], "notification_type": record["notification_type"]},
        "The alert state could not be read; retry later.",
        lease="alert_lease_until",
        now=utc_timestamp(now),
        until=utc_timestamp(lease_until),
        when="alert_status = :pending",
        also="alert_claim = :token",
        values={":pending": ALERT_PENDING, ":token": token},
    )


def release_alert_lease(record: dict[str, Any], token: str) -> None:
    """Expire our lease at once (a publish failed), so that the next try need not wait for it."""
    try:
        toolkit.dynamodb().update_item(
            TableName=settings().table_name,
            Key=_key(record),
            UpdateExpression="SET alert_lease_until = :expired",
            ConditionExpression="alert_claim = :token",
            ExpressionAttributeValues={
                ":token": {"S": token},
                ":expired": {"S": utc_timestamp(datetime(2000, 1, 1, tzinfo=UTC))},
            },
        )
    except (BotoCoreError, ClientError):
        pass  # the lease expires by itself


def mark_alert_published(record: dict[str, Any], token: str, message_id: str, at: datetime) -> None:
    """The alert went out under our claim: published, and off the pending index."""
    try:
        toolkit.dynamodb().update_item(
            TableName=settings().table_name,
            Key=_key(record),
            UpdateExpression="SET alert_status = :published, alert_message_id = :id, alert_published_at = :at "
            "REMOVE alert_pending, alert_lease_until, alert_claim",
            ConditionExpression="alert_claim = :token",
            ExpressionAttributeValues={
                ":token": {"S": token},
                ":published": {"S": ALERT_PUBLISHED},
                ":id": {"S": message_id},
                ":at": {"S": utc_timestamp(at)},
            },
        )
    except (BotoCoreError, ClientError):
        pass  # published; the record says so once the lease holder's bookkeeping lands or the redrive repeats it


def expired_pending_alerts(now: datetime) -> Iterator[dict[str, Any]]:
    """Records whose alert is still pending after its lease expired, from the sparse index."""
    pages = (
        toolkit.dynamodb()
        .get_paginator("query")
        .paginate(
            TableName=settings().table_name,
            IndexName=PENDING_ALERTS_INDEX,
            KeyConditionExpression="alert_pending = :pending AND alert_lease_until < :now",
            ExpressionAttributeValues={":pending": {"S": ALERT_PENDING}, ":now": {"S": utc_timestamp(now)}},
        )
    )
    for page in pages:
        for item in page["Items"]:
            yield toolkit.from_item(item)


# --- reading records back: an account's history, every record for a rebuild ---

BY_ACCOUNT_INDEX = "by-account"


def history(
    account_key: str, *, notification_type: str | None = None, limit: int = 50, start_key: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One Query of the `by-account` index, newest event first: (records, where the next page
    starts, or None). With a type, a page holds only that type and may hold fewer than `limit`."""
    request: dict[str, Any] = {
        "TableName": settings().table_name,
        "IndexName": BY_ACCOUNT_INDEX,
        "ScanIndexForward": False,
        "Limit": limit,
        "KeyConditionExpression": "account_key = :key",
        "ExpressionAttributeValues": {":key": {"S": account_key}},
    }
    if notification_type is not None:
        request["FilterExpression"] = "notification_type = :type"
        request["ExpressionAttributeValues"][":type"] = {"S": notification_type}
    if start_key is not None:
        request["ExclusiveStartKey"] = start_key
    return toolkit.query("The account's history cannot be read right now; retry later.", **request)


def scan_billing_records(
    *, segment: int = 0, total_segments: int = 1, start_key: dict[str, Any] | None = None, page_size: int | None = None
) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
    """Every billing record of one Scan segment, a page at a time: (records, where the next page
    starts). A fault is ServiceUnavailable; `start_key` {} is the segment's beginning."""
    request: dict[str, Any] = {
        "TableName": settings().table_name,
        "Segment": segment,
        "TotalSegments": total_segments,
        "FilterExpression": "#source = :billing",
        "ExpressionAttributeNames": {"#source": "source"},
        "ExpressionAttributeValues": {":billing": {"S": "billing"}},
        **({"Limit": int(page_size)} if page_size else {}),
    }
    while True:
        if start_key:
            request["ExclusiveStartKey"] = start_key
        try:
            answer = toolkit.dynamodb().scan(**request)
        except (BotoCoreError, ClientError) as exc:
            raise toolkit.fault(exc, "NotificationsTable cannot be read right now; retry later.") from None
        start_key = answer.get("LastEvaluatedKey")
        yield [toolkit.from_item(item) for item in answer["Items"]], start_key
        if start_key is None:
            return


def forget_account(account_key: str) -> int:
    """Every record of an account (a portal's lifecycle events: `bitrix24#<member_id>`) deleted,
    a page at a time; how many."""
    unavailable = "The portal's records cannot be purged right now; retry later."
    deleted, start_key = 0, None
    while True:
        request: dict[str, Any] = {
            "TableName": settings().table_name,
            "IndexName": BY_ACCOUNT_INDEX,
            "Limit": 100,
            "KeyConditionExpression": "account_key = :key",
            "ExpressionAttributeValues": {":key": {"S": account_key}},
            "ProjectionExpression": "notification_id, notification_type",
        }
        if start_key is not None:
            request["ExclusiveStartKey"] = start_key
        records, start_key = toolkit.query(unavailable, **request)
        for record in records:
            key = {name: record[name] for name in ("notification_id", "notification_type")}
            toolkit.delete(settings().table_name, key, unavailable)
            deleted += 1
        if start_key is None:
            return deleted
