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
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from billing_webhooks.data import toolkit
from billing_webhooks.settings import settings


def _table() -> str:
    return settings().quarantine_table_name


def quarantine_id(parcel: dict[str, Any]) -> str:
    """The same delivery, redelivered, is one item."""
    return hashlib.sha256(f"{parcel['route']}\n{parcel['body']}".encode()).hexdigest()[:32]


CAP_PREFIX = "cap#"  # the items that count a sender's quarantined deliveries per route


class QuarantineFull(Exception):
    """The sender has QUARANTINE_CAP_PER_SENDER deliveries of this route in quarantine already."""


def _expires_at(now: datetime) -> int:
    return int((now + timedelta(days=settings().quarantine_days)).timestamp())


def _count_key(sender: str, route: str) -> str:
    return CAP_PREFIX + hashlib.sha256(f"{sender}\n{route}".encode()).hexdigest()[:32]


def _count(counted_as: str, route: str, now: datetime) -> None:
    """One more of the sender's deliveries on the route, unless it has its cap already (the count
    expires with the quarantine period, so a sender is capped per period)."""
    counted, _ = toolkit.conditional_write(
        "update_item",
        "The delivery could not be quarantined; retry later.",
        TableName=_table(),
        Key={"quarantine_id": {"S": counted_as}},
        UpdateExpression="ADD kept :one SET expires_at = if_not_exists(expires_at, :expires)",
        ConditionExpression="attribute_not_exists(kept) OR kept < :cap",
        ExpressionAttributeValues={
            ":one": {"N": "1"},
            ":cap": {"N": str(int(settings().quarantine_cap_per_sender))},
            ":expires": {"N": str(_expires_at(now))},
        },
    )
    if not counted:
        raise QuarantineFull(f"{route}: the sender's quarantine is full")


def keep(parcel: dict[str, Any], errors: list[dict[str, Any]], sender: str, now: datetime) -> str:
    """Put the parcel in quarantine (once), counted against the sender's cap on its route; its
    quarantine id. It expires QUARANTINE_DAYS from now (DynamoDB's TTL)."""
    identifier, counted_as = quarantine_id(parcel), _count_key(sender, parcel["route"])
    item = {
        "quarantine_id": identifier,
        "counted_as": counted_as,  # its sender's count, given back when it is requeued
        "route": parcel["route"],
        "function": parcel["function"],
        "received_at": parcel["received_at"],
        "errors": _bounded_errors(errors),
        # The body apart, as its own bytes: inside the parcel's JSON a control character is six
        # (a 64 KiB form of them was a 391 KB item, near DynamoDB's 400 KB; now about 66 KB).
        "parcel": json.dumps(
            {name: value for name, value in parcel.items() if name != "body"},
            ensure_ascii=False,
            separators=(",", ":"),
        ),
        "body": parcel["body"].encode("utf-8", "surrogatepass"),
        "expires_at": _expires_at(now),
    }
    kept, _ = toolkit.conditional_write(
        "put_item",
        "The delivery could not be quarantined; retry later.",
        TableName=_table(),
        Item=toolkit.to_item(item),
        ConditionExpression="attribute_not_exists(quarantine_id)",
    )
    if kept:  # a redelivery of one already kept counts nothing
        try:
            _count(counted_as, parcel["route"], now)
        except QuarantineFull:
            release(identifier)
            raise
    return identifier


ERRORS_KEPT_BYTES = 16 * 1024  # the validation errors kept beside a parcel: the first ones, named


def _bounded_errors(errors: list[dict[str, Any]]) -> str:
    """The errors as JSON, at most ERRORS_KEPT_BYTES (a form of 1,000 bad fields has 1,000): the
    first ones, then how many more there were."""
    kept: list[dict[str, Any]] = []
    size = 2
    for error in errors:
        size += len(json.dumps(error, ensure_ascii=False).encode()) + 1
        if size + 64 > ERRORS_KEPT_BYTES:
            kept.append({"field": "(more)", "message": f"{len(errors) - len(kept)} more error(s) not kept"})
            break
        kept.append(error)
    return json.dumps(kept, ensure_ascii=False)


class Kept(NamedTuple):
    quarantine_id: str
    parcel: dict[str, Any]
    counted_as: str | None  # the sender's count it took a place in (None: kept before it was noted)


def parcels() -> Iterator[Kept]:
    """Every quarantined delivery."""
    pages = (
        toolkit.dynamodb()
        .get_paginator("scan")
        .paginate(
            TableName=_table(),
            ProjectionExpression="quarantine_id, parcel, body, counted_as",
            ConsistentRead=True,
        )
    )
    for page in pages:
        for item in page["Items"]:
            if "parcel" in item:  # not a sender's count
                parcel = json.loads(item["parcel"]["S"])
                if "body" in item:  # kept apart (an item kept before has it in the parcel)
                    parcel["body"] = bytes(item["body"]["B"]).decode("utf-8", "surrogatepass")
                yield Kept(item["quarantine_id"]["S"], parcel, item.get("counted_as", {}).get("S"))


def requeued(kept: Kept) -> None:
    """Take a delivery out of quarantine for a replay, and give its place in its sender's count
    back in the same write: one refused again is kept and counted again, so however many replays
    a still-refused delivery goes through, it holds one place (before, each replay took another
    and the cap then refused what was already kept)."""
    if kept.counted_as is None:
        return release(kept.quarantine_id)
    given_back = toolkit.transact(
        "The delivery could not be requeued; retry later.",
        [
            {"Delete": {"TableName": _table(), "Key": {"quarantine_id": {"S": kept.quarantine_id}}}},
            {
                "Update": {
                    "TableName": _table(),
                    "Key": {"quarantine_id": {"S": kept.counted_as}},
                    "UpdateExpression": "ADD kept :less",
                    "ConditionExpression": "kept > :none",
                    "ExpressionAttributeValues": {":less": {"N": "-1"}, ":none": {"N": "0"}},
                }
            },
        ],
    )
    if not given_back:  # its count expired meanwhile (DynamoDB's TTL): nothing to give back
        release(kept.quarantine_id)


def release(identifier: str) -> None:
    """Take a delivery out of quarantine (over its sender's cap, or requeued: see requeued)."""
    toolkit.dynamodb().delete_item(TableName=_table(), Key={"quarantine_id": {"S": identifier}})


def listed(limit: int, start_key: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], Any]:
    """Up to `limit` quarantined deliveries (not the senders' counts), without their bodies."""
    return toolkit.scan_until(
        "The quarantine cannot be read right now; retry later.",
        limit,
        start_key,
        TableName=_table(),
        FilterExpression="attribute_exists(parcel)",
        ProjectionExpression="quarantine_id, route, #function, received_at, expires_at",
        ExpressionAttributeNames={"#function": "function"},
    )


def get(identifier: str) -> dict[str, Any] | None:
    return toolkit.get(_table(), {"quarantine_id": identifier}, "The quarantine cannot be read right now; retry later.")
