"""QuarantineTable: authenticated deliveries that our models refused, kept for a replay.

Neither sender redelivers, so a genuine delivery refused is a delivery lost. When a delivery has
passed authentication and still fails validation (a field the model does not admit yet, a number
DynamoDB cannot hold), it is answered 422 and kept here: the signed parcel (recovery/parcels.py, no secret
in it) with the validation errors, one item per route and body. Once the model is fixed, the
ReplayFunction (`{"requeue_quarantined": true}`; `make replay-quarantine` locally) sends each
parcel to the rescue queue and replays it through its function.
"""

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from billing_webhooks.data import notifications
from billing_webhooks.settings import settings


def _table() -> str:
    return settings().quarantine_table_name


def quarantine_id(parcel: dict[str, Any]) -> str:
    """The same delivery, redelivered, is one item."""
    return hashlib.sha256(f"{parcel['route']}\n{parcel['body']}".encode()).hexdigest()[:32]


def keep(parcel: dict[str, Any], errors: list[dict[str, Any]]) -> str:
    """Put the parcel in quarantine (once); its quarantine id."""
    identifier = quarantine_id(parcel)
    item = {
        "quarantine_id": identifier,
        "route": parcel["route"],
        "function": parcel["function"],
        "received_at": parcel["received_at"],
        "errors": json.dumps(errors, ensure_ascii=False),
        "parcel": json.dumps(parcel, ensure_ascii=False, separators=(",", ":")),
    }
    notifications.conditional_write(
        "put_item", "The delivery could not be quarantined; retry later.", TableName=_table(),
        Item=notifications.to_item(item), ConditionExpression="attribute_not_exists(quarantine_id)",
    )
    return identifier


def parcels() -> Iterator[tuple[str, dict[str, Any]]]:
    """(quarantine id, parcel) of every quarantined delivery."""
    pages = notifications.dynamodb().get_paginator("scan").paginate(
        TableName=_table(), ProjectionExpression="quarantine_id, parcel", ConsistentRead=True)
    for page in pages:
        for item in page["Items"]:
            yield item["quarantine_id"]["S"], json.loads(item["parcel"]["S"])


def release(identifier: str) -> None:
    notifications.dynamodb().delete_item(TableName=_table(), Key={"quarantine_id": {"S": identifier}})
