"""EntitlementsTable: one item per portal (`member_id`): the billing account it is linked to and
its current entitlement (domain/entitlements.py). Every DynamoDB call on the table.

The link is kept, not computed per read: an operator's (`link_source` operator) wins over the
default one by `account_code` (account_code). The sparse index `by-account` lists the portals
linked to an account, so an account's move reaches them. The entitlement is written only when
it changed, conditional on the version read, so two recomputations never interleave backwards.
"""

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from billing_webhooks.data import notifications
from billing_webhooks.settings import settings

BY_ACCOUNT = "by-account"
CHANGES_DUE = "changes-due"  # sparse: entitlements that name a deadline, by changes_shard and changes_at
SHARDS = 10
OPERATOR, ACCOUNT_CODE = "operator", "account_code"
UNAVAILABLE = "The portal's entitlement cannot be reached right now; retry later."


def _table() -> str:
    return settings().entitlements_table_name


def get(member_id: str) -> dict[str, Any] | None:
    try:
        answer = notifications.dynamodb().get_item(
            TableName=_table(), Key={"member_id": {"S": member_id}}, ConsistentRead=True
        )
    except (BotoCoreError, ClientError) as exc:
        raise notifications.fault(exc, UNAVAILABLE) from None
    return notifications.from_item(answer["Item"]) if "Item" in answer else None


def _update(member_id: str, expression: str, values: dict[str, Any], condition: str | None = None) -> bool:
    request: dict[str, Any] = {
        "TableName": _table(),
        "Key": {"member_id": {"S": member_id}},
        "UpdateExpression": expression,
    }
    if values:
        request["ExpressionAttributeValues"] = notifications.to_item(values)
    if condition:
        request["ConditionExpression"] = condition
    written, _ = notifications.conditional_write("update_item", UNAVAILABLE, **request)
    return written


def link(member_id: str, account_key: str, account_id: Any, source: str) -> bool:
    """Link the portal to an account. A default link (account_code) never replaces an operator's."""
    condition = None if source == OPERATOR else "attribute_not_exists(link_source) OR link_source <> :operator"
    values = {":key": account_key, ":id": account_id, ":source": source}
    if condition:
        values[":operator"] = OPERATOR
    return _update(member_id, "SET account_key = :key, account_id = :id, link_source = :source", values, condition)


def unlink(member_id: str) -> None:
    _update(member_id, "REMOVE account_key, account_id, link_source", {})


def _shard(member_id: str) -> str:
    return str(sum(member_id.encode()) % SHARDS)


def put_entitlement(
    member_id: str,
    entitlement: dict[str, Any],
    digest: str,
    deadline: int | None,
    version: int,
    told: list[dict[str, Any]],
    now: int,
    retry_at: int,
) -> bool:
    """The entitlement, if it differs (`digest`) from what the item holds at `version`, with the
    events that tell of it (`pending_events`, the outbox: published, then cleared); False when it
    is the same, or another recomputation wrote first (that one read newer inputs). `deadline`:
    when the answer changes by itself (`deadline_at`); the sweep's index (`changes_at`) holds the
    sooner of it and `retry_at`, when events still pending are taken as lost and published again."""
    swept = min([at for at in (deadline, retry_at if told else None) if at is not None], default=None)
    sets = {
        "entitlement": entitlement,
        "entitlement_digest": digest,
        "entitlement_version": version + 1,
        "pending_events": told,
        "pending_since": now,
        "deadline_at": deadline,
        "changes_at": swept,
        "changes_shard": _shard(member_id) if swept is not None else None,
    }
    kept = {name: value for name, value in sets.items() if value is not None}
    expression = "SET " + ", ".join(f"{name} = :{name}" for name in kept)
    if gone := [name for name, value in sets.items() if value is None]:
        expression += " REMOVE " + ", ".join(gone)
    values = {f":{name}": value for name, value in kept.items()} | {":version": version, ":zero": 0}
    condition = (
        "(attribute_not_exists(entitlement_version) AND :version = :zero) OR "
        "(entitlement_version = :version AND entitlement_digest <> :entitlement_digest)"
    )
    return _update(member_id, expression, values, condition)


def claim_outbox(member_id: str, version: int, since: int, now: int) -> bool:
    """Take a lost outbox over (its events of `version`, pending since `since`): True for one
    caller however many find it at once; it is then pending since `now`, this caller's."""
    return _update(
        member_id,
        "SET pending_since = :now",
        {":now": now, ":since": since, ":version": version},
        "entitlement_version = :version AND pending_since = :since",
    )


def events_published(member_id: str, version: int, deadline: int | None) -> None:
    """The outbox emptied of the events of `version` (a newer version's stay to be published), and
    the sweep's index back to the answer's own deadline."""
    if deadline is None:
        _update(
            member_id,
            "REMOVE pending_events, pending_since, changes_at, changes_shard",
            {":version": version},
            "entitlement_version = :version",
        )
    else:
        _update(
            member_id,
            "REMOVE pending_events, pending_since SET changes_at = :at, changes_shard = :shard",
            {":version": version, ":at": deadline, ":shard": _shard(member_id)},
            "entitlement_version = :version",
        )


def due(shard: int, now: int, limit: int = 100) -> list[str]:
    """Portals of one shard whose entitlement named a deadline that has come (soonest first)."""
    try:
        answer = notifications.dynamodb().query(
            TableName=_table(),
            IndexName=CHANGES_DUE,
            Limit=limit,
            KeyConditionExpression="changes_shard = :shard AND changes_at <= :now",
            ExpressionAttributeValues={":shard": {"S": str(shard)}, ":now": {"N": str(now)}},
        )
    except (BotoCoreError, ClientError) as exc:
        raise notifications.fault(exc, UNAVAILABLE) from None
    return [item["member_id"]["S"] for item in answer.get("Items", [])]


def linked_to(account_key: str) -> list[str]:
    """The portals linked to an account (bounded: a page of them; an account links a few)."""
    try:
        answer = notifications.dynamodb().query(
            TableName=_table(),
            IndexName=BY_ACCOUNT,
            KeyConditionExpression="account_key = :key",
            ExpressionAttributeValues={":key": {"S": account_key}},
            Limit=100,
        )
    except (BotoCoreError, ClientError) as exc:
        raise notifications.fault(exc, UNAVAILABLE) from None
    return [item["member_id"]["S"] for item in answer.get("Items", [])]
