"""NotificationsTable: every DynamoDB call on it, and the helpers the other tables' modules share.

Step 4 of the pipeline is one conditional PutItem. If the key exists, DynamoDB hands back the
stored item (ReturnValuesOnConditionCheckFailure), so a redelivery costs one call and never
overwrites. The alert state of UnPaidInvoice and TrialReminder records (domain/alerts.py) lives
on the record too: claimed, released, marked published, and found through the sparse
`pending-alerts` index.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, DecimalException
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from billing_webhooks.data import aws
from billing_webhooks.errors import PayloadConflict, ServiceUnavailable, Unstorable
from billing_webhooks.models.base import Notification, exact_number, utc_timestamp
from billing_webhooks.settings import settings

ALERT_PENDING = "pending"
ALERT_PUBLISHED = "published"
PENDING_ALERTS_INDEX = "pending-alerts"


def dynamodb():
    return aws.client("dynamodb")


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
        "received_at": utc_timestamp(received_at or datetime.now(UTC)),
        "code": notification.rule_code,
        "payload": payload,
        "payload_sha256": notification.payload_sha256(payload),
    }


def _attribute(value: Any) -> dict[str, Any]:
    # The types a record holds, in the order they occur most. boto3's TypeSerializer does the same
    # for any type and takes 3x as long (0.07 ms per notification, `make bench`); numbers still go
    # through its DynamoDB decimal context, which refuses what DynamoDB would.
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):  # exactly, or DynamoDB's context refuses it (Rounded, Overflow...)
        return {"N": str(DYNAMODB_CONTEXT.create_decimal(exact_number(value)))}
    if isinstance(value, dict):
        return {"M": {str(key): _attribute(child) for key, child in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_attribute(child) for child in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"{type(value).__name__} cannot be stored")


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    """The record as DynamoDB attributes; Unstorable when a value is beyond what DynamoDB holds (a
    number a model let through after converting it, say): refused as sent, never an outage."""
    try:
        return {name: _attribute(value) for name, value in record.items()}
    except (DecimalException, ValueError, OverflowError):
        raise Unstorable("DynamoDB cannot store this delivery as sent (a number beyond 38 digits or 1E+125).") from None


def _error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code")


def condition_failed(error: Exception) -> bool:
    """True when a conditional write was refused because of its condition (not a fault)."""
    return _error_code(error) == "ConditionalCheckFailedException"


def fault(error: Exception, unavailable: str) -> Exception:
    """What a failed DynamoDB call means for the delivery: a request DynamoDB refuses as such (a
    key over its size limit, say) fails the same way on every try, so it is Unstorable, not an
    outage to park and replay; anything else is ServiceUnavailable(unavailable)."""
    if _error_code(error) == "ValidationException":
        return Unstorable("DynamoDB cannot store this delivery as sent (a value over its limits).")
    return ServiceUnavailable(unavailable)


def conditional_write(operation: str, unavailable: str, **request: Any) -> tuple[bool, dict[str, Any]]:
    """One conditional DynamoDB write: (True, {}) when written; (False, the item as it was, if it
    was asked for) when its condition refused it; ServiceUnavailable(unavailable) on any fault."""
    try:
        getattr(dynamodb(), operation)(**request)
    except ClientError as exc:
        if not condition_failed(exc):
            raise fault(exc, unavailable) from None
        return False, from_item(exc.response.get("Item") or {})
    except BotoCoreError as exc:
        raise fault(exc, unavailable) from None
    return True, {}


_deserialize = TypeDeserializer().deserialize


def _value(attribute: dict[str, Any]) -> Any:
    # The types our items hold, as _attribute writes them. boto3's TypeDeserializer takes 5x as long
    # (0.5 ms of a 32-part GET /accounts, `make bench`); sets and binary still go through it.
    kind, value = next(iter(attribute.items()))
    if kind == "S":
        return value
    if kind == "N":  # a whole number as int (it compares equal to its Decimal), any other as Decimal
        return (
            int(value)
            if value.isdigit() or (value[:1] == "-" and value[1:].isdigit())
            else DYNAMODB_CONTEXT.create_decimal(value)
        )
    if kind == "M":
        return {key: _value(child) for key, child in value.items()}
    if kind == "L":
        return [_value(child) for child in value]
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    return _deserialize(attribute)


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _value(value) for name, value in item.items()}


def put_record(record: dict[str, Any]) -> tuple[Outcome, dict[str, Any]]:
    """Store the record unless its key exists; return the outcome and the record as stored."""
    written, stored = conditional_write(
        "put_item",
        "The notification could not be stored; retry later.",
        TableName=settings().table_name,
        Item=to_item(record),
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
    claimed, _ = conditional_write(
        "update_item",
        "The alert state could not be read; retry later.",
        TableName=settings().table_name,
        Key=_key(record),
        UpdateExpression="SET alert_lease_until = :until, alert_claim = :token",
        ConditionExpression="alert_status = :pending AND alert_lease_until < :now",
        ExpressionAttributeValues={
            ":pending": {"S": ALERT_PENDING},
            ":now": {"S": utc_timestamp(now)},
            ":until": {"S": utc_timestamp(lease_until)},
            ":token": {"S": token},
        },
    )
    return claimed


def release_alert_lease(record: dict[str, Any], token: str) -> None:
    """Expire our lease at once (a publish failed), so that the next try need not wait for it."""
    try:
        dynamodb().update_item(
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
        dynamodb().update_item(
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
        dynamodb()
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
            yield from_item(item)


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
    try:
        answer = dynamodb().query(**request)
    except (BotoCoreError, ClientError) as exc:
        raise fault(exc, "The account's history cannot be read right now; retry later.") from None
    return [from_item(item) for item in answer["Items"]], answer.get("LastEvaluatedKey")


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
            answer = dynamodb().scan(**request)
        except (BotoCoreError, ClientError) as exc:
            raise fault(exc, "NotificationsTable cannot be read right now; retry later.") from None
        start_key = answer.get("LastEvaluatedKey")
        yield [from_item(item) for item in answer["Items"]], start_key
        if start_key is None:
            return
